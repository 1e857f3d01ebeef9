package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/projection"
)

// repairCommand is `eventfold projections repair`.
type repairCommand struct {
	common
	segments      int
	failuresQueue string
	claimFor      time.Duration
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
	fs.StringVar(&c.failuresQueue, "failures-queue", "", "URL of the projector's OnFailure queue: its messages are removed after a successful pass")
	fs.DurationVar(&c.claimFor, "claim-for", time.Hour, "with -failures-queue: how long the claimed messages stay hidden (at most 12h)")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	var bad []error
	if c.segments < 1 {
		bad = append(bad, fmt.Errorf("-segments %d: want at least 1", c.segments))
	}
	if c.claimFor < time.Second || c.claimFor > 12*time.Hour {
		bad = append(bad, fmt.Errorf("-claim-for %v: want from 1s to 12h (SQS's visibility timeout)", c.claimFor))
	}
	if err := errors.Join(bad...); err != nil {
		return fs.parsed(err, out, errOut) // the usage, and every bad value at once
	}
	d, err := c.resolve()
	if err != nil {
		return err
	}
	_, rs, err := d.readSide(ctx)
	if err != nil {
		return err
	}
	var (
		queue   failureQueue
		claimed []string // receipt handles
	)
	if c.failuresQueue != "" {
		if queue, err = d.sqs(ctx); err != nil {
			return err
		}
		if claimed, err = claim(ctx, queue, c.failuresQueue, c.claimFor); err != nil {
			return err
		}
		fmt.Fprintf(out, "claimed %d OnFailure records from %s\n", len(claimed), c.failuresQueue)
	}
	live := d.tables[readModelsTable]
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
		err = fmt.Errorf("repair of %s stopped after applying %d of the %d events it lacked: %w; every read model is a fold "+
			"of a prefix of its stream: run the command again once the cause is fixed", live, p.Applied, p.Total, err)
		if len(claimed) > 0 {
			err = errors.Join(err, release(context.WithoutCancel(ctx), queue, c.failuresQueue, claimed))
		}
		return err
	}
	fmt.Fprintf(errOut, "\rscanned %d events, applied %d/%d\n", p.Scanned, p.Applied, p.Total)
	fmt.Fprintf(out, "repaired %s: %d events applied of %d scanned in %v\n", live, p.Applied, p.Scanned, time.Since(started).Round(time.Millisecond))
	if len(claimed) > 0 {
		deleted, err := acknowledge(ctx, queue, c.failuresQueue, claimed)
		fmt.Fprintf(out, "removed %d of %d OnFailure records from %s\n", deleted, len(claimed), c.failuresQueue)
		if err != nil {
			return fmt.Errorf("the read models are repaired; removing the OnFailure records: %w (run the command again to remove them)", err)
		}
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
	if d.kmsEndpoint != "" {
		return localaws.SQS(d.kmsEndpoint), nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg), nil
}
