// Command local runs eventfold on this machine as template.yaml wires it in AWS: tables on
// DynamoDB Local, each function's bootstrap behind a Lambda Runtime API, the HTTP API on
// 127.0.0.1. Start the local AWS stack first (make up); `make run` does both.
//
//	local [-template template.yaml] [-addr 127.0.0.1:3000] [-stack eventfold] [-max-instances 4] [-param Name=Value ...]
//
// The local stack's endpoints come from EVENTFOLD_DYNAMODB_ENDPOINT and EVENTFOLD_KMS_ENDPOINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/runner"
)

type params map[string]string

func (p params) String() string { return fmt.Sprint(map[string]string(p)) }

func (p params) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want Name=Value, got %q", s)
	}
	p[k] = v
	return nil
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The terminal's foreground is the process's, not run's: taken before anything starts, given
	// back before the process exits, however run ends.
	restore := foreground()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	restore()
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // help was asked for, and printed
	case errors.As(err, &usage): // printed with the usage
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line; run has printed it, and the usage, to stderr.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run runs eventfold locally until ctx is done, then stops it in order. It reads the local
// stack's endpoints from the environment; with a bad flag or an argument (a usageError, printed
// with the usage to stderr), or without a DynamoDB endpoint, it returns an error before it starts
// anything. Asked for help (-h) it prints the usage to stderr and returns flag.ErrHelp.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stdout = &syncWriter{w: stdout} // run's own lines and the functions' output share it
	cfg := runner.Config{Params: params{}, Output: stdout}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Template, "template", "template.yaml", "the SAM template")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:3000", "where the HTTP API listens")
	fs.StringVar(&cfg.Stack, "stack", "eventfold", "the local stack name resources are named after")
	fs.IntVar(&cfg.MaxInstances, "max-instances", 4, "most instances of one function")
	fs.Var(params(cfg.Params), "param", "a template parameter, Name=Value (repeatable)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q: local takes flags only", fs.Arg(0))
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return usageError{err}
	}
	cfg.DynamoDBEndpoint = os.Getenv(localaws.EnvDynamoDBEndpoint)
	cfg.KMSEndpoint = os.Getenv(localaws.EnvKMSEndpoint)
	if cfg.DynamoDBEndpoint == "" {
		return errors.New("no local stack: set " + localaws.EnvDynamoDBEndpoint + " (make run does), or run make up")
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil))
	r, err := runner.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start failed: %w", err)
	}
	url := r.URL()
	fmt.Fprintf(stdout, "\neventfold is running on %s (Ctrl-C stops it)\n\nroutes:\n", url)
	for _, k := range r.Routes() {
		fmt.Fprintf(stdout, "  %-36s %s\n", k, r.RouteAuthorizer(k))
	}
	stackFlag := ""
	if cfg.Stack != "eventfold" {
		stackFlag = " -stack " + cfg.Stack
	}
	fmt.Fprintf(stdout, `
every route needs a caller: a user's access token from the stack's user pool (on moto), or, on
the AWS_IAM routes, a SigV4 signature with the local stack's key (%[3]s:%[4]s, region %[5]s).

try:
  TOKEN=$(go run ./cmd/eventfold dev token -cognito-endpoint %[6]s%[2]s -user ann)  # signs ann up and in
  curl -si -X POST %[1]s/users -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       -H 'Idempotency-Key: demo-1' -d '{"email":"ann@example.com","name":"Ann"}'
  curl -si -X POST %[1]s/accounts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       -d '{"ownerId":"ann","currency":"EUR"}'
  curl -si -X POST %[1]s/accounts/<id>/deposits -H "Authorization: Bearer $TOKEN" \
       -H 'Content-Type: application/json' -H 'If-Match: "1"' -d '{"amount":1250}'
  curl -si '%[1]s/accounts/<id>?minVersion=2' -H "Authorization: Bearer $TOKEN"   # waits for the projector
  curl -si --aws-sigv4 'aws:amz:%[5]s:execute-api' --user %[3]s:%[4]s \
       '%[1]s/streams/account-<id>/events'     # the audit trail, an operator route

`, url, stackFlag, runner.OperatorAccessKey, runner.OperatorSecretKey, localaws.Region, cfg.KMSEndpoint)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping")
	if err := r.Close(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}
