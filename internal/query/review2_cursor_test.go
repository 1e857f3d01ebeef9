package query

import (
	"encoding/base64"
	"errors"
	"testing"
)

// TestReview2AuditCursorStrict: an audit cursor is read as strictly as a list cursor and a
// request body: a name twice is a bad cursor, not the last one; a name in another case is not
// the name; a number is an integer, written as one.
func TestReview2AuditCursorStrict(t *testing.T) {
	const stream = "account-a1"
	if from, err := decodeAuditCursor(encodeAuditCursor(stream, 7), stream); err != nil || from != 7 {
		t.Fatalf("issued cursor: %d, %v", from, err)
	}
	for name, plain := range map[string]string{
		"from twice":       `{"stream":"account-a1","from":2,"from":900}`,
		"stream twice":     `{"stream":"account-a2","stream":"account-a1","from":5}`,
		"other case":       `{"Stream":"account-a1","FROM":5}`,
		"folded name":      "{\"stream\":\"account-a1\",\"\u017Ftream\":\"account-a2\",\"from\":5}",
		"invalid UTF-8":    "{\"stream\":\"account-a1\",\"from\":5,\"x\xff\":1}",
		"null from":        `{"stream":"account-a1","from":null}`,
		"exponent":         `{"stream":"account-a1","from":5e0}`,
		"trailing garbage": `{"stream":"account-a1","from":5}x`,
		"two objects":      `{"stream":"account-a1","from":5}{}`,
		"unknown name":     `{"stream":"account-a1","from":5,"x":1}`,
		"missing stream":   `{"from":5}`,
		"string from":      `{"stream":"account-a1","from":"5"}`,
	} {
		t.Run(name, func(t *testing.T) {
			c := base64.RawURLEncoding.EncodeToString([]byte(plain))
			if from, err := decodeAuditCursor(c, stream); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("cursor %s accepted at %d (%v), want ErrBadCursor", plain, from, err)
			}
		})
	}
}
