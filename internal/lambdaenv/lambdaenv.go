// Package lambdaenv is what every eventfold Lambda function reads and builds the same way at cold
// start: required environment variables, reported all at once, and the DynamoDB client and
// event store they share. Nothing here does network I/O.
package lambdaenv

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/store"
)

// Env reads required variables and remembers every one missing.
type Env struct {
	getenv func(string) string
	errs   []error
}

// New returns an Env reading through getenv (os.Getenv in a function).
func New(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Require returns the variable's value, noting it when it is unset.
func (e *Env) Require(name string) string {
	v := e.getenv(name)
	if v == "" {
		e.errs = append(e.errs, errors.New(name+" is not set"))
	}
	return v
}

// Err reports every variable Require found unset.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// DynamoDB returns a DynamoDB client from the function's AWS configuration. Against a local
// endpoint (AWS_ENDPOINT_URL_DYNAMODB, as the local runner sets) response checksums are not
// validated: DynamoDB Local's do not always match.
func DynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	local := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = local }), nil
}

// Store returns the event store on the given tables, with the domain's event types.
func Store(api store.API, cfg store.Config) (*store.DynamoDB, *store.Registry, error) {
	reg, err := command.Registry()
	if err != nil {
		return nil, nil, err
	}
	cfg.Registry = reg
	st, err := store.New(api, cfg)
	return st, reg, err
}
