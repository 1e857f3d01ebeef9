package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/eventfold/eventfold/internal/consumer"
)

// parkedListCommand is `eventfold parked list`.
type parkedListCommand struct {
	common
	consumer string
}

func (c *parkedListCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("parked list", "[-consumer C] [flags]", `
List prints the events the stream consumer -consumer parked, in stream and version order, one a
line: the stream, the version, when it was parked and the error that parked it; then how many
there are. It only reads the parking table.`)
	c.attach(fs, parkingTable)
	fs.StringVar(&c.consumer, "consumer", "projector", "the stream consumer")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	client, err := d.dynamoDB(ctx)
	if err != nil {
		return err
	}
	list, err := consumer.NewParkingTable(client, d.tables[parkingTable]).List(ctx, c.consumer)
	if err != nil {
		return err
	}
	for _, p := range list {
		fmt.Fprintf(out, "%s\t%d\t%s\t%s\n", p.StreamID, p.Version, p.ParkedAt.Format(time.RFC3339), p.Error)
	}
	fmt.Fprintf(out, "%d parked\n", len(list))
	return nil
}

// parkedReplayCommand is `eventfold parked replay`.
type parkedReplayCommand struct {
	common
	consumer string
}

func (c *parkedReplayCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("parked replay", "[-consumer C] [flags]", `
Replay applies each event the stream consumer -consumer parked again and removes from the
parking table each one that applies. It prints what it replayed and what still fails, and fails
itself when any still fail. The consumer is wired as its Lambda function wires it: the
projector's read side (app.Projector: personal fields are opened as it opens them), or the saga
(-consumer saga: app.Saga from the template's SagaFunction environment, as sagas redrive builds
it). Outside Lambda the saga sets no deadline: a run a replayed OrderPlaced starts has no
schedule, shows in sagas list -stuck once its deadline passes, and sagas redrive then cancels it.`)
	c.attach(fs, eventsTable, snapshotsTable, readModelsTable, parkingTable, keysTable)
	c.attachScheduleGroup(fs)
	fs.StringVar(&c.consumer, "consumer", "projector", "the stream consumer: projector or saga")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.consumer != "projector" && c.consumer != "saga" {
		return fmt.Errorf("parked replay: -consumer %q: replay knows the projector and the saga", c.consumer)
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	var (
		parking *consumer.ParkingTable
		replay  func(context.Context, consumer.Parked) error
	)
	if c.consumer == "projector" {
		_, rs, err := d.readSide(ctx)
		if err != nil {
			return err
		}
		parking, replay = rs.Parking, rs.Processor.Replay
	} else {
		_, side, err := d.saga(ctx)
		if err != nil {
			return err
		}
		parking, replay = side.Parking, side.Processor.Replay
	}
	list, err := parking.List(ctx, c.consumer)
	if err != nil {
		return err
	}
	var failed int
	for _, p := range list {
		if err := replay(ctx, p); err != nil {
			failed++
			fmt.Fprintf(out, "still failing: %s at %d: %v\n", p.StreamID, p.Version, err)
			continue
		}
		if err := parking.Remove(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed: %s at %d\n", p.StreamID, p.Version)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d parked events still fail", failed, len(list))
	}
	return nil
}
