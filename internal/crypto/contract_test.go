package crypto_test

import (
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

// TestSealedStoreContract runs the event-store contract against what production stores events
// through: crypto.SealingStore over store.DynamoDB on DynamoDB Local, with its keyring on the KMS
// emulator. The contract's Noted events have a personal field, "text", so those with a subject
// are sealed on append and opened on load. It seals a snapshot under its subject's key, which the
// subject's first event creates, so it runs with Features.SubjectNeedsEvent: it refuses a snapshot
// of a subject it has no events of (ErrShredded) where the plain stores check the snapshot itself.
func TestSealedStoreContract(t *testing.T) {
	client := awstest.DynamoDB(t)
	storetest.RunWith(t, func(t *testing.T) storetest.Opener {
		env := awstest.MustTables(t, client)
		kmsAPI := awstest.MustKeys(t, env)
		return func(reg *store.Registry, clock func() time.Time) storetest.Store {
			inner, err := store.New(client, store.Config{
				EventsTable:    env.Refs["EventsTable"],
				SnapshotsTable: env.Refs["SnapshotsTable"],
				ClaimsTable:    env.Refs["ClaimsTable"],
				Registry:       reg,
				Clock:          clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			keys := crypto.NewKeyring(kmsAPI, client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 1000, TTL: time.Minute, Clock: clock})
			return sealedUnderContract{crypto.NewSealingStore(inner, keys, contractFields), env.Refs["KeysTable"]}
		}
	}, storetest.Features{SubjectNeedsEvent: true})
}

// contractFields names the personal fields of the contract's event types.
func contractFields(eventType string) []string {
	if eventType == storetest.Noted {
		return []string{"text", "note"}
	}
	return nil
}

// sealedUnderContract is the sealing store with the keys table for the contract's inserts: it
// is a table with a string partition key "pk", and the contract's insert keys are no subjects.
type sealedUnderContract struct {
	*crypto.SealingStore
	insertTable string
}

func (s sealedUnderContract) InsertTable() string { return s.insertTable }
