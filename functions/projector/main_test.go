package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestWire(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for k, v := range map[string]string{
		"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "READ_MODELS_TABLE": "r", "PARKING_TABLE": "p", "KEYS_TABLE": "k", "DATA_KEY": "alias/d",
		"METRICS_STACK": "st", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
	} {
		t.Setenv(k, v)
	}
	if p, err := wire(context.Background(), log); err != nil || p == nil {
		t.Fatalf("wire = %v, %v", p, err)
	}
	t.Setenv("METRICS_STACK", "")
	if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "METRICS_STACK") {
		t.Fatalf("wire without METRICS_STACK: %v, want it named", err)
	}
	t.Setenv("METRICS_STACK", "st")
	t.Setenv("READ_MODELS_TABLE", "")
	t.Setenv("PARKING_TABLE", "")
	if _, err := wire(context.Background(), log); err == nil || !strings.Contains(err.Error(), "READ_MODELS_TABLE") || !strings.Contains(err.Error(), "PARKING_TABLE") {
		t.Fatalf("wire with a bad environment: %v, want every problem named", err)
	}
}
