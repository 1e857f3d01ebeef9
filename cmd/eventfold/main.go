// Command eventfold holds the operations people run against an eventfold deployment or the local
// stack.
//
//	eventfold tables create                create template.yaml's tables on DynamoDB Local
//	eventfold projections rebuild          rebuild the read models into a new table and verify it;
//	                                       with -target naming an existing table, catch it up
//	eventfold parked list [-consumer C]    list a stream consumer's parked events
//	eventfold parked replay [-consumer C]  apply parked events again; remove those that apply
//	eventfold erasure audit -subject ID    prove a subject's personal data is unreadable everywhere
//	eventfold restore copy -until T -target TABLE
//	                                       local stand-in for point-in-time recovery: copy the events recorded up to T
//	eventfold restore apply -from TABLE [-dry-run]
//	                                       make the live tables agree with a restored copy of the events table
//
// Every command takes -template and -stack to name the tables as a local deployment of the
// template does, -events-table, -snapshots-table, -read-models-table, -parking-table and
// -keys-table to name them otherwise, and -endpoint for DynamoDB Local (default
// $EVENTFOLD_DYNAMODB_ENDPOINT; without one, the AWS configuration of the environment is used). The commands that read personal data (rebuild,
// replay, audit) take -kms-endpoint (default $EVENTFOLD_KMS_ENDPOINT) and -data-key (default:
// the template's alias); rebuild and replay wire the read side exactly as the projector Lambda
// does (lambdaenv.NewReadSide), so they open sealed fields as it does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/erasure"
	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/template"
)

const usage = `usage: eventfold COMMAND [flags]

commands:
  tables create          create template.yaml's tables on DynamoDB Local
  projections rebuild    rebuild the read models into a new table and verify it against the live one
                         (-target naming an existing table: the catch-up pass of a cutover)
  parked list            list a stream consumer's parked events
  parked replay          apply parked events again and remove those that apply
  erasure audit          prove that no personal data of -subject is readable anywhere (exit 1 if some is)
  restore copy           copy the events recorded up to -until into a new table -target (DynamoDB Local
                         has no point-in-time recovery: this stands in for it)
  restore apply          make the live events table equal to the restored copy -from, then snapshots,
                         claims and idempotency records agree with it and erasures are made again
                         (needs EVENTFOLD_EMAIL_HASH_KEY, the stack's EmailHashKey, base64)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eventfold:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(errOut, usage)
		return errors.New("no command")
	}
	cmd := args[0] + " " + args[1]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(errOut)
	o := options{}
	fs.StringVar(&o.endpoint, "endpoint", os.Getenv(localaws.EnvDynamoDBEndpoint), "DynamoDB endpoint (DynamoDB Local); empty: AWS")
	fs.StringVar(&o.template, "template", "template.yaml", "the SAM template")
	fs.StringVar(&o.stack, "stack", "eventfold", "the stack name tables are named after")
	fs.StringVar(&o.tables.events, "events-table", "", "the events table (default: from the template)")
	fs.StringVar(&o.tables.readModels, "read-models-table", "", "the read-model table (default: from the template)")
	fs.StringVar(&o.tables.parking, "parking-table", "", "the parking table (default: from the template)")
	fs.StringVar(&o.tables.snapshots, "snapshots-table", "", "the snapshots table (default: from the template)")
	fs.StringVar(&o.tables.keys, "keys-table", "", "the table of wrapped data keys (default: from the template)")
	segments := fs.Int("segments", 4, "projections rebuild: parallel scan segments and workers")
	target := fs.String("target", "", "projections rebuild: the new read-model table (default: <live>-rebuild-<time>); an existing one is caught up")
	consumerName := fs.String("consumer", "projector", "parked: the stream consumer")
	subject := fs.String("subject", "", "erasure audit: the data subject (a user ID)")
	fs.StringVar(&o.kmsEndpoint, "kms-endpoint", os.Getenv(localaws.EnvKMSEndpoint), "KMS endpoint (the emulator); empty: AWS (rebuild, replay, audit)")
	fs.StringVar(&o.dataKey, "data-key", "", "the KMS key wrapping data keys (default: the template's alias)")
	fs.StringVar(&o.tables.claims, "claims-table", "", "the claims table (default: from the template)")
	fs.StringVar(&o.tables.idempotency, "idempotency-table", "", "the idempotency table (default: from the template)")
	from := fs.String("from", "", "restore apply: the restored copy of the events table")
	until := fs.String("until", "", "restore copy: the point in time, RFC 3339")
	dryRun := fs.Bool("dry-run", false, "restore apply: report what would change, change nothing")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	switch cmd {
	case "tables create":
		return tablesCreate(ctx, o, out)
	case "projections rebuild":
		return rebuild(ctx, o, *segments, *target, out, errOut)
	case "parked list", "parked replay":
		return parked(ctx, o, *consumerName, args[1] == "replay", out)
	case "erasure audit":
		return audit(ctx, o, *subject, out)
	case "restore copy":
		return restoreCopy(ctx, o, *until, *target, out)
	case "restore apply":
		return restoreApply(ctx, o, *from, *dryRun, out)
	}
	fmt.Fprint(errOut, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

type options struct {
	endpoint, template, stack string
	kmsEndpoint, dataKey      string
	tables                    struct{ events, snapshots, readModels, parking, idempotency, keys, claims string }
	tmpl                      *template.Template
	env                       template.Env
}

// resolve reads the template and fills in the table names not given as flags.
func (o *options) resolve() error {
	tmpl, err := template.ParseFile(o.template)
	if err != nil {
		return err
	}
	env, err := tmpl.LocalEnv(o.stack, localaws.Region, localaws.Account)
	if err != nil {
		return err
	}
	o.tmpl, o.env = tmpl, env
	for _, t := range []struct {
		name *string
		id   string
	}{{&o.tables.events, "EventsTable"}, {&o.tables.snapshots, "SnapshotsTable"}, {&o.tables.readModels, "ReadModelsTable"},
		{&o.tables.parking, "ParkingTable"}, {&o.tables.idempotency, "IdempotencyTable"}, {&o.tables.keys, "KeysTable"},
		{&o.tables.claims, "ClaimsTable"}} {
		if *t.name == "" {
			*t.name = env.Refs[t.id]
		}
	}
	return nil
}

func (o *options) client(ctx context.Context) (*dynamodb.Client, error) {
	if o.endpoint != "" {
		return localaws.DynamoDB(o.endpoint), nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

func tablesCreate(ctx context.Context, o options, out io.Writer) error {
	if o.endpoint == "" {
		return fmt.Errorf("no DynamoDB Local endpoint: pass -endpoint or set %s (make up prints it)", localaws.EnvDynamoDBEndpoint)
	}
	if err := o.resolve(); err != nil {
		return err
	}
	tables, err := o.tmpl.Tables(o.env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	descs, err := localaws.CreateTables(ctx, localaws.DynamoDB(o.endpoint), tables)
	if err != nil {
		return err
	}
	for i, d := range descs {
		fmt.Fprintf(out, "%-18s %s", tables[i].LogicalID, aws.ToString(d.TableName))
		if d.LatestStreamArn != nil {
			fmt.Fprintf(out, "  stream %s", aws.ToString(d.LatestStreamArn))
		}
		fmt.Fprintln(out)
	}
	return nil
}

// readSide wires the read side as the projector Lambda does (lambdaenv.NewReadSide): events are
// opened through the keyring before they are projected.
func readSide(ctx context.Context, o *options) (*dynamodb.Client, *lambdaenv.ReadModels, error) {
	if err := o.resolve(); err != nil {
		return nil, nil, err
	}
	client, err := o.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	kmsAPI, err := o.kms(ctx)
	if err != nil {
		return nil, nil, err
	}
	rs, err := lambdaenv.NewReadSide(lambdaenv.ReadSide{
		EventsTable: o.tables.events, SnapshotsTable: o.tables.snapshots, ReadModelsTable: o.tables.readModels,
		ParkingTable: o.tables.parking, KeysTable: o.tables.keys, DataKey: o.dataKey,
	}, client, kmsAPI, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return client, rs, err
}

// kms returns the KMS client, and fills in the data key from the template's alias when no
// -data-key names it. It needs resolve first.
func (o *options) kms(ctx context.Context) (crypto.KMS, error) {
	if o.dataKey == "" {
		if alias, ok := o.tmpl.Resources["DataKeyAlias"]; ok {
			key, err := o.env.String(alias.Properties["AliasName"])
			if err != nil {
				return nil, err
			}
			o.dataKey = key
		}
	}
	if o.kmsEndpoint != "" {
		return localaws.KMS(o.kmsEndpoint), nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg), nil
}

// rebuild runs `projections rebuild`. Into a new table (no -target, or one naming no table) it
// creates the table and, should the rebuild fail, deletes it again; into an existing table (the
// catch-up pass of the cutover) it applies what the table lacks and never deletes it.
func rebuild(ctx context.Context, o options, segments int, target string, out, errOut io.Writer) (err error) {
	if segments < 1 {
		return fmt.Errorf("-segments %d: want at least 1", segments)
	}
	client, rs, err := readSide(ctx, &o)
	if err != nil {
		return err
	}
	if target == "" {
		target = fmt.Sprintf("%s-rebuild-%d", o.tables.readModels, time.Now().Unix())
	}
	if target == o.tables.readModels {
		return fmt.Errorf("-target %s is the live read-model table: rebuild into a new table, then cut over", target)
	}
	// The new table has the live one's definition from the template, under the target name.
	def, err := o.definition("ReadModelsTable", target)
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
	p, err := rs.Rebuild(ctx, target, segments, progress)
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
	c, err := projection.Verify(ctx, client, o.tables.readModels, target)
	if err != nil {
		return fmt.Errorf("verify %s: %w; %s is complete and kept", target, err, target)
	}
	fmt.Fprintf(out, "verify against %s: %d equal, %d live behind, %d live ahead, %d only live, %d different\n",
		o.tables.readModels, c.Equal, c.Behind, c.Ahead, c.Missing, len(c.Different))
	if len(c.Different) > 0 {
		for _, pk := range c.Different {
			fmt.Fprintln(out, "  different:", pk)
		}
		return fmt.Errorf("%d read models differ from a fold of the event store; %s is kept for inspection", len(c.Different), target)
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

func parked(ctx context.Context, o options, name string, replay bool, out io.Writer) error {
	_, rs, err := readSide(ctx, &o)
	if err != nil {
		return err
	}
	table := rs.Parking
	list, err := table.List(ctx, name)
	if err != nil {
		return err
	}
	if !replay {
		for _, p := range list {
			fmt.Fprintf(out, "%s\t%d\t%s\t%s\n", p.StreamID, p.Version, p.ParkedAt.Format(time.RFC3339), p.Error)
		}
		fmt.Fprintf(out, "%d parked\n", len(list))
		return nil
	}
	if name != "projector" {
		return fmt.Errorf("replay knows the projector only, not %q", name)
	}
	var failed int
	for _, p := range list {
		if err := rs.Processor.Replay(ctx, p); err != nil {
			failed++
			fmt.Fprintf(out, "still failing: %s at %d: %v\n", p.StreamID, p.Version, err)
			continue
		}
		if err := table.Remove(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed: %s at %d\n", p.StreamID, p.Version)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d parked events still fail", failed, len(list))
	}
	return nil
}

func audit(ctx context.Context, o options, subject string, out io.Writer) error {
	if subject == "" {
		return errors.New("erasure audit needs -subject")
	}
	client, kmsAPI, err := o.clients(ctx)
	if err != nil {
		return err
	}
	// No cache: the audit proves what any process reading the tables now would get.
	keys := crypto.New(kmsAPI, client, o.tables.keys, o.dataKey, 0, time.Minute, nil)
	findings, err := erasure.Audit(ctx, client, keys, erasure.Tables{Events: o.tables.events, Snapshots: o.tables.snapshots,
		ReadModels: o.tables.readModels, Idempotency: o.tables.idempotency, Parking: o.tables.parking, Keys: o.tables.keys}, subject)
	if err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Fprintln(out, "finding:", f)
	}
	if len(findings) > 0 {
		return fmt.Errorf("%d places still hold readable personal data of %s", len(findings), subject)
	}
	fmt.Fprintf(out, "no readable personal data of %s in %s, %s, %s, %s, %s; key erased\n", subject,
		o.tables.events, o.tables.snapshots, o.tables.readModels, o.tables.idempotency, o.tables.parking)
	return nil
}

// clients resolves the template and returns the DynamoDB and KMS clients (see kms).
func (o *options) clients(ctx context.Context) (*dynamodb.Client, crypto.KMS, error) {
	if err := o.resolve(); err != nil {
		return nil, nil, err
	}
	client, err := o.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	kmsAPI, err := o.kms(ctx)
	return client, kmsAPI, err
}

// definition returns the template's definition of the table logicalID, named name. It needs
// resolve first.
func (o *options) definition(logicalID, name string) (template.Table, error) {
	tables, err := o.tmpl.Tables(o.env)
	if err != nil {
		return template.Table{}, err
	}
	for _, t := range tables {
		if t.LogicalID == logicalID {
			t.Create.TableName = aws.String(name)
			return t, nil
		}
	}
	return template.Table{}, fmt.Errorf("the template declares no %s", logicalID)
}
