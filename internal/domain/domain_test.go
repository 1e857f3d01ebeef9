package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

// given returns the state of an aggregate after events, folded from its zero state.
func given[S interface{ Evolve(domain.Event) S }](events ...domain.Event) S {
	var s S
	for _, e := range events {
		s = s.Evolve(e)
	}
	return s
}

// outcome is what a command should decide: events, or an error.
type outcome struct {
	events []domain.Event // wanted when err is nil; nil means "no events"
	err    error          // matched with errors.Is
	field  string         // when err is domain.ErrInvalid: the *domain.ValidationError's Field
}

// emits wants exactly these events and no error.
func emits(events ...domain.Event) outcome { return outcome{events: events} }

// noChange wants no events and no error: the command changes nothing.
func noChange() outcome { return outcome{} }

// fails wants an error matching err (a sentinel or a rule error).
func fails(err error) outcome { return outcome{err: err} }

// invalid wants a *domain.ValidationError for field.
func invalid(field string) outcome { return outcome{err: domain.ErrInvalid, field: field} }

// then checks what a command decided against the wanted outcome.
func then(t *testing.T, got []domain.Event, err error, want outcome) {
	t.Helper()
	if want.err == nil {
		if err != nil {
			t.Fatalf("error = %v, want none (events %#v)", err, want.events)
		}
		if len(got) == 0 && len(want.events) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want.events) {
			t.Fatalf("events =\n\t%#v\nwant\n\t%#v", got, want.events)
		}
		return
	}
	if err == nil {
		t.Fatalf("error = nil (events %#v), want %v", got, want.err)
	}
	if !errors.Is(err, want.err) {
		t.Fatalf("error = %v (%T), want errors.Is(err, %v)", err, err, want.err)
	}
	if len(got) != 0 {
		t.Errorf("events = %#v alongside error %v, want none", got, err)
	}
	var rule *domain.RuleError
	if errors.As(want.err, &rule) && !errors.Is(err, domain.ErrRejected) {
		t.Errorf("error %v does not match domain.ErrRejected", err)
	}
	if want.err == domain.ErrInvalid {
		thenInvalidField(t, err, want.field)
	} else if errors.Is(err, domain.ErrInvalid) {
		t.Errorf("error %v matches domain.ErrInvalid, want only %v", err, want.err)
	}
}

// thenInvalidField checks that err is a *domain.ValidationError for field, and nothing else.
func thenInvalidField(t *testing.T, err error, field string) {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *domain.ValidationError", err, err)
	}
	if ve.Field != field {
		t.Errorf("ValidationError.Field = %q, want %q (error %v)", ve.Field, field, err)
	}
	if ve.Reason == "" {
		t.Errorf("ValidationError.Reason is empty")
	}
	if !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("error %v does not match domain.ErrInvalid", err)
	}
	for _, other := range []error{domain.ErrRejected, domain.ErrNotFound, domain.ErrExists} {
		if errors.Is(err, other) {
			t.Errorf("validation error %v also matches %v", err, other)
		}
	}
}

// samples holds one event of every type, with every field set, keyed by type.
func samples() map[string]domain.Event {
	return map[string]domain.Event{
		domain.TypeUserRegistered:   domain.UserRegistered{UserID: "user-1", Email: "ann@example.com", Name: "Ann Lee"},
		domain.TypeUserEmailChanged: domain.UserEmailChanged{UserID: "user-1", Email: "ann.lee@example.org"},
		domain.TypeUserDeactivated:  domain.UserDeactivated{UserID: "user-1"},
		domain.TypeSubjectErased:    domain.SubjectErased{UserID: "user-1"},
		domain.TypeAccountOpened:    domain.AccountOpened{AccountID: "acc-1", OwnerID: "user-1", Currency: "EUR"},
		domain.TypeMoneyDeposited:   domain.MoneyDeposited{AccountID: "acc-1", Amount: 12_345},
		domain.TypeMoneyWithdrawn:   domain.MoneyWithdrawn{AccountID: "acc-1", Amount: 2_345},
		domain.TypeAccountCharged:   domain.AccountCharged{AccountID: "acc-1", OrderID: "order-1", Amount: 3_499},
		domain.TypeAccountRefunded:  domain.AccountRefunded{AccountID: "acc-1", OrderID: "order-1", Amount: 3_499},
		domain.TypeStockAdded:       domain.StockAdded{SKU: "SKU-1", Quantity: 10},
		domain.TypeStockReserved:    domain.StockReserved{SKU: "SKU-1", OrderID: "order-1", Quantity: 3},
		domain.TypeStockReleased:    domain.StockReleased{SKU: "SKU-1", OrderID: "order-1", Quantity: 3},
		domain.TypeStockCommitted:   domain.StockCommitted{SKU: "SKU-1", OrderID: "order-1", Quantity: 3},
		domain.TypeOrderPlaced: domain.OrderPlaced{
			OrderID:          "order-1",
			CustomerID:       "user-2",
			PaymentAccountID: "acc-1",
			Currency:         "EUR",
			Lines: []domain.OrderLine{
				{SKU: "SKU-1", Quantity: 2, UnitPrice: 1250},
				{SKU: "SKU-2", Quantity: 1, UnitPrice: 999},
			},
			Total: 3499,
			ShippingAddress: domain.Address{
				Name: "Bo Berg", Line1: "Hauptstraße 1", Line2: "Hinterhaus", City: "Berlin", PostalCode: "10115", Country: "DE",
			},
		},
		domain.TypeOrderConfirmed: domain.OrderConfirmed{OrderID: "order-1"},
		domain.TypeOrderCancelled: domain.OrderCancelled{OrderID: "order-1", Reason: "out-of-stock"},
	}
}

func TestEventTypesAreUniqueAndMatchTheirEvents(t *testing.T) {
	types := domain.EventTypes()
	if len(types) == 0 {
		t.Fatal("EventTypes() is empty")
	}
	seen := map[string]bool{}
	for _, typ := range types {
		if seen[typ] {
			t.Errorf("EventTypes() lists %q twice", typ)
		}
		seen[typ] = true
	}
	all := samples()
	for typ, e := range all {
		if got := e.EventType(); got != typ {
			t.Errorf("sample for %q has EventType() %q", typ, got)
		}
		if !seen[typ] {
			t.Errorf("event type %q is missing from EventTypes()", typ)
		}
	}
}

func TestDecodeRoundTripsEveryEventType(t *testing.T) {
	all := samples()
	for _, typ := range domain.EventTypes() {
		t.Run(typ, func(t *testing.T) {
			e, ok := all[typ]
			if !ok {
				t.Fatalf("no sample event for type %q: add one to samples()", typ)
			}
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			got, err := domain.Decode(typ, data)
			if err != nil {
				t.Fatalf("Decode(%q, %s): %v", typ, data, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("Decode(%q, %s) =\n\t%#v\nwant\n\t%#v", typ, data, got, e)
			}
			if got.EventType() != typ {
				t.Errorf("decoded EventType() = %q, want %q", got.EventType(), typ)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	got, err := domain.Decode(domain.TypeMoneyDeposited, []byte(`{"accountId":"acc-1","amount":5,"note":"from v2"}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if want := (domain.MoneyDeposited{AccountID: "acc-1", Amount: 5}); !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v, want %#v", got, want)
	}
}

func TestDecodeFails(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
		data      string
	}{
		{"unknown type", "UserPromoted", `{"userId":"u1"}`},
		{"empty type", "", `{}`},
		{"type in the wrong case", "userregistered", `{"userId":"u1"}`},
		{"type with trailing space", domain.TypeUserRegistered + " ", `{"userId":"u1"}`},
		{"known type, malformed JSON", domain.TypeUserRegistered, `{"userId":`},
		{"known type, wrong JSON kind", domain.TypeMoneyDeposited, `{"amount":"ten"}`},
		{"known type, fractional amount", domain.TypeMoneyDeposited, `{"amount":1.5}`},
		{"known type, JSON array", domain.TypeOrderConfirmed, `["order-1"]`},
		{"known type, empty data", domain.TypeOrderConfirmed, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := domain.Decode(tt.eventType, []byte(tt.data))
			if err == nil {
				t.Fatalf("Decode(%q, %q) = %#v, want an error", tt.eventType, tt.data, e)
			}
			if e != nil {
				t.Errorf("Decode returned event %#v alongside error %v", e, err)
			}
		})
	}
}

// personalFieldNames are the fields that hold personal data wherever they appear.
var personalFieldNames = map[string]bool{
	"Email": true, "Name": true, "Line1": true, "Line2": true, "City": true, "PostalCode": true, "Country": true,
}

// checkPersonalTags reports every personal field of t (recursively) that lacks `personal:"true"`,
// and returns whether t holds any personal field.
func checkPersonalTags(t *testing.T, typ reflect.Type, path string) bool {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		return false
	}
	holds := false
	for i := range typ.NumField() {
		f := typ.Field(i)
		fieldPath := path + "." + f.Name
		nested := checkPersonalTags(t, f.Type, fieldPath)
		if personalFieldNames[f.Name] || nested {
			holds = true
			if f.Tag.Get("personal") != "true" {
				t.Errorf("%s holds personal data but lacks the tag `personal:\"true\"`", fieldPath)
			}
		}
	}
	return holds
}

func TestPersonalDataIsTagged(t *testing.T) {
	if !checkPersonalTags(t, reflect.TypeFor[domain.Address](), "Address") {
		t.Error("Address holds no personal field")
	}
	all := samples()
	for _, typ := range domain.EventTypes() {
		t.Run(typ, func(t *testing.T) {
			e, ok := all[typ]
			if !ok {
				t.Fatalf("no sample event for type %q", typ)
			}
			holds := checkPersonalTags(t, reflect.TypeOf(e), typ)
			p, isPersonal := e.(domain.Personal)
			if holds && !isPersonal {
				t.Fatalf("%s holds personal data but does not implement domain.Personal", typ)
			}
			if !isPersonal {
				return
			}
			v := reflect.ValueOf(e)
			subject := v.FieldByName("UserID")
			if !subject.IsValid() {
				subject = v.FieldByName("CustomerID")
			}
			if !subject.IsValid() {
				t.Fatalf("%s implements domain.Personal but has no UserID or CustomerID field", typ)
			}
			if got, want := p.DataSubject(), subject.String(); got != want || got == "" {
				t.Errorf("%s.DataSubject() = %q, want %q", typ, got, want)
			}
		})
	}
}

func TestPersonalEventsNameTheirSubject(t *testing.T) {
	tests := []struct {
		name  string
		event domain.Personal
		want  string
	}{
		{"user registered: the user", domain.UserRegistered{UserID: "u-7", Email: "a@b.co", Name: "A"}, "u-7"},
		{"email changed: the user", domain.UserEmailChanged{UserID: "u-8", Email: "a@b.co"}, "u-8"},
		{"order placed: the customer, not the order", domain.OrderPlaced{OrderID: "o-1", CustomerID: "c-9"}, "c-9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.event.DataSubject(); got != tt.want {
				t.Errorf("DataSubject() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	rules := []*domain.RuleError{
		domain.ErrEmailTaken, domain.ErrUserInactive, domain.ErrInsufficientFunds, domain.ErrBalanceOverflow,
		domain.ErrInsufficientStock, domain.ErrStockOverflow, domain.ErrNoReservation, domain.ErrOrderState,
		domain.ErrAccountNotOwned, domain.ErrCurrencyMismatch,
	}
	codes := map[string]bool{}
	for _, r := range rules {
		t.Run(r.Code, func(t *testing.T) {
			if r.Code == "" || r.Detail == "" {
				t.Errorf("rule error %#v lacks a code or detail", r)
			}
			if codes[r.Code] {
				t.Errorf("code %q is used twice", r.Code)
			}
			codes[r.Code] = true
			if !errors.Is(r, domain.ErrRejected) {
				t.Errorf("%v does not match ErrRejected", r)
			}
			if errors.Is(r, domain.ErrInvalid) {
				t.Errorf("%v matches ErrInvalid", r)
			}
			for _, other := range rules {
				if other != r && errors.Is(r, other) {
					t.Errorf("%v matches another rule, %v", r, other)
				}
			}
			if r.Error() != r.Detail {
				t.Errorf("Error() = %q, want the detail %q", r.Error(), r.Detail)
			}
		})
	}
	ve := &domain.ValidationError{Field: "email", Reason: "is required"}
	if !errors.Is(ve, domain.ErrInvalid) || errors.Is(ve, domain.ErrRejected) {
		t.Errorf("ValidationError must match ErrInvalid and only it")
	}
	if got, want := ve.Error(), "email: is required"; got != want {
		t.Errorf("ValidationError.Error() = %q, want %q", got, want)
	}
}

func TestValidationErrorsNeverQuoteTheInput(t *testing.T) {
	const secret = "secret-value"
	addr := domain.Address{Name: "Bo", Line1: "Main St 1", City: "Berlin", PostalCode: "10115", Country: "DE"}
	withAddr := func(mutate func(*domain.Address)) domain.PlaceOrder {
		a := addr
		mutate(&a)
		return domain.PlaceOrder{
			OrderID: "o-1", CustomerID: "01J9ZQ4T8K5W3X2Y1V0B6N7M8C", Currency: "EUR",
			Lines:           []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1}},
			ShippingAddress: a,
		}
	}
	tests := []struct {
		name  string
		input string
		err   func() error
	}{
		{"invalid email, NormalizeEmail", "secret-value@@x", func() error { _, err := domain.NormalizeEmail("secret-value@@x"); return err }},
		{"invalid email, Register", "secret-value@@x", func() error {
			_, err := domain.User{}.Register(domain.RegisterUser{UserID: "u-1", Email: "secret-value@@x", Name: "Ann"})
			return err
		}},
		{"display-name email, Register", secret, func() error {
			_, err := domain.User{}.Register(domain.RegisterUser{UserID: "u-1", Email: "secret-value <a@b.com>", Name: "Ann"})
			return err
		}},
		{"invalid email, ChangeEmail", "secret-value@@x", func() error {
			_, err := given[domain.User](domain.UserRegistered{UserID: "u-1", Email: "a@b.com", Name: "Ann"}).
				ChangeEmail(domain.ChangeEmail{Email: "secret-value@@x"})
			return err
		}},
		{"name with a control character", secret, func() error {
			_, err := domain.User{}.Register(domain.RegisterUser{UserID: "u-1", Email: "a@b.com", Name: "secret-value\x07"})
			return err
		}},
		{"name that is too long", secret, func() error {
			_, err := domain.User{}.Register(domain.RegisterUser{UserID: "u-1", Email: "a@b.com", Name: strings.Repeat("secret-value", 20)})
			return err
		}},
		{"address line with a control character", secret, func() error {
			_, err := domain.Order{}.Place(withAddr(func(a *domain.Address) { a.Line1 = "secret-value\x00" }))
			return err
		}},
		{"address name that is too long", secret, func() error {
			_, err := domain.Order{}.Place(withAddr(func(a *domain.Address) { a.Name = strings.Repeat("secret-value", 20) }))
			return err
		}},
		{"bad country", "xx", func() error {
			_, err := domain.Order{}.Place(withAddr(func(a *domain.Address) { a.Country = "xx" }))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error = %v, want a validation error", err)
			}
			if msg := err.Error(); strings.Contains(msg, tt.input) {
				t.Errorf("error message %q quotes the input %q", msg, tt.input)
			}
			var ve *domain.ValidationError
			if errors.As(err, &ve) && strings.Contains(ve.Reason, tt.input) {
				t.Errorf("reason %q quotes the input %q", ve.Reason, tt.input)
			}
		})
	}
}

// TestEvolveIgnoresOtherAggregatesEvents: an aggregate's state does not change under an event
// that is not its own.
func TestEvolveIgnoresOtherAggregatesEvents(t *testing.T) {
	all := samples()
	user := given[domain.User](all[domain.TypeUserRegistered])
	account := given[domain.Account](all[domain.TypeAccountOpened], all[domain.TypeMoneyDeposited])
	item := given[domain.Item](all[domain.TypeStockAdded], all[domain.TypeStockReserved])
	order := given[domain.Order](all[domain.TypeOrderPlaced])
	own := map[string][]string{
		"User":    {domain.TypeUserRegistered, domain.TypeUserEmailChanged, domain.TypeUserDeactivated, domain.TypeSubjectErased},
		"Account": {domain.TypeAccountOpened, domain.TypeMoneyDeposited, domain.TypeMoneyWithdrawn, domain.TypeAccountCharged, domain.TypeAccountRefunded},
		"Item":    {domain.TypeStockAdded, domain.TypeStockReserved, domain.TypeStockReleased, domain.TypeStockCommitted},
		"Order":   {domain.TypeOrderPlaced, domain.TypeOrderConfirmed, domain.TypeOrderCancelled},
	}
	evolve := map[string]func(domain.Event) (before, after any){
		"User":    func(e domain.Event) (any, any) { return user, user.Evolve(e) },
		"Account": func(e domain.Event) (any, any) { return account, account.Evolve(e) },
		"Item":    func(e domain.Event) (any, any) { return item, item.Evolve(e) },
		"Order":   func(e domain.Event) (any, any) { return order, order.Evolve(e) },
	}
	for aggregate, ev := range evolve {
		for _, typ := range domain.EventTypes() {
			if slices.Contains(own[aggregate], typ) {
				continue
			}
			t.Run(aggregate+"/"+typ, func(t *testing.T) {
				before, after := ev(all[typ])
				if !reflect.DeepEqual(before, after) {
					t.Errorf("%s changed under %s:\n\t%#v\nbecame\n\t%#v", aggregate, typ, before, after)
				}
			})
		}
	}
}

func FuzzDecode(f *testing.F) {
	for typ, e := range samples() {
		data, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typ, data)
	}
	f.Add(domain.TypeOrderPlaced, []byte(`{"lines":[],"shippingAddress":null}`))
	f.Add(domain.TypeOrderPlaced, []byte(`{"lines":null,"total":-1}`))
	f.Add(domain.TypeUserRegistered, []byte(`{"userId":"\ud800","email":"\xff","USERID":"x"}`))
	f.Add(domain.TypeMoneyDeposited, []byte(`{"amount":9223372036854775807}`))
	f.Add(domain.TypeMoneyDeposited, []byte(`{"amount":9223372036854775808}`))
	f.Add(domain.TypeStockAdded, []byte(`null`))
	f.Add("Unknown", []byte(`{}`))
	f.Add("", []byte(``))
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		e, err := domain.Decode(eventType, data)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned event %#v alongside error %v", e, err)
			}
			return
		}
		if e == nil {
			t.Fatal("Decode returned neither an event nor an error")
		}
		if e.EventType() != eventType {
			t.Fatalf("Decode(%q) returned an event of type %q", eventType, e.EventType())
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-marshal %#v: %v", e, err)
		}
		e2, err := domain.Decode(eventType, again)
		if err != nil {
			t.Fatalf("decode of re-marshalled %s: %v", again, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n\t%#v\nbecame\n\t%#v", e, e2)
		}
	})
}

func TestPersonalFields(t *testing.T) {
	for typ, want := range map[string]string{
		domain.TypeUserRegistered:   "email,name",
		domain.TypeUserEmailChanged: "email",
		domain.TypeOrderPlaced:      "shippingAddress",
		domain.TypeSubjectErased:    "",
		domain.TypeMoneyDeposited:   "",
		"Unheard":                   "",
	} {
		if got := strings.Join(domain.PersonalFields(typ), ","); got != want {
			t.Errorf("PersonalFields(%s) = %q, want %q", typ, got, want)
		}
	}
}
