package crypto_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// keyring makes a keyring on the template's keys table and key, on DynamoDB Local and the KMS
// emulator; open makes more (other processes' keyrings), and give gives a subject their key, as
// their first event does.
func keyring(t testing.TB, ttl time.Duration, c *storetest.Clock) (k *crypto.Keyring, open func() *crypto.Keyring, give func(subject string)) {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	kmsAPI := awstest.MustKeys(t, env)
	var now func() time.Time
	if c != nil {
		now = c.Now
	}
	open = func() *crypto.Keyring {
		return crypto.NewKeyring(kmsAPI, client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 1000, TTL: ttl, Clock: now})
	}
	k = open()
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], Registry: userRegistry})
	if err != nil {
		t.Fatal(err)
	}
	st := crypto.NewSealingStore(raw, k, domain.PersonalFields)
	give = func(subject string) {
		t.Helper()
		if _, err := st.AppendStreams(context.Background(), registered(subject, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return k, open, give
}

var userRegistry = store.MustRegistry(store.EventType{Name: domain.TypeUserRegistered, Schema: 1})

var ids = store.NewIDs(nil)

// registered is the append of a UserRegistered event of subject to the stream "user-"+subject.
func registered(subject string, expected int64) store.StreamAppend {
	data, _ := json.Marshal(domain.UserRegistered{UserID: subject, Email: subject + "@example.com", Name: "Name of " + subject})
	return store.StreamAppend{StreamID: "user-" + subject, Expected: expected, Events: []store.Event{{ID: ids.New(), Type: domain.TypeUserRegistered, Subject: subject, Data: data}}}
}

func TestSealOpenRoundTripAndBinding(t *testing.T) {
	key := bytes.Repeat([]byte{7}, crypto.KeySize)
	sealed, err := crypto.Seal(key, "user-1", "event-1", []byte("ann@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("ann@example.com")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	again, _ := crypto.Seal(key, "user-1", "event-1", []byte("ann@example.com"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same value are equal: the nonce is not fresh")
	}
	if got, err := crypto.Open(key, "user-1", "event-1", sealed); err != nil || string(got) != "ann@example.com" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		key            []byte
		subject, place string
		sealed         []byte
		want           error
	}{
		"tampered":       {key, "user-1", "event-1", tampered, crypto.ErrTampered},
		"other subject":  {key, "user-2", "event-1", sealed, crypto.ErrTampered},
		"other place":    {key, "user-1", "event-2", sealed, crypto.ErrTampered},
		"other key":      {bytes.Repeat([]byte{8}, 32), "user-1", "event-1", sealed, crypto.ErrTampered},
		"unknown format": {key, "user-1", "event-1", append([]byte{9}, sealed[1:]...), crypto.ErrFormat},
		"too short":      {key, "user-1", "event-1", sealed[:10], crypto.ErrFormat},
	} {
		if _, err := crypto.Open(tc.key, tc.subject, tc.place, tc.sealed); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestKeyringCachesAndErases(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock(time.Now())
	k, open, give := keyring(t, time.Minute, c)
	// Sealing needs a stored key: a subject gets theirs with their first event.
	if _, err := k.Seal(ctx, "user-42", "event-a", []byte("x")); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("seal for a subject without a key: %v, want ErrShredded", err)
	}
	if n := k.KMSCalls(); n != 0 {
		t.Fatalf("a seal without a key made %d KMS calls, want none", n)
	}
	give("user-42")
	var sealed [][]byte
	for i := 0; i < 20; i++ {
		s, err := k.Seal(ctx, "user-42", "event-"+string(rune('a'+i)), []byte("Ann Example"))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	if n := k.KMSCalls(); n != 1 {
		t.Fatalf("the first event and 20 seals for one subject made %d KMS calls, want 1 (GenerateDataKey)", n)
	}
	// Another process unwraps the stored key once, then serves from its cache.
	other := open()
	for i, s := range sealed {
		got, err := other.Open(ctx, "user-42", "event-"+string(rune('a'+i)), s)
		if err != nil || string(got) != "Ann Example" {
			t.Fatalf("open %d: %q, %v", i, got, err)
		}
	}
	if n := other.KMSCalls(); n != 1 {
		t.Fatalf("20 opens made %d KMS calls, want 1 (Decrypt)", n)
	}
	// A subject that never had data has nothing to open.
	if _, err := other.Open(ctx, "user-none", "e", sealed[0]); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("open for a subject without a key: %v, want ErrShredded", err)
	}
	// Erasure: at once in the erasing process, within the TTL in others.
	if err := k.Erase(ctx, "user-42"); err != nil {
		t.Fatal(err)
	}
	if err := k.Erase(ctx, "user-42"); err != nil {
		t.Fatalf("second erasure: %v", err)
	}
	if _, err := k.Open(ctx, "user-42", "event-a", sealed[0]); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("open after erasure: %v, want ErrShredded", err)
	}
	if _, err := other.Open(ctx, "user-42", "event-a", sealed[0]); err != nil {
		t.Fatalf("within the TTL the other process still has the key: %v", err)
	}
	c.Advance(2 * time.Minute)
	if _, err := other.Open(ctx, "user-42", "event-a", sealed[0]); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("after the TTL: %v, want ErrShredded", err)
	}
	// No new key is made for an erased subject.
	if _, err := k.Seal(ctx, "user-42", "event-z", []byte("x")); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("seal for an erased subject: %v, want ErrShredded", err)
	}
	if _, err := crypto.NewSealingStore(nil, open(), domain.PersonalFields).AppendStreams(ctx, registered("user-42", 1)); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("append for an erased subject: %v, want ErrShredded", err)
	}
	give("user-43")
	if _, err := open().Seal(ctx, "user-43", "e", []byte("x")); err != nil {
		t.Fatalf("another subject: %v", err)
	}
}

// TestErrorsHoldNoData: a tampered sealed field fails to open with an error that names the field,
// never its value or the key.
func TestErrorsHoldNoData(t *testing.T) {
	ctx := context.Background()
	k, _, give := keyring(t, time.Minute, nil)
	give("user-7")
	give("user-8")
	data, err := k.SealFields(ctx, "user-7", "event-1", json.RawMessage(`{"email":"secret-value@example.com","n":1}`), []string{"email"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("secret-value")) {
		t.Fatalf("sealed payload %s holds the value", data)
	}
	tampered := bytes.Replace(data, []byte(`"ef1.`), []byte(`"ef1.AA`), 1)
	_, _, err = k.OpenFields(ctx, "user-7", "event-1", tampered, []string{"email"})
	if !errors.Is(err, crypto.ErrTampered) && !errors.Is(err, crypto.ErrFormat) {
		t.Fatalf("tampered field: %v", err)
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "email") {
		t.Fatalf("error %q must name the field, not its value", err)
	}
	// Under another subject's key (one that exists), the field does not authenticate.
	if _, err := k.SealFields(ctx, "user-8", "event-2", json.RawMessage(`{"email":"x@example.com"}`), []string{"email"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = k.OpenFields(ctx, "user-8", "event-1", data, []string{"email"})
	if !errors.Is(err, crypto.ErrTampered) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("another subject's field: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, crypto.KeySize)
	good, _ := crypto.Seal(key, "s", "p", []byte("hello"))
	f.Add(good, "s", "p")
	f.Add([]byte{1, 2, 3}, "s", "p")
	f.Fuzz(func(t *testing.T, sealed []byte, subject, place string) {
		got, err := crypto.Open(key, subject, place, sealed)
		if err != nil {
			if !errors.Is(err, crypto.ErrTampered) && !errors.Is(err, crypto.ErrFormat) {
				t.Fatalf("Open error %v is neither ErrTampered nor ErrFormat", err)
			}
			return
		}
		if !bytes.Equal(sealed, good) || string(got) != "hello" {
			t.Fatalf("a value that is not the sealed one opened: %q", got)
		}
	})
}

// TestSealingStore: personal fields are sealed in the stored item and open on load; snapshots
// with a subject are sealed whole; after erasure the events load shredded and the snapshot is
// gone.
func TestSealingStore(t *testing.T) {
	ctx := context.Background()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	keys := crypto.NewKeyring(awstest.MustKeys(t, env), client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	reg := store.MustRegistry(store.EventType{Name: domain.TypeUserRegistered, Schema: 1})
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	st := crypto.NewSealingStore(raw, keys, domain.PersonalFields)
	ids := store.NewIDs(nil)
	data, _ := json.Marshal(domain.UserRegistered{UserID: "u9", Email: "nine@example.com", Name: "Nine"})
	if _, err := st.AppendStreams(ctx, store.StreamAppend{StreamID: "user-u9", Events: []store.Event{{ID: ids.New(), Type: domain.TypeUserRegistered, Subject: "u9", Data: data}}}); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Load(ctx, "user-u9", store.Span{})
	if err != nil || bytes.Contains(stored[0].Data, []byte("nine")) || bytes.Contains(stored[0].Data, []byte("Nine")) || !bytes.Contains(stored[0].Data, []byte(`"userId":"u9"`)) {
		t.Fatalf("stored payload %s (%v): personal fields must be sealed, the rest plain", stored[0].Data, err)
	}
	opened, err := st.Load(ctx, "user-u9", store.Span{})
	if err != nil || opened[0].Shredded || !bytes.Contains(opened[0].Data, []byte("nine@example.com")) {
		t.Fatalf("loaded %s (%v)", opened[0].Data, err)
	}
	if err := st.SaveSnapshot(ctx, store.Snapshot{StreamID: "user-u9", Version: 1, EventID: stored[0].ID, SchemaVersion: 1, Subject: "u9", Data: []byte(`{"Email":"nine@example.com"}`)}); err != nil {
		t.Fatal(err)
	}
	if rawSnap, err := raw.LoadSnapshot(ctx, "user-u9", 1); err != nil || bytes.Contains(rawSnap.Data, []byte("nine")) {
		t.Fatalf("stored snapshot %s (%v)", rawSnap.Data, err)
	}
	if snap, err := st.LoadSnapshot(ctx, "user-u9", 1); err != nil || string(snap.Data) != `{"Email":"nine@example.com"}` {
		t.Fatalf("snapshot %s (%v)", snap.Data, err)
	}
	if err := keys.Erase(ctx, "u9"); err != nil {
		t.Fatal(err)
	}
	after, err := st.Load(ctx, "user-u9", store.Span{})
	if err != nil || !after[0].Shredded || bytes.Contains(after[0].Data, []byte("nine")) {
		t.Fatalf("after erasure %s shredded=%v (%v)", after[0].Data, after[0].Shredded, err)
	}
	if _, err := st.LoadSnapshot(ctx, "user-u9", 1); !errors.Is(err, store.ErrNoSnapshot) {
		t.Fatalf("snapshot after erasure: %v, want ErrNoSnapshot", err)
	}
	if _, err := st.AppendStreams(ctx, store.StreamAppend{StreamID: "user-u9", Expected: 1, Events: []store.Event{{ID: ids.New(), Type: domain.TypeUserRegistered, Subject: "u9", Data: data}}}); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("append for an erased subject: %v, want ErrShredded", err)
	}
}
