package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/erasure"
)

// auditCommand is `eventfold erasure audit`.
type auditCommand struct {
	common
	subject string
}

func (c *auditCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("erasure audit", "-subject ID [flags]", `
Audit proves that no personal data of the data subject -subject is readable anywhere: it reads
the raw events, snapshots, read models, idempotency records and parked events, opening what is
sealed through a keyring without a cache (so it sees what any process reading the tables now
would), and checks that the subject's erasure is recorded and its key is gone. It prints each
finding and exits non-zero when there is any.`)
	c.attach(fs, eventsTable, snapshotsTable, readModelsTable, idempotencyTable, parkingTable, keysTable)
	fs.StringVar(&c.subject, "subject", "", "the data subject (a user ID)")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.subject == "" {
		return errors.New("erasure audit needs -subject")
	}
	d, cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	client, t := cl.DynamoDB, d.tables
	// No cache: the audit proves what any process reading the tables now would get.
	keys := app.Keyring(d.uncachedKeys(), cl)
	findings, err := erasure.Audit(ctx, client, keys, erasure.Tables{Events: t[eventsTable], Snapshots: t[snapshotsTable],
		ReadModels: t[readModelsTable], Idempotency: t[idempotencyTable], Parking: t[parkingTable], Keys: t[keysTable]}, c.subject)
	if err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Fprintln(out, "finding:", f)
	}
	if len(findings) > 0 {
		return fmt.Errorf("%d places still hold readable personal data of %s", len(findings), c.subject)
	}
	fmt.Fprintf(out, "no readable personal data of %s in %s, %s, %s, %s, %s; key erased\n", c.subject,
		t[eventsTable], t[snapshotsTable], t[readModelsTable], t[idempotencyTable], t[parkingTable])
	return nil
}
