package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// repairCommand is `eventfold projections repair`.
type repairCommand struct {
	common
	segments int
	failures failureFlags
}

func (c *repairCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("projections repair", "[-failures-queue URL] [flags]", `
Repair applies to the live read-model table what it lacks: it compares the version every stream
has in the event store (strongly consistent parallel scans) with the version its read model
holds, and applies the missing events in version order through the projector as the projector
Lambda wires it (app.Projector). It is what to run after the projector's stream trigger gave a
batch up (its retries or the records' age ran out, and the OnFailure queue received the batch's
shard and sequence numbers): it does not need those records to be still in the stream, nor the
failure to have been reported at all, so it cannot miss an event. It runs while the projector
keeps running (every change is conditional on the read model's version, so each version
applies once, whoever writes it); running it again applies nothing. It stops at the first
event that cannot be applied and names it (a poison event: see eventfold parked).

With -failures-queue (the URL of the projector's OnFailure queue, ProjectorStreamFailures), it
first claims every message the queue holds (hidden from other readers for -claim-for), and
deletes them once the pass succeeded: every batch they report was stored before the pass
began, so the pass covered it. When the pass fails they are released, untouched. Messages that
arrive during the pass are left for the next run. The queue is on SQS at -kms-endpoint (moto's
server serves both) or in AWS. It reads the whole event store: on a large one, mind its read
capacity.`)
	c.attach(fs, eventsTable, snapshotsTable, readModelsTable, parkingTable, keysTable)
	fs.IntVar(&c.segments, "segments", 4, "parallel scan segments and workers")
	c.failures.attach(fs, "projector")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	var bad []error
	if c.segments < 1 {
		bad = append(bad, fmt.Errorf("-segments %d: want at least 1", c.segments))
	}
	if err := c.failures.validate(); err != nil {
		bad = append(bad, err)
	}
	if err := errors.Join(bad...); err != nil {
		return fs.parsed(err, out, errOut) // the usage, and every bad value at once
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	_, rs, err := d.readSide(ctx)
	if err != nil {
		return err
	}
	live := d.tables[readModelsTable]
	return c.failures.around(ctx, d, out, func() error {
		var mu sync.Mutex
		last := time.Now()
		progress := func(p projection.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) > time.Second {
				last = time.Now()
				fmt.Fprintf(errOut, "\rscanned %d events, applied %d/%d", p.Scanned, p.Applied, p.Total)
			}
		}
		started := time.Now()
		p, err := rs.Rebuild(ctx, live, c.segments, progress)
		if err != nil {
			return fmt.Errorf("repair of %s stopped after applying %d of the %d events it lacked: %w; every read model is a fold "+
				"of a prefix of its stream: run the command again once the cause is fixed", live, p.Applied, p.Total, err)
		}
		fmt.Fprintf(errOut, "\rscanned %d events, applied %d/%d\n", p.Scanned, p.Applied, p.Total)
		fmt.Fprintf(out, "repaired %s: %d events applied of %d scanned in %v\n", live, p.Applied, p.Scanned, time.Since(started).Round(time.Millisecond))
		return nil
	})
}

// failureFlags are -failures-queue and -claim-for, of the repair commands.
type failureFlags struct {
	queue    string
	claimFor time.Duration
}

func (f *failureFlags) attach(fs flagSet, consumer string) {
	fs.StringVar(&f.queue, "failures-queue", "", "URL of the "+consumer+"'s OnFailure queue: its messages are removed after a successful pass")
	fs.DurationVar(&f.claimFor, "claim-for", time.Hour, "with -failures-queue: how long the claimed messages stay hidden (at most 12h)")
}

func (f *failureFlags) validate() error {
	if f.claimFor < time.Second || f.claimFor > 12*time.Hour {
		return fmt.Errorf("-claim-for %v: want from 1s to 12h (SQS's visibility timeout)", f.claimFor)
	}
	return nil
}

// around runs pass. With -failures-queue, it first claims every message of that queue, and
// deletes them after pass returned nil, or releases them when it failed: every batch they
// report was stored before pass began, so a pass that succeeded covered it.
func (f *failureFlags) around(ctx context.Context, d *deployment, out io.Writer, pass func() error) error {
	if f.queue == "" {
		return pass()
	}
	queue, err := d.sqs(ctx)
	if err != nil {
		return err
	}
	claimed, err := claim(ctx, queue, f.queue, f.claimFor)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "claimed %d OnFailure records from %s\n", len(claimed), f.queue)
	if err := pass(); err != nil {
		return errors.Join(err, release(context.WithoutCancel(ctx), queue, f.queue, claimed))
	}
	deleted, err := acknowledge(ctx, queue, f.queue, claimed)
	fmt.Fprintf(out, "removed %d of %d OnFailure records from %s\n", deleted, len(claimed), f.queue)
	if err != nil {
		return fmt.Errorf("the repair is done; removing the OnFailure records: %w (run the command again to remove them)", err)
	}
	return nil
}

// failureQueue is the part of SQS repair uses on an OnFailure queue.
type failureQueue interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// claim receives every message the queue at url holds, hiding each for hide, and returns their
// receipt handles. It stops at the first receive (a 1 s long poll, which asks every SQS server)
// that returns none.
func claim(ctx context.Context, api failureQueue, url string, hide time.Duration) ([]string, error) {
	var handles []string
	for {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			VisibilityTimeout: int32(hide / time.Second), WaitTimeSeconds: 1})
		if err != nil {
			return handles, errors.Join(fmt.Errorf("receive from %s: %w", url, err), release(context.WithoutCancel(ctx), api, url, handles))
		}
		if len(out.Messages) == 0 {
			return handles, nil
		}
		for _, m := range out.Messages {
			handles = append(handles, aws.ToString(m.ReceiptHandle))
		}
	}
}

// release makes claimed messages visible again at once.
func release(ctx context.Context, api failureQueue, url string, handles []string) error {
	var errs []error
	for _, h := range handles {
		if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(h)}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("release %d of %d claimed OnFailure records of %s (they reappear when their claim ends): %w", len(errs), len(handles), url, errs[0])
	}
	return nil
}

// acknowledge deletes claimed messages and returns how many it deleted; it tries every one.
func acknowledge(ctx context.Context, api failureQueue, url string, handles []string) (int, error) {
	var errs []error
	for _, h := range handles {
		if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(h)}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return len(handles) - len(errs), fmt.Errorf("delete %d of %d from %s: %w", len(errs), len(handles), url, errs[0])
	}
	return len(handles), nil
}

// sqs returns the SQS client of -kms-endpoint (moto's server); without one, of the
// environment's AWS configuration.
func (d *deployment) sqs(ctx context.Context) (*sqs.Client, error) {
	return awsClient(ctx, d.kmsEndpoint, localaws.SQS, sqs.NewFromConfig)
}

// sagasRepairCommand is `eventfold sagas repair`.
type sagasRepairCommand struct {
	common
	failures failureFlags
}

func (c *sagasRepairCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("sagas repair", "[-failures-queue URL] [flags]", `
Repair makes every order's fulfilment run carry on from the event store, whatever the saga's
stream trigger gave up: it scans the events table (strongly consistent) for every OrderPlaced,
and for an order without a run it starts one, handing the saga the OrderPlaced as its stream
would (through the saga's processor, as eventfold parked replay does); for an order whose run
is not finished it redrives it (as eventfold sagas redrive does: issue again what it has
pending, compensate and cancel past its deadline). Finished runs are left alone. A reply the
trigger gave up (a StockReserved or AccountCharged) needs nothing more: the run got it as the
result of the command it issued, and a redrive issues again what is pending. The saga is wired
as the saga function wires it; every command it issues is idempotent, so running it again, or
while the saga runs, has no effect twice. It prints each order it started or redrove, then a
count, and fails (exit 1) when any could not be repaired.

With -failures-queue (the URL of the saga's OnFailure queue, SagaStreamFailures) it claims
the queue's messages first and deletes them after a pass that repaired every order, as
eventfold projections repair does.`)
	c.attach(fs, eventsTable, snapshotsTable, parkingTable, keysTable)
	c.attachScheduleGroup(fs)
	c.failures.attach(fs, "saga")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if err := c.failures.validate(); err != nil {
		return fs.parsed(err, out, errOut)
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	cl, side, err := d.saga(ctx)
	if err != nil {
		return err
	}
	return c.failures.around(ctx, d, out, func() error {
		placed, err := scanType(ctx, cl.DynamoDB, d.tables[eventsTable], domain.TypeOrderPlaced)
		if err != nil {
			return err
		}
		var started, redriven, finished, failed int
		for _, e := range placed {
			orderID := strings.TrimPrefix(e.StreamID, "order-")
			f, version, _, err := side.Saga.Load(ctx, orderID)
			switch {
			case err != nil:
			case version == 0:
				var rec events.DynamoDBEventRecord
				if rec, err = ddbstream.Record(e, "0"); err == nil {
					raw, _ := json.Marshal(rec)
					err = side.Processor.Replay(ctx, consumer.Parked{Consumer: "saga", StreamID: e.StreamID, Version: e.Version, Record: raw})
				}
				if err == nil {
					started++
					f, _, _, err = side.Saga.Load(ctx, orderID)
					fmt.Fprintf(out, "started: %s\tstep %s\n", orderID, f.Step)
				}
			case f.Finished():
				finished++
			default:
				if f, err = side.Saga.Redrive(ctx, orderID); err == nil {
					redriven++
					fmt.Fprintf(out, "redrove: %s\tstep %s\n", orderID, f.Step)
				}
			}
			if err != nil {
				failed++
				fmt.Fprintf(out, "cannot repair: %s: %v\n", orderID, err)
			}
		}
		fmt.Fprintf(out, "%d orders: %d runs started, %d redriven, %d finished already, %d could not be repaired\n",
			len(placed), started, redriven, finished, failed)
		if failed > 0 {
			return fmt.Errorf("sagas repair: %d of %d orders could not be repaired: run the command again once the cause is fixed", failed, len(placed))
		}
		return nil
	})
}

// scanType returns every event of type typ in the events table, as stored (not upcast), from a
// strongly consistent scan, ordered by stream.
func scanType(ctx context.Context, client *dynamodb.Client, table, typ string) ([]store.Event, error) {
	var found []store.Event
	filter := expression.Name(store.AttrType).Equal(expression.Value(typ))
	err := store.ScanTable(ctx, client, table, &filter, func(it map[string]ddbtypes.AttributeValue) error {
		e, err := store.DecodeItem(it)
		found = append(found, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events of type %s: %w", typ, err)
	}
	slices.SortFunc(found, func(a, b store.Event) int { return strings.Compare(a.StreamID, b.StreamID) })
	return found, nil
}
