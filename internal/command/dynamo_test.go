package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// dynamo is the write side as functions/commands wires it, on fresh tables in DynamoDB Local
// and keys in the KMS emulator.
type dynamo struct {
	client *dynamodb.Client
	env    template.Env
	raw    *store.DynamoDB
	keys   *crypto.Keyring
	store  *crypto.SealingStore
}

func mustDynamo(t *testing.T) dynamo {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	return dynamoOn(t, client, env, mustRegistry(t))
}

// dynamoOn wires stores with registry reg on existing tables.
func dynamoOn(t *testing.T, client *dynamodb.Client, env template.Env, reg *store.Registry) dynamo {
	t.Helper()
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable: env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(awstest.MustKeys(t, env), client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	return dynamo{client: client, env: env, raw: raw, keys: keys, store: crypto.NewSealingStore(raw, keys, domain.PersonalFields)}
}

// service is a new Service on d's store, as a new Lambda instance would make: nothing cached.
func (d dynamo) service(t *testing.T) *command.Service {
	t.Helper()
	return mustServiceWith(t, command.Config{Store: d.store, EmailKey: testKey, Eraser: d.keys})
}

// types returns the types of the events of stream, in order.
func (d dynamo) types(t *testing.T, stream string) []string {
	t.Helper()
	events, err := d.store.Load(context.Background(), stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

// fold returns the state of an aggregate folded from the whole of its stream.
func fold[S interface{ Evolve(domain.Event) S }](t *testing.T, d dynamo, stream string) S {
	t.Helper()
	events, err := d.store.Load(context.Background(), stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	var s S
	for _, e := range events {
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		s = s.Evolve(de)
	}
	return s
}

// changed fails t unless the command succeeded and appended exactly one event.
func changed(t *testing.T, what string, res command.Result, err error) {
	t.Helper()
	if err != nil || len(res.EventIDs) != 1 {
		t.Fatalf("%s = %+v, %v; want one event", what, res, err)
	}
}

// unchanged fails t unless the command succeeded and appended nothing.
func unchanged(t *testing.T, what string, res command.Result, err error) {
	t.Helper()
	if err != nil || len(res.EventIDs) != 0 {
		t.Fatalf("%s = %+v, %v; want success and no event", what, res, err)
	}
}

// refused fails t unless the command failed with want.
func refused(t *testing.T, what string, res command.Result, err, want error) {
	t.Helper()
	if !errors.Is(err, want) || len(res.EventIDs) != 0 {
		t.Fatalf("%s = %+v, %v; want %v", what, res, err, want)
	}
}

// funded opens an account of owner in EUR holding balance.
func funded(t *testing.T, svc *command.Service, owner string, balance int64) string {
	t.Helper()
	ctx := context.Background()
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, as(owner), domain.OpenAccount{AccountID: acct, OwnerID: owner, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if balance > 0 {
		if _, err := svc.Deposit(ctx, as(owner), acct, domain.Deposit{Amount: balance}); err != nil {
			t.Fatal(err)
		}
	}
	return acct
}

func TestChargeAndRefundByOrder(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	svc := d.service(t)
	customer := ids.New()
	acct := funded(t, svc, customer, 1000)
	charge := func(order string, amount int64) domain.ChargeAccount {
		return domain.ChargeAccount{OrderID: order, CustomerID: customer, Currency: "EUR", Amount: amount}
	}
	o1, o2, o3 := ids.New(), ids.New(), ids.New()

	res, err := svc.ChargeAccount(ctx, meta(), acct, charge(o1, 400))
	changed(t, "charge", res, err)
	res, err = svc.ChargeAccount(ctx, meta(), acct, charge(o1, 400))
	unchanged(t, "the same order charged again", res, err)
	if res.Version != 3 {
		t.Fatalf("a charge that changed nothing reports version %d, want the account's 3", res.Version)
	}
	res, err = svc.RefundAccount(ctx, meta(), acct, o2)
	unchanged(t, "a refund without a charge", res, err)
	res, err = svc.RefundAccount(ctx, meta(), acct, o1)
	changed(t, "refund", res, err)
	res, err = svc.RefundAccount(ctx, meta(), acct, o1)
	unchanged(t, "a refund again", res, err)
	res, err = svc.ChargeAccount(ctx, meta(), acct, charge(o1, 400))
	unchanged(t, "a charge after the refund", res, err)
	res, err = svc.ChargeAccount(ctx, meta(), acct, charge(o3, 0))
	changed(t, "a free order's charge", res, err)

	res, err = svc.ChargeAccount(ctx, meta(), acct, charge(o2, 1001))
	refused(t, "a charge above the balance", res, err, domain.ErrInsufficientFunds)
	res, err = svc.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: o2, CustomerID: ids.New(), Currency: "EUR", Amount: 1})
	refused(t, "a charge for another customer", res, err, domain.ErrAccountNotOwned)
	res, err = svc.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: o2, CustomerID: customer, Currency: "USD", Amount: 1})
	refused(t, "a charge in another currency", res, err, domain.ErrCurrencyMismatch)
	res, err = svc.ChargeAccount(ctx, meta(), acct, charge(o2, -5))
	refused(t, "a negative charge", res, err, domain.ErrInvalid)
	res, err = svc.ChargeAccount(ctx, meta(), ids.New(), charge(o2, 1))
	refused(t, "a charge of an account that does not exist", res, err, command.ErrNotFound)
	res, err = svc.ChargeAccount(ctx, meta(), "no/such", charge(o2, 1))
	refused(t, "a charge of a malformed account ID", res, err, command.ErrNotFound)

	want := []string{domain.TypeAccountOpened, domain.TypeMoneyDeposited, domain.TypeAccountCharged, domain.TypeAccountRefunded, domain.TypeAccountCharged}
	if got := d.types(t, "account-"+acct); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	a := fold[domain.Account](t, d, "account-"+acct)
	if a.Balance != 1000 || a.Charges[o1] != (domain.Charge{Amount: 400, Refunded: 400}) || len(a.Charges) != 2 {
		t.Fatalf("account %+v, want balance 1000, o1 charged and refunded, o3 charged 0", a)
	}
	// A new instance, from the stream (and any snapshot), decides the same.
	res, err = d.service(t).ChargeAccount(ctx, meta(), acct, charge(o1, 400))
	unchanged(t, "a charge after the refund, on a new instance", res, err)
}

// TestConcurrentChargesOfOneOrderChargeOnce: N instances charge one order at once, each under its
// own command ID (as redeliveries of one saga step on several instances would): every one
// succeeds, exactly one appends, and the account is charged once.
func TestConcurrentChargesOfOneOrderChargeOnce(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	customer := ids.New()
	acct := funded(t, d.service(t), customer, 1000)
	order := ids.New()
	const n = 12
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		appends int
		errs    []error
	)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		svc := d.service(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := svc.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: order, CustomerID: customer, Currency: "EUR", Amount: 300})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			appends += len(res.EventIDs)
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) != 0 || appends != 1 {
		t.Fatalf("%d charges appended %d events, errors %v; want one event, no error", n, appends, errs)
	}
	if a := fold[domain.Account](t, d, "account-"+acct); a.Balance != 700 || len(a.Charges) != 1 {
		t.Fatalf("account %+v, want 700 left after one charge", a)
	}
}

// TestConcurrentChargesNeverOverdraw: orders competing for one account's funds at once: as many
// are charged as the balance covers, the others are refused, and the balance never goes below
// zero.
func TestConcurrentChargesNeverOverdraw(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	customer := ids.New()
	acct := funded(t, d.service(t), customer, 1000)
	const n = 8
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		charged, short int
		other          []error
	)
	for i := 0; i < n; i++ {
		svc := d.service(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := svc.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: ids.New(), CustomerID: customer, Currency: "EUR", Amount: 300})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && len(res.EventIDs) == 1:
				charged++
			case errors.Is(err, domain.ErrInsufficientFunds):
				short++
			default:
				other = append(other, fmt.Errorf("%+v, %w", res, err))
			}
		}()
	}
	wg.Wait()
	if charged != 3 || short != n-3 || len(other) != 0 {
		t.Fatalf("%d charged, %d refused, others %v; want 3 charged of %d", charged, short, other, n)
	}
	if a := fold[domain.Account](t, d, "account-"+acct); a.Balance != 100 {
		t.Fatalf("balance %d, want 100", a.Balance)
	}
}

func TestStockByOrder(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	svc := d.service(t)
	sku := "SKU-" + ids.New()
	if _, err := svc.AddStock(ctx, op(), domain.AddStock{SKU: sku, Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	o1, o2, o3 := ids.New(), ids.New(), ids.New()
	reserve := func(order string, q int64) (command.Result, error) {
		return svc.ReserveStock(ctx, meta(), sku, domain.Reserve{OrderID: order, Quantity: q})
	}

	res, err := reserve(o1, 3)
	changed(t, "reserve", res, err)
	res, err = reserve(o1, 3)
	unchanged(t, "reserve again", res, err)
	res, err = svc.CommitStock(ctx, meta(), sku, o1)
	changed(t, "commit", res, err)
	res, err = svc.CommitStock(ctx, meta(), sku, o1)
	unchanged(t, "commit again", res, err)
	res, err = reserve(o1, 3)
	unchanged(t, "reserve after the commit", res, err)
	res, err = svc.ReleaseStock(ctx, meta(), sku, o1)
	unchanged(t, "release after the commit", res, err)

	res, err = reserve(o2, 4)
	changed(t, "reserve a second order", res, err)
	res, err = svc.ReleaseStock(ctx, meta(), sku, o2)
	changed(t, "release", res, err)
	res, err = svc.ReleaseStock(ctx, meta(), sku, o2)
	unchanged(t, "release again", res, err)
	res, err = reserve(o2, 4)
	unchanged(t, "reserve after the release", res, err)
	res, err = svc.CommitStock(ctx, meta(), sku, o2)
	unchanged(t, "commit after the release", res, err)

	res, err = svc.ReleaseStock(ctx, meta(), sku, o3)
	changed(t, "release before the reserve", res, err)
	res, err = reserve(o3, 1)
	unchanged(t, "a reserve landing after its release", res, err)

	res, err = reserve(ids.New(), 8)
	refused(t, "reserve more than is available", res, err, domain.ErrInsufficientStock)
	res, err = svc.ReserveStock(ctx, meta(), "bad sku", domain.Reserve{OrderID: o1, Quantity: 1})
	refused(t, "reserve of a malformed SKU", res, err, domain.ErrInvalid)
	res, err = svc.CommitStock(ctx, meta(), sku, "")
	refused(t, "commit without an order", res, err, domain.ErrInvalid)
	res, err = svc.ReleaseStock(ctx, meta(), "SKU-never-"+ids.New(), o1)
	unchanged(t, "release on an item never stocked", res, err)

	item := fold[domain.Item](t, d, "inventory-"+sku)
	if item.OnHand != 7 || item.Reserved != 0 || len(item.Reservations) != 0 || len(item.Settled) != 3 {
		t.Fatalf("item %+v, want 7 on hand, nothing reserved, three orders settled", item)
	}
}

// TestConcurrentReservesOfOneOrderReserveOnce: one order's reservation asked for by N instances
// at once is made once.
func TestConcurrentReservesOfOneOrderReserveOnce(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	sku := "SKU-" + ids.New()
	if _, err := d.service(t).AddStock(ctx, op(), domain.AddStock{SKU: sku, Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	order := ids.New()
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		appends int
		errs    []error
	)
	for i := 0; i < n; i++ {
		svc := d.service(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := svc.ReserveStock(ctx, meta(), sku, domain.Reserve{OrderID: order, Quantity: 4})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			appends += len(res.EventIDs)
		}()
	}
	wg.Wait()
	if appends != 1 || len(errs) != 0 {
		t.Fatalf("%d reserves appended %d events, errors %v; want one", n, appends, errs)
	}
	if item := fold[domain.Item](t, d, "inventory-"+sku); item.Reserved != 4 {
		t.Fatalf("reserved %d, want 4", item.Reserved)
	}
}

func TestConfirmAndCancelOrders(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	svc := d.service(t)
	acct := funded(t, svc, owner, 0)
	place := func() string {
		t.Helper()
		id := ids.New()
		if _, err := svc.PlaceOrder(ctx, meta(), domain.PlaceOrder{OrderID: id, CustomerID: owner, PaymentAccountID: acct, Currency: "EUR",
			Lines:           []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
			ShippingAddress: domain.Address{Name: "Bo", Line1: "Main St 1", City: "Berlin", PostalCode: "10115", Country: "DE"}}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b := place(), place()
	res, err := svc.ConfirmOrder(ctx, meta(), a)
	changed(t, "confirm", res, err)
	res, err = svc.ConfirmOrder(ctx, meta(), a)
	unchanged(t, "confirm again", res, err)
	res, err = svc.CancelOrder(ctx, meta(), a, "timeout")
	refused(t, "cancel a confirmed order", res, err, domain.ErrOrderState)

	res, err = svc.CancelOrder(ctx, meta(), b, "out-of-stock")
	changed(t, "cancel", res, err)
	res, err = svc.CancelOrder(ctx, meta(), b, "timeout")
	unchanged(t, "cancel again, for another reason", res, err)
	res, err = svc.ConfirmOrder(ctx, meta(), b)
	refused(t, "confirm a cancelled order", res, err, domain.ErrOrderState)
	res, err = svc.CancelOrder(ctx, meta(), place(), "Out of stock")
	refused(t, "cancel for free text", res, err, domain.ErrInvalid)

	res, err = svc.ConfirmOrder(ctx, meta(), ids.New())
	refused(t, "confirm an unknown order", res, err, command.ErrNotFound)
	res, err = svc.CancelOrder(ctx, meta(), ids.New(), "timeout")
	refused(t, "cancel an unknown order", res, err, command.ErrNotFound)

	if o := fold[domain.Order](t, d, "order-"+b); o.Status != domain.OrderStatusCancelled || o.CancelReason != "out-of-stock" || o.ShippingAddress.Name != "Bo" {
		t.Fatalf("order %+v, want cancelled for out-of-stock, its address readable", o)
	}
}

// TestStaleSnapshotsAreIgnored: a snapshot of an account or item taken at snapshot schema 1,
// before their states held charges and settled orders, is not trusted: the aggregate folds
// from its events.
func TestStaleSnapshotsAreIgnored(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	svc := d.service(t)
	sku := "SKU-" + ids.New()
	added, err := svc.AddStock(ctx, op(), domain.AddStock{SKU: sku, Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	acct := funded(t, svc, "owner-1", 0)
	for stream, state := range map[string]string{
		"inventory-" + sku: `{"SKU":"` + sku + `","OnHand":1000}`,
		"account-" + acct:  `{"ID":"` + acct + `","OwnerID":"owner-1","Currency":"EUR","Open":true,"Balance":1000}`,
	} {
		events, err := d.store.Load(ctx, stream, store.Span{})
		if err != nil {
			t.Fatal(err)
		}
		last := events[len(events)-1]
		if err := d.store.SaveSnapshot(ctx, store.Snapshot{StreamID: stream, Version: last.Version, EventID: last.ID, SchemaVersion: 1, Data: json.RawMessage(state)}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := d.service(t)
	res, err := fresh.ReserveStock(ctx, meta(), sku, domain.Reserve{OrderID: ids.New(), Quantity: 500})
	refused(t, "a reserve that only a stale snapshot's stock covers", res, err, domain.ErrInsufficientStock)
	res, err = fresh.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: ids.New(), CustomerID: "owner-1", Currency: "EUR", Amount: 500})
	refused(t, "a charge that only a stale snapshot's balance covers", res, err, domain.ErrInsufficientFunds)
	if added.Version != 1 {
		t.Fatalf("stock added at version %d", added.Version)
	}
}

// v1Registry is the registry of a program from before OrderPlaced schema 2.
func v1Registry(t *testing.T) *store.Registry {
	t.Helper()
	ts := domain.Types()
	for i, et := range ts {
		if et.Name == domain.TypeOrderPlaced {
			ts[i] = domain.TypeOf[domain.OrderPlaced](1, nil)
		}
	}
	reg, err := command.RegistryOf(ts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// v1Placed is an OrderPlaced payload as schema 1 wrote it: no paymentAccountId.
func v1Placed(order, customer string) json.RawMessage {
	return json.RawMessage(`{"orderId":"` + order + `","customerId":"` + customer + `","currency":"EUR",` +
		`"lines":[{"sku":"SKU-1","quantity":2,"unitPrice":150}],"total":300,` +
		`"shippingAddress":{"name":"Bo Berg","line1":"Main St 1","city":"Berlin","postalCode":"10115","country":"DE"}}`)
}

// TestStoredV1OrdersLoadAsV2: an OrderPlaced item stored at schema 1, exactly as the store wrote
// it, loads through the store upcast to schema 2 with an empty paymentAccountId and every other
// field as stored; the command layer folds it into an order with no payment account, which can
// then be cancelled.
func TestStoredV1OrdersLoadAsV2(t *testing.T) {
	d := mustDynamo(t)
	ctx := context.Background()
	order, customer := ids.New(), ids.New()
	stream := "order-" + order
	stored := struct {
		Stream  string `dynamodbav:"pk"`
		Version int64  `dynamodbav:"v"`
		ID      string `dynamodbav:"id"`
		Type    string `dynamodbav:"type"`
		Schema  int    `dynamodbav:"schema"`
		At      string `dynamodbav:"at"`
		Corr    string `dynamodbav:"corr"`
		Cause   string `dynamodbav:"cause"`
		Data    string `dynamodbav:"data"`
	}{stream, 1, ids.New(), domain.TypeOrderPlaced, 1, store.FormatTime(time.Now()), "corr-1", "cmd-1", string(v1Placed(order, customer))}
	av, err := attributevalue.MarshalMap(stored)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.env.Refs["EventsTable"]), Item: av}); err != nil {
		t.Fatal(err)
	}
	events, err := d.raw.Load(ctx, stream, store.Span{})
	if err != nil || len(events) != 1 {
		t.Fatalf("load = %v, %v", events, err)
	}
	e := events[0]
	if e.SchemaVersion != 2 || e.ID != stored.ID || e.CorrelationID != "corr-1" {
		t.Fatalf("loaded %+v, want it at schema 2, its envelope as stored", e)
	}
	thenUpcast(t, v1Placed(order, customer), e.Data)

	o := fold[domain.Order](t, d, stream)
	if o.Status != domain.OrderStatusPlaced || o.PaymentAccountID != "" || o.Total != 300 || o.CustomerID != customer || o.ShippingAddress.City != "Berlin" {
		t.Fatalf("order %+v, want it placed, with no payment account", o)
	}
	res, err := d.service(t).CancelOrder(ctx, meta(), order, "no-payment-account")
	changed(t, "cancel the v1 order", res, err)
	if res.Version != 2 {
		t.Fatalf("cancelled at version %d, want 2", res.Version)
	}
}

// TestStoredSealedV1OrdersLoadAsV2: an order placed by a program of schema 1 through the sealing
// store (its shipping address sealed under the customer's key) loads, through the sealing store
// of this program, upcast to schema 2 with its address opened.
func TestStoredSealedV1OrdersLoadAsV2(t *testing.T) {
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	old := dynamoOn(t, client, env, v1Registry(t))
	ctx := context.Background()
	order, customer := ids.New(), ids.New()
	stream := "order-" + order
	if _, err := old.store.AppendStreams(ctx, store.StreamAppend{StreamID: stream, Events: []store.Event{{
		ID: ids.New(), Type: domain.TypeOrderPlaced, Subject: customer, Data: v1Placed(order, customer)}}}); err != nil {
		t.Fatal(err)
	}
	// As stored: schema 1, the address sealed.
	var sealed struct {
		Schema int    `dynamodbav:"schema"`
		Data   string `dynamodbav:"data"`
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.Refs["EventsTable"]), Key: map[string]types.AttributeValue{
		store.AttrStream: &types.AttributeValueMemberS{Value: stream}, store.AttrVersion: &types.AttributeValueMemberN{Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := attributevalue.UnmarshalMap(out.Item, &sealed); err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(sealed.Data), &obj); err != nil || sealed.Schema != 1 || obj["shippingAddress"][0] != '"' {
		t.Fatalf("stored item at schema %d, data %s (%v): want schema 1, the address sealed", sealed.Schema, sealed.Data, err)
	}

	d := dynamoOn(t, client, env, mustRegistry(t))
	raw, err := d.raw.Load(ctx, stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	// Upcast, the sealed address untouched.
	var upcast map[string]json.RawMessage
	if err := json.Unmarshal(raw[0].Data, &upcast); err != nil || raw[0].SchemaVersion != 2 ||
		string(upcast["shippingAddress"]) != string(obj["shippingAddress"]) || string(upcast["paymentAccountId"]) != `""` {
		t.Fatalf("raw load: schema %d, %s (%v); want schema 2 and the sealed address as stored", raw[0].SchemaVersion, raw[0].Data, err)
	}
	opened, err := d.store.Load(ctx, stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	thenUpcast(t, v1Placed(order, customer), opened[0].Data)
	if o := fold[domain.Order](t, d, stream); o.PaymentAccountID != "" || o.ShippingAddress.Name != "Bo Berg" {
		t.Fatalf("order %+v, want no payment account, its address opened", o)
	}
}

// thenUpcast fails t unless got is v1 with "paymentAccountId": "" added, every other member equal.
func thenUpcast(t *testing.T, v1, got json.RawMessage) {
	t.Helper()
	var want, have map[string]any
	if err := json.Unmarshal(v1, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &have); err != nil {
		t.Fatalf("loaded %s: %v", got, err)
	}
	want["paymentAccountId"] = ""
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("loaded %s\nwant %v", got, want)
	}
}
