// Package domain is eventfold's reference domain: users, accounts, inventory and orders, written
// to show each event-sourcing pattern once, for teams to replace with their own.
//
// It is pure: no AWS, no I/O, no logging, no clock. Each aggregate is a state value with
//
//   - Evolve(event) State: the state after an event; it never fails, because events are facts;
//   - one method per command, taking the command and returning the events it causes, or an error
//     when the command is invalid (*ValidationError) or breaks a business rule (*RuleError).
//
// A command that would change nothing returns no events and no error, so that a retried command is
// harmless. Money is in integer minor units (cents). Fields that hold personal data carry the
// struct tag `personal:"true"`, and events holding any say whose data it is through DataSubject,
// so that they can be encrypted under that person's key and shredded with it.
//
// Every event type is one entry of the table in types.go: its Go type (which names its type
// constant and decodes it), its schema version, its upcasters and, from its struct tags, its
// personal fields. [Decode], [EventTypes], [PersonalFields] and [Types] (from which the command
// layer builds the store's registry) all read that table.
package domain

import (
	"errors"
	"fmt"
)

// Event is a domain event: a fact, named in the past tense.
type Event interface {
	// EventType returns the event's type constant, stable forever.
	EventType() string
}

// Personal is implemented by events that hold personal data.
type Personal interface {
	// DataSubject returns the ID of the person whose personal data the event holds.
	DataSubject() string
}

// Sentinel errors for callers to branch on.
var (
	// ErrInvalid is matched by every *ValidationError: a command's input is malformed.
	ErrInvalid = errors.New("invalid command")
	// ErrRejected is matched by every *RuleError: a well-formed command breaks a business rule.
	ErrRejected = errors.New("rejected by a business rule")
	// ErrNotFound is returned by a command on an aggregate that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by a command that creates an aggregate that already exists.
	ErrExists = errors.New("already exists")
)

// ValidationError says which field of a command is invalid and why. Reason never quotes the
// field's value, which may be personal data.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// RuleError is a business rule a command broke. Code is stable (it becomes an HTTP problem type).
type RuleError struct {
	Code   string
	Detail string
}

func (e *RuleError) Error() string { return e.Detail }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RuleError) Is(target error) bool { return target == ErrRejected }

// The business rules of the reference domain.
var (
	ErrEmailTaken        = &RuleError{"email-taken", "the email address belongs to another user"}
	ErrUserInactive      = &RuleError{"user-inactive", "the user is deactivated"}
	ErrUserErased        = &RuleError{"user-erased", "the user's personal data was erased"}
	ErrInsufficientFunds = &RuleError{"insufficient-funds", "the balance is lower than the amount"}
	ErrBalanceOverflow   = &RuleError{"balance-overflow", "the balance would exceed the largest amount an account can hold"}
	ErrInsufficientStock = &RuleError{"insufficient-stock", "not enough stock is available"}
	ErrStockOverflow     = &RuleError{"stock-overflow", "the item cannot hold more stock"}
	ErrNoReservation     = &RuleError{"no-reservation", "the order holds no reservation of this item"}
	ErrOrderState        = &RuleError{"order-state", "the order's state does not allow this"}
	// ErrAccountNotOwned is returned by Account.Charge when the account's owner is not the
	// order's customer.
	ErrAccountNotOwned = &RuleError{"account-not-owned", "the account does not belong to the order's customer"}
	// ErrCurrencyMismatch is returned by Account.Charge when the order's currency is not the
	// account's.
	ErrCurrencyMismatch = &RuleError{"currency-mismatch", "the order's currency is not the account's"}
)
