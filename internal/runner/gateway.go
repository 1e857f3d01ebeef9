package runner

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/localaws"
)

// route is one HttpApi route of a function.
type route struct {
	key      string   // "POST /users/{id}", as API Gateway's routeKey
	method   string   // upper case, or ANY
	segments []string // the path's segments; "{name}" matches one, "{name+}" the rest
	function string
	auth     routeAuth
}

// addRoutes registers the function's HttpApi events.
func (r *Runner) addRoutes(s functionSpec) error {
	for _, e := range r.tmpl.Events(s.id, "HttpApi") {
		p := e.Properties
		method, _ := p["Method"].(string)
		path, _ := p["Path"].(string)
		auth, err := r.routeAuthOf(p)
		if err != nil {
			return fmt.Errorf("%s event %s: %w", s.id, e.Name, err)
		}
		if method == "" || path == "" {
			// SAM's default: an HttpApi event without Method and Path is the $default route.
			r.routes = append(r.routes, route{key: "$default", method: "ANY", function: s.id, auth: auth})
			continue
		}
		method = strings.ToUpper(method)
		if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
			method = "ANY"
		}
		r.routes = append(r.routes, route{key: method + " " + path, method: method, segments: split(path), function: s.id, auth: auth})
	}
	return nil
}

func split(path string) []string {
	return strings.Split(strings.Trim(path, "/"), "/")
}

// match finds the route API Gateway would pick: a full match before a greedy ({proxy+}) one
// before $default; among those, more literal segments first, then a route for the method
// before one for ANY.
func (r *Runner) match(method, path string) (*route, map[string]string) {
	var (
		best       *route
		bestParams map[string]string
		bestScore  = -1
	)
	segs := split(path)
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.method != "ANY" && rt.method != method {
			continue
		}
		score, params, ok := rt.matches(segs)
		if !ok {
			continue
		}
		if rt.method != "ANY" {
			score++
		}
		if score > bestScore {
			best, bestParams, bestScore = rt, params, score
		}
	}
	return best, bestParams
}

// Route match classes, from the most to the least preferred.
const (
	fullMatch   = 2_000_000
	greedyMatch = 1_000_000
)

// matches scores the route against a path's segments: its class, plus 10 per literal segment.
func (rt *route) matches(segs []string) (int, map[string]string, bool) {
	if rt.key == "$default" {
		return 0, nil, true
	}
	params := map[string]string{}
	score := fullMatch
	for i, s := range rt.segments {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}") {
			if i >= len(segs) || segs[i] == "" {
				return 0, nil, false
			}
			params[s[1:len(s)-2]] = strings.Join(segs[i:], "/")
			return score - fullMatch + greedyMatch, params, true
		}
		if i >= len(segs) {
			return 0, nil, false
		}
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			if segs[i] == "" {
				return 0, nil, false
			}
			params[s[1:len(s)-1]] = segs[i]
		case s == segs[i]:
			score += 10
		default:
			return 0, nil, false
		}
	}
	if len(segs) != len(rt.segments) {
		return 0, nil, false
	}
	if len(params) == 0 {
		params = nil
	}
	return score, params, true
}

func (r *Runner) serve() error {
	ln, err := net.Listen("tcp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("runner: HTTP API on %s: %w", r.cfg.Addr, err)
	}
	r.ln = ln
	r.srv = &http.Server{Handler: http.HandlerFunc(r.gateway), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return nil
}

// API Gateway HTTP API limits and answers.
const (
	maxRequestBody     = 10 << 20 // API Gateway's payload limit
	maxLambdaPayload   = 6 << 20  // Lambda's synchronous invocation limit
	integrationTimeout = 30 * time.Second
)

func gatewayError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": message})
}

// gateway turns an HTTP request into an API Gateway HTTP API payload v2.0 event, invokes the
// route's function, and turns its answer into the HTTP response.
func (r *Runner) gateway(w http.ResponseWriter, req *http.Request) {
	started := time.Now()
	rt, params := r.match(req.Method, req.URL.Path)
	if rt == nil {
		gatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	// The route's authorizer decides before anything reaches the function.
	authorizer, refused := r.authorize(req, body, rt.auth)
	if refused != nil {
		refused.write(w)
		r.cfg.Log.Info("refused", "route", rt.key, "status", refused.status, "ms", time.Since(started).Milliseconds())
		return
	}
	event := r.event(req, rt, params, body)
	event.RequestContext.Authorizer = authorizer
	payload, _ := json.Marshal(event)
	if len(payload) > maxLambdaPayload {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), integrationTimeout)
	defer cancel()
	out, err := r.functions[rt.function].invoke(ctx, event.RequestContext.RequestID, payload)
	status := r.respond(w, out, err)
	o := outcomeOf(err)
	attrs := []any{"function", rt.function, "trigger", "http", "route", rt.key,
		"status", status, "ms", time.Since(started).Milliseconds(), "outcome", string(o)}
	// What failed: the function's error type (not its message), or the runner's own error.
	var fe *FunctionError
	switch {
	case errors.As(err, &fe):
		attrs = append(attrs, "error_type", fe.Type)
	case o == outcomeError:
		attrs = append(attrs, "error", err.Error())
	}
	r.cfg.Log.Info("invoke", attrs...)
}

func (r *Runner) event(req *http.Request, rt *route, params map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	headers := map[string]string{}
	var cookies []string
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = req.Host
	headers["content-length"] = fmt.Sprint(len(body))
	headers["x-forwarded-proto"] = "http"
	sourceIP, _, _ := net.SplitHostPort(req.RemoteAddr)
	headers["x-forwarded-for"] = sourceIP
	query := map[string]string{}
	for k, vs := range req.URL.Query() {
		query[k] = strings.Join(vs, ",")
	}
	if len(query) == 0 {
		query = nil
	}
	e := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              rt.key,
		RawPath:               req.URL.EscapedPath(),
		RawQueryString:        req.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.key,
			AccountID:    localaws.Account,
			Stage:        "$default",
			RequestID:    newRequestID(),
			APIID:        "local",
			DomainName:   req.Host,
			DomainPrefix: strings.Split(req.Host, ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: req.Method, Path: req.URL.Path, Protocol: req.Proto, SourceIP: sourceIP, UserAgent: req.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if textual(req.Header.Get("Content-Type")) {
			e.Body = string(body)
		} else {
			e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return e
}

// textual reports whether API Gateway passes a body of this type as text; others are base64.
func textual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType == ""
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || strings.HasSuffix(mt, "+xml") || mt == "application/javascript" ||
		mt == "application/x-www-form-urlencoded"
}

// respond writes the function's answer as an HTTP API does: a payload v2.0 response object, or
// any other JSON value as a 200 application/json body. A function error, crash or timeout and a
// malformed answer are 500 Internal Server Error; an integration that outlasts API Gateway's 30 s
// is 503 Service Unavailable. (REST APIs answer 502 and 504 instead.)
func (r *Runner) respond(w http.ResponseWriter, out []byte, err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		gatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
		return http.StatusServiceUnavailable
	case err != nil:
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) != nil || probe["statusCode"] == nil {
		if !json.Valid(out) {
			gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
		return http.StatusOK
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return http.StatusInternalServerError
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return http.StatusInternalServerError
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return resp.StatusCode
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
