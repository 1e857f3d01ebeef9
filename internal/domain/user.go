package domain

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// User event types.
const (
	TypeUserRegistered   = "UserRegistered"
	TypeUserEmailChanged = "UserEmailChanged"
	TypeUserDeactivated  = "UserDeactivated"
	TypeSubjectErased    = "SubjectErased"
)

// UserRegistered: a person signed up.
type UserRegistered struct {
	UserID string `json:"userId"`
	Email  string `json:"email" personal:"true"`
	Name   string `json:"name" personal:"true"`
}

// UserEmailChanged: a user's email address changed.
type UserEmailChanged struct {
	UserID string `json:"userId"`
	Email  string `json:"email" personal:"true"`
}

// UserDeactivated: a user can no longer act.
type UserDeactivated struct {
	UserID string `json:"userId"`
}

// SubjectErased: a person's personal data was erased (their key shredded). It holds none.
type SubjectErased struct {
	UserID string `json:"userId"`
}

func (SubjectErased) EventType() string    { return TypeSubjectErased }
func (UserRegistered) EventType() string   { return TypeUserRegistered }
func (UserEmailChanged) EventType() string { return TypeUserEmailChanged }
func (UserDeactivated) EventType() string  { return TypeUserDeactivated }

// DataSubject is the user: the email and name are theirs.
func (e UserRegistered) DataSubject() string { return e.UserID }

// DataSubject is the user.
func (e UserEmailChanged) DataSubject() string { return e.UserID }

// UserStatus is where a user is in its life.
type UserStatus string

// UserIDPattern is the shape of a user ID, and so of an authenticated caller's subject (package
// auth accepts a token's "sub" only when it has it): a user's ID is the subject of their token.
// Cognito's subjects are UUIDs ("00dad63f-04b8-4552-8337-a0b48690001b"); other OpenID Connect
// issuers use letters, digits and a few separators ("auth0|5f7c…", "google-oauth2|1049…"),
// beginning with a letter or digit (so no "." or ".."). Every character is one a stream ID may
// hold (store.ValidStreamID), so "user-"+id is a stream.
const UserIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:|@+-]{0,127}$`

var userIDPattern = regexp.MustCompile(UserIDPattern)

// ValidUserID reports a *ValidationError for field unless id is a user ID ([UserIDPattern]): the
// subject of an authenticated caller. Users are data subjects, and so are the customers of
// orders, whose IDs are user IDs: an ID that fails this rule can have no personal data.
func ValidUserID(field, id string) error {
	if !userIDPattern.MatchString(id) {
		return invalid(field, "must be a user ID: 1 to 128 letters, digits, '.', '_', ':', '|', '@', '+' or '-'")
	}
	return nil
}

// User statuses; the zero status means the user does not exist.
const (
	UserStatusActive      UserStatus = "active"
	UserStatusDeactivated UserStatus = "deactivated"
	UserStatusErased      UserStatus = "erased"
)

// User is the state of a user aggregate.
type User struct {
	ID     string
	Status UserStatus
	Email  string
	Name   string
}

// Exists reports whether the user has registered.
func (u User) Exists() bool { return u.Status != "" }

// Evolve returns the user after e.
func (u User) Evolve(e Event) User {
	switch e := e.(type) {
	case UserRegistered:
		u.ID, u.Status, u.Email, u.Name = e.UserID, UserStatusActive, e.Email, e.Name
	case UserEmailChanged:
		u.Email = e.Email
	case UserDeactivated:
		u.Status = UserStatusDeactivated
	case SubjectErased:
		u.ID, u.Status, u.Email, u.Name = e.UserID, UserStatusErased, "", ""
	}
	return u
}

// RegisterUser signs a person up.
type RegisterUser struct {
	UserID string
	Email  string
	Name   string
}

// Register decides RegisterUser. The email must be unused by other users; the application layer
// enforces that with a uniqueness guard on EmailKey of the normalised address.
func (u User) Register(c RegisterUser) ([]Event, error) {
	if u.Exists() {
		return nil, ErrExists
	}
	if c.UserID == "" {
		return nil, invalid("userId", "is required")
	}
	email, err := NormalizeEmail(c.Email)
	if err != nil {
		return nil, err
	}
	name, err := normalizeName(c.Name)
	if err != nil {
		return nil, err
	}
	return []Event{UserRegistered{UserID: c.UserID, Email: email, Name: name}}, nil
}

// ChangeEmail changes a user's email address.
type ChangeEmail struct {
	Email string
}

// ChangeEmail decides ChangeEmail: only an active user can; the same address changes nothing.
func (u User) ChangeEmail(c ChangeEmail) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	if u.Status == UserStatusErased {
		return nil, ErrUserErased
	}
	email, err := NormalizeEmail(c.Email)
	if err != nil {
		return nil, err
	}
	if u.Status != UserStatusActive {
		return nil, ErrUserInactive
	}
	if email == u.Email {
		return nil, nil
	}
	return []Event{UserEmailChanged{UserID: u.ID, Email: email}}, nil
}

// Deactivate decides deactivating the user; a deactivated user cannot be deactivated again.
func (u User) Deactivate() ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	switch u.Status {
	case UserStatusErased:
		return nil, ErrUserErased
	case UserStatusDeactivated:
		return nil, ErrUserInactive
	}
	return []Event{UserDeactivated{UserID: u.ID}}, nil
}

// Erase decides erasing the personal data of data subject id, whose user this is: erasing an
// erased subject changes nothing. A subject who never registered (a customer named on orders)
// is erased all the same, so that the event store records every erasure: a restore of the
// events table applies them all again.
func (u User) Erase(id string) ([]Event, error) {
	switch {
	case !u.Exists():
		return []Event{SubjectErased{UserID: id}}, nil
	case u.Status == UserStatusErased:
		return nil, nil
	}
	return []Event{SubjectErased{UserID: u.ID}}, nil
}

// NormalizeEmail validates an email address and returns its normal form: trimmed, lower case.
// Display names ("Ann <ann@example.com>") are refused.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", invalid("email", "is required")
	}
	if len(s) > 254 {
		return "", invalid("email", "is longer than 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !hostnamePattern.MatchString(s[strings.LastIndexByte(s, '@')+1:]) {
		return "", invalid("email", "is not an email address")
	}
	return s, nil
}

// hostnamePattern is a DNS name of two labels or more: no IP literals, no label that starts or
// ends with '-'.
var hostnamePattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// printable reports whether s is UTF-8 text without control or invisible formatting characters
// (such as U+202E RIGHT-TO-LEFT OVERRIDE or U+200B ZERO WIDTH SPACE).
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) < 0
}

func normalizeName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid("name", "is required")
	case !printable(s):
		return "", invalid("name", "contains control or invisible characters, or is not UTF-8")
	case utf8.RuneCountInString(s) > 200:
		return "", invalid("name", "is longer than 200 characters")
	}
	return s, nil
}
