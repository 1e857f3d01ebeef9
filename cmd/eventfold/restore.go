package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/restore"
	"github.com/eventfold/eventfold/internal/template"
)

// envEmailHashKey names the variable that holds the stack's EmailHashKey for `restore apply`:
// a secret, so never a flag (it would stay in the shell's history).
const envEmailHashKey = "EVENTFOLD_EMAIL_HASH_KEY"

// restoreCopy runs `restore copy`: the events recorded up to until, into a new table target with
// the events table's definition. Locally only: in AWS, point-in-time recovery does this.
func restoreCopy(ctx context.Context, o options, until, target string, out io.Writer) error {
	if o.endpoint == "" {
		return fmt.Errorf("restore copy stands in for point-in-time recovery on DynamoDB Local: pass -endpoint or set %s; in AWS use aws dynamodb restore-table-to-point-in-time", localaws.EnvDynamoDBEndpoint)
	}
	at, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return errors.New("restore copy needs -until, an RFC 3339 time such as 2026-12-01T09:30:00Z")
	}
	if target == "" {
		return errors.New("restore copy needs -target, the name of the new table")
	}
	if err := o.resolve(); err != nil {
		return err
	}
	if target == o.tables.events {
		return errors.New("-target is the live events table: copy into a new table")
	}
	def, err := o.definition("EventsTable", target)
	if err != nil {
		return err
	}
	client := localaws.DynamoDB(o.endpoint)
	if _, err := localaws.CreateTables(ctx, client, []template.Table{def}); err != nil {
		return err
	}
	n, err := restore.Copy(ctx, client, o.tables.events, target, at)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %d events recorded up to %s from %s into %s\n", n, at.Format(time.RFC3339Nano), o.tables.events, target)
	return nil
}

// restoreApply runs `restore apply`, with the command side wired as the commands Lambda wires
// it (lambdaenv.NewCommandSide), so erasures are made again exactly as DELETE /users/{id} does.
func restoreApply(ctx context.Context, o options, from string, dryRun bool, out io.Writer) error {
	if from == "" {
		return errors.New("restore apply needs -from, the restored copy of the events table")
	}
	key, err := base64.StdEncoding.DecodeString(os.Getenv(envEmailHashKey))
	if err != nil || len(key) < 32 {
		return fmt.Errorf("restore apply needs %s: the stack's EmailHashKey, base64, at least 32 bytes", envEmailHashKey)
	}
	client, kmsAPI, err := o.clients(ctx)
	if err != nil {
		return err
	}
	cs, err := lambdaenv.NewCommandSide(lambdaenv.CommandSide{
		EventsTable: o.tables.events, SnapshotsTable: o.tables.snapshots, ClaimsTable: o.tables.claims, IdempotencyTable: o.tables.idempotency,
		KeysTable: o.tables.keys, DataKey: o.dataKey, EmailHashKey: key,
		KeyCacheTTL: time.Nanosecond, // no cache to speak of: read every key as it is now
	}, client, kmsAPI)
	if err != nil {
		return err
	}
	r, err := restore.Apply(ctx, restore.Config{API: client, Events: o.tables.events, Restored: from,
		Snapshots: o.tables.snapshots, Claims: o.tables.claims, Idempotency: cs.Idempotency, Users: cs.Service}, dryRun)
	verb := "restored"
	if dryRun {
		verb = "dry run, nothing changed:"
	}
	fmt.Fprintf(out, "%s %s from %s: %d streams, %d events; %d events put back, %d deleted; %d erasures made after T kept; %d snapshots deleted; "+
		"%d claims released, %d taken again; %d idempotency records deleted; %d subjects erased again\n",
		verb, o.tables.events, from, r.Streams, r.Events, r.PutBack, r.Deleted, r.Kept, r.Snapshots, r.ClaimsReleased, r.ClaimsTaken, r.Idempotency, len(r.Erasures))
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
