package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/restore"
	"github.com/eventfold/eventfold/internal/template"
)

// emailHashKeySecret is the template's secret holding the email hash key, which `restore apply`
// reads as the commands function does.
const emailHashKeySecret = "EmailHashKeySecret"

// restoreCopyCommand is `eventfold restore copy`: the events recorded up to -until, into a new
// table -target with the events table's definition. Locally only: in AWS, point-in-time recovery
// does this.
type restoreCopyCommand struct {
	common
	until, target string
}

func (c *restoreCopyCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("restore copy", "-until T -target TABLE [flags]", `
Copy copies every event recorded at or before -until from the events table into a new table,
-target, created with the events table's definition from the template: what a point-in-time
restore of the append-only events table to -until holds. DynamoDB Local has no point-in-time
recovery, so this stands in for it, on DynamoDB Local only; in AWS, restore the table with
aws dynamodb restore-table-to-point-in-time. See the README, "Restoring the event store".`)
	c.attach(fs, eventsTable)
	fs.StringVar(&c.until, "until", "", "the point in time, RFC 3339")
	fs.StringVar(&c.target, "target", "", "the new table the events are copied into")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	until, target := c.until, c.target
	if c.endpoint == "" {
		return fmt.Errorf("restore copy stands in for point-in-time recovery on DynamoDB Local: pass -endpoint or set %s; in AWS use aws dynamodb restore-table-to-point-in-time", localaws.EnvDynamoDBEndpoint)
	}
	at, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return errors.New("restore copy needs -until, an RFC 3339 time such as 2026-12-01T09:30:00Z")
	}
	if target == "" {
		return errors.New("restore copy needs -target, the name of the new table")
	}
	d, err := c.resolve()
	if err != nil {
		return err
	}
	events := d.tables[eventsTable]
	if target == events {
		return errors.New("-target is the live events table: copy into a new table")
	}
	def, err := d.definition("EventsTable", target)
	if err != nil {
		return err
	}
	client := localaws.DynamoDB(d.endpoint)
	if _, err := localaws.CreateTables(ctx, client, []template.Table{def}); err != nil {
		return err
	}
	n, err := restore.Copy(ctx, client, events, target, at)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %d events recorded up to %s from %s into %s\n", n, at.Format(time.RFC3339Nano), events, target)
	return nil
}

// restoreApplyCommand is `eventfold restore apply`, with the command side wired as the commands
// Lambda wires it (app.Commands), so erasures are made again exactly as
// DELETE /users/{id} does.
type restoreApplyCommand struct {
	common
	from   string
	dryRun bool
}

func (c *restoreApplyCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("restore apply", "-from TABLE [-dry-run] [flags]", `
Apply makes the live events table equal to the restored copy of it, -from, stream by stream:
events the copy has and the live table lacks are put back, events past the copy's end of a
stream are deleted. Then snapshots, claims and idempotency records are made to agree with the
restored events, and erasures are made again, exactly as DELETE /users/{id} makes them. Every
step is idempotent: a restore that stops halfway is finished by running it again; writers must be
stopped while it runs. With -dry-run it reports what it would change and changes nothing. It reads the email hash key
from the stack's secret (EmailHashKeySecret), as the commands function does. Afterwards, start every function cold and rebuild the read models; see the README,
"Restoring the event store".`)
	c.attach(fs, eventsTable, snapshotsTable, claimsTable, idempotencyTable, keysTable)
	fs.StringVar(&c.from, "from", "", "the restored copy of the events table")
	fs.BoolVar(&c.dryRun, "dry-run", false, "report what would change, change nothing")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	from, dryRun := c.from, c.dryRun
	if from == "" {
		return errors.New("restore apply needs -from, the restored copy of the events table")
	}
	d, cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	key, err := app.ReadEmailHashKey(ctx, cl.Secrets, d.env.Refs[emailHashKeySecret])
	if err != nil {
		return err
	}
	client, t := cl.DynamoDB, d.tables
	cs, err := app.Commands(app.CommandsConfig{
		EventsTable: t[eventsTable], SnapshotsTable: t[snapshotsTable], ClaimsTable: t[claimsTable], IdempotencyTable: t[idempotencyTable],
		KeysConfig: d.uncachedKeys(), EmailHashKey: key, // every key as it is now, as the audit reads them
	}, cl, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	r, err := restore.Apply(ctx, restore.Config{API: client, Events: t[eventsTable], Restored: from,
		Snapshots: t[snapshotsTable], Claims: t[claimsTable], Idempotency: cs.Idempotency, Users: cs.Service}, dryRun)
	verb := "restored"
	if dryRun {
		verb = "dry run, nothing changed:"
	}
	fmt.Fprintf(out, "%s %s from %s: %d streams, %d events; %d events put back, %d deleted; %d erasures made after T kept; %d snapshots deleted; "+
		"%d claims released, %d taken again; %d idempotency records deleted; %d subjects erased again\n",
		verb, t[eventsTable], from, r.Streams, r.Events, r.PutBack, r.Deleted, r.Kept, r.Snapshots, r.ClaimsReleased, r.ClaimsTaken, r.Idempotency, len(r.Erasures))
	for _, k := range r.ClaimConflicts {
		fmt.Fprintln(out, "  claim held by another stream, left as it is:", k)
	}
	if err != nil {
		return err
	}
	if !dryRun {
		fmt.Fprintln(out, "next: start every function cold, rebuild the read models (projections rebuild) and cut over; see the README, \"Restoring the event store\"")
	}
	if len(r.ClaimConflicts) > 0 {
		return fmt.Errorf("%d claims are held by another stream than the restored events say", len(r.ClaimConflicts))
	}
	return nil
}
