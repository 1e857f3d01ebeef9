package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

// TestDevToken: against the pool and client the runner creates from template.yaml, dev token
// signs a new user up and in, and a known user in again, printing an access token of the
// stack's app client for that user.
func TestDevToken(t *testing.T) {
	stack := "tok" + strconv.FormatInt(time.Now().UnixNano(), 36)
	tmpl := awstest.MustTemplate(t)
	env, err := tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Prune(env.Conditions); err != nil {
		t.Fatal(err)
	}
	endpoint := awstest.KMSEndpoint(t)
	if err := localaws.CreateUserPools(context.Background(), localaws.Cognito(endpoint), tmpl, env); err != nil {
		t.Fatal(err)
	}
	args := []string{"dev", "token", "-template", "../../template.yaml", "-stack", stack, "-cognito-endpoint", endpoint, "-user", "ann"}
	for range 2 { // signed up, then known
		out := strings.TrimSpace(eventfold(t, args...))
		parts := strings.Split(out, ".")
		if len(parts) != 3 {
			t.Fatalf("dev token printed %q, want one JWT", out)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		json.Unmarshal(raw, &claims)
		if claims["username"] != "ann" || claims["client_id"] != env.Refs["UserPoolClient"] || claims["token_use"] != "access" ||
			claims["iss"] != localaws.CognitoIssuer(localaws.Region, env.Refs["UserPool"]) {
			t.Fatalf("token claims = %v", claims)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"wrong password", append(args, "-password", "Not-the-password-1"), nil},
		{"no such stack", []string{"dev", "token", "-template", "../../template.yaml", "-stack", stack + "x", "-cognito-endpoint", endpoint, "-user", "ann"}, errNoUserPool},
		{"no user", []string{"dev", "token", "-template", "../../template.yaml", "-stack", stack, "-cognito-endpoint", endpoint}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || out.Len() != 0 {
				t.Fatalf("= %v, printed %q; want an error (%v) and nothing printed", err, out.String(), tc.want)
			}
		})
	}
}
