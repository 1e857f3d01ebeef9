package command_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// TestCommandsDecideWhoMay: each user or operator command refuses the callers the rules refuse,
// before anything is appended; someone else's account answers as one that does not exist; an
// order paid from an account that is not the caller's is ErrUnknownPaymentAccount whether the
// account is missing or someone else's; the saga's commands take no caller.
func TestCommandsDecideWhoMay(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustServiceWith(t, command.Config{Store: st, EmailKey: testKey, Eraser: &erasures{}})
	const ann, bob = "00dad63f-04b8-4552-8337-a0b48690001b", "auth0|bob"
	for _, u := range []string{ann, bob} {
		if _, err := svc.RegisterUser(ctx, as(u), domain.RegisterUser{Email: u[:4] + "@example.com", Name: "N"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.OpenAccount(ctx, as(ann), domain.OpenAccount{AccountID: "acc-ann", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.OpenAccount(ctx, as(bob), domain.OpenAccount{AccountID: "acc-bob", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	pinned := as(bob)
	pinned.Expected = &one
	exists := as(bob)
	exists.MustExist = true
	order := func(id, acct string) domain.PlaceOrder {
		return domain.PlaceOrder{OrderID: id, PaymentAccountID: acct, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1}},
			ShippingAddress: domain.Address{Name: "N", Line1: "L", City: "C", PostalCode: "P", Country: "DE"}}
	}
	var nobody command.Meta
	// count counts the events of every stream a refused command could have appended to.
	count := func() int {
		n := 0
		for _, stream := range []string{"user-" + ann, "user-" + bob, "user-carl", "account-acc-ann", "account-acc-bob", "account-acc-none",
			"account-a2", "account-a3", "inventory-SKU-1", "order-o1", "order-o2", "order-o3", "order-o4"} {
			events, err := st.Load(ctx, stream, store.Span{})
			if err != nil {
				t.Fatal(err)
			}
			n += len(events)
		}
		return n
	}
	for name, tc := range map[string]struct {
		run  func() error
		want error
	}{
		"register as nobody": {func() error {
			_, err := svc.RegisterUser(ctx, nobody, domain.RegisterUser{Email: "x@example.com", Name: "X"})
			return err
		}, command.ErrUnauthenticated},
		"register as an operator": {func() error {
			_, err := svc.RegisterUser(ctx, op(), domain.RegisterUser{Email: "x@example.com", Name: "X"})
			return err
		}, command.ErrForbidden},
		"register another user": {func() error {
			_, err := svc.RegisterUser(ctx, as(bob), domain.RegisterUser{UserID: "carl", Email: "x@example.com", Name: "X"})
			return err
		}, command.ErrForbidden},
		"register twice": {func() error {
			_, err := svc.RegisterUser(ctx, as(ann), domain.RegisterUser{Email: "y@example.com", Name: "Y"})
			return err
		}, domain.ErrExists},
		"change another's email": {func() error {
			_, err := svc.ChangeEmail(ctx, as(bob), ann, domain.ChangeEmail{Email: "z@example.com"})
			return err
		}, command.ErrForbidden},
		"change an email as an operator": {func() error {
			_, err := svc.ChangeEmail(ctx, op(), ann, domain.ChangeEmail{Email: "z@example.com"})
			return err
		}, command.ErrForbidden},
		"deactivate another": {func() error { _, err := svc.DeactivateUser(ctx, as(bob), ann); return err }, command.ErrForbidden},
		"erase as a user":    {func() error { _, err := svc.EraseUser(ctx, as(ann), ann); return err }, command.ErrForbidden},
		"stock as a user": {func() error {
			_, err := svc.AddStock(ctx, as(ann), domain.AddStock{SKU: "SKU-1", Quantity: 1})
			return err
		}, command.ErrForbidden},
		"open an account for another": {func() error {
			_, err := svc.OpenAccount(ctx, as(bob), domain.OpenAccount{AccountID: "a2", OwnerID: ann, Currency: "EUR"})
			return err
		}, command.ErrForbidden},
		"open an account as an operator": {func() error {
			_, err := svc.OpenAccount(ctx, op(), domain.OpenAccount{AccountID: "a3", Currency: "EUR"})
			return err
		}, command.ErrForbidden},
		"deposit to another's":        {func() error { _, err := svc.Deposit(ctx, as(bob), "acc-ann", domain.Deposit{Amount: 1}); return err }, command.ErrNotFound},
		"deposit to none":             {func() error { _, err := svc.Deposit(ctx, as(bob), "acc-none", domain.Deposit{Amount: 1}); return err }, command.ErrNotFound},
		"withdraw from another's":     {func() error { _, err := svc.Withdraw(ctx, as(bob), "acc-ann", domain.Withdraw{Amount: 1}); return err }, command.ErrNotFound},
		"deposit as an operator":      {func() error { _, err := svc.Deposit(ctx, op(), "acc-ann", domain.Deposit{Amount: 1}); return err }, command.ErrForbidden},
		"deposit to another's with *": {func() error { _, err := svc.Deposit(ctx, exists, "acc-ann", domain.Deposit{Amount: 1}); return err }, command.ErrPreconditionFailed},
		"deposit to none with *":      {func() error { _, err := svc.Deposit(ctx, exists, "acc-none", domain.Deposit{Amount: 1}); return err }, command.ErrPreconditionFailed},
		"order paid by another's":     {func() error { _, err := svc.PlaceOrder(ctx, as(bob), order("o1", "acc-ann")); return err }, command.ErrUnknownPaymentAccount},
		"order paid by none":          {func() error { _, err := svc.PlaceOrder(ctx, as(bob), order("o2", "acc-none")); return err }, command.ErrUnknownPaymentAccount},
		"order for another customer": {func() error {
			c := order("o3", "acc-bob")
			c.CustomerID = ann
			_, err := svc.PlaceOrder(ctx, as(bob), c)
			return err
		}, command.ErrForbidden},
		"order as an operator": {func() error { _, err := svc.PlaceOrder(ctx, op(), order("o4", "acc-ann")); return err }, command.ErrForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			before := count()
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if after := count(); after != before {
				t.Fatalf("%d events appended by a refused command", after-before)
			}
		})
	}
	// With a version, someone else's account conflicts as one that does not exist: at 0.
	for _, acct := range []string{"acc-ann", "acc-none"} {
		_, err := svc.Deposit(ctx, pinned, acct, domain.Deposit{Amount: 1})
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Actual != 0 {
			t.Fatalf("deposit at version 1 to %s: %v, want a conflict at version 0", acct, err)
		}
	}
	// The owner may; the saga's commands take no caller.
	if _, err := svc.Deposit(ctx, as(ann), "acc-ann", domain.Deposit{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PlaceOrder(ctx, as(ann), order("o5", "acc-ann")); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.ChargeAccount(ctx, nobody, "acc-ann", domain.ChargeAccount{OrderID: "o5", CustomerID: ann, Currency: "EUR", Amount: 1}); err != nil || len(res.EventIDs) != 1 {
		t.Fatalf("the saga's charge without a caller: %+v, %v", res, err)
	}
	if _, err := svc.ChargeAccount(ctx, nobody, "acc-bob", domain.ChargeAccount{OrderID: "o6", CustomerID: ann, Currency: "EUR", Amount: 0}); !errors.Is(err, domain.ErrAccountNotOwned) {
		t.Fatalf("the saga's check of the account's owner: %v, want ErrAccountNotOwned", err)
	}
}
