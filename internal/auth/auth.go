// Package auth says who is calling, from what API Gateway's authorizers pass a function in the
// payload v2.0 request context, and what that caller may touch.
//
// API Gateway authenticates; the functions only read the result. A route with the JWT authorizer
// (the default of every route) passes the verified token's claims in
// requestContext.authorizer.jwt: the caller is a user, the token's subject (claim "sub"), and acts
// only on what is theirs. A route with IAM auth (the operator routes) passes the signing principal
// in requestContext.authorizer.iam: the caller is an operator and may see everything. A request
// with neither never came through API Gateway's authorizers and is refused.
//
// Who owns what is the application layer's to decide (package command and query check it with
// Caller.Owns); this package only names the caller.
package auth

import (
	"errors"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/domain"
)

// ErrUnauthenticated is returned by FromRequest when the request carries no caller API Gateway
// authenticated: no authorizer context, a JWT context without a well-formed subject, or an IAM
// context without a principal.
var ErrUnauthenticated = errors.New("auth: no authenticated caller")

// ErrForbidden is returned by the application layer (packages command and query) when the caller
// may not do what it asked, and that follows from the request alone, revealing nothing stored:
// the path names another user, a user calls an operator route or command, an operator a command
// that acts as a user. A request refused because of stored data (an account or order that is
// someone else's) gets domain.ErrNotFound instead, exactly as one that does not exist. Nothing
// was read or written.
var ErrForbidden = errors.New("auth: the caller may not do this")

// Caller is who sent a request.
type Caller struct {
	// Subject is the user the caller is (the token's "sub"); empty for an operator.
	Subject string
	// Operator says the caller is an IAM principal on an operator route.
	Operator bool
	// Principal is the operator's IAM principal (its ARN), for logs and audit; empty for a user.
	Principal string
}

// User returns the caller who is the user with the given subject.
func User(subject string) Caller { return Caller{Subject: subject} }

// Operator returns an operator caller, named by its IAM principal ARN.
func Operator(principal string) Caller { return Caller{Operator: true, Principal: principal} }

// Authenticated reports whether c is a caller at all: a user or an operator. The zero Caller is
// nobody.
func (c Caller) Authenticated() bool { return c.Operator || c.Subject != "" }

// Owns reports whether the caller may act on what belongs to owner: an operator may, a user only
// on what is their own. Nobody owns what has no owner.
func (c Caller) Owns(owner string) bool {
	return c.Operator || (c.Subject != "" && c.Subject == owner)
}

// AsUser returns nil when c is a user, ErrUnauthenticated for nobody and ErrForbidden for an
// operator (an operator acts on no one's behalf).
func (c Caller) AsUser() error {
	switch {
	case !c.Authenticated():
		return ErrUnauthenticated
	case c.Subject == "":
		return ErrForbidden
	}
	return nil
}

// AsOperator returns nil when c is an operator, ErrUnauthenticated for nobody and ErrForbidden
// for a user.
func (c Caller) AsOperator() error {
	switch {
	case !c.Authenticated():
		return ErrUnauthenticated
	case !c.Operator:
		return ErrForbidden
	}
	return nil
}

// MayActOn returns nil when c Owns what belongs to owner, ErrUnauthenticated for nobody and
// ErrForbidden for anyone else.
func (c Caller) MayActOn(owner string) error {
	switch {
	case !c.Authenticated():
		return ErrUnauthenticated
	case !c.Owns(owner):
		return ErrForbidden
	}
	return nil
}

// ValidSubject reports whether s can be a caller's subject, and so a user ID: the one rule is
// domain.ValidUserID's ([domain.UserIDPattern]). A subject outside it is refused rather than
// stored.
func ValidSubject(s string) bool { return domain.ValidUserID("sub", s) == nil }

// FromRequest returns the caller of a request from its authorizer context. It returns
// ErrUnauthenticated when there is none it can trust.
func FromRequest(rc events.APIGatewayV2HTTPRequestContext) (Caller, error) {
	a := rc.Authorizer
	switch {
	case a == nil:
		return Caller{}, ErrUnauthenticated
	case a.IAM != nil:
		if a.IAM.UserARN == "" {
			return Caller{}, ErrUnauthenticated
		}
		return Operator(a.IAM.UserARN), nil
	case a.JWT != nil:
		sub := a.JWT.Claims["sub"]
		if !ValidSubject(sub) {
			return Caller{}, ErrUnauthenticated
		}
		return User(sub), nil
	}
	return Caller{}, ErrUnauthenticated
}
