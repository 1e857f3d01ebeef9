package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// RegisterUser registers the caller, a user: the user ID is the caller's subject. c.UserID is
// either empty or that subject (another is ErrForbidden); an operator is ErrForbidden. The email
// address is claimed atomically with the event; one held by another user fails with
// domain.ErrEmailTaken. A user registered already is domain.ErrExists.
func (s *Service) RegisterUser(ctx context.Context, m Meta, c domain.RegisterUser) (Result, error) {
	if err := m.Caller.AsUser(); err != nil {
		return Result{}, err
	}
	if c.UserID == "" {
		c.UserID = m.Caller.Subject
	}
	if c.UserID != m.Caller.Subject {
		return Result{}, ErrForbidden
	}
	if err := domain.ValidUserID("id", c.UserID); err != nil {
		return Result{}, err
	}
	if len(s.emailKey) == 0 {
		return Result{}, ErrNoEmailKey
	}
	res, err := update(ctx, s, m, users, c.UserID, func(u domain.User) (decision, error) {
		events, err := u.Register(c)
		if err != nil {
			return decision{}, err
		}
		return decision{events: events, claims: []store.Claim{s.emailClaim(events[0].(domain.UserRegistered).Email, false)}}, nil
	})
	return res, emailTaken(err)
}

// ChangeEmail moves a user to a new email address, releasing the old one, atomically. Only the
// user themself may (else ErrForbidden).
func (s *Service) ChangeEmail(ctx context.Context, m Meta, userID string, c domain.ChangeEmail) (Result, error) {
	if err := self(m.Caller, userID); err != nil {
		return Result{}, err
	}
	if len(s.emailKey) == 0 {
		return Result{}, ErrNoEmailKey
	}
	res, err := update(ctx, s, m, users, userID, func(u domain.User) (decision, error) {
		events, err := u.ChangeEmail(c)
		if err != nil || len(events) == 0 {
			return decision{}, err
		}
		return decision{events: events, claims: []store.Claim{
			s.emailClaim(u.Email, true),
			s.emailClaim(events[0].(domain.UserEmailChanged).Email, false),
		}}, nil
	})
	return res, emailTaken(err)
}

// DeactivateUser deactivates a user. The email address stays reserved to them. Only the user
// themself may (else ErrForbidden).
func (s *Service) DeactivateUser(ctx context.Context, m Meta, userID string) (Result, error) {
	if err := self(m.Caller, userID); err != nil {
		return Result{}, err
	}
	return update(ctx, s, m, users, userID, func(u domain.User) (decision, error) {
		events, err := u.Deactivate()
		return decision{events: events}, err
	})
}

// EraseUser erases a data subject's personal data: it appends SubjectErased (no personal data in
// it) to their user stream, releases their email address, then erases their key, which makes
// every copy of their data unreadable — in events, read models, parked records — while the
// history keeps its shape. A subject who never registered (a customer named on orders) gets a
// user stream holding just SubjectErased, so the event store records every erasure and a
// restore of it applies them again. It is idempotent: erasing an erased subject erases the key
// again and appends nothing. An ID that is not a user ID (domain.ValidUserID) is ErrNotFound
// before anything is read or written: no data can be theirs, and no tombstone is left for it.
// Only an operator may erase (else ErrForbidden, before anything else).
func (s *Service) EraseUser(ctx context.Context, m Meta, userID string) (Result, error) {
	if err := m.Caller.AsOperator(); err != nil {
		return Result{}, err
	}
	if s.eraser == nil {
		return Result{}, errors.New("command: no Eraser configured")
	}
	if len(s.emailKey) == 0 {
		return Result{}, ErrNoEmailKey
	}
	if domain.ValidUserID("id", userID) != nil {
		return Result{}, ErrNotFound
	}
	res, err := update(ctx, s, m, users, userID, func(u domain.User) (decision, error) {
		events, err := u.Erase(userID)
		if err != nil || len(events) == 0 {
			return decision{}, err
		}
		d := decision{events: events}
		if u.Email != "" {
			d.claims = []store.Claim{s.emailClaim(u.Email, true)}
		}
		return d, nil
	})
	if err != nil {
		return Result{}, err
	}
	if err := s.eraser.Erase(ctx, userID); err != nil {
		return Result{}, fmt.Errorf("erase the key of %s: %w", userID, err)
	}
	return res, nil
}

// OpenAccount opens an account under c.AccountID (the caller generates it), owned by the caller,
// a user: c.OwnerID is either empty or the caller's subject (another is ErrForbidden).
func (s *Service) OpenAccount(ctx context.Context, m Meta, c domain.OpenAccount) (Result, error) {
	if err := m.Caller.AsUser(); err != nil {
		return Result{}, err
	}
	if c.OwnerID == "" {
		c.OwnerID = m.Caller.Subject
	}
	if c.OwnerID != m.Caller.Subject {
		return Result{}, ErrForbidden
	}
	return update(ctx, s, m, accounts, c.AccountID, func(a domain.Account) (decision, error) {
		events, err := a.OpenAccount(c)
		return decision{events: events}, err
	})
}

// Deposit puts money into an account the caller owns. Someone else's answers as one that does
// not exist (see guarded); an operator is ErrForbidden.
func (s *Service) Deposit(ctx context.Context, m Meta, accountID string, c domain.Deposit) (Result, error) {
	if err := m.Caller.AsUser(); err != nil {
		return Result{}, err
	}
	return guarded(ctx, s, m, accounts, accountID, owned(m.Caller), func(a domain.Account) (decision, error) {
		events, err := a.Deposit(c)
		return decision{events: events}, err
	})
}

// Withdraw takes money out of an account the caller owns, as Deposit puts it in.
func (s *Service) Withdraw(ctx context.Context, m Meta, accountID string, c domain.Withdraw) (Result, error) {
	if err := m.Caller.AsUser(); err != nil {
		return Result{}, err
	}
	return guarded(ctx, s, m, accounts, accountID, owned(m.Caller), func(a domain.Account) (decision, error) {
		events, err := a.Withdraw(c)
		return decision{events: events}, err
	})
}

// AddStock adds units to the inventory item c.SKU. Only an operator may (else ErrForbidden).
func (s *Service) AddStock(ctx context.Context, m Meta, c domain.AddStock) (Result, error) {
	if err := m.Caller.AsOperator(); err != nil {
		return Result{}, err
	}
	if err := domain.ValidSKU(c.SKU); err != nil {
		return Result{}, err
	}
	return update(ctx, s, m, inventory, c.SKU, func(i domain.Item) (decision, error) {
		events, err := i.AddStock(c)
		return decision{events: events}, err
	})
}

// PlaceOrder places an order under c.OrderID (the caller generates it) for the caller, a user:
// c.CustomerID is either empty or the caller's subject (another is ErrForbidden). The payment
// account must be an open account the caller owns, else ErrUnknownPaymentAccount, the same
// whether it does not exist or is someone else's, and nothing is appended: that costs nothing
// when this instance holds the account's state, else one Query of its first event
// (accountOwner). The saga checks it again when it charges (domain.ErrAccountNotOwned).
// Fulfilment (reserving stock, charging, confirming) is the saga's work.
func (s *Service) PlaceOrder(ctx context.Context, m Meta, c domain.PlaceOrder) (Result, error) {
	if err := m.Caller.AsUser(); err != nil {
		return Result{}, err
	}
	if c.CustomerID == "" {
		c.CustomerID = m.Caller.Subject
	}
	if c.CustomerID != m.Caller.Subject {
		return Result{}, ErrForbidden
	}
	if err := domain.ValidID("paymentAccountId", c.PaymentAccountID); err != nil {
		return Result{}, err
	}
	owner, err := s.accountOwner(ctx, c.PaymentAccountID)
	if err != nil {
		return Result{}, err
	}
	if owner != m.Caller.Subject {
		return Result{}, ErrUnknownPaymentAccount
	}
	return update(ctx, s, m, orders, c.OrderID, func(o domain.Order) (decision, error) {
		events, err := o.Place(c)
		return decision{events: events}, err
	})
}

// accountOwner returns the owner of account id, "" when there is no such account. An account's
// owner is set when it opens and never changes, so a state this instance holds answers with no
// request at all, and otherwise the account's first event does: one Query of one item, whatever
// the account's length, and whatever a later event of it holds.
func (s *Service) accountOwner(ctx context.Context, id string) (string, error) {
	stream, err := accounts.streamID(id)
	if err != nil {
		return "", nil
	}
	if c, hit := s.states.get(stream); hit {
		if a, ok := c.state.(domain.Account); ok {
			return a.OwnerID, nil
		}
	}
	events, err := s.store.Load(ctx, stream, store.Span{From: 1, To: 1})
	if err != nil {
		return "", err
	}
	account, _, _, _, err := fold(domain.Account{}, 0, "", 0, events)
	if err != nil || !account.Open {
		return "", err
	}
	return account.OwnerID, nil
}

// ReserveStock sets units of the inventory item sku aside for the order c.OrderID. An order that
// holds a reservation of the item already, or whose reservation was released or committed,
// changes nothing (Result.EventIDs empty); not enough available stock is
// domain.ErrInsufficientStock.
func (s *Service) ReserveStock(ctx context.Context, m Meta, sku string, c domain.Reserve) (Result, error) {
	if err := domain.ValidSKU(sku); err != nil {
		return Result{}, err
	}
	return update(ctx, s, m, inventory, sku, func(i domain.Item) (decision, error) {
		events, err := i.Reserve(c)
		return decision{events: events}, err
	})
}

// ReleaseStock gives the order's reservation of the item sku back and settles the order on the
// item, so that a Reserve of it landing later reserves nothing (domain.Item.Release). Releasing
// a settled order changes nothing.
func (s *Service) ReleaseStock(ctx context.Context, m Meta, sku, orderID string) (Result, error) {
	if err := domain.ValidSKU(sku); err != nil {
		return Result{}, err
	}
	return update(ctx, s, m, inventory, sku, func(i domain.Item) (decision, error) {
		events, err := i.Release(orderID)
		return decision{events: events}, err
	})
}

// CommitStock takes the order's reserved units of the item sku out of stock for good. Without a
// reservation (never made, released, or committed already) it changes nothing.
func (s *Service) CommitStock(ctx context.Context, m Meta, sku, orderID string) (Result, error) {
	if err := domain.ValidSKU(sku); err != nil {
		return Result{}, err
	}
	return update(ctx, s, m, inventory, sku, func(i domain.Item) (decision, error) {
		events, err := i.Commit(orderID)
		return decision{events: events}, err
	})
}

// ChargeAccount pays the order c.OrderID from the account: once, ever, whatever is asked later
// (domain.Account.Charge). An account that is not the order's customer's is
// domain.ErrAccountNotOwned, one in another currency domain.ErrCurrencyMismatch, a balance below
// the amount domain.ErrInsufficientFunds.
func (s *Service) ChargeAccount(ctx context.Context, m Meta, accountID string, c domain.ChargeAccount) (Result, error) {
	return update(ctx, s, m, accounts, accountID, func(a domain.Account) (decision, error) {
		events, err := a.Charge(c)
		return decision{events: events}, err
	})
}

// RefundAccount gives the order's charge back to the account, all of it, once. Without a charge,
// or refunded already, it changes nothing.
func (s *Service) RefundAccount(ctx context.Context, m Meta, accountID, orderID string) (Result, error) {
	return update(ctx, s, m, accounts, accountID, func(a domain.Account) (decision, error) {
		events, err := a.Refund(orderID)
		return decision{events: events}, err
	})
}

// ConfirmOrder confirms a placed order; a confirmed one changes nothing, a cancelled one is
// domain.ErrOrderState.
func (s *Service) ConfirmOrder(ctx context.Context, m Meta, orderID string) (Result, error) {
	return update(ctx, s, m, orders, orderID, func(o domain.Order) (decision, error) {
		events, err := o.Confirm()
		return decision{events: events}, err
	})
}

// CancelOrder cancels a placed order for a reason code (such as "out-of-stock"); a cancelled one
// changes nothing, a confirmed one is domain.ErrOrderState.
func (s *Service) CancelOrder(ctx context.Context, m Meta, orderID, reason string) (Result, error) {
	return update(ctx, s, m, orders, orderID, func(o domain.Order) (decision, error) {
		events, err := o.Cancel(reason)
		return decision{events: events}, err
	})
}

// emailTaken translates a lost claim on an email into the domain's rule.
func emailTaken(err error) error {
	if errors.Is(err, store.ErrClaimed) {
		return domain.ErrEmailTaken
	}
	return err
}

// self reports whether c is the user userID: ErrUnauthenticated for nobody, ErrForbidden for
// anyone else.
func self(c auth.Caller, userID string) error {
	if err := c.AsUser(); err != nil {
		return err
	}
	if c.Subject != userID {
		return ErrForbidden
	}
	return nil
}

// owned says whether an account is the caller's.
func owned(c auth.Caller) func(domain.Account) bool {
	return func(a domain.Account) bool { return a.OwnerID == c.Subject }
}
