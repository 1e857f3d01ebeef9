package storetest_test

import (
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

// TestMemoryContract runs the contract against the in-memory store; it needs no DynamoDB Local.
func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		base := store.NewMemory(storetest.V1, nil)
		return func(reg *store.Registry, clock func() time.Time) storetest.Store {
			return memoryUnderContract{base.WithRegistry(reg, clock)}
		}
	})
}

// memoryUnderContract is the in-memory store with a table for inserts: any name will do.
type memoryUnderContract struct{ *store.Memory }

func (memoryUnderContract) InsertTable() string { return "inserts" }
