package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestWire(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for k, v := range map[string]string{
		"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "CLAIMS_TABLE": "c", "IDEMPOTENCY_TABLE": "i", "KEYS_TABLE": "k", "DATA_KEY": "alias/d",
		"EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"METRICS_STACK":  "st", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
	} {
		t.Setenv(k, v)
	}
	h, err := wire(context.Background(), log)
	if err != nil || len(h.Routes()) == 0 {
		t.Fatalf("wire = %v, %v", h, err)
	}
	t.Setenv("METRICS_STACK", "")
	if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "METRICS_STACK") {
		t.Fatalf("wire without METRICS_STACK: %v, want it named", err)
	}
	t.Setenv("METRICS_STACK", "st")
	t.Setenv("EVENTS_TABLE", "")
	t.Setenv("EMAIL_HASH_KEY", "")
	t.Setenv("DATA_KEY", "")
	if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "EVENTS_TABLE") || !strings.Contains(err.Error(), "EMAIL_HASH_KEY") || !strings.Contains(err.Error(), "DATA_KEY") {
		t.Fatalf("wire with a bad environment: %v, want every problem named", err)
	}
}
