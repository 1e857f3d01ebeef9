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
package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
)

// Decode returns the event of the given type whose JSON payload is data. Unknown fields are
// ignored, so that a payload with more fields than this program knows still decodes.
func Decode(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeUserRegistered:
		return decode[UserRegistered](eventType, data)
	case TypeUserEmailChanged:
		return decode[UserEmailChanged](eventType, data)
	case TypeUserDeactivated:
		return decode[UserDeactivated](eventType, data)
	case TypeSubjectErased:
		return decode[SubjectErased](eventType, data)
	case TypeAccountOpened:
		return decode[AccountOpened](eventType, data)
	case TypeMoneyDeposited:
		return decode[MoneyDeposited](eventType, data)
	case TypeMoneyWithdrawn:
		return decode[MoneyWithdrawn](eventType, data)
	case TypeStockAdded:
		return decode[StockAdded](eventType, data)
	case TypeStockReserved:
		return decode[StockReserved](eventType, data)
	case TypeStockReleased:
		return decode[StockReleased](eventType, data)
	case TypeStockCommitted:
		return decode[StockCommitted](eventType, data)
	case TypeOrderPlaced:
		return decode[OrderPlaced](eventType, data)
	case TypeOrderConfirmed:
		return decode[OrderConfirmed](eventType, data)
	case TypeOrderCancelled:
		return decode[OrderCancelled](eventType, data)
	}
	return nil, fmt.Errorf("unknown event type %q", eventType)
}

// PersonalFields returns the JSON names of an event type's top-level fields that hold personal
// data (struct tag personal:"true"), none for a type without any or unknown.
func PersonalFields(eventType string) []string {
	e, err := Decode(eventType, []byte("{}"))
	if err != nil {
		return nil
	}
	t := reflect.TypeOf(e)
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("personal") != "true" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

func decode[E Event](eventType string, data []byte) (Event, error) {
	var e E
	if err := json.Unmarshal(data, &e); err != nil {
		// encoding/json errors name Go types and offsets; at most a number or one character of input.
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

// EventTypes lists every event type of the domain, for the store's registry. Schema versions:
// all 1 so far; a type whose payload changes gets version 2 and an upcaster.
func EventTypes() []string {
	return []string{
		TypeUserRegistered, TypeUserEmailChanged, TypeUserDeactivated, TypeSubjectErased,
		TypeAccountOpened, TypeMoneyDeposited, TypeMoneyWithdrawn,
		TypeStockAdded, TypeStockReserved, TypeStockReleased, TypeStockCommitted,
		TypeOrderPlaced, TypeOrderConfirmed, TypeOrderCancelled,
	}
}
