package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// TestCorrelationID: both handlers echo a well-formed X-Correlation-Id, in the header and in the
// problem, and put a fresh one of their own in place of a missing or malformed one.
func TestCorrelationID(t *testing.T) {
	svc, err := command.New(command.Config{Store: store.NewMemory(nil, nil), EmailKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := httpapi.New(httpapi.Config{Commands: svc, Idempotency: noIdempotency{t}, Log: slog.New(slog.DiscardHandler), HashKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	queries := httpapi.NewQueries(query.New(query.Config{}), slog.New(slog.DiscardHandler))
	handlers := []struct {
		name   string
		handle func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	}{{"commands", cmds.Handle}, {"queries", queries.Handle}}
	wellFormed := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	tests := []struct {
		name, header string
		echoed       bool
	}{
		{"well-formed", "corr-1:a.b_C", true},
		{"longest", strings.Repeat("a", 128), true},
		{"missing", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "corr 1", false},
		{"not ASCII", "corr-ü", false},
		{"header injection", "corr\r\nX-Evil: 1", false},
	}
	for _, hd := range handlers {
		for _, tt := range tests {
			t.Run(hd.name+"/"+tt.name, func(t *testing.T) {
				req := events.APIGatewayV2HTTPRequest{RouteKey: "GET /nowhere", Headers: map[string]string{}}
				if tt.header != "" {
					req.Headers["x-correlation-id"] = tt.header
				}
				resp, err := hd.handle(context.Background(), req)
				if err != nil || resp.StatusCode != http.StatusNotFound {
					t.Fatalf("Handle = %d, %v; want 404, nil", resp.StatusCode, err)
				}
				got := resp.Headers["X-Correlation-Id"]
				switch {
				case tt.echoed && got != tt.header:
					t.Fatalf("X-Correlation-Id = %q, want %q echoed", got, tt.header)
				case !tt.echoed && (got == tt.header || !wellFormed.MatchString(got)):
					t.Fatalf("X-Correlation-Id = %q, want a fresh well-formed ID in place of %q", got, tt.header)
				}
				if !strings.Contains(resp.Body, `"correlationId":"`+got+`"`) {
					t.Fatalf("the problem does not carry the correlation ID %q: %s", got, resp.Body)
				}
			})
		}
	}
}
