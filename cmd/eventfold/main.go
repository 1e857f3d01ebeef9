// Command eventfold holds the operations people run against an eventfold deployment or the local
// stack: creating the tables, rebuilding the read models, replaying parked events, operating the
// order fulfilment saga, auditing an erasure and restoring the event store. `eventfold help` lists the commands; `eventfold NOUN
// VERB -h` describes one and lists its flags.
//
// Each command is a noun and a verb (`eventfold projections rebuild`) with a flag set of its
// own; the flags they share come from common.attach. Against the local stack (-endpoint given)
// resources are named as a local deployment of the template under -stack names them; against
// AWS (no -endpoint), or a CloudFormation emulator (-cloudformation-endpoint), as the deployed
// stack -stack names them: its resources' physical IDs, read from CloudFormation.
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
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/schedule"
	"github.com/eventfold/eventfold/internal/template"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // help was asked for, and printed
	default:
		fmt.Fprintln(os.Stderr, "eventfold:", err)
		os.Exit(1)
	}
}

// A subcommand is one verb of a noun, `eventfold parked replay`; run gets the arguments after the
// verb.
type subcommand struct {
	noun, verb, summary string
	run                 func(ctx context.Context, args []string, out, errOut io.Writer) error
}

// commands lists the commands, in the order `eventfold help` shows them. Each command's own
// usage text (its -h) lives with it.
func commands() []subcommand {
	return []subcommand{
		{"tables", "create", "create template.yaml's tables on DynamoDB Local", new(tablesCreateCommand).run},
		{"projections", "rebuild", "rebuild the read models into a new table and verify it against the live one\n" +
			"(-target naming an existing table: the catch-up pass of a cutover)", new(rebuildCommand).run},
		{"projections", "repair", "apply to the live read models what they lack from the event store (after the\n" +
			"projector's stream trigger gave a batch up), then clear its OnFailure queue", new(repairCommand).run},
		{"parked", "list", "list a stream consumer's parked events", new(parkedListCommand).run},
		{"parked", "replay", "apply parked events again and remove those that apply", new(parkedReplayCommand).run},
		{"sagas", "list", "list the unfinished order fulfilment runs (-stuck: those past their deadline)", new(sagasListCommand).run},
		{"sagas", "redrive", "make an order's fulfilment run carry on (past its deadline: compensate and cancel)", new(sagasRedriveCommand).run},
		{"sagas", "repair", "start a run for every order without one and redrive every unfinished run, from\n" +
			"the event store (after the saga's stream trigger gave a batch up)", new(sagasRepairCommand).run},
		{"sagas", "check", "replay the unfinished runs through this build's decisions; exit 1 if any differ\n" +
			"(run it before deploying changed decisions)", new(sagasCheckCommand).run},
		{"erasure", "audit", "prove that no personal data of -subject is readable anywhere (exit 1 if some is)", new(auditCommand).run},
		{"restore", "copy", "copy the events recorded up to -until into a new table -target (DynamoDB Local\n" +
			"has no point-in-time recovery: this stands in for it)", new(restoreCopyCommand).run},
		{"restore", "apply", "make the live events table equal to the restored copy -from, then snapshots,\n" +
			"claims and idempotency records agree with it and erasures are made again", new(restoreApplyCommand).run},
		{"dev", "token", "sign a user in to the stack's Cognito user pool (signing them up if new) and print\n" +
			"their access token, for the user routes", new(devTokenCommand).run},
		{"dev", "sam-env", "print the --env-vars file that points sam local's functions at the local stack", new(devSAMEnvCommand).run},
	}
}

// run runs the command args name: it dispatches on the noun, then on the verb. Asked for help
// (`help`, -h, `help NOUN [VERB]`), it prints it to out and returns flag.ErrHelp; given a noun
// without a verb, it prints the noun's commands to errOut, and given a command it does not know,
// every command; both return an error.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	all := commands()
	if len(args) == 0 {
		printCommands(errOut, "COMMAND", all)
		return errors.New("no command")
	}
	noun, args := args[0], args[1:]
	if isHelp(noun) {
		if len(args) > 0 && !isHelp(args[0]) { // eventfold help NOUN [VERB]: that command's -h
			return run(ctx, slices.Concat(args, []string{"-h"}), out, errOut)
		}
		printCommands(out, "COMMAND", all)
		return flag.ErrHelp
	}
	var verbs []subcommand
	for _, c := range all {
		if c.noun == noun {
			verbs = append(verbs, c)
		}
	}
	if len(verbs) == 0 {
		printCommands(errOut, "COMMAND", all)
		return fmt.Errorf("unknown command %q", noun)
	}
	if len(args) == 0 {
		printCommands(errOut, noun+" VERB", verbs)
		return fmt.Errorf("%s: no verb", noun)
	}
	verb, args := args[0], args[1:]
	if isHelp(verb) {
		printCommands(out, noun+" VERB", verbs)
		return flag.ErrHelp
	}
	for _, c := range verbs {
		if c.verb == verb {
			return c.run(ctx, args, out, errOut)
		}
	}
	printCommands(errOut, "COMMAND", all)
	return fmt.Errorf("unknown command %q", noun+" "+verb)
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// printCommands prints the usage line `eventfold what [flags]` and the commands cmds.
func printCommands(w io.Writer, what string, cmds []subcommand) {
	fmt.Fprintf(w, "usage: eventfold %s [flags]\n\ncommands:\n", what)
	for _, c := range cmds {
		lines := strings.Split(c.summary, "\n")
		fmt.Fprintf(w, "  %-22s %s\n", c.noun+" "+c.verb, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %-22s %s\n", "", l)
		}
	}
	fmt.Fprintln(w, "\nRun eventfold NOUN VERB -h for what a command does and its flags.\n\n"+
		"Without -endpoint the commands work on AWS: on the deployed stack -stack (default eventfold),\n"+
		"whose tables, key alias and other resources they find through CloudFormation, with the\n"+
		"credentials and region of the environment (AWS_PROFILE, AWS_REGION, ...). With -endpoint\n"+
		"(EVENTFOLD_DYNAMODB_ENDPOINT) they work on the local stack, named as make run names it.")
}

// flagSet is a command's own flag set and usage text. Parse errors are not printed by the flag
// package: parse prints the usage and returns them.
type flagSet struct {
	*flag.FlagSet
	synopsis, about string
}

// newFlagSet returns the flag set of the command name ("erasure audit"), whose usage is
// `eventfold name synopsis`, the paragraph about, and the flags.
func newFlagSet(name, synopsis, about string) flagSet {
	fs := flag.NewFlagSet("eventfold "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return flagSet{FlagSet: fs, synopsis: synopsis, about: about}
}

// parse parses args, which must all be flags of the set. Given -h it prints the usage to out and
// returns flag.ErrHelp; given a flag the command does not take, or an argument, it prints the
// usage to errOut and returns an error naming it.
func (fs flagSet) parse(args []string, out, errOut io.Writer) error {
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q: this command takes flags only", fs.Arg(0))
	}
	return fs.parsed(err, out, errOut)
}

// parseOperand parses args, which must be flags of the set and one operand, the name (ORDER),
// before or after them, and returns the operand. Given -h, a flag the command does not take,
// no operand or more than one, it does as parse does.
func (fs flagSet) parseOperand(args []string, name string, out, errOut io.Writer) (string, error) {
	var operand string
	err := fs.Parse(args)
	if err == nil {
		switch rest := fs.Args(); {
		case len(rest) == 0:
			err = fmt.Errorf("no %s given", name)
		default:
			operand = rest[0]
			if err = fs.Parse(rest[1:]); err == nil && fs.NArg() > 0 {
				err = fmt.Errorf("unexpected argument %q: this command takes one %s", fs.Arg(0), name)
			}
		}
	}
	return operand, fs.parsed(err, out, errOut)
}

// parsed is what parse returns after parsing: nil, or flag.ErrHelp with the usage on out, or
// the error err with the usage on errOut.
func (fs flagSet) parsed(err error, out, errOut io.Writer) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.usage(out)
		return flag.ErrHelp
	default:
		fs.usage(errOut)
		return fmt.Errorf("%s: %w", strings.TrimPrefix(fs.Name(), "eventfold "), err)
	}
}

func (fs flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n\nflags:\n", fs.Name(), fs.synopsis, strings.TrimSpace(fs.about))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// table is one of the template's tables a command reads or writes.
type table int

const (
	eventsTable table = iota
	snapshotsTable
	readModelsTable
	parkingTable
	idempotencyTable
	keysTable
	claimsTable
	numTables
)

// spec returns the flag naming t, the template resource naming it otherwise, and what it holds.
func (t table) spec() (flagName, logicalID, holds string) {
	s := [numTables]struct{ flagName, logicalID, holds string }{
		eventsTable:      {"events-table", "EventsTable", "the events table"},
		snapshotsTable:   {"snapshots-table", "SnapshotsTable", "the snapshots table"},
		readModelsTable:  {"read-models-table", "ReadModelsTable", "the read-model table"},
		parkingTable:     {"parking-table", "ParkingTable", "the parking table"},
		idempotencyTable: {"idempotency-table", "IdempotencyTable", "the idempotency table"},
		keysTable:        {"keys-table", "KeysTable", "the table of wrapped data keys"},
		claimsTable:      {"claims-table", "ClaimsTable", "the claims table"},
	}[t]
	return s.flagName, s.logicalID, s.holds
}

// tables holds a name for each table; an empty name is not given.
type tables [numTables]string

// common holds the flags the commands share, as parsed: the template and the stack its tables are
// named after, the DynamoDB and CloudFormation endpoints, the names of the tables the command
// uses, and, for the commands that read the keys table, the KMS endpoint and the data key.
type common struct {
	template, stack, endpoint string
	cfnEndpoint               string
	tables                    tables
	uses                      []table // the tables the command takes flags for
	keys                      bool    // -kms-endpoint and -data-key are attached
	kmsEndpoint, dataKey      string
	// scheduleGroup is -schedule-group, of the commands that build the saga.
	scheduleGroup string
}

// attach adds to fs -template, -stack, -endpoint and a flag naming each of ts; with keysTable
// among ts, also -kms-endpoint and -data-key, since the keys table is read through KMS.
func (c *common) attach(fs flagSet, ts ...table) {
	fs.StringVar(&c.template, "template", "template.yaml", "the SAM template")
	fs.StringVar(&c.stack, "stack", "eventfold", "the stack: deployed (no -endpoint, or -cloudformation-endpoint), its resources are\n"+
		"found through CloudFormation; else the local deployment named after it")
	fs.StringVar(&c.endpoint, "endpoint", os.Getenv(localaws.EnvDynamoDBEndpoint), "DynamoDB endpoint (DynamoDB Local); empty: AWS")
	fs.StringVar(&c.cfnEndpoint, "cloudformation-endpoint", os.Getenv(localaws.EnvCloudFormationEndpoint),
		"CloudFormation endpoint (an emulator) holding -stack; empty: AWS's when -endpoint is empty, else none")
	c.uses = ts
	for _, t := range ts {
		name, _, holds := t.spec()
		fs.StringVar(&c.tables[t], name, "", holds+" (default: from the template)")
		if t == keysTable {
			c.keys = true
			fs.StringVar(&c.kmsEndpoint, "kms-endpoint", os.Getenv(localaws.EnvKMSEndpoint), "KMS endpoint (the emulator); empty: AWS")
			fs.StringVar(&c.dataKey, "data-key", "", "the KMS key wrapping data keys (default: the template's alias)")
		}
	}
}

// attachScheduleGroup adds -schedule-group, the group of the saga's deadlines, to fs: the commands
// that build the saga cancel deadlines in it.
func (c *common) attachScheduleGroup(fs flagSet) {
	fs.StringVar(&c.scheduleGroup, "schedule-group", "", "the schedule group of the saga's deadlines (default: from the template)")
}

// deployment is what a command's common flags name, resolved against the template: every table
// named, from its flag or as the template names it, and the data key.
type deployment struct {
	tmpl *template.Template
	env  template.Env
	// stack is the name of the deployed stack env was read from; "" for a local deployment.
	stack                 string
	endpoint, kmsEndpoint string
	tables                tables
	// dataKey is -data-key or the template's alias, for the commands that take -data-key.
	dataKey string
	// scheduleGroup is -schedule-group, or "" (the template's).
	scheduleGroup string
}

// resolve reads the template and fills in the names the flags do not give. With
// -cloudformation-endpoint, or without -endpoint (AWS), they are the deployed stack -stack's (see
// deployedEnv), and a table or data key the command uses that the stack lacks is an error naming
// the stack and the logical ID (errNoResource); else they are a local deployment's
// (template.LocalEnv). A stack on AWS with a local -kms-endpoint, and an emulator's stack with
// no -endpoint, are refused before any call (errMixedEndpoints).
func (c *common) resolve(ctx context.Context) (*deployment, error) {
	tmpl, err := template.ParseFile(c.template)
	if err != nil {
		return nil, err
	}
	switch {
	case c.cfnEndpoint != "" && c.endpoint == "":
		return nil, fmt.Errorf("stack %s: -cloudformation-endpoint %s is an emulator, whose resources are not AWS's, and -endpoint is empty (AWS): "+
			"pass -endpoint, or give no -cloudformation-endpoint (unset %s) to work on AWS: %w", c.stack, c.cfnEndpoint, localaws.EnvCloudFormationEndpoint, errMixedEndpoints)
	case c.cfnEndpoint == "" && c.endpoint == "" && c.kmsEndpoint != "":
		return nil, fmt.Errorf("stack %s is on AWS (no -endpoint) and -kms-endpoint %s is the local stack's, where its KMS, Scheduler and Secrets Manager calls would go: "+
			"unset %s, or pass -endpoint to work on the local stack: %w", c.stack, c.kmsEndpoint, localaws.EnvKMSEndpoint, errMixedEndpoints)
	}
	d := &deployment{tmpl: tmpl, endpoint: c.endpoint, kmsEndpoint: c.kmsEndpoint, tables: c.tables, dataKey: c.dataKey,
		scheduleGroup: c.scheduleGroup}
	if c.cfnEndpoint != "" || c.endpoint == "" {
		api, err := c.cloudFormation(ctx)
		if err != nil {
			return nil, err
		}
		if d.env, err = deployedEnv(ctx, api, tmpl, c.stack); err != nil {
			return nil, err
		}
		d.stack = c.stack
	} else if d.env, err = tmpl.LocalEnv(c.stack, localaws.Region, localaws.Account); err != nil {
		return nil, err
	}
	var missing []error
	for t := range numTables {
		if d.tables[t] == "" {
			flagName, logicalID, _ := t.spec()
			d.tables[t] = d.env.Refs[logicalID]
			if slices.Contains(c.uses, t) {
				missing = append(missing, d.need(logicalID, "-"+flagName))
			}
		}
	}
	if c.keys && d.dataKey == "" {
		if alias, ok := tmpl.Resources["DataKeyAlias"]; ok {
			if d.stack != "" {
				d.dataKey = d.env.Refs["DataKeyAlias"] // the alias's name
				missing = append(missing, d.need("DataKeyAlias", "-data-key"))
			} else if d.dataKey, err = d.env.String(alias.Properties["AliasName"]); err != nil {
				return nil, err
			}
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	return d, nil
}

// connect resolves the deployment (see resolve) and builds its DynamoDB and KMS clients (see
// clients).
func (c *common) connect(ctx context.Context) (*deployment, app.Clients, error) {
	d, err := c.resolve(ctx)
	if err != nil {
		return nil, app.Clients{}, err
	}
	cl, err := d.clients(ctx)
	return d, cl, err
}

// awsClient returns the client of a local endpoint when one is given (the local stack), else one
// of the environment's AWS configuration: how every command reaches AWS or the local stack.
func awsClient[C, O any](ctx context.Context, endpoint string, local func(string) C, fromConfig func(aws.Config, ...func(*O)) C) (C, error) {
	if endpoint != "" {
		return local(endpoint), nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		var none C
		return none, err
	}
	return fromConfig(cfg), nil
}

// dynamoDB returns the client of -endpoint; without one, of the environment's AWS configuration.
func (d *deployment) dynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	return awsClient(ctx, d.endpoint, func(e string) *dynamodb.Client { return localaws.DynamoDB(e) }, dynamodb.NewFromConfig)
}

// kms returns the client of -kms-endpoint; without one, of the environment's AWS configuration.
func (d *deployment) kms(ctx context.Context) (crypto.KMS, error) {
	return awsClient(ctx, d.kmsEndpoint, localaws.KMS, kms.NewFromConfig)
}

// scheduler returns the EventBridge Scheduler client of -kms-endpoint (moto's server, which
// serves both); without one, of the environment's AWS configuration.
func (d *deployment) scheduler(ctx context.Context) (schedule.API, error) {
	return awsClient(ctx, d.kmsEndpoint, localaws.Scheduler, scheduler.NewFromConfig)
}

// clients returns the DynamoDB, KMS, Scheduler and Secrets Manager clients (the last two of
// -kms-endpoint, moto's server, or of AWS).
func (d *deployment) clients(ctx context.Context) (app.Clients, error) {
	client, err := d.dynamoDB(ctx)
	if err != nil {
		return app.Clients{}, err
	}
	kmsAPI, err := d.kms(ctx)
	if err != nil {
		return app.Clients{}, err
	}
	sched, err := d.scheduler(ctx)
	if err != nil {
		return app.Clients{}, err
	}
	secrets, err := awsClient(ctx, d.kmsEndpoint, localaws.SecretsManager, secretsmanager.NewFromConfig)
	return app.Clients{DynamoDB: client, KMS: kmsAPI, Scheduler: sched, Secrets: secrets}, err
}

// keys is the keyring the flags name, with the cache of the Lambda functions.
func (d *deployment) keys() app.KeysConfig {
	return app.KeysConfig{KeysTable: d.tables[keysTable], DataKey: d.dataKey}
}

// uncachedKeys is the keyring the flags name without a cache: every key is read as it is now,
// so the command sees what any process reading the keys table now would.
func (d *deployment) uncachedKeys() app.KeysConfig {
	k := d.keys()
	k.Uncached = true
	return k
}

// readSide builds the read side with the projector Lambda's constructor (app.Projector): events
// are opened through the keyring before they are projected.
func (d *deployment) readSide(ctx context.Context) (*dynamodb.Client, *app.ReadSide, error) {
	c, err := d.clients(ctx)
	if err != nil {
		return nil, nil, err
	}
	rs, err := app.Projector(app.ProjectorConfig{
		EventsTable: d.tables[eventsTable], SnapshotsTable: d.tables[snapshotsTable], ReadModelsTable: d.tables[readModelsTable],
		ParkingTable: d.tables[parkingTable], KeysConfig: d.keys(),
	}, c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return c.DynamoDB, rs, err
}

// definition returns the template's definition of the table logicalID, named name.
func (d *deployment) definition(logicalID, name string) (template.Table, error) {
	defs, err := d.tmpl.Tables(d.env)
	if err != nil {
		return template.Table{}, err
	}
	for _, t := range defs {
		if t.LogicalID == logicalID {
			t.Create.TableName = aws.String(name)
			return t, nil
		}
	}
	return template.Table{}, fmt.Errorf("the template declares no %s", logicalID)
}
