package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// Problem is an RFC 9457 problem detail. Type values are stable: clients branch on them.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// InvalidParams names the invalid fields of a 400.
	InvalidParams []InvalidParam `json:"invalidParams,omitempty"`
	// CurrentVersion is the aggregate's version, on a 409 version conflict.
	CurrentVersion *int64 `json:"currentVersion,omitempty"`
	CorrelationID  string `json:"correlationId,omitempty"`
}

// InvalidParam is one invalid field and why; never its value.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Problem types.
const (
	typePrefix        = "urn:eventfold:problem:"
	TypeValidation    = typePrefix + "validation"
	TypeMalformed     = typePrefix + "malformed-request"
	TypeNotFound      = typePrefix + "not-found"
	TypeRouteNotFound = typePrefix + "route-not-found"
	TypeConflict      = typePrefix + "version-conflict"
	// TypePreconditionFailed is a 412: an If-Match that cannot hold — any on a route that creates
	// (the resource has no current version yet), * on a resource that does not exist.
	TypePreconditionFailed = typePrefix + "precondition-failed"
	TypeExists             = typePrefix + "already-exists"
	TypeTooLarge           = typePrefix + "payload-too-large"
	TypeMediaType          = typePrefix + "unsupported-media-type"
	TypeKeyReused          = typePrefix + "idempotency-key-reused"
	// TypeUnauthenticated is a 401: the request carries no caller API Gateway authenticated.
	TypeUnauthenticated = typePrefix + "unauthenticated"
	// TypeForbidden is a 403: the caller may not do this, as the request alone shows (see the
	// package doc); it reveals nothing stored.
	TypeForbidden = typePrefix + "forbidden"
	// TypeUnknownPaymentAccount is a 422 of POST /orders: paymentAccountId is not an open account
	// of the caller's (none such, or someone else's: the same answer). Nothing was appended.
	TypeUnknownPaymentAccount = typePrefix + "unknown-payment-account"
	TypeKeyInProgress         = typePrefix + "idempotency-key-in-progress"
	TypeInternal              = typePrefix + "internal"
	TypeRulePrefix            = typePrefix + "rule:" // + domain.RuleError.Code
	problemContentType        = "application/problem+json"
)

func newProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

// problemFor translates an error from the command layer into a problem, once, at the edge.
// Internal errors become a bare 500; their text is for the log only.
func problemFor(err error) (*Problem, bool) {
	var (
		ve   *domain.ValidationError
		rule *domain.RuleError
		ce   *store.ConflictError
		p    *Problem
	)
	switch {
	case errors.As(err, &p):
		return p, false
	case errors.As(err, &ve):
		pr := newProblem(http.StatusBadRequest, TypeValidation, "the request has invalid fields")
		pr.InvalidParams = []InvalidParam{{Name: ve.Field, Reason: ve.Reason}}
		return pr, false
	case errors.As(err, &rule):
		return newProblem(http.StatusUnprocessableEntity, TypeRulePrefix+rule.Code, rule.Detail), false
	case errors.As(err, &ce):
		pr := newProblem(http.StatusConflict, TypeConflict, "the resource changed since the version given in If-Match, or concurrently")
		if ce.Actual >= 0 {
			pr.CurrentVersion = &ce.Actual
		}
		return pr, false
	case errors.Is(err, auth.ErrUnauthenticated):
		return newProblem(http.StatusUnauthorized, TypeUnauthenticated, "the request carries no authenticated caller"), false
	case errors.Is(err, auth.ErrForbidden):
		return newProblem(http.StatusForbidden, TypeForbidden, "the caller may not do this"), false
	case errors.Is(err, command.ErrUnknownPaymentAccount):
		return newProblem(http.StatusUnprocessableEntity, TypeUnknownPaymentAccount, "paymentAccountId is not one of your accounts"), false
	case errors.Is(err, crypto.ErrShredded):
		return newProblem(http.StatusUnprocessableEntity, TypeRulePrefix+"subject-erased", "the personal data this needs was erased"), false
	case errors.Is(err, command.ErrPreconditionFailed):
		return newProblem(http.StatusPreconditionFailed, TypePreconditionFailed, "the resource does not exist, so If-Match: * does not hold"), false
	case errors.Is(err, domain.ErrNotFound):
		return newProblem(http.StatusNotFound, TypeNotFound, "no such resource"), false
	case errors.Is(err, domain.ErrExists):
		return newProblem(http.StatusConflict, TypeExists, "the resource exists already"), false
	}
	return newProblem(http.StatusInternalServerError, TypeInternal, "the request failed; retry it with the same Idempotency-Key"), true
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

func (p *Problem) response(correlationID string) events.APIGatewayV2HTTPResponse {
	p.CorrelationID = correlationID
	body, _ := json.Marshal(p)
	headers := map[string]string{"Content-Type": problemContentType}
	if p.Status == http.StatusUnauthorized {
		headers["WWW-Authenticate"] = "Bearer"
	}
	if p.CurrentVersion != nil {
		headers["ETag"] = etag(*p.CurrentVersion)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: headers, Body: string(body)}
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
