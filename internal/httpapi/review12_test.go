package httpapi_test

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// uriPath is RFC 3986's path-absolute: segments of unreserved characters, percent-encodings,
// sub-delims, ':' and '@'.
var uriPath = regexp.MustCompile(`^(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)+$`)

// TestReview12LocationOfASubjectIsAURI: POST /users registers the caller under their token's
// subject, and subjects of other issuers hold characters a URI path may not hold as they are
// ("auth0|…"). Location must be a URI reference (RFC 9110 §10.2.2) that names the new user:
// the subject percent-encoded, which API Gateway decodes back into the path parameter.
func TestReview12LocationOfASubjectIsAURI(t *testing.T) {
	hs := newHarness(t)
	r := hs.do(t, as(request(t, "POST /users", `{"email":"pipe@example.com","name":"P"}`, nil), otherSubject))
	wantStatus(t, r, http.StatusCreated, "")
	loc := r.Headers["Location"]
	if !uriPath.MatchString(loc) {
		t.Fatalf("Location %q is not a URI path", loc)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Path != "/users/"+otherSubject {
		t.Fatalf("Location %q names %q (%v), want /users/%s", loc, u.Path, err, otherSubject)
	}
}
