package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/erasure"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// TestEraseUserEndToEnd: a user registers and orders with a shipping address; erasing them
// leaves no readable personal data in the event store or the read models, while the history
// still loads; the erasure is idempotent, later commands on them are refused, and their email
// address is free again.
func TestEraseUserEndToEnd(t *testing.T) {
	hs := newHarness(t)
	ctx := context.Background()
	reg := fixture(t, "register-user.json") // ann@example.com, "Ann Example"
	user := hs.do(t, reg)
	wantStatus(t, user, http.StatusCreated, "")
	order := fixture(t, "place-order-base64.json")
	body, _ := json.Marshal(map[string]any{"paymentAccountId": "acc-1", "currency": "EUR",
		"lines":           []map[string]any{{"sku": "SKU-1", "quantity": 1, "unitPrice": 100}},
		"shippingAddress": map[string]string{"name": "Ann Example", "line1": "1 Main Street", "city": "Berlin", "postalCode": "10115", "country": "DE"}})
	order.Body, order.IsBase64Encoded = string(body), false
	delete(order.Headers, "idempotency-key")
	placed := hs.do(t, order)
	wantStatus(t, placed, http.StatusAccepted, "")

	personal := []string{"ann@example.com", "Ann Example", "1 Main Street"}
	raw := func() string {
		out, err := hs.client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(hs.env.Refs["EventsTable"])})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out.Items)
		return string(b)
	}
	plainFree := func(when string) {
		t.Helper()
		table := raw()
		for _, p := range personal {
			if strings.Contains(table, p) {
				t.Fatalf("%s: the events table holds %q in plain text", when, p)
			}
		}
	}
	plainFree("after the order")
	// The read models, projected through the encryption layer, show the data while it exists.
	proj := projection.New(hs.client, hs.env.Refs["ReadModelsTable"], hs.store)
	project := func(stream string) {
		events, err := hs.store.Load(ctx, stream, store.Span{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := proj.Apply(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An idempotent request of the user's leaves a record; the order is projected too.
	change := request(t, "PUT /users/{id}/email", `{"email":"ann.lee@example.com"}`, map[string]string{"id": user.ID}, "idempotency-key", "change-1")
	wantStatus(t, hs.do(t, change), http.StatusOK, "")
	personal = append(personal, "ann.lee@example.com")
	plainFree("after the email change")
	project("user-" + user.ID)
	project("order-" + placed.ID)
	// The audit reads the raw tables through a keyring without a cache, as any other process.
	tables := erasure.Tables{Events: hs.env.Refs["EventsTable"], Snapshots: hs.env.Refs["SnapshotsTable"], ReadModels: hs.env.Refs["ReadModelsTable"],
		Idempotency: hs.env.Refs["IdempotencyTable"], Parking: hs.env.Refs["ParkingTable"], Keys: hs.env.Refs["KeysTable"]}
	audit := func() []erasure.Finding {
		keys := crypto.NewKeyring(awstest.MustKeys(t, hs.env), hs.client, crypto.KeyringConfig{Table: tables.Keys, KeyID: hs.env.Refs["DataKeyAlias"], MaxKeys: 0, TTL: time.Minute})
		findings, err := erasure.Audit(ctx, hs.client, keys, tables, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return findings
	}
	if before := audit(); len(before) < 3 {
		t.Fatalf("audit before erasure found %v; want the key, the open event fields and the read model", before)
	}

	erase := request(t, "DELETE /users/{id}", "", map[string]string{"id": user.ID})
	erased := hs.do(t, erase)
	wantStatus(t, erased, http.StatusOK, "")
	if again := hs.do(t, erase); again.StatusCode != http.StatusOK || again.Version != erased.Version {
		t.Fatalf("second erasure = %+v, want the same version %d", again, erased.Version)
	}
	project("user-" + user.ID)

	if after := audit(); len(after) != 0 {
		t.Fatalf("audit after erasure: %v", after)
	}
	// The history keeps its shape; the personal fields read as null, marked shredded.
	events, err := hs.store.Load(ctx, "user-"+user.ID, store.Span{})
	if err != nil || len(events) != 3 || !events[0].Shredded || !events[1].Shredded || events[2].Type != domain.TypeSubjectErased {
		t.Fatalf("user history after erasure: %+v, %v", events, err)
	}
	if strings.Contains(string(events[0].Data), "@") {
		t.Fatalf("erased event still reads %s", events[0].Data)
	}
	orders, err := hs.store.Load(ctx, "order-"+placed.ID, store.Span{})
	if err != nil || len(orders) != 1 || !orders[0].Shredded {
		t.Fatalf("order history after erasure: %+v, %v", orders, err)
	}
	var o domain.OrderPlaced
	if err := json.Unmarshal(orders[0].Data, &o); err != nil || o.Total != 100 || o.ShippingAddress.City != "" {
		t.Fatalf("the order keeps its facts, not the address: %+v, %v", o, err)
	}
	item, err := hs.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(hs.env.Refs["ReadModelsTable"]),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "user-" + user.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := item.Item["email"]; ok || item.Item["userStatus"].(*ddbtypes.AttributeValueMemberS).Value != "erased" {
		t.Fatalf("read model after erasure: %v", item.Item)
	}
	// Queries show the erasure as such, not as empty data: now, and as of before it.
	q := query.New(query.Config{API: hs.client, Table: hs.env.Refs["ReadModelsTable"], Events: hs.store})
	if u, err := q.User(ctx, auth.User(user.ID), user.ID, 0); err != nil || !u.Redacted || u.Email != "" || u.Status != "erased" {
		t.Fatalf("user read model after erasure: %+v, %v", u, err)
	}
	if u, err := q.UserAsOf(ctx, auth.Operator(testOperator), user.ID, time.Now().Add(-time.Millisecond)); err != nil || !u.Redacted || u.Email != "" || u.Name != "" {
		t.Fatalf("user as of now after erasure: %+v, %v", u, err)
	}
	// Commands on the erased user are refused; orders for them cannot carry their data.
	wantStatus(t, hs.do(t, request(t, "PUT /users/{id}/email", `{"email":"x@example.com"}`, map[string]string{"id": user.ID})),
		http.StatusUnprocessableEntity, httpapi.TypeRulePrefix+"user-erased")
	wantStatus(t, hs.do(t, order), http.StatusUnprocessableEntity, httpapi.TypeRulePrefix+"subject-erased")
	// The subject stays erased: it cannot register again. The email address is free again, for
	// another user.
	wantStatus(t, hs.do(t, fixture(t, "register-user.json")), http.StatusConflict, httpapi.TypeExists)
	wantStatus(t, hs.do(t, as(fixture(t, "register-user.json"), "auth0|5f7c8ec7c33c6c004bbafe82")), http.StatusCreated, "")
}
