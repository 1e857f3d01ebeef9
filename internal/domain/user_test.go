package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

func userRegistered() domain.UserRegistered {
	return domain.UserRegistered{UserID: "user-1", Email: "ann@example.com", Name: "Ann Lee"}
}

// emailOfLength returns a valid address of exactly n bytes (n >= 8).
func emailOfLength(n int) string {
	const suffix = "@example.com"
	return strings.Repeat("a", n-len(suffix)) + suffix
}

func TestUserRegister(t *testing.T) {
	register := func(email, name string) domain.RegisterUser {
		return domain.RegisterUser{UserID: "user-1", Email: email, Name: name}
	}
	registered := func(email, name string) domain.Event {
		return domain.UserRegistered{UserID: "user-1", Email: email, Name: name}
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.RegisterUser
		then  outcome
	}{
		{
			name: "a new user registers",
			when: register("ann@example.com", "Ann Lee"),
			then: emits(registered("ann@example.com", "Ann Lee")),
		},
		{
			name: "email is trimmed and lower-cased",
			when: register("  Ann.Lee@Example.COM \t\n", "Ann Lee"),
			then: emits(registered("ann.lee@example.com", "Ann Lee")),
		},
		{
			name: "email with plus tag and subdomain",
			when: register("ann+news@mail.example.co.uk", "Ann Lee"),
			then: emits(registered("ann+news@mail.example.co.uk", "Ann Lee")),
		},
		{
			name: "email of exactly 254 characters",
			when: register(emailOfLength(254), "Ann"),
			then: emits(registered(emailOfLength(254), "Ann")),
		},
		{
			name: "email of 254 characters once trimmed",
			when: register("  "+emailOfLength(254)+"  ", "Ann"),
			then: emits(registered(emailOfLength(254), "Ann")),
		},
		{
			name: "name is trimmed, inner spaces kept",
			when: register("ann@example.com", " \tAnn  Lee\n "),
			then: emits(registered("ann@example.com", "Ann  Lee")),
		},
		{
			name: "name keeps its case and non-ASCII letters",
			when: register("ann@example.com", "Ånn-Marie O'Brien 李"),
			then: emits(registered("ann@example.com", "Ånn-Marie O'Brien 李")),
		},
		{
			name: "name of exactly 200 multi-byte characters",
			when: register("ann@example.com", strings.Repeat("é", 200)),
			then: emits(registered("ann@example.com", strings.Repeat("é", 200))),
		},
		{
			name:  "registering twice",
			given: []domain.Event{userRegistered()},
			when:  register("bob@example.com", "Bob"),
			then:  fails(domain.ErrExists),
		},
		{
			name:  "registering twice with the same data",
			given: []domain.Event{userRegistered()},
			when:  register("ann@example.com", "Ann Lee"),
			then:  fails(domain.ErrExists),
		},
		{
			name:  "registering twice is refused before the input is validated",
			given: []domain.Event{userRegistered()},
			when:  register("not an email", ""),
			then:  fails(domain.ErrExists),
		},
		{
			name:  "registering a deactivated user again",
			given: []domain.Event{userRegistered(), domain.UserDeactivated{UserID: "user-1"}},
			when:  register("ann@example.com", "Ann Lee"),
			then:  fails(domain.ErrExists),
		},
		{
			name: "missing user ID",
			when: domain.RegisterUser{Email: "ann@example.com", Name: "Ann"},
			then: invalid("userId"),
		},
		{name: "empty email", when: register("", "Ann"), then: invalid("email")},
		{name: "blank email", when: register(" \t ", "Ann"), then: invalid("email")},
		{name: "email with a display name", when: register("Ann <a@b.com>", "Ann"), then: invalid("email")},
		{name: "email with a quoted display name", when: register(`"Ann Lee" <ann@example.com>`, "Ann"), then: invalid("email")},
		{name: "email in angle brackets", when: register("<ann@example.com>", "Ann"), then: invalid("email")},
		{name: "email with a comment", when: register("ann@example.com (Ann)", "Ann"), then: invalid("email")},
		{name: "two emails", when: register("ann@example.com, bob@example.com", "Ann"), then: invalid("email")},
		{name: "email missing '@'", when: register("ann.example.com", "Ann"), then: invalid("email")},
		{name: "email with two '@'", when: register("ann@@example.com", "Ann"), then: invalid("email")},
		{name: "email without a dot in the domain", when: register("ann@localhost", "Ann"), then: invalid("email")},
		{name: "email without a local part", when: register("@example.com", "Ann"), then: invalid("email")},
		{name: "email without a domain", when: register("ann@", "Ann"), then: invalid("email")},
		{name: "email with a space", when: register("ann lee@example.com", "Ann"), then: invalid("email")},
		{name: "email with a quoted local part", when: register(`"ann lee"@example.com`, "Ann"), then: invalid("email")},
		{name: "email with consecutive dots", when: register("ann@example..com", "Ann"), then: invalid("email")},
		{name: "email of 255 characters", when: register(emailOfLength(255), "Ann"), then: invalid("email")},
		{name: "email of 1000 characters", when: register(emailOfLength(1000), "Ann"), then: invalid("email")},
		{name: "empty name", when: register("ann@example.com", ""), then: invalid("name")},
		{name: "blank name", when: register("ann@example.com", " \t\n "), then: invalid("name")},
		{name: "name of 201 characters", when: register("ann@example.com", strings.Repeat("é", 201)), then: invalid("name")},
		{name: "name with NUL", when: register("ann@example.com", "Ann\x00Lee"), then: invalid("name")},
		{name: "name starting with a control character", when: register("ann@example.com", "\x07Ann"), then: invalid("name")},
		{name: "name ending with a control character", when: register("ann@example.com", "Ann\x00"), then: invalid("name")},
		{name: "name with an inner tab", when: register("ann@example.com", "Ann\tLee"), then: invalid("name")},
		{name: "name with an inner newline", when: register("ann@example.com", "Ann\nLee"), then: invalid("name")},
		{name: "name with DEL", when: register("ann@example.com", "Ann\x7fLee"), then: invalid("name")},
		{name: "name with a C1 control", when: register("ann@example.com", "Ann\u009bLee"), then: invalid("name")},
		{name: "name with an escape sequence", when: register("ann@example.com", "Ann\x1b[31mLee"), then: invalid("name")},
		{name: "name that is not UTF-8", when: register("ann@example.com", "Ann\xffLee"), then: invalid("name")},
		{name: "email is validated before the name", when: register("nope", ""), then: invalid("email")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.User](tt.given...).Register(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"ann@example.com", "ann@example.com"},
		{"ANN@EXAMPLE.COM", "ann@example.com"},
		{"\t Ann@Example.com \r\n", "ann@example.com"},
		{"a.b-c_d+e@x-y.example.org", "a.b-c_d+e@x-y.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := domain.NormalizeEmail(tt.in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := domain.NormalizeEmail(got)
			if err != nil || again != got {
				t.Errorf("NormalizeEmail is not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}

func TestUserChangeEmail(t *testing.T) {
	changed := func(email string) domain.Event {
		return domain.UserEmailChanged{UserID: "user-1", Email: email}
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.ChangeEmail
		then  outcome
	}{
		{
			name:  "an active user changes their email",
			given: []domain.Event{userRegistered()},
			when:  domain.ChangeEmail{Email: "ann.lee@example.org"},
			then:  emits(changed("ann.lee@example.org")),
		},
		{
			name:  "the new email is trimmed and lower-cased",
			given: []domain.Event{userRegistered()},
			when:  domain.ChangeEmail{Email: " Ann.Lee@Example.ORG "},
			then:  emits(changed("ann.lee@example.org")),
		},
		{
			name:  "the same email changes nothing",
			given: []domain.Event{userRegistered()},
			when:  domain.ChangeEmail{Email: "ann@example.com"},
			then:  noChange(),
		},
		{
			name:  "the same email, differently cased and padded, changes nothing",
			given: []domain.Event{userRegistered()},
			when:  domain.ChangeEmail{Email: "  ANN@Example.Com\t"},
			then:  noChange(),
		},
		{
			name:  "the current email after a change changes nothing",
			given: []domain.Event{userRegistered(), changed("ann.lee@example.org")},
			when:  domain.ChangeEmail{Email: "Ann.Lee@example.org"},
			then:  noChange(),
		},
		{
			name:  "changing back to an earlier email",
			given: []domain.Event{userRegistered(), changed("ann.lee@example.org")},
			when:  domain.ChangeEmail{Email: "ann@example.com"},
			then:  emits(changed("ann@example.com")),
		},
		{
			name: "unknown user",
			when: domain.ChangeEmail{Email: "ann@example.com"},
			then: fails(domain.ErrNotFound),
		},
		{
			name: "unknown user with an invalid email",
			when: domain.ChangeEmail{Email: "nope"},
			then: fails(domain.ErrNotFound),
		},
		{
			name:  "deactivated user",
			given: []domain.Event{userRegistered(), domain.UserDeactivated{UserID: "user-1"}},
			when:  domain.ChangeEmail{Email: "ann.lee@example.org"},
			then:  fails(domain.ErrUserInactive),
		},
		{
			name:  "deactivated user, same email",
			given: []domain.Event{userRegistered(), domain.UserDeactivated{UserID: "user-1"}},
			when:  domain.ChangeEmail{Email: "ann@example.com"},
			then:  fails(domain.ErrUserInactive),
		},
		{name: "empty email", given: []domain.Event{userRegistered()}, when: domain.ChangeEmail{}, then: invalid("email")},
		{name: "display-name email", given: []domain.Event{userRegistered()}, when: domain.ChangeEmail{Email: "Ann <ann@example.org>"}, then: invalid("email")},
		{name: "email without '@'", given: []domain.Event{userRegistered()}, when: domain.ChangeEmail{Email: "ann.example.org"}, then: invalid("email")},
		{name: "email without a dot in the domain", given: []domain.Event{userRegistered()}, when: domain.ChangeEmail{Email: "ann@example"}, then: invalid("email")},
		{name: "email of 255 characters", given: []domain.Event{userRegistered()}, when: domain.ChangeEmail{Email: emailOfLength(255)}, then: invalid("email")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.User](tt.given...).ChangeEmail(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestUserDeactivate(t *testing.T) {
	deactivated := domain.UserDeactivated{UserID: "user-1"}
	tests := []struct {
		name  string
		given []domain.Event
		then  outcome
	}{
		{"an active user is deactivated", []domain.Event{userRegistered()}, emits(deactivated)},
		{"a user whose email changed is deactivated", []domain.Event{userRegistered(), domain.UserEmailChanged{UserID: "user-1", Email: "x@y.org"}}, emits(deactivated)},
		{"a deactivated user cannot be deactivated again", []domain.Event{userRegistered(), deactivated}, fails(domain.ErrUserInactive)},
		{"unknown user", nil, fails(domain.ErrNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.User](tt.given...).Deactivate()
			then(t, events, err, tt.then)
		})
	}
}

func TestUserEvolve(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.User
	}{
		{"no events: the user does not exist", nil, domain.User{}},
		{
			"registered",
			[]domain.Event{userRegistered()},
			domain.User{ID: "user-1", Status: domain.UserStatusActive, Email: "ann@example.com", Name: "Ann Lee"},
		},
		{
			"email changed twice",
			[]domain.Event{
				userRegistered(),
				domain.UserEmailChanged{UserID: "user-1", Email: "b@example.com"},
				domain.UserEmailChanged{UserID: "user-1", Email: "c@example.com"},
			},
			domain.User{ID: "user-1", Status: domain.UserStatusActive, Email: "c@example.com", Name: "Ann Lee"},
		},
		{
			"deactivated",
			[]domain.Event{userRegistered(), domain.UserDeactivated{UserID: "user-1"}},
			domain.User{ID: "user-1", Status: domain.UserStatusDeactivated, Email: "ann@example.com", Name: "Ann Lee"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := given[domain.User](tt.given...)
			if got != tt.want {
				t.Errorf("state = %#v, want %#v", got, tt.want)
			}
			if exists := len(tt.given) > 0; got.Exists() != exists {
				t.Errorf("Exists() = %v, want %v", got.Exists(), exists)
			}
		})
	}
}

// TestUserLifecycle drives the decisions of one user through its life, feeding each command's
// events back into the state.
func TestUserLifecycle(t *testing.T) {
	var u domain.User
	apply := func(events []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			u = u.Evolve(e)
		}
	}
	apply(u.Register(domain.RegisterUser{UserID: "u-1", Email: " Ann@Example.com", Name: " Ann "}))
	apply(u.ChangeEmail(domain.ChangeEmail{Email: "ANN@example.org"}))
	if want := (domain.User{ID: "u-1", Status: domain.UserStatusActive, Email: "ann@example.org", Name: "Ann"}); u != want {
		t.Fatalf("state = %#v, want %#v", u, want)
	}
	apply(u.Deactivate())
	if u.Status != domain.UserStatusDeactivated {
		t.Fatalf("status = %q, want deactivated", u.Status)
	}
	events, err := u.ChangeEmail(domain.ChangeEmail{Email: "ann@example.net"})
	then(t, events, err, fails(domain.ErrUserInactive))
}

func TestRegisterRefusesOddAddressesAndInvisibleCharacters(t *testing.T) {
	for _, tc := range []struct{ email, name, field string }{
		{"a@[1.2.3.4]", "Ann", "email"},
		{"a@-b.com", "Ann", "email"},
		{"a@b-.com", "Ann", "email"},
		{"a@example.com", "Ann\u202eevil", "name"},
		{"a@example.com", "Ann\u200b", "name"},
	} {
		events, err := domain.User{}.Register(domain.RegisterUser{UserID: "u1", Email: tc.email, Name: tc.name})
		then(t, events, err, invalid(tc.field))
	}
}

func TestErase(t *testing.T) {
	registered := domain.UserRegistered{UserID: "u1", Email: "a@example.com", Name: "A"}
	erased := domain.SubjectErased{UserID: "u1"}
	events, err := given[domain.User](registered).Erase("u1")
	then(t, events, err, outcome{events: []domain.Event{erased}})
	events, err = given[domain.User](registered, domain.UserDeactivated{UserID: "u1"}).Erase("u1")
	then(t, events, err, outcome{events: []domain.Event{erased}})
	events, err = given[domain.User](registered, erased).Erase("u1")
	then(t, events, err, outcome{})
	// A subject who never registered: the erasure is recorded all the same, once.
	events, err = given[domain.User]().Erase("u1")
	then(t, events, err, outcome{events: []domain.Event{erased}})
	events, err = given[domain.User](erased).Erase("u1")
	then(t, events, err, outcome{})
	u := given[domain.User](registered, erased)
	if u.Email != "" || u.Name != "" || u.Status != domain.UserStatusErased {
		t.Fatalf("erased user keeps %+v", u)
	}
	_, err = u.ChangeEmail(domain.ChangeEmail{Email: "b@example.com"})
	then(t, nil, err, outcome{err: domain.ErrUserErased})
	_, err = u.Deactivate()
	then(t, nil, err, outcome{err: domain.ErrUserErased})
}

// TestValidUserID: a user ID is a token's subject: Cognito's UUIDs, other issuers' "auth0|…",
// the ULIDs of users registered before subjects were IDs; nothing that cannot be part of a
// stream ID, nor anything longer than 128 characters.
func TestValidUserID(t *testing.T) {
	const id = "01J9ZQ4T8K5W3X2Y1V0B6N7M8C"
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"a ULID", id, true},
		{"a Cognito subject", "00dad63f-04b8-4552-8337-a0b48690001b", true},
		{"an Auth0 subject", "auth0|5f7c8ec7c33c6c004bbafe82", true},
		{"a Google subject via Auth0", "google-oauth2|104976518233112134521", true},
		{"an email-shaped subject", "ann+x@example.com", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"a slash", "a/b", false},
		{"dot", ".", false},
		{"dot-dot", "..", false},
		{"a leading separator", "|5f7c", false},
		{"a space", "a b", false},
		{"NUL", id[:25] + "\x00", false},
		{"percent-encoded", "%00", false},
		{"non-ASCII", "ü☃", false},
		{"a trailing newline", id + "\n", false},
		{"2,000 characters", strings.Repeat("A", 2000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidUserID("id", tt.id)
			var ve *domain.ValidationError
			if tt.ok != (err == nil) || (err != nil && (!errors.As(err, &ve) || ve.Field != "id")) {
				t.Fatalf("ValidUserID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
		})
	}
}
