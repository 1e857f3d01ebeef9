package projection_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// BenchmarkProjectorVsRawUpdateItem interleaves, on the same DynamoDB Local, projecting one
// deposit (decode the event, build the update, conditional UpdateItem on the version) and a
// hand-written conditional UpdateItem making the same change, and reports raw time / projector
// time (target >= 0.8) and the projector's events per second.
func BenchmarkProjectorVsRawUpdateItem(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	acct := ids.New()
	stream := "account-" + acct
	var events []store.Event
	for i := 0; i <= b.N; i++ {
		var e domain.Event = domain.MoneyDeposited{AccountID: acct, Amount: 1}
		if i == 0 {
			e = domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}
		}
		res, err := f.store.Append(ctx, stream, int64(i), event(b, e))
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, res.Events...)
	}
	if err := f.proj.Apply(ctx, events[0]); err != nil {
		b.Fatal(err)
	}
	rawKey := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "raw-" + acct}}
	var tRaw, tProj time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		cond := "v = :prev"
		values := map[string]types.AttributeValue{
			":a": &types.AttributeValueMemberN{Value: "1"}, ":zero": &types.AttributeValueMemberN{Value: "0"},
			":v": &types.AttributeValueMemberN{Value: strconv.Itoa(i)}, ":t": &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)},
			":prev": &types.AttributeValueMemberN{Value: strconv.Itoa(i - 1)},
		}
		if i == 1 {
			cond = "attribute_not_exists(pk)"
			delete(values, ":prev")
		}
		t0 := time.Now()
		if _, err := f.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(f.table), Key: rawKey, ConditionExpression: aws.String(cond),
			UpdateExpression:          aws.String("SET balance = if_not_exists(balance, :zero) + :a, v = :v, updatedAt = :t"),
			ExpressionAttributeValues: values,
		}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := f.proj.Apply(ctx, events[i]); err != nil {
			b.Fatal(err)
		}
		tProj += time.Since(t1)
		tRaw += t1.Sub(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(tRaw)/float64(tProj), "raw/projector")
	b.ReportMetric(float64(b.N)/tProj.Seconds(), "events/s")
	if got := f.item(b, stream)["balance"]; got != float64(b.N) {
		b.Fatalf("balance %v after %d deposits", got, b.N)
	}
}

// BenchmarkRebuild rebuilds the read models of 100 accounts of 20 events each (2,000 events)
// into a fresh table per iteration, and reports the rebuild rate.
func BenchmarkRebuild(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	reg, _ := command.Registry()
	for a := 0; a < 100; a++ {
		acct := ids.New()
		batch := []store.Event{event(b, domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})}
		for i := 1; i < 20; i++ {
			batch = append(batch, event(b, domain.MoneyDeposited{AccountID: acct, Amount: 1}))
		}
		if _, err := f.store.Append(ctx, "account-"+acct, 0, batch...); err != nil {
			b.Fatal(err)
		}
	}
	var events int64
	var took time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		target := awstest.MustTables(b, f.client).Refs["ReadModelsTable"]
		b.StartTimer()
		t0 := time.Now()
		p, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 4})
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
		events += p.Applied
	}
	b.ReportMetric(float64(events)/took.Seconds(), "events/s")
}
