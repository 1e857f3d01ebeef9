package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// mustStore returns a store on fresh tables created from template.yaml.
func mustStore(tb testing.TB, client *dynamodb.Client, reg *store.Registry, clock func() time.Time) (*store.DynamoDB, template.Env) {
	tb.Helper()
	env := awstest.MustTables(tb, client)
	return mustOpen(tb, client, env, reg, clock), env
}

func mustOpen(tb testing.TB, api store.API, env template.Env, reg *store.Registry, clock func() time.Time) *store.DynamoDB {
	tb.Helper()
	s, err := store.New(api, store.Config{
		EventsTable:    env.Refs["EventsTable"],
		SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable:    env.Refs["ClaimsTable"],
		Registry:       reg,
		Clock:          clock,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestDynamoDBContract(t *testing.T) {
	client := awstest.DynamoDB(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		env := awstest.MustTables(t, client)
		return func(reg *store.Registry, clock func() time.Time) storetest.Store {
			return dynamoUnderContract{mustOpen(t, client, env, reg, clock), env.Refs["KeysTable"]}
		}
	})
}

// dynamoUnderContract is the DynamoDB store with a table of the test's for inserts.
type dynamoUnderContract struct {
	*store.DynamoDB
	insertTable string
}

func (s dynamoUnderContract) InsertTable() string { return s.insertTable }

func TestSingleEventAppendIsOneWriteRequest(t *testing.T) {
	var r awstest.Requests
	client := r.Client(t)
	s, env := mustStore(t, client, storetest.V1, nil)
	ctx := context.Background()
	stream := storetest.StreamID("note")

	r.Take()
	if _, err := s.Append(ctx, stream, 0, storetest.Note("first")); err != nil {
		t.Fatal(err)
	}
	if ops, wcu := r.Take(); len(ops) != 1 || ops[0] != "PutItem" || wcu != 1 {
		t.Fatalf("append to a new stream: requests %v, %v WCU; want one PutItem, 1 WCU", ops, wcu)
	}

	// The command path: load the stream, decide, append one event.
	cold := mustOpen(t, client, env, storetest.V1, nil)
	events, err := cold.Load(ctx, stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	if ops, _ := r.Take(); len(ops) != 1 || ops[0] != "Query" {
		t.Fatalf("load: requests %v, want one Query", ops)
	}
	if _, err := cold.Append(ctx, stream, int64(len(events)), storetest.Note("second")); err != nil {
		t.Fatal(err)
	}
	if ops, wcu := r.Take(); len(ops) != 1 || ops[0] != "PutItem" || wcu != 1 {
		t.Fatalf("append after load: requests %v, %v WCU; want one PutItem, 1 WCU", ops, wcu)
	}

	// A store that has never seen the stream proves the expected version exists first.
	blind := mustOpen(t, client, env, storetest.V1, nil)
	if _, err := blind.Append(ctx, stream, 2, storetest.Note("third")); err != nil {
		t.Fatal(err)
	}
	if ops, wcu := r.Take(); strings.Join(ops, ",") != "Query,PutItem" || wcu != 1 {
		t.Fatalf("blind append: requests %v, %v WCU; want Query then PutItem, 1 WCU", ops, wcu)
	}

	// A retry after a lost response writes nothing and costs the failed conditional put only.
	e := storetest.Note("fourth")
	if _, err := s.Append(ctx, stream, 3, e); err != nil {
		t.Fatal(err)
	}
	r.Take()
	if _, err := s.Append(ctx, stream, 3, e); err != nil {
		t.Fatal(err)
	}
	if ops, _ := r.Take(); len(ops) != 1 || ops[0] != "PutItem" {
		t.Fatalf("retry: requests %v, want one PutItem", ops)
	}
}

func TestEventItemOfSmallEventFitsOneWriteUnit(t *testing.T) {
	ids := store.NewIDs(nil)
	data, _ := json.Marshal(map[string]any{"accountId": "acct-01J0000000000000000000000", "amount": 125000, "currency": "EUR"})
	it, err := store.EncodeItem(store.Event{
		ID: ids.New(), StreamID: "account-01J0000000000000000000000", Version: 123456, Type: "MoneyDeposited",
		SchemaVersion: 1, RecordedAt: time.Now(), CorrelationID: ids.New(), CausationID: ids.New(), Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(it)
	if len(raw) > 1024 {
		t.Fatalf("a typical event item marshals to %d bytes of JSON, want it well under 1 KB", len(raw))
	}
}

func TestTablesFollowTemplate(t *testing.T) {
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	out, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(env.Refs["EventsTable"])})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if len(d.KeySchema) != 2 || aws.ToString(d.KeySchema[0].AttributeName) != "pk" || d.KeySchema[0].KeyType != types.KeyTypeHash ||
		aws.ToString(d.KeySchema[1].AttributeName) != "v" || d.KeySchema[1].KeyType != types.KeyTypeRange {
		t.Fatalf("events table key schema = %+v", d.KeySchema)
	}
	if d.StreamSpecification == nil || !aws.ToBool(d.StreamSpecification.StreamEnabled) || d.StreamSpecification.StreamViewType != types.StreamViewTypeNewImage || d.LatestStreamArn == nil {
		t.Fatalf("events table stream = %+v", d.StreamSpecification)
	}
}

func FuzzEventItemRoundTrip(f *testing.F) {
	f.Add("user-1", int64(1), "01J9Z8Y7X6W5V4T3S2R1Q0P9N8", "UserRegistered", 1, int64(1700000000123456789), "corr", "cause", "user-1", []byte(`{"a":1}`))
	f.Add("order-x.y:z", int64(1<<62), "", "T", 3, int64(0), "", "", "", []byte(`"é"`))
	f.Fuzz(func(t *testing.T, stream string, version int64, id, typ string, schema int, at int64, corr, cause, subj string, data []byte) {
		in := store.Event{ID: id, StreamID: stream, Version: version, Type: typ, SchemaVersion: schema,
			RecordedAt: time.Unix(0, at).UTC(), CorrelationID: corr, CausationID: cause, Subject: subj, Data: data}
		it, err := store.EncodeItem(in)
		if err != nil {
			return
		}
		out, err := store.DecodeItem(it)
		if err != nil {
			if strings.Contains(err.Error(), string(data)) && len(data) > 8 {
				t.Fatalf("decode error quotes the payload: %v", err)
			}
			return // rejected as corrupt: fine, as long as it did not panic
		}
		if out.ID != in.ID || out.StreamID != in.StreamID || out.Version != in.Version || out.Type != in.Type ||
			out.SchemaVersion != in.SchemaVersion || !out.RecordedAt.Equal(in.RecordedAt) || out.CorrelationID != in.CorrelationID ||
			out.CausationID != in.CausationID || out.Subject != in.Subject || string(out.Data) != string(in.Data) {
			t.Fatalf("round trip changed the event:\n in %+v\nout %+v", in, out)
		}
	})
}

// lostResponse is what a client sees when a request reached DynamoDB but its response did not
// come back: the SDK's retryer treats it as retryable.
type lostResponse struct{}

func (lostResponse) Error() string        { return "response lost (simulated)" }
func (lostResponse) RetryableError() bool { return true }

// TestSDKRetryAfterLostResponse drops the response of the first write request after DynamoDB has
// applied it; the SDK retries the same request, whose condition now fails on the event it wrote
// itself. The append must succeed once, not report a conflict and not write twice.
func TestSDKRetryAfterLostResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		op     string
		events int
	}{{"one event", "PutItem", 1}, {"several events", "TransactWriteItems", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			var dropped sync.Once
			var drops int
			client := awstest.DynamoDB(t, func(o *dynamodb.Options) {
				o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
					return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("loseFirstResponse",
						func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
							out, md, err := next.HandleFinalize(ctx, in)
							if err == nil && awsmiddleware.GetOperationName(ctx) == tc.op {
								lose := false
								dropped.Do(func() { lose, drops = true, drops+1 })
								if lose {
									return middleware.FinalizeOutput{}, md, lostResponse{}
								}
							}
							return out, md, err
						}), middleware.After)
				})
			})
			s, env := mustStore(t, client, storetest.V1, nil)
			stream := storetest.StreamID("note")
			events := make([]store.Event, tc.events)
			for i := range events {
				events[i] = storetest.Note("once")
			}
			res, err := s.Append(context.Background(), stream, 0, events...)
			if err != nil {
				t.Fatalf("append with a lost response: %v", err)
			}
			if drops != 1 || res.Version != int64(tc.events) {
				t.Fatalf("drops = %d, result version %d; want 1 drop and version %d", drops, res.Version, tc.events)
			}
			got, err := mustOpen(t, awstest.DynamoDB(t), env, storetest.V1, nil).Load(context.Background(), stream, store.Span{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.events || got[0].ID != events[0].ID {
				t.Fatalf("stored %d events, want %d, the ones appended", len(got), tc.events)
			}
		})
	}
}

// TestKnownVersionsFollowARestore: what a store knows of streams it has read or written (which
// saves the head check before an append) stops being true when the events table is restored in
// place to an earlier point. The store must notice, from a load to the end of the stream that
// shows it shorter, or from the table not being there during the restore, and never append past
// the restored end.
func TestKnownVersionsFollowARestore(t *testing.T) {
	ctx := context.Background()
	client := awstest.DynamoDB(t)
	restoreTo3 := func(t *testing.T, env template.Env, stream string) {
		t.Helper()
		for _, v := range []string{"4", "5"} {
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(env.Refs["EventsTable"]),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: stream}, "v": &types.AttributeValueMemberN{Value: v}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	five := func(t *testing.T, s *store.DynamoDB, stream string) {
		t.Helper()
		for v := int64(0); v < 5; v++ {
			if _, err := s.Append(ctx, stream, v, storetest.Note("n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantConflictAt := func(t *testing.T, s *store.DynamoDB, stream string, expected, actual int64) {
		t.Helper()
		_, err := s.Append(ctx, stream, expected, storetest.Note("late"))
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Actual != actual {
			t.Fatalf("append at %d on a stream restored to %d: %v; want a conflict at %d", expected, actual, err, actual)
		}
		if got, err := s.Load(ctx, stream, store.Span{}); err != nil || len(got) != int(actual) {
			t.Fatalf("the stream after the refused append: %d events, %v", len(got), err)
		}
	}
	for _, tc := range []struct {
		name string
		from int64 // where the load after the restore starts
	}{{"a whole load", 0}, {"a load from the known head", 5}, {"a load from past the restored head", 4}} {
		t.Run("after "+tc.name, func(t *testing.T) {
			s, env := mustStore(t, client, storetest.V1, nil)
			stream := storetest.StreamID("note")
			five(t, s, stream)
			restoreTo3(t, env, stream)
			if _, err := s.Load(ctx, stream, store.Span{From: tc.from}); err != nil {
				t.Fatal(err)
			}
			wantConflictAt(t, s, stream, 5, 3)
		})
	}
	t.Run("after the table was missing", func(t *testing.T) {
		s, env := mustStore(t, client, storetest.V1, nil)
		stream := storetest.StreamID("note")
		five(t, s, stream)
		out, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(env.Refs["EventsTable"]), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :s AND v <= :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: stream}, ":v": &types.AttributeValueMemberN{Value: "3"}}})
		if err != nil {
			t.Fatal(err)
		}
		// The in-place restore: the table is deleted, and comes back under its name holding the
		// stream up to version 3. Meanwhile the store's requests find no table.
		tables, err := awstest.MustTemplate(t).Tables(env)
		if err != nil {
			t.Fatal(err)
		}
		var def []template.Table
		for _, tb := range tables {
			if tb.LogicalID == "EventsTable" {
				def = append(def, tb)
			}
		}
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(env.Refs["EventsTable"])}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, storetest.StreamID("other"), 0, storetest.Note("x")); err == nil {
			t.Fatal("append to a deleted table succeeded")
		}
		if _, err := localaws.CreateTables(ctx, client, def); err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env.Refs["EventsTable"]), Item: it}); err != nil {
				t.Fatal(err)
			}
		}
		wantConflictAt(t, s, stream, 5, 3)
	})
}

// conflicting cancels the first n TransactWriteItems calls as DynamoDB does when another
// transaction writes one of their items at the same moment (TransactionConflict), before they
// reach DynamoDB Local, which never does it itself.
func conflicting(n int) (func(*dynamodb.Options), *atomic.Int64) {
	var calls atomic.Int64
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("transactionConflict",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					tw, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput)
					if !ok || calls.Add(1) > int64(n) {
						return next.HandleInitialize(ctx, in)
					}
					reasons := make([]types.CancellationReason, len(tw.TransactItems))
					for i := range reasons {
						reasons[i].Code = aws.String("None")
					}
					reasons[len(reasons)-1].Code = aws.String("TransactionConflict")
					return middleware.InitializeOutput{}, middleware.Metadata{}, &types.TransactionCanceledException{
						Message: aws.String("Transaction cancelled (simulated)"), CancellationReasons: reasons}
				}), middleware.Before)
		})
	}, &calls
}

// TestTransactionConflictsAreRetried: a transaction canceled only because it raced another
// wrote nothing and is sent again; past the bound, the cancellation is returned and nothing was
// written.
func TestTransactionConflictsAreRetried(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		conflicts int
		ok        bool
	}{{"two conflicts", 2, true}, {"conflicts past the bound", 100, false}} {
		t.Run(tc.name, func(t *testing.T) {
			opt, calls := conflicting(tc.conflicts)
			s, env := mustStore(t, awstest.DynamoDB(t, opt), storetest.V1, nil)
			stream := storetest.StreamID("note")
			res, err := s.Append(ctx, stream, 0, storetest.Note("a"), storetest.Note("b"))
			got, lerr := mustOpen(t, awstest.DynamoDB(t), env, storetest.V1, nil).Load(ctx, stream, store.Span{})
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.ok && (err != nil || res.Version != 2 || len(got) != 2 || calls.Load() != 3) {
				t.Fatalf("append after 2 conflicts = %+v, %v after %d calls; %d events stored; want success on the third call", res, err, calls.Load(), len(got))
			}
			var canceled *types.TransactionCanceledException
			if !tc.ok && (!errors.As(err, &canceled) || len(got) != 0 || calls.Load() != 5) {
				t.Fatalf("append under endless conflicts = %v after %d calls, %d events stored; want the cancellation after 5 calls, nothing written", err, calls.Load(), len(got))
			}
		})
	}
}

// TestClaimsWithoutClaimsTable: an append with claims to a store configured without a claims
// table is refused as a configuration error (ErrNoClaimsTable), not as invalid input, and writes
// nothing.
func TestClaimsWithoutClaimsTable(t *testing.T) {
	ctx := context.Background()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	s, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], Registry: storetest.V1})
	if err != nil {
		t.Fatal(err)
	}
	stream := storetest.StreamID("note")
	_, err = s.AppendStreams(ctx, store.StreamAppend{StreamID: stream, Events: []store.Event{storetest.Note("a")}, Claims: []store.Claim{{Key: "k"}}})
	if !errors.Is(err, store.ErrNoClaimsTable) || errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("append with claims and no claims table: %v, want ErrNoClaimsTable and not ErrInvalidEvent", err)
	}
	if got, err := s.Load(ctx, stream, store.Span{}); err != nil || len(got) != 0 {
		t.Fatalf("after the refused append: %d events, %v; want none", len(got), err)
	}
}
