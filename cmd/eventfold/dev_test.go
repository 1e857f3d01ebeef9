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
	"github.com/eventfold/eventfold/internal/template"
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

// TestDevSAMEnv: the --env-vars file gives every variable each function of the template
// declares a value (sam local gives an intrinsic it cannot resolve ""), names the resources as
// make run does, and points every declared endpoint variable at the local stack, at -host.
func TestDevSAMEnv(t *testing.T) {
	tmpl, err := template.ParseFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := eventfold(t, "dev", "sam-env", "-template", "../../template.yaml", "-stack", "samenv",
		"-endpoint", "http://127.0.0.1:8000", "-kms-endpoint", "http://127.0.0.1:4599", "-host", "host.docker.internal")
	var file map[string]map[string]string
	if err := json.Unmarshal([]byte(out), &file); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	functions := tmpl.OfType("AWS::Serverless::Function")
	if len(file) != len(functions) {
		t.Fatalf("the file has %d functions, the template %d", len(file), len(functions))
	}
	global, _ := tmpl.Globals["Function"].(map[string]any)
	for _, id := range functions {
		declared := map[string]bool{}
		for _, props := range []map[string]any{global, tmpl.Resources[id].Properties} {
			e, _ := props["Environment"].(map[string]any)
			vars, _ := e["Variables"].(map[string]any)
			for k := range vars {
				declared[k] = true
			}
		}
		vars := file[id]
		if len(vars) != len(declared) {
			t.Errorf("%s: %d variables, the template declares %d", id, len(vars), len(declared))
		}
		for k := range declared {
			if vars[k] == "" {
				t.Errorf("%s: %s has no value", id, k)
			}
			if strings.HasPrefix(k, "AWS_ENDPOINT_URL_") && !strings.HasPrefix(vars[k], "http://host.docker.internal:") {
				t.Errorf("%s: %s = %q, want the local stack at -host", id, k, vars[k])
			}
		}
	}
	for k, want := range map[string]string{
		"EVENTS_TABLE": "samenv-EventsTable", "EMAIL_HASH_KEY_SECRET": "samenv-EmailHashKeySecret", "DATA_KEY": "alias/samenv-data",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://host.docker.internal:8000", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://host.docker.internal:4599",
	} {
		if got := file["CommandsFunction"][k]; got != want {
			t.Errorf("CommandsFunction %s = %q, want %q", k, got, want)
		}
	}

	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"dev", "sam-env", "-template", "../../template.yaml", "-endpoint", "", "-kms-endpoint", ""}, &o, &e); err == nil ||
		!strings.Contains(err.Error(), "make up prints them") || o.Len() != 0 {
		t.Fatalf("without endpoints: %v, %q", err, o.String())
	}
}
