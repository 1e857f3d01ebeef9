package query

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var listKey = map[string]types.AttributeValue{
	"pk": &types.AttributeValueMemberS{Value: "user-u1"}, "userStatus": &types.AttributeValueMemberS{Value: "active"},
}

// FuzzCursors feeds arbitrary cursors to both decoders: neither panics, each refuses what it did
// not issue with ErrBadCursor, an accepted audit cursor names its stream and re-encodes to
// itself, and no cursor is accepted by both.
func FuzzCursors(f *testing.F) {
	f.Add(encodeAuditCursor("account-a1", 101))
	list, _ := encodeCursor(listKey)
	f.Add(list)
	f.Add("")
	f.Add("!!")
	f.Add("eyJzdHJlYW0iOiJhY2NvdW50LWExIiwiZnJvbSI6MX0") // {"stream":"account-a1","from":1}
	f.Fuzz(func(t *testing.T, c string) {
		from, aerr := decodeAuditCursor(c, "account-a1")
		switch {
		case aerr == nil:
			if from < 2 || from > maxVersion {
				t.Fatalf("audit cursor %q accepted at version %d", c, from)
			}
			if again, err := decodeAuditCursor(encodeAuditCursor("account-a1", from), "account-a1"); err != nil || again != from {
				t.Fatalf("re-encoded cursor of %d: %d %v", from, again, err)
			}
			if _, err := decodeAuditCursor(c, "account-a2"); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("audit cursor %q accepted for another stream: %v", c, err)
			}
		case !errors.Is(aerr, ErrBadCursor):
			t.Fatalf("audit cursor %q: %v, want ErrBadCursor", c, aerr)
		}
		start, lerr := decodeCursor(c, "userStatus", "active")
		if lerr != nil && !errors.Is(lerr, ErrBadCursor) {
			t.Fatalf("list cursor %q: %v, want ErrBadCursor", c, lerr)
		}
		if c != "" && aerr == nil && lerr == nil {
			t.Fatalf("cursor %q accepted by the audit trail and a list: %v", c, start)
		}
	})
}

func TestCursorsOfOneKindOnly(t *testing.T) {
	audit := encodeAuditCursor("user-u1", 5)
	if _, err := decodeCursor(audit, "userStatus", "active"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("a list took an audit cursor: %v", err)
	}
	list, err := encodeCursor(listKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeAuditCursor(list, "user-u1"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("the audit trail took a list cursor: %v", err)
	}
	if from, err := decodeAuditCursor(audit, "user-u1"); err != nil || from != 5 {
		t.Errorf("own cursor: %d %v", from, err)
	}
}
