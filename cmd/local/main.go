// Command local runs eventfold on this machine as template.yaml wires it in AWS: tables on
// DynamoDB Local, each function's bootstrap behind a Lambda Runtime API, the HTTP API on
// 127.0.0.1. Start the local AWS stack first (make up); `make run` does both.
//
//	local [-template template.yaml] [-addr 127.0.0.1:3000] [-param Name=Value ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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

func main() {
	cfg := runner.Config{Params: params{}, Output: os.Stdout}
	flag.StringVar(&cfg.Template, "template", "template.yaml", "the SAM template")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:3000", "where the HTTP API listens")
	flag.StringVar(&cfg.Stack, "stack", "eventfold", "the local stack name resources are named after")
	flag.IntVar(&cfg.MaxInstances, "max-instances", 4, "most instances of one function")
	flag.Var(params(cfg.Params), "param", "a template parameter, Name=Value (repeatable)")
	flag.Parse()
	cfg.DynamoDBEndpoint = os.Getenv(localaws.EnvDynamoDBEndpoint)
	cfg.KMSEndpoint = os.Getenv(localaws.EnvKMSEndpoint)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Log = log
	if cfg.DynamoDBEndpoint == "" {
		log.Error("no local stack: set " + localaws.EnvDynamoDBEndpoint + " (make run does), or run make up")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	restore := foreground()
	defer restore()
	r, err := runner.Start(ctx, cfg)
	if err != nil {
		log.Error("start failed", "error", err.Error())
		restore()
		os.Exit(1)
	}
	url := r.URL()
	fmt.Printf("\neventfold is running on %s (Ctrl-C stops it)\n\nroutes:\n", url)
	for _, k := range r.Routes() {
		fmt.Println("  " + k)
	}
	fmt.Printf(`
try:
  curl -si -X POST %[1]s/users -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \
       -d '{"email":"ann@example.com","name":"Ann"}'
  curl -si -X POST %[1]s/accounts -H 'Content-Type: application/json' -d '{"ownerId":"ann","currency":"EUR"}'
  curl -si -X POST %[1]s/accounts/<id>/deposits -H 'Content-Type: application/json' -H 'If-Match: "1"' -d '{"amount":1250}'
  curl -si '%[1]s/accounts/<id>?minVersion=2'      # waits for the projector to reach version 2
  curl -si '%[1]s/streams/account-<id>/events'     # the audit trail

`, url)
	<-ctx.Done()
	fmt.Println("\nstopping")
	if err := r.Close(); err != nil {
		log.Error("stop failed", "error", err.Error())
		restore()
		os.Exit(1)
	}
}
