package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/template"
)

// sagaFunction is the template's saga function, whose environment is the saga's configuration.
const sagaFunction = "SagaFunction"

// sagasListCommand is `eventfold sagas list`.
type sagasListCommand struct {
	common
	stuck bool
	now   string
}

func (c *sagasListCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("sagas list", "[-stuck [-now T]] [flags]", `
List prints the order fulfilment runs that are not finished, from the runs' read model, one a
line: the order, the step, the deadline the run waits on ("-" when it waits on none: it is
compensating, or its deadline passed) and the last refusal a reply recorded; then how many
there are. With -stuck it prints only the stuck runs: those past a deadline before -now and
not finished, whatever their step (its firing was lost, or a compensation or commit did not
finish), earliest deadline first: the order, the step and the deadline. Redrive one with eventfold sagas redrive ORDER. The read
model is eventually consistent: a run that moved a moment ago may be listed as it was. It only
reads the read-model table.`)
	c.attach(fs, readModelsTable)
	fs.BoolVar(&c.stuck, "stuck", false, "list only the runs past their deadline and not finished")
	fs.StringVar(&c.now, "now", "", "with -stuck: the time deadlines passed before, RFC 3339 (default: now)")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	now := time.Now()
	if c.now != "" {
		if !c.stuck {
			return errors.New("sagas list: -now applies to -stuck only")
		}
		t, err := time.Parse(time.RFC3339Nano, c.now)
		if err != nil {
			return errors.New("sagas list: -now must be an RFC 3339 time such as 2026-12-01T09:30:00Z")
		}
		now = t
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	client, err := d.dynamoDB(ctx)
	if err != nil {
		return err
	}
	if c.stuck {
		runs, err := stuckRuns(ctx, client, d.tables[readModelsTable], now)
		if err != nil {
			return err
		}
		for _, r := range runs {
			fmt.Fprintf(out, "%s\t%s\t%s\n", r.OrderID, r.Step, r.Deadline)
		}
		fmt.Fprintf(out, "%d stuck\n", len(runs))
		return nil
	}
	runs, err := unfinishedRuns(ctx, client, d.tables[readModelsTable])
	if err != nil {
		return err
	}
	for _, r := range runs {
		deadline := "-"
		if r.Deadline.Pending {
			deadline = r.Deadline.At
		}
		fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", r.OrderID, r.Step, deadline, cmp.Or(r.LastError, "-"))
	}
	fmt.Fprintf(out, "%d unfinished\n", len(runs))
	return nil
}

// unfinishedRuns scans the read-model table for the runs' items that are not finished, all of
// them, page by page, and returns them by deadline, then order. The scan reads the whole table;
// only the runs' attributes of the unfinished ones come back.
func unfinishedRuns(ctx context.Context, client *dynamodb.Client, table string) ([]query.Fulfilment, error) {
	filter := expression.Name(projection.AttrKind).Equal(expression.Value(projection.KindRun)).
		And(expression.Name(projection.AttrFinished).Equal(expression.Value(false)))
	proj := expression.NamesList(expression.Name(projection.AttrOrderID), expression.Name(projection.AttrRunStep),
		expression.Name(projection.AttrDeadline), expression.Name(projection.AttrLastError),
		expression.Name(projection.AttrDecisions), expression.Name(projection.AttrVersion))
	expr, err := expression.NewBuilder().WithFilter(filter).WithProjection(proj).Build()
	if err != nil {
		return nil, err
	}
	pages := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
		TableName: aws.String(table), FilterExpression: expr.Filter(), ProjectionExpression: expr.Projection(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	var runs []query.Fulfilment
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s for unfinished runs: %w", table, err)
		}
		var items []query.Fulfilment
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("scan %s for unfinished runs: %w", table, err)
		}
		runs = append(runs, items...)
	}
	slices.SortFunc(runs, func(a, b query.Fulfilment) int {
		return cmp.Or(cmp.Compare(a.Deadline.At, b.Deadline.At), cmp.Compare(a.OrderID, b.OrderID))
	})
	return runs, nil
}

// stuckRuns returns every run waiting on a deadline before now, page by page of
// query.Service.StuckRuns (earliest deadline first).
func stuckRuns(ctx context.Context, client *dynamodb.Client, table string, now time.Time) ([]query.StuckRun, error) {
	q := query.New(query.Config{API: client, Table: table})
	var runs []query.StuckRun
	cursor := ""
	for {
		page, err := q.StuckRuns(ctx, now, cursor, query.MaxStuckRuns)
		if err != nil {
			return nil, err
		}
		runs = append(runs, page.Items...)
		if page.Next == "" {
			return runs, nil
		}
		cursor = page.Next
	}
}

// sagasRedriveCommand is `eventfold sagas redrive`.
type sagasRedriveCommand struct {
	common
}

func (c *sagasRedriveCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("sagas redrive", "[flags] ORDER", `
Redrive makes the fulfilment run of the order ORDER carry on, through the saga wired exactly as
the saga function wires it (app.Saga, configured from the template's SagaFunction environment,
the tables as the flags name them): it issues again what the run has pending and, when the run
is past its deadline and not yet charged, compensates it and cancels the order (reason
timeout). Every command it issues is idempotent by order, so redriving a run that moved on
meanwhile, or redriving twice, has no effect twice. It prints the run's step and reason after
it; an order without a run is an error. Outside Lambda no deadline is set (the saga has no
Target and there is no Lambda context): a run still waiting keeps the schedule set when it
started. Deadlines it cancels are cancelled in -schedule-group, on the Scheduler at
-kms-endpoint (moto's server serves both) or in AWS.`)
	c.attach(fs, eventsTable, snapshotsTable, parkingTable, keysTable)
	c.attachScheduleGroup(fs)
	order, err := fs.parseOperand(args, "ORDER", out, errOut)
	if err != nil {
		return err
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	_, side, err := d.saga(ctx)
	if err != nil {
		return err
	}
	f, err := side.Saga.Redrive(ctx, order)
	if errors.Is(err, saga.ErrNoRun) {
		return fmt.Errorf("sagas redrive: order %q has no fulfilment run (its OrderPlaced was not seen by the saga, or there is no such order)", order)
	}
	if err != nil {
		return fmt.Errorf("sagas redrive %s: %w", order, err)
	}
	fmt.Fprintf(out, "%s\tstep %s\treason %s\tfinished %t\n", order, f.Step, cmp.Or(f.Reason, "-"), f.Finished())
	return nil
}

// sagasCheckCommand is `eventfold sagas check`.
type sagasCheckCommand struct {
	common
}

func (c *sagasCheckCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("sagas check", "[flags]", `
Check replays the stream of every unfinished fulfilment run (as sagas list finds them) through
this build's decisions (domain.CheckFulfilment) and prints each run whose recorded decisions
differ from what this build decides: the order, the version of the run's event where they part
(0: in what the run issues next), what the run recorded and what this build decides. It also
prints the runs started under another decisions version (domain.FulfilmentDecisions) than this
build's. Run it with the build you are about to deploy: it fails (exit 1) when any run differs
or cannot be checked, and prints a summary line either way. It reads the read-model and events
tables and changes nothing.`)
	c.attach(fs, eventsTable, snapshotsTable, readModelsTable, parkingTable, keysTable)
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	cl, side, err := d.saga(ctx)
	if err != nil {
		return err
	}
	runs, err := unfinishedRuns(ctx, cl.DynamoDB, d.tables[readModelsTable])
	if err != nil {
		return err
	}
	var differ, other, failed int
	for _, r := range runs {
		f, div, err := checkRun(ctx, side.Saga, r.OrderID)
		if err != nil {
			failed++
			fmt.Fprintf(out, "cannot check: %s: %v\n", r.OrderID, err)
			continue
		}
		if div != nil {
			differ++
			where := fmt.Sprintf("version %d", div.Version)
			if div.Version == 0 {
				where = "after its last event"
			}
			fmt.Fprintf(out, "differs: %s at %s:\n  recorded: %s\n  current:  %s\n", r.OrderID, where, div.Recorded, div.Current)
		}
		if f.Decisions != domain.FulfilmentDecisions {
			other++
			fmt.Fprintf(out, "other decisions: %s started under decisions %d, this build's are %d\n", r.OrderID, f.Decisions, domain.FulfilmentDecisions)
		}
	}
	fmt.Fprintf(out, "checked %d unfinished runs against decisions %d: %d differ, %d started under other decisions, %d could not be checked\n",
		len(runs), domain.FulfilmentDecisions, differ, other, failed)
	if differ > 0 || failed > 0 {
		return fmt.Errorf("sagas check: %d of %d unfinished runs differ from this build's decisions, %d could not be checked", differ, len(runs), failed)
	}
	return nil
}

// checkRun loads the run of order orderID and replays it through the current decisions.
func checkRun(ctx context.Context, s *saga.Saga, orderID string) (domain.Fulfilment, *domain.FulfilmentDivergence, error) {
	_, _, stored, err := s.Load(ctx, orderID)
	if err != nil {
		return domain.Fulfilment{}, nil, err
	}
	if len(stored) == 0 {
		return domain.Fulfilment{}, nil, errors.New("the read model lists the run, the event store has none of its events")
	}
	events := make([]domain.Event, len(stored))
	at := make([]time.Time, len(stored))
	for i, e := range stored {
		if events[i], err = domain.Decode(e.Type, e.Data); err != nil {
			return domain.Fulfilment{}, nil, fmt.Errorf("version %d: %w", e.Version, err)
		}
		at[i] = e.RecordedAt
	}
	f, div := domain.CheckFulfilment(events, at)
	return f, div, nil
}

// saga builds the saga exactly as functions/saga does: app.SagaFromEnv reads the template's
// SagaFunction environment, resolved against the deployment (see sagaEnv), and app.Saga wires
// it on the deployment's clients, which it returns too. It logs nothing. Outside Lambda it sets
// no deadline (saga.Config.Target is empty and there is no Lambda context).
func (d *deployment) saga(ctx context.Context) (app.Clients, *app.SagaSide, error) {
	vars, err := d.sagaEnv()
	if err != nil {
		return app.Clients{}, nil, err
	}
	cfg, err := app.SagaFromEnv(func(name string) string { return vars[name] })
	if err != nil {
		return app.Clients{}, nil, fmt.Errorf("the template's %s environment: %w", sagaFunction, err)
	}
	c, err := d.clients(ctx)
	if err != nil {
		return app.Clients{}, nil, err
	}
	side, err := app.Saga(cfg, c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return c, side, err
}

// sagaEnv returns the saga function's environment variables (the Globals' and its own, as SAM
// merges them), each resolved against the deployment's names: the tables as the flags or the
// template name them (see resolve), the data key alias as -data-key or the template names it,
// the schedule group as -schedule-group or a local deployment names it, and every other
// resource as a local deployment names it ("<stack>-<LogicalID>", an ARN of its type's shape).
// Those others (the scheduler's role, the dead-letter queue) are used only when a deadline is
// set, which outside Lambda the saga never does. For a deployed stack every resource is named as
// the stack names it, the schedule group as -schedule-group or the stack names it, and a
// variable naming a resource the stack lacks is an error naming it (errNoResource).
func (d *deployment) sagaEnv() (map[string]string, error) { return d.functionEnv(sagaFunction) }

// functionEnv returns the environment variables of the template's function fn (the Globals' and
// its own, as SAM merges them), resolved against the deployment as sagaEnv says.
func (d *deployment) functionEnv(fn string) (map[string]string, error) {
	res, ok := d.tmpl.Resources[fn]
	if !ok || res.Type != "AWS::Serverless::Function" {
		return nil, fmt.Errorf("the template declares no function %s", fn)
	}
	env := template.Env{Refs: maps.Clone(d.env.Refs), Attrs: maps.Clone(d.env.Attrs)}
	for t := range numTables {
		if _, logicalID, _ := t.spec(); d.tables[t] != "" || d.stack == "" {
			env.Refs[logicalID] = d.tables[t]
		}
	}
	if d.dataKey != "" {
		env.Refs["DataKeyAlias"] = d.dataKey
	}
	stack := env.Refs["AWS::StackName"]
	for _, id := range d.tmpl.OfType(localaws.ScheduleGroupType) {
		if d.stack != "" && d.scheduleGroup != "" {
			env.Refs[id] = d.scheduleGroup
			env.Attrs[id+".Arn"] = fmt.Sprintf("arn:%s:scheduler:%s:%s:schedule-group/%s", env.Refs["AWS::Partition"], env.Refs["AWS::Region"],
				env.Refs["AWS::AccountId"], d.scheduleGroup)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(d.tmpl.Resources)) {
		if d.stack != "" {
			break // the stack names them
		}
		r := d.tmpl.Resources[id]
		name := stack + "-" + id
		if r.Type == localaws.ScheduleGroupType {
			if n, ok := r.Properties["Name"]; ok {
				s, err := env.String(n)
				if err != nil {
					return nil, fmt.Errorf("%s Name: %w", id, err)
				}
				name = s
			}
			if d.scheduleGroup != "" {
				name = d.scheduleGroup
			}
			env.Refs[id] = name
		}
		if _, ok := env.Refs[id]; !ok {
			env.Refs[id] = name
		}
		if _, ok := env.Attrs[id+".Arn"]; !ok {
			env.Attrs[id+".Arn"] = localARN(r.Type, name)
		}
	}
	vars := map[string]any{}
	for _, props := range []map[string]any{globalFunction(d.tmpl), res.Properties} {
		if e, ok := props["Environment"].(map[string]any); ok {
			if v, ok := e["Variables"].(map[string]any); ok {
				maps.Copy(vars, v)
			}
		}
	}
	out := make(map[string]string, len(vars))
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v := vars[name]
		for _, id := range references(v) {
			if _, ok := d.tmpl.Resources[id]; ok && d.stack != "" {
				if _, ok := env.Refs[id]; !ok {
					return nil, d.need(id, "the template's "+fn+" environment variable "+name)
				}
			}
		}
		s, err := env.String(v)
		if err != nil {
			return nil, fmt.Errorf("the template's %s environment: %s: %w", fn, name, err)
		}
		out[name] = s
	}
	return out, nil
}

// globalFunction returns the template's Globals for functions, or nil.
func globalFunction(t *template.Template) map[string]any {
	g, _ := t.Globals["Function"].(map[string]any)
	return g
}

// localARN is the ARN a resource of the type typ named name has in a local deployment:
// "arn:aws:<service>:<region>:<account>:<name>", IAM's without a region.
func localARN(typ, name string) string {
	parts := strings.Split(typ, "::")
	service := "cloudformation"
	if len(parts) == 3 {
		service = strings.ToLower(parts[1])
	}
	if service == "iam" {
		return "arn:aws:iam::" + localaws.Account + ":" + strings.ToLower(parts[2]) + "/" + name
	}
	return "arn:aws:" + service + ":" + localaws.Region + ":" + localaws.Account + ":" + name
}
