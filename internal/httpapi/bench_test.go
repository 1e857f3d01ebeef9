package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
)

// BenchmarkCommandWithEncryption interleaves, on the same DynamoDB Local, placing an order on
// the plain event store and on the sealing store (the shipping address sealed under the
// customer's key, warm in the cache), and reports sealed time / plain time (target <= 1.05) and
// the KMS calls made after warm-up (target 0).
func BenchmarkCommandWithEncryption(b *testing.B) {
	client := awstest.DynamoDB(b)
	env := awstest.MustTables(b, client)
	reg, _ := command.Registry()
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], ClaimsTable: env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	keys := crypto.NewKeyring(awstest.MustKeys(b, env), client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Hour})
	key := []byte("0123456789abcdef0123456789abcdef")
	plain, _ := command.New(command.Config{Store: raw, EmailKey: key})
	sealed, _ := command.New(command.Config{Store: crypto.NewSealingStore(raw, keys, domain.PersonalFields), EmailKey: key, Eraser: keys})
	ctx := context.Background()
	ids := store.NewIDs(nil)
	plainUser, sealedUser := ids.New(), ids.New() // the customers: users, each paying from an account of theirs
	as := func(user string) command.Meta {
		return command.Meta{CommandID: ids.New(), CorrelationID: "bench", Caller: auth.User(user)}
	}
	for _, s := range []struct {
		svc *command.Service
		id  string
	}{{plain, plainUser}, {sealed, sealedUser}} {
		if _, err := s.svc.RegisterUser(ctx, as(s.id), domain.RegisterUser{UserID: s.id, Email: s.id + "@example.com", Name: "Bench"}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.svc.OpenAccount(ctx, as(s.id), domain.OpenAccount{AccountID: "acc-" + s.id, Currency: "EUR"}); err != nil {
			b.Fatal(err)
		}
	}
	warm := keys.KMSCalls()
	var tPlain, tSealed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := func(id, customer string) domain.PlaceOrder {
			return domain.PlaceOrder{OrderID: fmt.Sprintf("%s-%d", id, i), CustomerID: customer, PaymentAccountID: "acc-" + customer, Currency: "EUR",
				Lines:           []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
				ShippingAddress: domain.Address{Name: "Ann Example", Line1: "1 Main Street", City: "Berlin", PostalCode: "10115", Country: "DE"}}
		}
		t0 := time.Now()
		if _, err := plain.PlaceOrder(ctx, as(plainUser), order("p", plainUser)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := sealed.PlaceOrder(ctx, as(sealedUser), order("s", sealedUser)); err != nil {
			b.Fatal(err)
		}
		tSealed += time.Since(t1)
		tPlain += t1.Sub(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(tSealed)/float64(tPlain), "sealed/plain")
	b.ReportMetric(float64(keys.KMSCalls()-warm), "kms-calls")
}
