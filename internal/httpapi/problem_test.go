package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

// TestRuleProblems: every business rule of the domain is a 422 whose type is stable: rule: and
// the rule's code, whether the error comes bare or wrapped.
func TestRuleProblems(t *testing.T) {
	for _, tc := range []struct {
		err  *domain.RuleError
		want string
	}{
		{domain.ErrAccountNotOwned, "urn:eventfold:problem:rule:account-not-owned"},
		{domain.ErrCurrencyMismatch, "urn:eventfold:problem:rule:currency-mismatch"},
		{domain.ErrInsufficientFunds, "urn:eventfold:problem:rule:insufficient-funds"},
		{domain.ErrInsufficientStock, "urn:eventfold:problem:rule:insufficient-stock"},
		{domain.ErrOrderState, "urn:eventfold:problem:rule:order-state"},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("charge account-1: %w", tc.err)} {
			p, internal := problemFor(err)
			if internal || p.Status != http.StatusUnprocessableEntity || p.Type != tc.want || p.Detail != tc.err.Detail {
				t.Errorf("problemFor(%v) = %+v (internal %v), want 422 %s", err, p, internal, tc.want)
			}
		}
	}
}
