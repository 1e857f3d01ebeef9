package runner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
)

// testIssuer is an OIDC issuer of the test's own on 127.0.0.1: its configuration and JWKS, and
// the key it signs with (kid "k1").
type testIssuer struct {
	url string
	key *rsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.url, "jwks_uri": iss.url + "/jwks.json"})
	})
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	return iss
}

// sign signs claims with key under kid and alg.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (iss *testIssuer) claims(now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{"iss": iss.url, "aud": "own-api", "sub": "own-user", "scope": "read",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// authStack is the authorizer test template running, with a clock the test moves and the
// functions' output, which says what reached them.
type authStack struct {
	r      *runner.Runner
	iss    *testIssuer
	skew   atomic.Int64 // added to the runner's clock
	output *awstest.SyncBuffer
}

func startAuth(t *testing.T) *authStack {
	t.Helper()
	s := &authStack{iss: newTestIssuer(t), output: &awstest.SyncBuffer{}}
	s.r = startWith(t, runner.Config{
		Template: "testdata/auth.yaml",
		Stack:    "au" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Params:   map[string]string{"OwnIssuer": s.iss.url, "OwnAudience": "other-api, own-api"},
		Now:      func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) },
		Output:   s.output,
	})
	return s
}

// reached is how many requests reached the function so far.
func (s *authStack) reached() int { return strings.Count(s.output.String(), "fn: http request") }

// post sends a POST to path with the headers and returns the status, the www-authenticate
// header, the body and, when the function answered, the event it saw.
func (s *authStack) post(t *testing.T, path string, headers ...string) (int, string, string, *events.APIGatewayV2HTTPRequest) {
	t.Helper()
	resp, body := call(t, "POST", s.r.URL()+path, "application/json", []byte(`{}`), headers...)
	return s.decode(t, resp, body)
}

func (s *authStack) decode(t *testing.T, resp *http.Response, body []byte) (int, string, string, *events.APIGatewayV2HTTPRequest) {
	t.Helper()
	var echoed struct {
		Event *events.APIGatewayV2HTTPRequest
	}
	if resp.StatusCode == 201 {
		if err := json.Unmarshal(body, &echoed); err != nil {
			t.Fatalf("echo: %v: %s", err, body)
		}
	}
	text := strings.TrimSpace(string(body))
	if echoed.Event != nil {
		text = "(the function's echo of the event)"
	}
	return resp.StatusCode, resp.Header.Get("www-authenticate"), text, echoed.Event
}

const (
	unauthorizedBody = `{"message":"Unauthorized"}`
	forbiddenBody    = `{"message":"Forbidden"}`
)

// payloadOf decodes a token's claims without verifying it.
func payloadOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJWTAuthorizerWithCognito(t *testing.T) {
	s := startAuth(t)
	env := s.r.Env()
	pool, client, other := env.Refs["Pool"], env.Refs["Client"], env.Refs["OtherClient"]
	if !strings.Contains(pool, "_") || client == "" || other == "" || client == other {
		t.Fatalf("pool %q, clients %q and %q: want them created on moto", pool, client, other)
	}
	if _, ok := env.Refs["Skipped"]; ok {
		t.Errorf("the resource under a false Condition was created: %v", env.Refs["Skipped"])
	}
	cognito := localaws.Cognito(awstest.KMSEndpoint(t))
	ctx := context.Background()
	// A user in two groups: list claims reach the function as API Gateway renders them.
	access, idToken := awstest.SignIn(t, pool, client, "alice")
	for _, g := range []string{"admins", "staff"} {
		if _, err := cognito.CreateGroup(ctx, &cip.CreateGroupInput{UserPoolId: aws.String(pool), GroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
		if _, err := cognito.AdminAddUserToGroup(ctx, &cip.AdminAddUserToGroupInput{UserPoolId: aws.String(pool), Username: aws.String("alice"), GroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
	}
	grouped, _ := awstest.SignIn(t, pool, client, "alice")
	otherAccess, _ := awstest.SignIn(t, pool, other, "bob")
	// A second pool of the same moto: same signing key, another issuer.
	pool2, err := cognito.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(pool + "-second")})
	if err != nil {
		t.Fatal(err)
	}
	client2, err := cognito.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: pool2.UserPool.Id, ClientName: aws.String("second"),
		ExplicitAuthFlows: []ciptypes.ExplicitAuthFlowsType{ciptypes.ExplicitAuthFlowsTypeAllowUserPasswordAuth}})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := awstest.SignIn(t, aws.ToString(pool2.UserPool.Id), aws.ToString(client2.UserPoolClient.ClientId), "carol")
	parts := strings.Split(access, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustDecode(t, parts[1]), `"sub":"`, `"sub":"x`, 1))) + "." + parts[2]

	refusals := []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"no token", "", 401, ""},
		{"malformed", "Bearer not-a-jwt", 401, "the token is malformed"},
		{"tampered payload", "Bearer " + tampered, 401, "the token does not have a valid signature"},
		{"another pool's token", "Bearer " + foreign, 401, "the token does not have a valid issuer"},
		{"another client's token", "Bearer " + otherAccess, 401, "the token does not have a valid audience"},
		{"ID token: no scope", "Bearer " + idToken, 403, "insufficient_scope"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := s.reached()
			var headers []string
			if tc.auth != "" {
				headers = []string{"Authorization", tc.auth}
			}
			status, challenge, body, _ := s.post(t, "/echo/user", headers...)
			want := unauthorizedBody
			if tc.status == 403 {
				want = forbiddenBody
			}
			if status != tc.status || body != want || !strings.Contains(challenge, tc.challenge) || (tc.challenge == "") != (challenge == "") {
				t.Errorf("= %d %s (www-authenticate %q), want %d %s with %q", status, body, challenge, tc.status, want, tc.challenge)
			}
			if n := s.reached(); n != before {
				t.Errorf("a refused request reached the function")
			}
		})
	}

	// A valid access token, with or without "Bearer ", reaches the function with its claims.
	for _, auth := range []string{"Bearer " + grouped, grouped} {
		status, _, body, ev := s.post(t, "/echo/user", "Authorization", auth)
		if status != 201 || ev == nil || ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.JWT == nil {
			t.Fatalf("valid token = %d %s", status, body)
		}
		jwtCtx := ev.RequestContext.Authorizer.JWT
		want := map[string]string{}
		for k, v := range payloadOf(t, grouped) {
			if s, ok := v.(string); ok {
				want[k] = s
			} else if n, ok := v.(json.Number); ok {
				want[k] = n.String()
			} else if l, ok := v.([]any); ok {
				var items []string
				for _, it := range l {
					items = append(items, it.(string))
				}
				want[k] = "[" + strings.Join(items, " ") + "]" // as API Gateway renders a list
			}
		}
		if g := want["cognito:groups"]; g != "[admins staff]" && g != "[staff admins]" {
			t.Errorf("the token's cognito:groups = %q, want both groups", g)
		}
		if !reflect.DeepEqual(jwtCtx.Claims, want) {
			t.Errorf("claims =\n%v\nwant\n%v", jwtCtx.Claims, want)
		}
		if _, err := strconv.ParseInt(jwtCtx.Claims["exp"], 10, 64); err != nil {
			t.Errorf("exp = %q, want decimal seconds", jwtCtx.Claims["exp"])
		}
		if !reflect.DeepEqual(jwtCtx.Scopes, []string{"aws.cognito.signin.user.admin"}) || ev.RequestContext.Authorizer.IAM != nil {
			t.Errorf("scopes = %v, iam = %v", jwtCtx.Scopes, ev.RequestContext.Authorizer.IAM)
		}
	}

	// An hour and a minute later the token has expired.
	s.skew.Store(int64(time.Hour + time.Minute))
	before := s.reached()
	if status, challenge, body, _ := s.post(t, "/echo/user", "Authorization", "Bearer "+access); status != 401 || body != unauthorizedBody || !strings.Contains(challenge, "the token has expired") {
		t.Errorf("expired token = %d %s %q", status, body, challenge)
	}
	s.skew.Store(0)
	if s.reached() != before {
		t.Error("the expired token reached the function")
	}
	// A route with Authorizer NONE needs nothing.
	if resp, body := call(t, "GET", s.r.URL()+"/plain", "", nil); resp.StatusCode != 200 {
		t.Errorf("NONE route = %d %s", resp.StatusCode, body)
	}
}

func mustDecode(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJWTAuthorizerChecks(t *testing.T) {
	s := startAuth(t)
	iss := s.iss
	now := time.Now()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := func(v any) string { raw, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(raw) }
	good := sign(t, jose.RS256, iss.key, "k1", iss.claims(now, nil))
	parts := strings.Split(good, ".")

	for _, tc := range []struct {
		name, token string
		status      int
		reason      string
	}{
		{"valid", good, 201, ""},
		{"valid PS256", sign(t, jose.PS256, iss.key, "k1", iss.claims(now, nil)), 201, ""},
		{"audience from a list, second entry", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"aud": []string{"x", "own-api"}})), 201, ""},
		{"client_id when there is no aud", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"aud": nil, "client_id": "own-api"})), 201, ""},
		{"aud wins over client_id", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"aud": "x", "client_id": "own-api"})), 401, "audience"},
		{"scp list", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"scope": nil, "scp": []string{"write"}})), 201, ""},
		{"not yet valid", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"nbf": now.Add(time.Minute).Unix()})), 401, "not valid yet"},
		{"issued in the future", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"iat": now.Add(time.Minute).Unix()})), 401, "issued in the future"},
		{"expired", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"exp": now.Add(-time.Second).Unix()})), 401, "expired"},
		{"no exp", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"exp": nil})), 401, "expired"},
		{"wrong issuer", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"iss": iss.url + "/x"})), 401, "issuer"},
		{"wrong audience", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"aud": "nobody"})), 401, "audience"},
		{"unknown kid", sign(t, jose.RS256, otherKey, "k2", iss.claims(now, nil)), 401, "signature"},
		{"right kid, another key", sign(t, jose.RS256, otherKey, "k1", iss.claims(now, nil)), 401, "signature"},
		{"HS256 with the public key as secret", sign(t, jose.HS256, pubPEM, "k1", iss.claims(now, nil)), 401, "malformed"},
		{"alg none", b64(map[string]string{"alg": "none", "kid": "k1"}) + "." + parts[1] + ".", 401, "malformed"},
		{"tampered payload", parts[0] + "." + b64(iss.claims(now, map[string]any{"sub": "mallory"})) + "." + parts[2], 401, "signature"},
		{"no scope the route accepts", sign(t, jose.RS256, iss.key, "k1", iss.claims(now, map[string]any{"scope": "delete admin"})), 403, "insufficient_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.reached()
			status, challenge, body, ev := s.post(t, "/echo/own", "X-Token", tc.token)
			if status != tc.status || !strings.Contains(challenge, tc.reason) {
				t.Fatalf("= %d %s (www-authenticate %q), want %d with %q", status, body, challenge, tc.status, tc.reason)
			}
			switch {
			case status == 201 && ev.RequestContext.Authorizer.JWT.Claims["sub"] != "own-user":
				t.Errorf("claims = %v", ev.RequestContext.Authorizer.JWT.Claims)
			case status != 201 && s.reached() != before:
				t.Error("a refused request reached the function")
			}
		})
	}
	// The Own authorizer reads its own identity source, not Authorization.
	if status, _, _, _ := s.post(t, "/echo/own", "Authorization", "Bearer "+good); status != 401 {
		t.Errorf("token in the wrong header = %d, want 401", status)
	}
}

func TestIAMAuthorizer(t *testing.T) {
	s := startAuth(t)
	url := s.r.URL() + "/echo/op/7?x=1"
	body := []byte(`{"op":true}`)
	signed := func(creds aws.Credentials, mutate func(*http.Request)) *http.Request {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		awstest.SignV4(t, req, body, creds)
		if mutate != nil {
			mutate(req)
		}
		return req
	}
	do := func(req *http.Request) (int, string, *events.APIGatewayV2HTTPRequest) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		status, _, text, ev := s.decode(t, resp, out)
		return status, text, ev
	}
	mismatch := `{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}`
	for _, tc := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"unsigned", func() *http.Request { r, _ := http.NewRequest("POST", url, bytes.NewReader(body)); return r }(), forbiddenBody},
		{"wrong secret", signed(aws.Credentials{AccessKeyID: "local", SecretAccessKey: "guess"}, nil), mismatch},
		{"unknown access key", signed(aws.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: "local"}, nil), `{"message":"The security token included in the request is invalid."}`},
		{"body changed after signing", signed(awstest.OperatorCredentials, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(`{"op":false}`)), 12
		}), mismatch},
		{"path changed after signing", signed(awstest.OperatorCredentials, func(r *http.Request) { r.URL.Path = "/echo/op/8" }), mismatch},
		{"a user's bearer token", func() *http.Request {
			r, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			r.Header.Set("Authorization", "Bearer x.y.z")
			return r
		}(), `{"message":"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.reached()
			if status, text, _ := do(tc.req); status != 403 || text != tc.want {
				t.Errorf("= %d %s, want 403 %s", status, text, tc.want)
			}
			if s.reached() != before {
				t.Error("a refused request reached the function")
			}
		})
	}
	// Signed 20 minutes ago: outside the 15 minutes.
	s.skew.Store(int64(20 * time.Minute))
	if status, text, _ := do(signed(awstest.OperatorCredentials, nil)); status != 403 || !strings.Contains(text, "Signature expired") {
		t.Errorf("stale signature = %d %s", status, text)
	}
	s.skew.Store(0)

	status, text, ev := do(signed(awstest.OperatorCredentials, nil))
	if status != 201 || ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.IAM == nil {
		t.Fatalf("signed request = %d %s", status, text)
	}
	iam := ev.RequestContext.Authorizer.IAM
	if iam.AccessKey != "local" || iam.AccountID != localaws.Account || iam.UserARN != "arn:aws:iam::"+localaws.Account+":user/local-operator" ||
		!strings.HasPrefix(iam.UserID, "AIDA") || len(iam.UserID) != 21 || iam.CallerID != iam.UserID || ev.RequestContext.Authorizer.JWT != nil {
		t.Errorf("iam context = %+v", iam)
	}
	if ev.Body != string(body) || ev.PathParameters["id"] != "7" {
		t.Errorf("event = %+v", ev)
	}

	// What curl --aws-sigv4 signs is accepted, as the README tells operators to call.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("no curl here; the SDK's signature above stands for it")
		return
	}
	out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:"+localaws.Region+":execute-api",
		"--user", "local:local", "-H", "Content-Type: application/json", "-d", `{"op":"curl"}`, s.r.URL()+"/echo/op/9").CombinedOutput()
	if err != nil || string(out) != "201" {
		t.Errorf("curl --aws-sigv4 = %s (%v), want 201", out, err)
	}
}
