package restore_test

// Goes in internal/restore next to review2_restore_test.go (it uses its helpers: keyItem,
// restoreKey, readable, pointInTime, copyAt). It fails on branch rev1: see README.md here.

import (
	"context"
	"testing"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/restore"
)

// TestReview2RestoreWithKeysAtTErasesEveryoneErasedAfterT: without a crash. A customer who never
// registered places an order before T (their key is made then) and is erased after T (DELETE
// /users/{id}: 404, the key erased, no event anywhere). KeysTable is restored to T too. Nothing in
// the events records that erasure, so the restore does not make it again: the address opens.
func TestReview2RestoreWithKeysAtTErasesEveryoneErasedAfterT(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	customer, order := w.ids.New(), w.ids.New()
	if _, err := w.svc.OpenAccount(ctx, withCaller(w.meta(), auth.User(customer)), domain.OpenAccount{AccountID: "acc-1", OwnerID: customer, Currency: "EUR"}); err != nil {
		t.Fatal(err) // an order is paid from an account of the customer's
	}
	if _, err := w.svc.PlaceOrder(ctx, withCaller(w.meta(), auth.User(customer)), domain.PlaceOrder{OrderID: order, CustomerID: customer, PaymentAccountID: "acc-1", Currency: "EUR",
		Lines:           []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
		ShippingAddress: domain.Address{Name: "Some One", Line1: "1 Main St", City: "C", PostalCode: "P", Country: "DE"}}); err != nil {
		t.Fatal(err)
	}
	at := pointInTime()
	key := w.keyItem(t, customer)
	if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), customer); err != nil {
		t.Fatalf("erase a customer who never registered: %v, want the erasure recorded (and the key erased)", err)
	}
	if w.readable(t, "order-"+order) {
		t.Fatal("the control: the address opens right after the erasure")
	}
	w.restoreKey(t, key)
	if _, err := restore.Apply(ctx, w.config(w.copyAt(t, at)), false); err != nil {
		t.Fatal(err)
	}
	if w.readable(t, "order-"+order) {
		t.Fatalf("the shipping address of a customer erased after T opens after the restore")
	}
}
