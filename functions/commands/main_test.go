package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestWire builds the function as its cold start does, reading the email hash key from the
// stack's secret on moto's Secrets Manager, and names every problem of a bad environment.
func TestWire(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	env, err := awstest.MustTemplate(t).LocalEnv("wire-"+randomSuffix(t), localaws.Region, localaws.Account)
	if err != nil {
		t.Fatal(err)
	}
	awstest.MustSecrets(t, env)
	for k, v := range map[string]string{
		"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "CLAIMS_TABLE": "c", "IDEMPOTENCY_TABLE": "i", "KEYS_TABLE": "k", "DATA_KEY": "alias/d",
		"EMAIL_HASH_KEY_SECRET":            env.Refs["EmailHashKeySecret"],
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": awstest.KMSEndpoint(t),
		"AWS_REGION":                       localaws.Region, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
	} {
		t.Setenv(k, v)
	}
	h, err := wire(context.Background(), log)
	if err != nil || len(h.Routes()) == 0 {
		t.Fatalf("wire = %v, %v", h, err)
	}

	t.Run("a missing secret fails the cold start", func(t *testing.T) {
		t.Setenv("EMAIL_HASH_KEY_SECRET", env.Refs["AWS::StackName"]+"-no-such-secret")
		if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "no-such-secret") {
			t.Fatalf("wire = %v, want the missing secret named", err)
		}
	})
	t.Run("a short secret is no key", func(t *testing.T) {
		sm := localaws.SecretsManager(awstest.KMSEndpoint(t))
		name := env.Refs["AWS::StackName"] + "-short"
		if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(strings.Repeat("k", 31))}); err != nil {
			t.Fatal(err)
		}
		t.Setenv("EMAIL_HASH_KEY_SECRET", name)
		_, err := wire(context.Background(), log)
		if !errors.Is(err, app.ErrWeakEmailHashKey) || strings.Contains(err.Error(), strings.Repeat("k", 31)) {
			t.Fatalf("wire = %v, want ErrWeakEmailHashKey without the value", err)
		}
	})
	t.Run("a bad environment names every problem", func(t *testing.T) {
		t.Setenv("EVENTS_TABLE", "")
		t.Setenv("EMAIL_HASH_KEY_SECRET", "")
		t.Setenv("DATA_KEY", "")
		if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "EVENTS_TABLE") || !strings.Contains(err.Error(), "EMAIL_HASH_KEY_SECRET") || !strings.Contains(err.Error(), "DATA_KEY") {
			t.Fatalf("wire with a bad environment: %v, want every problem named", err)
		}
	})
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
