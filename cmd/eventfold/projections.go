package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/template"
)

// rebuildCommand is `eventfold projections rebuild`.
type rebuildCommand struct {
	common
	segments int
	target   string
}

func (c *rebuildCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("projections rebuild", "[-target TABLE] [flags]", `
Rebuild folds the whole event store, read with strongly consistent parallel scans, into a new
read-model table, -target (default: <live>-rebuild-<time>), created with the live table's
definition from the template, and verifies it against the live table. Should the rebuild fail, the
table it created is deleted again. With -target naming an existing table (the catch-up pass of a
cutover) it applies what that table lacks and never deletes it. The read side is wired as the
projector Lambda wires it, so personal fields are opened as it opens them. See the README, "The
read side", for the cutover.`)
	c.attach(fs, eventsTable, snapshotsTable, readModelsTable, parkingTable, keysTable)
	fs.IntVar(&c.segments, "segments", 4, "parallel scan segments and workers")
	fs.StringVar(&c.target, "target", "", "the new read-model table (default: <live>-rebuild-<time>); an existing one is caught up")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.segments < 1 {
		return fmt.Errorf("-segments %d: want at least 1", c.segments)
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	return c.rebuild(ctx, d, out, errOut)
}

// rebuild rebuilds into a new table (no -target, or one naming no table): it creates the table
// and, should the rebuild fail, deletes it again; into an existing table (the catch-up pass of
// the cutover) it applies what the table lacks and never deletes it.
func (c *rebuildCommand) rebuild(ctx context.Context, d *deployment, out, errOut io.Writer) (err error) {
	client, rs, err := d.readSide(ctx)
	if err != nil {
		return err
	}
	live, target := d.tables[readModelsTable], c.target
	if target == "" {
		target = fmt.Sprintf("%s-rebuild-%d", live, time.Now().Unix())
	}
	if target == live {
		return fmt.Errorf("-target %s is the live read-model table: rebuild into a new table, then cut over", target)
	}
	// The new table has the live one's definition from the template, under the target name.
	def, err := d.definition("ReadModelsTable", target)
	if err != nil {
		return err
	}
	created, complete := false, false
	var inUse *ddbtypes.ResourceInUseException
	switch _, cerr := client.CreateTable(ctx, def.Create); {
	case cerr == nil:
		created = true
		defer func() { // err is the result
			if err != nil && !complete {
				err = discard(ctx, client, target, err)
			}
		}()
	case errors.As(cerr, &inUse): // it exists: the catch-up pass
	default:
		return fmt.Errorf("create table %s: %w", target, cerr)
	}
	if _, err := localaws.CreateTables(ctx, client, []template.Table{def}); err != nil { // waits until it is active
		return err
	}
	started := time.Now()
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
	p, err := rs.Rebuild(ctx, target, c.segments, progress)
	if err != nil {
		if !created {
			return fmt.Errorf("catch-up of %s stopped after applying %d of %d events: %w; %s is kept as it was given "+
				"(every item a fold of a prefix of its stream): run the command again to finish", target, p.Applied, p.Total, err, target)
		}
		return fmt.Errorf("rebuild into %s stopped after applying %d of %d events: %w", target, p.Applied, p.Total, err)
	}
	complete = true // from here on, the table is a full fold of the event store and kept
	took := time.Since(started)
	fmt.Fprintf(errOut, "\rscanned %d events, applied %d/%d\n", p.Scanned, p.Applied, p.Total)
	fmt.Fprintf(out, "rebuilt %s: %d events in %v (%.0f events/s)\n", target, p.Applied, took.Round(time.Millisecond), float64(p.Applied)/took.Seconds())
	v, err := projection.Verify(ctx, client, live, target)
	if err != nil {
		return fmt.Errorf("verify %s: %w; %s is complete and kept", target, err, target)
	}
	fmt.Fprintf(out, "verify against %s: %d equal, %d live behind, %d live ahead, %d only live, %d different\n",
		live, v.Equal, v.Behind, v.Ahead, v.Missing, len(v.Different))
	if len(v.Different) > 0 {
		for _, pk := range v.Different {
			fmt.Fprintln(out, "  different:", pk)
		}
		return fmt.Errorf("%d read models differ from a fold of the event store; %s is kept for inspection", len(v.Different), target)
	}
	if created {
		fmt.Fprintf(out, "next (README, \"The read side\"): point the projector's READ_MODELS_TABLE at %[1]s and wait until no\n"+
			"invocation of its old configuration can still run, then run this command again with -target %[1]s\n"+
			"(the catch-up pass), then point the queries' READ_MODELS_TABLE at %[1]s.\n", target)
	} else {
		fmt.Fprintf(out, "caught up %[1]s: if the projector writes to it, point the queries' READ_MODELS_TABLE at %[1]s.\n", target)
	}
	return nil
}

// discard deletes a table this run created and could not fill, and says so in the error; the
// deletion runs even when ctx was cancelled (an interrupt).
func discard(ctx context.Context, client *dynamodb.Client, table string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
		return fmt.Errorf("%w; the partial table %s, created by this run, could not be deleted (%v): delete it "+
			"(aws dynamodb delete-table --table-name %s) before you rebuild again", cause, table, err, table)
	}
	return fmt.Errorf("%w; deleted the partial table %s, which this run created", cause, table)
}
