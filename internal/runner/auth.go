package runner

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/eventfold/eventfold/internal/localaws"
)

// How a route is authorized, as API Gateway HTTP APIs do: no authorizer, a JWT authorizer, or
// IAM (SigV4).
type authKind int

const (
	authNone authKind = iota
	authJWT
	authIAM
)

// routeAuth is a route's authorization: its kind, for JWT the authorizer and the scopes the
// route requires (any one of them).
type routeAuth struct {
	kind   authKind
	jwt    *jwtAuthorizer
	scopes []string
}

// jwtAuthorizer is one of an HttpApi's JWT authorizers.
type jwtAuthorizer struct {
	name     string
	header   string // the identity source: $request.header.<header>
	issuer   string
	audience []string
	scopes   []string // the authorizer's AuthorizationScopes, a route's default
	keys     *keySource
}

// apiAuth is an HttpApi's Auth, as SAM reads it.
type apiAuth struct {
	defaultAuthorizer string
	iam               bool
	authorizers       map[string]*jwtAuthorizer
}

// readAPIAuth reads the Auth of the HttpApi with the given logical ID ("" for SAM's implicit
// API, which takes Globals.HttpApi.Auth), intrinsics resolved.
func (r *Runner) readAPIAuth(apiID string) (*apiAuth, error) {
	var raw any
	if apiID == "" {
		g, _ := r.tmpl.Globals["HttpApi"].(map[string]any)
		raw = g["Auth"]
	} else {
		res, ok := r.tmpl.Resources[apiID]
		if !ok || res.Type != "AWS::Serverless::HttpApi" {
			return nil, fmt.Errorf("runner: ApiId %s is not an AWS::Serverless::HttpApi of the template", apiID)
		}
		raw = res.Properties["Auth"]
	}
	a := &apiAuth{authorizers: map[string]*jwtAuthorizer{}}
	if raw == nil {
		return a, nil
	}
	resolved, err := r.env.Resolve(raw)
	if err != nil {
		return nil, fmt.Errorf("runner: HttpApi %s Auth: %w", apiID, err)
	}
	m, _ := resolved.(map[string]any)
	a.defaultAuthorizer, _ = m["DefaultAuthorizer"].(string)
	a.iam, _ = m["EnableIamAuthorizer"].(bool)
	auths, _ := m["Authorizers"].(map[string]any)
	for name, v := range auths {
		am, _ := v.(map[string]any)
		jc, ok := am["JwtConfiguration"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("runner: authorizer %s: only JWT authorizers (JwtConfiguration) are supported locally", name)
		}
		ja := &jwtAuthorizer{name: name, header: "Authorization", scopes: strings1(am["AuthorizationScopes"])}
		if src, _ := am["IdentitySource"].(string); src != "" {
			h, ok := strings.CutPrefix(src, "$request.header.")
			if !ok || h == "" {
				return nil, fmt.Errorf("runner: authorizer %s: IdentitySource %q is not $request.header.<name>", name, src)
			}
			ja.header = h
		}
		ja.issuer, _ = jc["issuer"].(string)
		ja.audience = strings1(jc["audience"])
		if ja.issuer == "" || len(ja.audience) == 0 {
			return nil, fmt.Errorf("runner: authorizer %s needs an issuer and an audience", name)
		}
		ks, err := r.keySource(ja.issuer)
		if err != nil {
			return nil, fmt.Errorf("runner: authorizer %s: %w", name, err)
		}
		ja.keys = ks
		a.authorizers[name] = ja
	}
	if a.defaultAuthorizer != "" && a.defaultAuthorizer != "AWS_IAM" && a.authorizers[a.defaultAuthorizer] == nil {
		return nil, fmt.Errorf("runner: DefaultAuthorizer %s is not one of the HttpApi's Authorizers", a.defaultAuthorizer)
	}
	return a, nil
}

// strings1 reads a list of strings (or one string) from a resolved template value.
func strings1(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, s := range v {
			if s, ok := s.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// routeAuthOf is the authorization of one HttpApi event, as SAM derives it: its
// Auth.Authorizer (a name, AWS_IAM or NONE), else the API's DefaultAuthorizer; its
// Auth.AuthorizationScopes, else the authorizer's.
func (r *Runner) routeAuthOf(props map[string]any) (routeAuth, error) {
	apiID := ""
	if ref, ok := props["ApiId"].(map[string]any); ok {
		apiID, _ = ref["Ref"].(string)
	}
	if r.apiAuths == nil {
		r.apiAuths = map[string]*apiAuth{}
	}
	a, ok := r.apiAuths[apiID]
	if !ok {
		var err error
		if a, err = r.readAPIAuth(apiID); err != nil {
			return routeAuth{}, err
		}
		r.apiAuths[apiID] = a
	}
	name := a.defaultAuthorizer
	var scopes []string
	hasScopes := false
	if raw, ok := props["Auth"]; ok {
		resolved, err := r.env.Resolve(raw)
		if err != nil {
			return routeAuth{}, fmt.Errorf("runner: route Auth: %w", err)
		}
		m, _ := resolved.(map[string]any)
		if n, ok := m["Authorizer"].(string); ok && n != "" {
			name = n
		}
		if s, ok := m["AuthorizationScopes"]; ok {
			scopes, hasScopes = strings1(s), true
		}
	}
	switch name {
	case "", "NONE":
		return routeAuth{kind: authNone}, nil
	case "AWS_IAM":
		if !a.iam {
			return routeAuth{}, errors.New("runner: a route names AWS_IAM and its HttpApi does not set EnableIamAuthorizer")
		}
		return routeAuth{kind: authIAM}, nil
	}
	ja := a.authorizers[name]
	if ja == nil {
		return routeAuth{}, fmt.Errorf("runner: a route names authorizer %s, which its HttpApi does not declare", name)
	}
	if !hasScopes {
		scopes = ja.scopes
	}
	return routeAuth{kind: authJWT, jwt: ja, scopes: scopes}, nil
}

// refusal is a request an authorizer turned away: API Gateway's status, message and, for a JWT,
// www-authenticate challenge.
type refusal struct {
	status    int
	message   string
	challenge string
}

func (f *refusal) write(w http.ResponseWriter) {
	if f.challenge != "" {
		w.Header().Set("www-authenticate", f.challenge)
	}
	gatewayError(w, f.status, f.message)
}

// authorize applies the route's authorizer to the request (body read): it returns what reaches
// the function in requestContext.authorizer, or the refusal.
func (r *Runner) authorize(req *http.Request, body []byte, ra routeAuth) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *refusal) {
	switch ra.kind {
	case authJWT:
		return r.authorizeJWT(req.Context(), req.Header.Get(ra.jwt.header), ra)
	case authIAM:
		iam, f := r.authorizeIAM(req, body)
		if f != nil {
			return nil, f
		}
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: iam}, nil
	}
	return nil, nil
}

// now is the runner's clock for authorizers.
func (r *Runner) now() time.Time {
	if r.cfg.Now != nil {
		return r.cfg.Now()
	}
	return time.Now()
}

// rsaAlgorithms are the signature algorithms API Gateway accepts in a JWT: RSA-based only.
var rsaAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}

// Reasons a token is refused, as API Gateway words them in its www-authenticate header.
const (
	reasonMalformed = "the token is malformed"
	reasonSignature = "the token does not have a valid signature"
	reasonIssuer    = "the token does not have a valid issuer"
	reasonAudience  = "the token does not have a valid audience" // documented by API Gateway
	reasonExpired   = "the token has expired"
	reasonNotYet    = "the token is not valid yet"
	reasonFuture    = "the token was issued in the future"
)

func unauthorized(reason string) *refusal {
	return &refusal{status: http.StatusUnauthorized, message: "Unauthorized",
		challenge: `Bearer scope="" error="invalid_token" error_description="` + reason + `"`}
}

// bearerToken is the token in an identity source's value: the whole value, or what follows
// "Bearer ", as API Gateway accepts both.
func bearerToken(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	}
	return v
}

// authorizeJWT checks a token as API Gateway's JWT authorizer does: the token from the identity
// source; an RSA signature by a key of the issuer's JWKS with the token's kid; iss; aud, or
// client_id when there is no aud; exp, nbf and iat against the clock, without leeway; and one of
// the route's scopes in scope or scp. Claims reach the function as strings.
func (r *Runner) authorizeJWT(ctx context.Context, header string, ra routeAuth) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *refusal) {
	ja := ra.jwt
	token := bearerToken(header)
	if token == "" {
		return nil, &refusal{status: http.StatusUnauthorized, message: "Unauthorized"}
	}
	claims, payload, reason := verifyToken(ctx, token, ja, r.now())
	if reason != "" {
		r.cfg.Log.Info("jwt refused", "authorizer", ja.name, "reason", reason)
		return nil, unauthorized(reason)
	}
	granted := tokenScopes(payload)
	if len(ra.scopes) > 0 && !slices.ContainsFunc(ra.scopes, func(s string) bool { return slices.Contains(granted, s) }) {
		return nil, &refusal{status: http.StatusForbidden, message: "Forbidden",
			challenge: `Bearer scope="` + strings.Join(ra.scopes, " ") + `" error="insufficient_scope" error_description="expected scopes: [` + strings.Join(ra.scopes, " ") + `]"`}
	}
	desc := &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims}
	if len(ra.scopes) > 0 {
		desc.Scopes = granted
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: desc}, nil
}

// verifyToken verifies a token's signature and registered claims. It returns the claims as API
// Gateway passes them and the decoded payload, or why the token is refused.
func verifyToken(ctx context.Context, token string, ja *jwtAuthorizer, now time.Time) (map[string]string, map[string]any, string) {
	tok, err := jwt.ParseSigned(token, rsaAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil, nil, reasonMalformed
	}
	key, err := ja.keys.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, nil, reasonSignature
	}
	var (
		std jwt.Claims
		raw json.RawMessage
	)
	if err := tok.Claims(key, &std, &raw); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, nil, reasonSignature
		}
		return nil, nil, reasonMalformed
	}
	payload, claims, err := stringClaims(raw)
	if err != nil {
		return nil, nil, reasonMalformed
	}
	switch err := std.ValidateWithLeeway(jwt.Expected{Issuer: ja.issuer, Time: now}, 0); {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, nil, reasonIssuer
	case errors.Is(err, jwt.ErrExpired):
		return nil, nil, reasonExpired
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, nil, reasonNotYet
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, nil, reasonFuture
	case err != nil:
		return nil, nil, reasonMalformed
	}
	if std.Expiry == nil {
		return nil, nil, reasonExpired
	}
	// aud when the token has one, else client_id (Cognito's access tokens).
	audiences := []string(std.Audience)
	if _, ok := payload["aud"]; !ok {
		if cid, ok := payload["client_id"].(string); ok {
			audiences = []string{cid}
		}
	}
	if !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(ja.audience, a) }) {
		return nil, nil, reasonAudience
	}
	return claims, payload, ""
}

// stringClaims decodes a token's payload and renders each claim as API Gateway passes it in
// payload v2.0's requestContext.authorizer.jwt.claims, a map of strings: a string as it is, a
// number as its decimal text in the token, a boolean as true or false, a list as [a b], an
// object as map[k:v].
func stringClaims(raw []byte) (map[string]any, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var payload map[string]any
	if err := dec.Decode(&payload); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("trailing data after the claims")
	}
	claims := make(map[string]string, len(payload))
	for k, v := range payload {
		if s, ok := v.(string); ok {
			claims[k] = s
			continue
		}
		claims[k] = fmt.Sprint(v)
	}
	return payload, claims, nil
}

// tokenScopes are the scopes a token grants: its scope claim (space-separated) or its scp claim
// (a list, or space-separated).
func tokenScopes(payload map[string]any) []string {
	for _, name := range []string{"scope", "scp"} {
		switch v := payload[name].(type) {
		case string:
			return strings.Fields(v)
		case []any:
			var out []string
			for _, s := range v {
				if s, ok := s.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return nil
}

// keySource fetches and caches an issuer's signing keys: from its OpenID configuration's
// jwks_uri, refetched when a token names a kid it does not know, at most once per
// keyRefetchInterval.
type keySource struct {
	discovery string // the issuer's /.well-known/openid-configuration
	issuer    string
	client    *http.Client

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

const keyRefetchInterval = 5 * time.Second

// cognitoIssuer matches a Cognito user pool's issuer; the local stack's moto serves those pools.
var cognitoIssuer = regexp.MustCompile(`^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/([A-Za-z0-9-]+_[A-Za-z0-9]+)$`)

// keySource returns the key source of an issuer: a Cognito pool's on the local moto, any
// other's at <issuer>/.well-known/openid-configuration.
func (r *Runner) keySource(issuer string) (*keySource, error) {
	base := strings.TrimSuffix(issuer, "/")
	if m := cognitoIssuer.FindStringSubmatch(issuer); m != nil {
		if r.cfg.KMSEndpoint == "" {
			return nil, fmt.Errorf("issuer %s is a Cognito user pool and no moto endpoint (KMSEndpoint) is set", issuer)
		}
		base = strings.TrimSuffix(r.cfg.KMSEndpoint, "/") + "/" + m[1]
	}
	return &keySource{discovery: base + "/.well-known/openid-configuration", issuer: issuer,
		client: &http.Client{Timeout: 5 * time.Second}}, nil
}

// errUnknownKey is returned by keySource.key when the issuer's JWKS has no usable key of the kid.
var errUnknownKey = errors.New("runner: no such signing key")

// key returns the issuer's public key with the given kid.
func (k *keySource) key(ctx context.Context, kid string) (any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key := findKey(k.keys, kid); key != nil {
		return key, nil
	}
	if !k.fetched.IsZero() && time.Since(k.fetched) < keyRefetchInterval {
		return nil, errUnknownKey
	}
	keys, err := k.fetch(ctx)
	k.fetched = time.Now()
	if err != nil {
		return nil, err
	}
	k.keys = keys
	if key := findKey(keys, kid); key != nil {
		return key, nil
	}
	return nil, errUnknownKey
}

// findKey returns the public RSA signing key of the set with the kid, or nil.
func findKey(set jose.JSONWebKeySet, kid string) any {
	for _, jwk := range set.Key(kid) {
		if jwk.IsPublic() && (jwk.Use == "" || jwk.Use == "sig") && jwk.Valid() {
			if _, ok := jwk.Public().Key.(interface{ Size() int }); ok {
				return jwk.Public().Key
			}
		}
	}
	return nil
}

const maxDiscoveryBody = 1 << 20

func (k *keySource) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := k.getJSON(ctx, k.discovery, &conf); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	if conf.Issuer != k.issuer || conf.JWKSURI == "" {
		return jose.JSONWebKeySet{}, fmt.Errorf("runner: %s names issuer %q (want %q) and jwks_uri %q", k.discovery, conf.Issuer, k.issuer, conf.JWKSURI)
	}
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, conf.JWKSURI, &set); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return set, nil
}

func (k *keySource) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("runner: fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("runner: fetch %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBody)).Decode(v); err != nil {
		return fmt.Errorf("runner: decode %s: %w", url, err)
	}
	return nil
}

// IAM (SigV4) refusals, in API Gateway's words.
const (
	msgForbidden         = "Forbidden"
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken      = "The security token included in the request is invalid."
	msgIncompleteSig     = "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)

// OperatorAccessKey and OperatorSecretKey are the credentials the local stack's IAM principal
// signs with: the ones the runner gives the functions (and localaws.Config uses). A request to
// an AWS_IAM route signed with them is the operator; any other key is unknown.
const (
	OperatorAccessKey = "local"
	OperatorSecretKey = "local"
	operatorUser      = "local-operator"
)

// maxClockSkew is how far a SigV4 request's X-Amz-Date may be from the clock.
const maxClockSkew = 15 * time.Minute

var sigv4Header = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$`)

// authorizeIAM verifies a SigV4 signature as execute-api does: it recomputes it with the SDK's
// signer over the same signed headers and the body's hash, with the operator's secret, for
// service execute-api in the runner's region, and requires X-Amz-Date within 15 minutes.
func (r *Runner) authorizeIAM(req *http.Request, body []byte) (*events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription, *refusal) {
	forbidden := func(msg string) *refusal { return &refusal{status: http.StatusForbidden, message: msg} }
	authz := req.Header.Get("Authorization")
	if authz == "" {
		return nil, forbidden(msgForbidden)
	}
	m := sigv4Header.FindStringSubmatch(authz)
	amzDate := req.Header.Get("X-Amz-Date")
	if m == nil || amzDate == "" {
		return nil, forbidden(msgIncompleteSig)
	}
	accessKey, scopeDate, region, service, signedHeaders, signature := m[1], m[2], m[3], m[4], m[5], m[6]
	if accessKey != OperatorAccessKey {
		return nil, forbidden(msgInvalidToken)
	}
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || scopeDate != amzDate[:8] || region != localaws.Region || service != "execute-api" {
		return nil, forbidden(msgSignatureMismatch)
	}
	now := r.now().UTC()
	if d := now.Sub(signedAt); d > maxClockSkew || d < -maxClockSkew {
		return nil, forbidden(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-maxClockSkew).Format("20060102T150405Z"), now.Format("20060102T150405Z")))
	}
	names := strings.Split(signedHeaders, ";")
	if !slices.Contains(names, "host") {
		return nil, forbidden(msgSignatureMismatch)
	}
	// The request as the client signed it: only the signed headers.
	clone, err := http.NewRequest(req.Method, req.URL.String(), nil)
	if err != nil {
		return nil, forbidden(msgSignatureMismatch)
	}
	clone.URL.Host = req.Host
	clone.Host = req.Host
	var token string
	for _, n := range names {
		switch n {
		case "host", "x-amz-date":
		case "content-length":
			clone.ContentLength = int64(len(body))
		case "x-amz-security-token":
			token = req.Header.Get(n)
		default:
			clone.Header[http.CanonicalHeaderKey(n)] = req.Header.Values(n)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: OperatorSecretKey, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(req.Context(), creds, clone, hex.EncodeToString(sum[:]), service, region, signedAt); err != nil {
		return nil, forbidden(msgSignatureMismatch)
	}
	want := sigv4Header.FindStringSubmatch(clone.Header.Get("Authorization"))
	if want == nil || want[5] != signedHeaders || !hmac.Equal([]byte(want[6]), []byte(signature)) {
		return nil, forbidden(msgSignatureMismatch)
	}
	userID := operatorUserID(accessKey)
	return &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
		AccessKey: accessKey,
		AccountID: localaws.Account,
		CallerID:  userID,
		UserARN:   "arn:aws:iam::" + localaws.Account + ":user/" + operatorUser,
		UserID:    userID,
	}, nil
}

// operatorUserID is the unique ID of the local IAM user, shaped as IAM's ("AIDA" and 17
// upper-case letters and digits).
func operatorUserID(accessKey string) string {
	sum := sha256.Sum256([]byte(accessKey))
	return "AIDA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}
