// Package httpapi is the HTTP adapter of the command side: it turns API Gateway HTTP API (payload
// v2.0) requests into commands and their results or errors into JSON responses and
// application/problem+json problems.
//
// Routes are matched on the request's RouteKey ("POST /users"), which API Gateway sets from the
// routes template.yaml declares; Routes lists them, and a test checks both agree. Every mutating
// route honours Idempotency-Key (a repeat gets the recorded response and appends nothing),
// If-Match (the expected aggregate version, a mismatch is 409; * for "it exists", else 412; any
// on a create is 412) and X-Correlation-Id (accepted, or generated, and echoed). Responses carry
// the aggregate's version as ETag.
//
// # Callers
//
// Every route needs a caller API Gateway authenticated: a user (the JWT authorizer, the default
// of every route: the caller is the access token's subject) or an operator (IAM auth, on the
// operator routes). The handlers read it with auth.FromRequest and hand it to the application
// layer, which decides what the caller may do (packages command and query document the rules);
// they translate its refusals once:
//
//   - no caller (no authorizer context, which API Gateway never lets through): 401, TypeUnauthenticated;
//   - a refusal that follows from the request alone, revealing nothing stored (the path names
//     another user: /users/{id}, /customers/{id}/orders; a user on an operator route, an
//     operator on a route that acts as a user): 403, TypeForbidden;
//   - a refusal that depends on stored data (an account or order that is someone else's): the
//     answer of one that does not exist, exactly: 404 TypeNotFound (or TypeVersionNotFound with
//     ?minVersion=, or what If-Match on a missing resource gets), same detail, no ETag;
//   - an order whose paymentAccountId is not an account the caller owns: 422,
//     TypeUnknownPaymentAccount, whether it does not exist or is someone else's.
//
// An Idempotency-Key is the caller's own: records are kept under the key and a keyed hash of the
// caller, so one caller's key never replays another's response. Neither the caller nor the
// token's claims are logged.
package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/store"
)

// Idempotency is what the handler needs of an idempotency record store.
type Idempotency interface {
	Begin(ctx context.Context, key, hash string, lockUntil time.Time, fresh idempotency.Attempt) (*idempotency.Response, idempotency.Attempt, error)
	Complete(ctx context.Context, key string, a idempotency.Attempt, resp idempotency.Response) error
	Release(ctx context.Context, key string, a idempotency.Attempt) error
	Abandon(ctx context.Context, key string, a idempotency.Attempt) error
}

// Config configures a Handler.
type Config struct {
	Commands    *command.Service
	Idempotency Idempotency
	Log         *slog.Logger
	// IDs generates command and aggregate IDs; a generator on time.Now when nil.
	IDs *store.IDs
	// MaxBody is the largest request body accepted, in bytes; 0 means 64 KiB.
	MaxBody int
	// Clock is used for idempotency locks when the context has no deadline; time.Now when nil.
	Clock func() time.Time
	// HashKey keys the fingerprint of requests kept in idempotency records (at least 32 secret
	// bytes), so a record cannot confirm a guess of a request's personal data.
	HashKey []byte
}

// Handler serves the command routes. It is safe for concurrent use.
type Handler struct {
	cmd     *command.Service
	idem    Idempotency
	log     *slog.Logger
	ids     *store.IDs
	maxBody int
	now     func() time.Time
	routes  map[string]route
	hashKey []byte
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Commands == nil {
		errs = append(errs, errors.New("httpapi: Commands is required"))
	}
	if cfg.Idempotency == nil {
		errs = append(errs, errors.New("httpapi: Idempotency is required"))
	}
	if cfg.Log == nil {
		errs = append(errs, errors.New("httpapi: Log is required"))
	}
	if len(cfg.HashKey) < 32 {
		errs = append(errs, errors.New("httpapi: HashKey needs at least 32 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.IDs == nil {
		cfg.IDs = store.NewIDs(nil)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	derive := hmac.New(sha256.New, cfg.HashKey)
	derive.Write([]byte("eventfold/idempotency-request"))
	h := &Handler{cmd: cfg.Commands, idem: cfg.Idempotency, log: cfg.Log, ids: cfg.IDs, maxBody: cfg.MaxBody, now: cfg.Clock, hashKey: derive.Sum(nil)}
	h.routes = h.commandRoutes()
	return h, nil
}

// Routes returns the route keys the handler serves, sorted.
func (h *Handler) Routes() []string { return routeKeys(h.routes) }

// routeKeys returns the keys of a route table, sorted: what Handler.Routes and Queries.Routes
// report.
func routeKeys[R any](routes map[string]R) []string { return slices.Sorted(maps.Keys(routes)) }

// requestCorrelationID returns the request's X-Correlation-Id when it is well-formed, else a new ID
// from ids: the ID both handlers log, put in problems and echo.
func requestCorrelationID(req events.APIGatewayV2HTTPRequest, ids *store.IDs) string {
	if id := req.Headers["x-correlation-id"]; correlationPattern.MatchString(id) {
		return id
	}
	return ids.New()
}

// request is what a route's function gets.
type request struct {
	meta   command.Meta
	params map[string]string
	body   []byte
	newID  string // an ID for the aggregate a create route makes
}

type route struct {
	status int    // the status of success
	create string // for routes that create: the path the new resource's ID is appended to
	run    func(ctx context.Context, r request) (command.Result, error)
}

var (
	correlationPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	keyPattern         = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
	ifMatchPattern     = regexp.MustCompile(`^(?:W/)?"?([0-9]{1,18})"?$`)
)

// Handle serves one API Gateway HTTP API request. It returns an error only for a failure
// API Gateway should report as its own (none today): every outcome is an HTTP response.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.now()
	correlationID := requestCorrelationID(req, h.ids)
	meta := command.Meta{CommandID: h.ids.New(), CorrelationID: correlationID}
	resp, res, err := h.serve(ctx, req, &meta)
	commandID := meta.CommandID
	if err != nil {
		p, internal := problemFor(err)
		if internal {
			h.log.ErrorContext(ctx, "command failed", "route", req.RouteKey, "correlation_id", correlationID, "command_id", commandID, "error", err.Error())
		}
		resp = p.response(correlationID)
	}
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	resp.Headers["X-Correlation-Id"] = correlationID
	h.log.InfoContext(ctx, "command",
		"route", req.RouteKey, "status", resp.StatusCode, "correlation_id", correlationID, "command_id", commandID,
		"stream_id", res.StreamID, "version", res.Version, "events", len(res.EventIDs),
		"duration_ms", h.now().Sub(start).Milliseconds())
	return resp, nil
}

// serve runs the request. With an Idempotency-Key, meta takes the identity of the key's attempt.
func (h *Handler) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, meta *command.Meta) (events.APIGatewayV2HTTPResponse, command.Result, error) {
	var none events.APIGatewayV2HTTPResponse
	rt, ok := h.routes[req.RouteKey]
	if !ok {
		return none, command.Result{}, newProblem(http.StatusNotFound, TypeRouteNotFound, "no such route")
	}
	caller, err := auth.FromRequest(req.RequestContext)
	if err != nil {
		return none, command.Result{}, err
	}
	meta.Caller = caller
	body, err := h.body(req)
	if err != nil {
		return none, command.Result{}, err
	}
	if m := req.Headers["if-match"]; m != "" {
		if meta.Expected, meta.MustExist, err = ifMatch(m, rt.create != ""); err != nil {
			return none, command.Result{}, err
		}
	}
	r := request{params: req.PathParameters, body: body}
	if rt.create != "" {
		r.newID = h.ids.New()
	}
	key := req.Headers["idempotency-key"]
	if key == "" {
		r.meta = *meta
		return h.run(ctx, rt, r)
	}
	if !keyPattern.MatchString(key) {
		return none, command.Result{}, newProblem(http.StatusBadRequest, TypeMalformed, "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	key = h.RecordKey(caller, key)
	hash := h.RequestHash(req.RouteKey, req.RawPath, req.Headers["if-match"], body)
	lock, ok := ctx.Deadline()
	if !ok {
		lock = h.now().Add(30 * time.Second)
	}
	recorded, attempt, err := h.idem.Begin(ctx, key, hash, lock, idempotency.Attempt{CommandID: meta.CommandID, NewID: r.newID})
	switch {
	case errors.Is(err, idempotency.ErrMismatch):
		return none, command.Result{}, newProblem(http.StatusUnprocessableEntity, TypeKeyReused, "the Idempotency-Key was used for a different request")
	case errors.Is(err, idempotency.ErrInProgress):
		return none, command.Result{}, newProblem(http.StatusConflict, TypeKeyInProgress, "a request with this Idempotency-Key is still running; retry later")
	case err != nil:
		return none, command.Result{}, err
	case recorded != nil:
		headers := map[string]string{"Idempotent-Replayed": "true"}
		for k, v := range recorded.Headers {
			headers[k] = v
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: recorded.Status, Headers: headers, Body: recorded.Body}, command.Result{}, nil
	}
	// Every attempt of this key is one command: same command ID, same new aggregate ID.
	meta.CommandID, meta.Retry, r.newID = attempt.CommandID, attempt.Retry, attempt.NewID
	r.meta = *meta
	// The command runs no longer than the lock: once it ends, another attempt may take the key
	// over, and no write of this one may start after that (one sent before may still land; the
	// command layer of the other attempt finds it).
	runCtx, cancel := context.WithDeadline(ctx, lock)
	defer cancel()
	resp, res, err := h.run(runCtx, rt, r)
	if err != nil {
		p, internal := problemFor(err)
		switch {
		case internal:
			// The command may have been appended before the failure: keep the attempt, unlock
			// it, and let the retry find out.
			if rerr := h.idem.Release(ctx, key, attempt); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return none, res, err
		case p.Status == http.StatusConflict, p.Status == http.StatusPreconditionFailed:
			// A lost version race in which none of the stream's new events is this command's
			// (the command layer looks) wrote nothing: free the key for the reloaded request.
			// So did If-Match: * on a resource that does not exist: the same request may hold
			// once the resource does, and must not be answered with this 412 until the record
			// expires.
			if aerr := h.idem.Abandon(ctx, key, attempt); aerr != nil {
				err = errors.Join(err, aerr)
			}
			return none, res, err
		}
		resp = p.response(meta.CorrelationID)
	}
	cerr := h.idem.Complete(ctx, key, attempt, idempotency.Response{Status: resp.StatusCode, Headers: resp.Headers, Body: resp.Body})
	switch {
	case errors.Is(cerr, idempotency.ErrLockLost):
		// This attempt outlived its lock and another attempt of the same command holds the key
		// now: that one records the outcome. This answer describes the same single execution.
		h.log.WarnContext(ctx, "idempotency lock lost before completing", "route", req.RouteKey, "correlation_id", meta.CorrelationID, "command_id", meta.CommandID)
	case cerr != nil:
		return none, res, cerr
	}
	return resp, res, nil
}

// ifMatch reads an If-Match header: a version ETag is the version the client acted on (expected);
// * asks only that the resource exist (mustExist). On a route that creates, no condition can hold
// — the resource has no current representation yet (RFC 9110 §13.1.1) — so any well-formed one
// is a 412, before anything is read or written. A malformed one is a 400 on every route.
func ifMatch(header string, create bool) (expected *int64, mustExist bool, err error) {
	m := strings.TrimSpace(header)
	if m != "*" {
		g := ifMatchPattern.FindStringSubmatch(m)
		if g == nil {
			return nil, false, newProblem(http.StatusBadRequest, TypeMalformed, `If-Match must be * or a version ETag such as "3"`)
		}
		v, _ := strconv.ParseInt(g[1], 10, 64)
		expected = &v
	}
	if create {
		return nil, false, newProblem(http.StatusPreconditionFailed, TypePreconditionFailed, "this request creates the resource, so no If-Match can hold for it; send none")
	}
	return expected, expected == nil, nil
}

// RecordKey is the record key of a caller's Idempotency-Key: the key after a keyed hash of who
// the caller is (a user's subject, an operator's principal), so the same key sent by two callers
// names two records, and neither the subject nor the principal is stored in the clear.
func (h *Handler) RecordKey(c auth.Caller, key string) string {
	mac := hmac.New(sha256.New, h.hashKey)
	mac.Write([]byte("caller"))
	mac.Write([]byte{0})
	if c.Operator {
		mac.Write([]byte("operator\x00" + c.Principal))
	} else {
		mac.Write([]byte("user\x00" + c.Subject))
	}
	return hex.EncodeToString(mac.Sum(nil)[:16]) + "/" + key
}

// RequestHash fingerprints a request for its idempotency record: the same key with a different
// fingerprint is a different request. It is keyed (HMAC-SHA256), so the record does not let
// anyone confirm a guess of the body.
func (h *Handler) RequestHash(routeKey, path, ifMatch string, body []byte) string {
	mac := hmac.New(sha256.New, h.hashKey)
	for _, part := range []string{routeKey, path, ifMatch} {
		mac.Write([]byte(part))
		mac.Write([]byte{0})
	}
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// body returns the request body, decoded from base64 when API Gateway encoded it, after checking
// its size and content type.
func (h *Handler) body(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	if len(req.Body) > h.maxBody*4/3+4 {
		return nil, newProblem(http.StatusRequestEntityTooLarge, TypeTooLarge, fmt.Sprintf("the body exceeds %d bytes", h.maxBody))
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, newProblem(http.StatusBadRequest, TypeMalformed, "the body is not valid base64")
		}
	}
	if len(body) > h.maxBody {
		return nil, newProblem(http.StatusRequestEntityTooLarge, TypeTooLarge, fmt.Sprintf("the body exceeds %d bytes", h.maxBody))
	}
	if len(body) > 0 {
		mt, _, err := mime.ParseMediaType(req.Headers["content-type"])
		if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return nil, newProblem(http.StatusUnsupportedMediaType, TypeMediaType, "send Content-Type: application/json")
		}
	}
	return body, nil
}

// run runs a route and renders its success.
func (h *Handler) run(ctx context.Context, rt route, r request) (events.APIGatewayV2HTTPResponse, command.Result, error) {
	res, err := rt.run(ctx, r)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, res, err
	}
	eventIDs := res.EventIDs
	if eventIDs == nil {
		eventIDs = []string{}
	}
	body, _ := json.Marshal(struct {
		ID       string   `json:"id"`
		Version  int64    `json:"version"`
		EventIDs []string `json:"eventIds"`
	}{res.ID, res.Version, eventIDs})
	headers := map[string]string{"Content-Type": "application/json", "ETag": etag(res.Version)}
	if rt.create != "" {
		// A user's ID is their token's subject, which may hold what a path may not ("auth0|…").
		headers["Location"] = rt.create + url.PathEscape(res.ID)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: rt.status, Headers: headers, Body: string(body)}, res, nil
}
