package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

// BenchmarkAppendVsRawPutItem interleaves, on the same DynamoDB Local, a raw conditional PutItem
// of an event-sized item and store.Append of one event, and reports each one's mean latency and
// their ratio (raw time / store time: 1.0 means the store adds nothing; the target is >= 0.9).
func BenchmarkAppendVsRawPutItem(b *testing.B) {
	client := awstest.DynamoDB(b)
	s, env := mustStore(b, client, storetest.V1, nil)
	table := aws.String(env.Refs["EventsTable"])
	ctx := context.Background()
	ids := store.NewIDs(nil)
	rawStream, stream := storetest.StreamID("raw"), storetest.StreamID("note")
	cond := aws.String("attribute_not_exists(pk)")
	var raw, ours time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := storetest.Note("benchmark payload")
		item := map[string]types.AttributeValue{
			"pk":     &types.AttributeValueMemberS{Value: rawStream},
			"v":      &types.AttributeValueMemberN{Value: fmt.Sprint(i + 1)},
			"id":     &types.AttributeValueMemberS{Value: ids.New()},
			"type":   &types.AttributeValueMemberS{Value: storetest.Noted},
			"schema": &types.AttributeValueMemberN{Value: "1"},
			"at":     &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)},
			"corr":   &types.AttributeValueMemberS{Value: e.CorrelationID},
			"cause":  &types.AttributeValueMemberS{Value: e.CausationID},
			"data":   &types.AttributeValueMemberS{Value: string(e.Data)},
		}
		t0 := time.Now()
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item, ConditionExpression: cond}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.Append(ctx, stream, int64(i), e); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		raw += t1.Sub(t0)
		ours += t2.Sub(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/put")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "store-ns/append")
	b.ReportMetric(float64(raw)/float64(ours), "raw/store")
}

// BenchmarkLoadLongStreamWithSnapshot interleaves loading (store.LoadHistory) a 1,000-event stream
// whose snapshot is at version 990 and a 10-event stream without one, and reports their ratio
// (long / short; the target is <= 2). Loading the long stream without its snapshot is reported for
// scale.
func BenchmarkLoadLongStreamWithSnapshot(b *testing.B) {
	client := awstest.DynamoDB(b)
	s, _ := mustStore(b, client, storetest.V1, nil)
	ctx := context.Background()
	long, short := storetest.StreamID("long"), storetest.StreamID("short")
	var at990 string
	for v := int64(0); v < 1000; v += 50 {
		batch := make([]store.Event, 50)
		for i := range batch {
			batch[i] = storetest.Note("event")
			if v+int64(i)+1 == 990 {
				at990 = batch[i].ID
			}
		}
		if _, err := s.Append(ctx, long, v, batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, store.Snapshot{StreamID: long, Version: 990, EventID: at990, SchemaVersion: 1, Data: []byte(`{"count":990}`)}); err != nil {
		b.Fatal(err)
	}
	for v := int64(0); v < 10; v++ {
		if _, err := s.Append(ctx, short, v, storetest.Note("event")); err != nil {
			b.Fatal(err)
		}
	}
	load := func(stream string, schema int, want int64) time.Duration {
		t0 := time.Now()
		h, err := store.LoadHistory(ctx, s, stream, schema)
		if err != nil {
			b.Fatal(err)
		}
		if h.Version() != want {
			b.Fatalf("%s loaded to version %d, want %d", stream, h.Version(), want)
		}
		return time.Since(t0)
	}
	var tLong, tShort, tFull time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tLong += load(long, 1, 1000)
		tShort += load(short, 1, 10)
		if i%10 == 0 {
			tFull += load(long, 99, 1000) // no snapshot of schema 99: all 1,000 events
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tLong.Nanoseconds())/n, "long+snapshot-ns/load")
	b.ReportMetric(float64(tShort.Nanoseconds())/n, "short-ns/load")
	b.ReportMetric(float64(tFull.Nanoseconds())/float64((b.N+9)/10), "long-no-snapshot-ns/load")
	b.ReportMetric(float64(tLong)/float64(tShort), "long/short")
}
