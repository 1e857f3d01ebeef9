package command_test

import (
	"context"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/metrics"
)

// TestEventsAppendedCountsWhatWasAppended: on DynamoDB Local, a command that appends counts its
// events under the stack, one that changes nothing and one refused count none, and what is
// emitted is what command.Metrics declares.
func TestEventsAppendedCountsWhatWasAppended(t *testing.T) {
	d := mustDynamo(t)
	var emf awstest.SyncBuffer
	svc := mustServiceWith(t, command.Config{Store: d.store, EmailKey: testKey, Eraser: d.keys,
		Metrics: metrics.New(&emf).With(metrics.DimStack, "test-stack")})
	ctx := context.Background()
	owner := ids.New()
	acct := funded(t, svc, owner, 100) // opened, deposited: 2 events
	res, err := svc.Withdraw(ctx, as(owner), acct, domain.Withdraw{Amount: 1000})
	refused(t, "an overdraft", res, err, domain.ErrInsufficientFunds)
	points, err := metrics.Decode([]byte(emf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := metrics.Check(points, command.Metrics()); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, p := range points {
		if p.Dims[metrics.DimStack] != "test-stack" {
			t.Fatalf("point %+v outside the stack", p)
		}
		sum += p.Value
	}
	if len(points) != 2 || sum != 2 {
		t.Fatalf("%d points summing %v, want 2 appends of one event:\n%s", len(points), sum, emf.String())
	}
}
