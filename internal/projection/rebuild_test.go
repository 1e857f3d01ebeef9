package projection_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
)

func TestRebuildThenVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	var streams []string
	for a := 0; a < 12; a++ {
		acct := ids.New()
		stream := "account-" + acct
		streams = append(streams, stream)
		history := []domain.Event{domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}}
		for i := 0; i < a+1; i++ {
			history = append(history, domain.MoneyDeposited{AccountID: acct, Amount: int64(10 * (i + 1))})
		}
		for i, e := range history {
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if a > 0 { // the live projector has not seen the first account yet
				if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The rebuilt table: the template's read-model table under another stack name.
	target := awstest.MustTables(t, f.client).Refs["ReadModelsTable"]
	var mu sync.Mutex
	var reports int
	got, err := projection.Rebuild(ctx, f.client, f.store.EventsTable(), target, reg, f.store, 4, func(projection.Progress) { mu.Lock(); reports++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if got.Applied != got.Scanned || got.Applied < 12+78 || reports == 0 {
		t.Fatalf("progress %+v after %d reports", got, reports)
	}
	c, err := projection.Verify(ctx, f.client, f.table, target)
	if err != nil {
		t.Fatal(err)
	}
	if c.Equal != 11 || c.Behind != 1 || c.Ahead != 0 || len(c.Different) != 0 {
		t.Fatalf("comparison %+v, want 11 equal and the unprojected account behind", c)
	}
	// An account opened after the rebuild's scan is only live; running the rebuild again into the
	// same table (the catch-up after a cutover) applies it, and only it.
	late := ids.New()
	res, err := f.store.Append(ctx, "account-"+late, 0, event(t, domain.AccountOpened{AccountID: late, OwnerID: "o", Currency: "EUR"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
		t.Fatal(err)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || c.Missing != 1 {
		t.Fatalf("after a late account: %+v, %v; want it counted as only live", c, err)
	}
	if _, err := projection.Rebuild(ctx, f.client, f.store.EventsTable(), target, reg, f.store, 4, nil); err != nil {
		t.Fatal(err)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || c.Missing != 0 || c.Equal != 12 || len(c.Different) != 0 {
		t.Fatalf("after the catch-up: %+v, %v", c, err)
	}
	// A live item at the same version with other content is a difference.
	_, err = f.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(f.table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: streams[5]}},
		UpdateExpression:          aws.String("SET balance = :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": &types.AttributeValueMemberN{Value: "-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || fmt.Sprint(c.Different) != fmt.Sprint([]string{streams[5]}) {
		t.Fatalf("after corrupting %s: %+v, %v", streams[5], c, err)
	}
}
