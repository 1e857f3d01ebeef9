package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var (
	reg = store.MustRegistry(store.EventType{Name: "Noted", Schema: 1})
	ids = store.NewIDs(nil)
)

// record is the stream record of a new event at stream and version.
func record(t *testing.T, stream string, version int64, seq int) events.DynamoDBEventRecord {
	t.Helper()
	rec, err := ddbstream.Record(store.Event{ID: ids.New(), StreamID: stream, Version: version, Type: "Noted", SchemaVersion: 1,
		RecordedAt: time.Now(), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, version))}, fmt.Sprintf("%021d", seq))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// scripted applies events, failing those it is told to.
type scripted struct {
	mu      sync.Mutex
	fail    map[string]error // "stream@version" -> error
	applied []string
}

func (s *scripted) Apply(_ context.Context, e store.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s@%d", e.StreamID, e.Version)
	if err := s.fail[key]; err != nil {
		return err
	}
	s.applied = append(s.applied, key)
	return nil
}

func parking(t *testing.T) (*consumer.ParkingTable, *dynamodb.Client, string) {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	return consumer.NewParkingTable(client, env.Refs["ParkingTable"]), client, env.Refs["ParkingTable"]
}

func failures(resp events.DynamoDBEventResponse) string {
	var s []string
	for _, f := range resp.BatchItemFailures {
		s = append(s, strings.TrimLeft(f.ItemIdentifier, "0"))
	}
	return strings.Join(s, ",")
}

func TestFailFastPerStreamAndParking(t *testing.T) {
	park, client, table := parking(t)
	h := &scripted{fail: map[string]error{
		"note-a@2": errors.New("throttled"),                           // transient: retried
		"note-b@1": fmt.Errorf("bad payload: %w", consumer.ErrPoison), // poison: parked
	}}
	var logs, emf bytes.Buffer
	p, err := consumer.New(consumer.Config{Name: "test", Registry: reg, Handler: h, Parking: park,
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New(&emf).With(metrics.DimStack, "test-stack"), Unsealer: consumer.NoUnsealer})
	if err != nil {
		t.Fatal(err)
	}
	corrupt := record(t, "note-c", 1, 7)
	delete(corrupt.Change.NewImage, "type")
	unknown := record(t, "note-d", 1, 8)
	unknown.Change.NewImage["type"] = events.NewStringAttribute("Unheard")
	modify := record(t, "note-e", 1, 9)
	modify.EventName = "MODIFY"
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, "note-a", 1, 1), record(t, "note-b", 1, 2), record(t, "note-a", 2, 3),
		record(t, "note-b", 2, 4), record(t, "note-a", 3, 5), record(t, "note-f", 1, 6),
		corrupt, unknown, modify, record(t, "note-c", 2, 10),
	}}
	resp, err := p.Handle(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); got != "3,5" {
		t.Fatalf("batch item failures %q, want note-a's records from its failed version on (3,5)", got)
	}
	// note-c@2 is applied although note-c@1's record did not decode: the record, not the
	// stream, was bad; the handler fills what it missed from the store.
	if got := strings.Join(h.applied, " "); got != "note-a@1 note-f@1 note-c@2" {
		t.Fatalf("applied %q", got)
	}
	out, err := client.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression: aws.String("pk = :c"), ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	var parked []string
	for _, it := range out.Items {
		parked = append(parked, it["sk"].(*types.AttributeValueMemberS).Value)
		if rec := it["record"].(*types.AttributeValueMemberS).Value; !strings.Contains(rec, `"NewImage"`) {
			t.Fatalf("parked item lacks the record: %s", rec)
		}
	}
	want := "note-b#0000000000000000001 note-b#0000000000000000002 note-c#0000000000000000001 note-d#0000000000000000001"
	if strings.Join(parked, " ") != want {
		t.Fatalf("parked %v, want b@1 (poison), b@2 (behind it), c@1 (corrupt), d@1 (unknown type)", parked)
	}
	if strings.Contains(logs.String(), `"n":`) {
		t.Fatalf("payload in the logs:\n%s", logs.String())
	}
	// Once fixed, parked events are replayed from their records and removed; the corrupt one
	// still cannot be, and stays.
	h.mu.Lock()
	h.fail = nil
	h.mu.Unlock()
	list, err := park.List(context.Background(), "test")
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %d parked, %v", len(list), err)
	}
	for _, pk := range list {
		if err := p.Replay(context.Background(), pk); err != nil {
			if pk.StreamID == "note-b" {
				t.Fatalf("replay %s at %d: %v", pk.StreamID, pk.Version, err)
			}
			continue
		}
		if err := park.Remove(context.Background(), pk); err != nil {
			t.Fatal(err)
		}
	}
	if list, err = park.List(context.Background(), "test"); err != nil || len(list) != 2 || list[0].StreamID != "note-c" {
		t.Fatalf("after replay: %+v, %v; want c and d left", list, err)
	}
	var m struct{ EventsApplied, Failures, Parked, LagMs float64 }
	if err := json.Unmarshal(emf.Bytes(), &m); err != nil || m.EventsApplied != 3 || m.Failures != 2 || m.Parked != 4 || m.LagMs < 0 {
		t.Fatalf("metrics line %s (%v)", emf.String(), err)
	}
	// What it emits is what it declares (template.yaml's alarms are held to the declaration).
	points, err := metrics.Decode(emf.Bytes())
	if err != nil || len(points) != 4 {
		t.Fatalf("metrics %s: %d points, %v", emf.String(), len(points), err)
	}
	if err := metrics.Check(points, consumer.Metrics()); err != nil {
		t.Error(err)
	}
}

func TestNewReportsEveryMissingField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  consumer.Config
		want []string
	}{
		{"nothing", consumer.Config{}, []string{"Name", "Registry", "Handler", "Parking", "Log", "Unsealer"}},
		{"no unsealer", consumer.Config{Name: "n", Registry: reg, Handler: &scripted{}, Parking: noPark{}, Log: slog.New(slog.DiscardHandler)},
			[]string{"Unsealer"}},
		{"complete, no metrics", consumer.Config{Name: "n", Registry: reg, Handler: &scripted{}, Parking: noPark{}, Log: slog.New(slog.DiscardHandler),
			Unsealer: consumer.NoUnsealer}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := consumer.New(tc.cfg)
			if (err == nil) != (len(tc.want) == 0) || (err == nil && p == nil) {
				t.Fatalf("New = %v, %v; want problems with %v", p, err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w+" is required") {
					t.Errorf("New: %v, want %s named", err, w)
				}
			}
		})
	}
}

type noPark struct{}

func (noPark) Park(context.Context, consumer.Parked) error { return nil }
