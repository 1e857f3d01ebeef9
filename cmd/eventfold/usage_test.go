package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

// runOut runs the command line args and returns its error, stdout and stderr.
func runOut(t *testing.T, args ...string) (err error, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return err, o.String(), e.String()
}

// flagNames returns the flags a usage text lists, sorted.
func flagNames(usage string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// commonFlags are the flags every command takes.
var commonFlags = []string{"cloudformation-endpoint", "endpoint", "stack", "template"}

// keyFlags are the flags of the commands that read the keys table.
var keyFlags = []string{"data-key", "keys-table", "kms-endpoint"}

func TestCommandHelpListsOnlyItsOwnFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd   string
		flags [][]string
	}{
		{"tables create", [][]string{commonFlags}},
		{"projections rebuild", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "read-models-table", "parking-table", "segments", "target"}}},
		{"projections repair", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "read-models-table", "parking-table", "segments", "failures-queue", "claim-for"}}},
		{"parked list", [][]string{commonFlags, {"parking-table", "consumer"}}},
		{"parked replay", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "read-models-table", "parking-table", "schedule-group", "consumer"}}},
		{"sagas list", [][]string{commonFlags, {"read-models-table", "stuck", "now"}}},
		{"sagas redrive", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "parking-table", "schedule-group"}}},
		{"sagas repair", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "parking-table", "schedule-group", "failures-queue", "claim-for"}}},
		{"sagas check", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "read-models-table", "parking-table"}}},
		{"erasure audit", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "read-models-table", "idempotency-table", "parking-table", "subject"}}},
		{"restore copy", [][]string{commonFlags, {"events-table", "until", "target"}}},
		{"restore apply", [][]string{commonFlags, keyFlags,
			{"events-table", "snapshots-table", "claims-table", "idempotency-table", "from", "dry-run"}}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			want := slices.Sorted(slices.Values(slices.Concat(tc.flags...)))
			err, out, errOut := runOut(t, append(strings.Fields(tc.cmd), "-h")...)
			if !errors.Is(err, flag.ErrHelp) || errOut != "" {
				t.Fatalf("-h: %v, want flag.ErrHelp and nothing on stderr:\n%s", err, errOut)
			}
			if !strings.HasPrefix(out, "usage: eventfold "+tc.cmd+" ") {
				t.Errorf("-h does not open with the command's usage line:\n%s", out)
			}
			// The usage line, a blank line, then the command's own paragraph.
			if parts := strings.SplitN(out, "\n\n", 3); len(parts) < 3 || len(strings.Fields(parts[1])) < 10 {
				t.Errorf("-h has no paragraph describing the command:\n%s", out)
			}
			if got := flagNames(out); !slices.Equal(got, want) {
				t.Errorf("-h lists the flags\n  %v\nwant\n  %v\n%s", got, want, out)
			}
			// `eventfold help NOUN VERB` is the same text.
			if err, help, _ := runOut(t, append([]string{"help"}, strings.Fields(tc.cmd)...)...); !errors.Is(err, flag.ErrHelp) || help != out {
				t.Errorf("help %s: %v\n%s\nwant the -h text", tc.cmd, err, help)
			}
		})
	}
}

func TestCommandRejectsFlagsNotItsOwn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tables", "create", "-subject", "x"}, `tables create: flag provided but not defined: -subject`},
		{[]string{"tables", "create", "-events-table", "x"}, `tables create: flag provided but not defined: -events-table`},
		{[]string{"erasure", "audit", "-subject", "x", "-segments", "2"}, `erasure audit: flag provided but not defined: -segments`},
		{[]string{"parked", "list", "-data-key", "k"}, `parked list: flag provided but not defined: -data-key`},
		{[]string{"projections", "rebuild", "-consumer", "projector"}, `projections rebuild: flag provided but not defined: -consumer`},
		{[]string{"projections", "repair", "-target", "t"}, `projections repair: flag provided but not defined: -target`},
		{[]string{"projections", "repair", "-segments", "0", "-claim-for", "13h"}, "projections repair: -segments 0: want at least 1\n-claim-for 13h0m0s: want from 1s to 12h (SQS's visibility timeout)"},
		{[]string{"restore", "copy", "-dry-run"}, `restore copy: flag provided but not defined: -dry-run`},
		{[]string{"restore", "apply", "-until", "2026-12-01T09:30:00Z"}, `restore apply: flag provided but not defined: -until`},
		{[]string{"sagas", "list", "-events-table", "x"}, `sagas list: flag provided but not defined: -events-table`},
		{[]string{"sagas", "repair", "o1"}, `sagas repair: unexpected argument "o1"`},
		{[]string{"sagas", "repair", "-claim-for", "0s"}, `sagas repair: -claim-for 0s: want from 1s to 12h`},
		{[]string{"sagas", "check", "o1"}, `sagas check: unexpected argument "o1"`},
		{[]string{"sagas", "redrive"}, `sagas redrive: no ORDER given`},
		{[]string{"sagas", "redrive", "o1", "o2"}, `sagas redrive: unexpected argument "o2": this command takes one ORDER`},
		{[]string{"sagas", "redrive", "o1", "-stuck"}, `sagas redrive: flag provided but not defined: -stuck`},
		// An argument is no flag either: before, `erasure audit nobody -subject x` ignored -subject.
		{[]string{"erasure", "audit", "nobody", "-subject", "x"}, `erasure audit: unexpected argument "nobody"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err, out, errOut := runOut(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if usage := "usage: eventfold " + tc.args[0] + " " + tc.args[1] + " "; !strings.HasPrefix(errOut, usage) {
				t.Errorf("stderr does not show the command's usage %q:\n%s", usage, errOut)
			}
		})
	}
}

// TestForeignFlagChangesNothing: `tables create` given a flag it does not take creates no table.
func TestForeignFlagChangesNothing(t *testing.T) {
	stack := "foreign" + strconv.FormatInt(time.Now().UnixNano(), 36)
	err, _, _ := runOut(t, "tables", "create", "-template", "../../template.yaml", "-stack", stack,
		"-endpoint", awstest.DynamoDBEndpoint(t), "-subject", "x")
	if err == nil {
		t.Fatal("tables create -subject: no error")
	}
	_, err = awstest.DynamoDB(t).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(stack + "-EventsTable")})
	if nf := (*ddbtypes.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
		t.Fatalf("describe %s-EventsTable after a rejected tables create: %v, want ResourceNotFoundException", stack, err)
	}
}

func TestUnknownCommandListsTheCommands(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"nonsense", "cmd"},
		{"projections", "nonsense"},
		{"tables", "-template", "x"}, // a flag where the verb goes
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			err, out, errOut := runOut(t, args...)
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Fatalf("error %v, want one", err)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			for _, c := range commands() {
				if !strings.Contains(errOut, "  "+c.noun+" "+c.verb+" ") {
					t.Errorf("stderr does not list %s %s:\n%s", c.noun, c.verb, errOut)
				}
			}
		})
	}
}

func TestHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			err, out, errOut := runOut(t, args...)
			if !errors.Is(err, flag.ErrHelp) || errOut != "" {
				t.Fatalf("%v, want flag.ErrHelp and nothing on stderr:\n%s", err, errOut)
			}
			for _, c := range commands() {
				if !strings.Contains(out, "  "+c.noun+" "+c.verb+" ") {
					t.Errorf("help does not list %s %s:\n%s", c.noun, c.verb, out)
				}
			}
		})
	}
	// A noun's help lists its verbs, and no other noun's.
	for _, tc := range []struct {
		args       []string
		want, not  []string
		wantErr    bool
		wantStderr bool
	}{
		{args: []string{"projections", "-h"}, want: []string{"projections rebuild"}, not: []string{"tables create", "parked list"}},
		{args: []string{"parked", "help"}, want: []string{"parked list", "parked replay"}, not: []string{"projections rebuild"}},
		{args: []string{"help", "restore"}, want: []string{"restore copy", "restore apply"}, not: []string{"erasure audit"}},
		{args: []string{"parked"}, want: []string{"parked list", "parked replay"}, not: []string{"tables create"}, wantErr: true, wantStderr: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err, out, errOut := runOut(t, tc.args...)
			if help := err == nil || errors.Is(err, flag.ErrHelp); help == tc.wantErr {
				t.Fatalf("error %v; want an error (not help): %v", err, tc.wantErr)
			}
			got := out
			if tc.wantStderr {
				got = errOut
			}
			for _, w := range tc.want {
				if !strings.Contains(got, "  "+w+" ") {
					t.Errorf("does not list %s:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("lists %s, of another noun:\n%s", n, got)
				}
			}
		})
	}
}
