package runner

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzAuthorizationHeader feeds arbitrary Authorization headers to both authorizers: neither
// may panic, and neither may accept what was not signed with the issuer's key or the operator's
// secret.
func FuzzAuthorizationHeader(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	good, _ := jwt.Signed(signer).Claims(map[string]any{"iss": "https://issuer", "aud": "api", "exp": now.Add(time.Hour).Unix(), "scope": "s"}).Serialize()
	// The issuer's keys, refetched on an unknown kid at most every keyRefetchInterval.
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/jwks.json" {
			json.NewEncoder(w).Encode(set)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://issuer", "jwks_uri": srv.URL + "/jwks.json"})
	}))
	f.Cleanup(srv.Close)
	ja := &jwtAuthorizer{name: "T", header: "Authorization", issuer: "https://issuer", audience: []string{"api"},
		keys: &keySource{discovery: srv.URL + "/.well-known/openid-configuration", issuer: "https://issuer", client: srv.Client()}}
	r := &Runner{cfg: Config{Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}}
	ra := routeAuth{kind: authJWT, jwt: ja, scopes: []string{"s"}}
	if _, refused := r.authorizeJWT(context.Background(), "Bearer "+good, ra); refused != nil {
		f.Fatalf("the seed token is refused: %+v", refused)
	}
	parts := strings.Split(good, ".")
	for _, seed := range []string{"", "Bearer", "Bearer ", "bearer " + good, good + "x", parts[0] + ".." + parts[2],
		parts[0] + "." + parts[1] + ".", "e30.e30.", strings.Repeat("a.", 100),
		"AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if header == "Bearer "+good || bearerToken(header) == good {
			return
		}
		if _, refused := r.authorizeJWT(context.Background(), header, ra); refused == nil {
			t.Fatalf("JWT authorizer accepted %q", header)
		}
		req := httptest.NewRequest(http.MethodPost, "/op", nil)
		req.Header.Set("Authorization", header)
		req.Header.Set("X-Amz-Date", now.UTC().Format("20060102T150405Z"))
		if _, refused := r.authorizeIAM(req, nil); refused == nil {
			t.Fatalf("IAM authorizer accepted %q", header)
		}
	})
}
