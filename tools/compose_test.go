package tools_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestLocalStackComposeBindsLoopback holds localstack/compose.yaml, which no test can start
// (LocalStack needs Docker and an auth token), to what can be read: it parses, it runs
// LocalStack with the auth token required, and every port it publishes is bound to 127.0.0.1.
func TestLocalStackComposeBindsLoopback(t *testing.T) {
	raw, err := os.ReadFile("../localstack/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string
			Ports       []string
			Environment map[string]string
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	ls, ok := compose.Services["localstack"]
	if !ok || !strings.Contains(ls.Image, "localstack/localstack") {
		t.Fatalf("compose.yaml runs no LocalStack: %+v", compose.Services)
	}
	if !strings.Contains(ls.Environment["LOCALSTACK_AUTH_TOKEN"], ":?") {
		t.Errorf("LOCALSTACK_AUTH_TOKEN = %q, want it required (${LOCALSTACK_AUTH_TOKEN:?...})", ls.Environment["LOCALSTACK_AUTH_TOKEN"])
	}
	if len(ls.Ports) == 0 {
		t.Fatal("compose.yaml publishes no port")
	}
	for _, p := range ls.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %q is not bound to 127.0.0.1", p)
		}
	}
}
