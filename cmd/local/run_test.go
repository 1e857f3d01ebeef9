package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

// localEmailHashKey is the Makefile's LOCAL_EMAIL_HASH_KEY: a key for local runs only.
const localEmailHashKey = "bG9jYWwtb25seTogZXZlbnRmb2xkIGRldiBlbWFpbCBoYXNoIGtleQ=="

func uniqueStack(prefix string) string { return prefix + strconv.FormatInt(time.Now().UnixNano(), 36) }

// runReturns runs run with args and fails t unless it returns by itself (a run that started
// serves until its context is done); it returns run's error, stdout and stderr.
func runReturns(t *testing.T, args ...string) (err error, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut awstest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cancel()
		<-done
		t.Fatalf("run %s started serving, want it to return an error:\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	}
	return err, out.String(), errOut.String()
}

// noTables fails t if DynamoDB Local holds the events table of stack: run created resources.
func noTables(t *testing.T, stack string) {
	t.Helper()
	_, err := awstest.DynamoDB(t).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(stack + "-EventsTable")})
	if nf := (*ddbtypes.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
		t.Errorf("describe %s-EventsTable: %v, want ResourceNotFoundException: run created the stack's tables", stack, err)
	}
}

func TestRunRejectsBadCommandLinesBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  []string
		want string
	}{
		{"unknown flag", []string{"-subject", "x"}, "flag provided but not defined: -subject"},
		{"param without a value", []string{"-param", "EmailHashKey"}, `want Name=Value, got "EmailHashKey"`},
		{"not a number", []string{"-max-instances", "many"}, `invalid value "many" for flag -max-instances`},
		{"an argument", []string{"serve"}, `unexpected argument "serve"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := uniqueStack("badargs")
			args := append([]string{"-template", "../../template.yaml", "-addr", "127.0.0.1:0", "-stack", stack,
				"-param", "EmailHashKey=" + localEmailHashKey}, tc.bad...)
			err, stdout, stderr := runReturns(t, args...)
			var usage usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want a usageError saying %q", err, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "-max-instances") {
				t.Errorf("stderr does not show the error and the usage:\n%s", stderr)
			}
			noTables(t, stack)
		})
	}
}

func TestRunWithoutAnEndpointStartsNothing(t *testing.T) {
	t.Setenv(localaws.EnvDynamoDBEndpoint, "")
	err, stdout, _ := runReturns(t, "-template", "../../template.yaml", "-addr", "127.0.0.1:0", "-stack", uniqueStack("noendpoint"))
	if err == nil || !strings.Contains(err.Error(), localaws.EnvDynamoDBEndpoint) {
		t.Fatalf("run without %s: %v, want an error naming it", localaws.EnvDynamoDBEndpoint, err)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

func TestRunHelp(t *testing.T) {
	err, stdout, stderr := runReturns(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v, want flag.ErrHelp", err)
	}
	if stdout != "" || !strings.Contains(stderr, "-addr") {
		t.Errorf("run -h: stdout %q, stderr %q; want the usage on stderr", stdout, stderr)
	}
}

// TestRunServesUntilCancelled drives run as main does, in the test's process: it serves the HTTP
// API until its context is done, then stops in order and returns nil.
func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr awstest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-template", "../../template.yaml", "-addr", "127.0.0.1:0", "-stack", uniqueStack("inproc"),
			"-param", "EmailHashKey=" + localEmailHashKey}, &stdout, &stderr)
	}()
	running := regexp.MustCompile(`eventfold is running on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(4 * time.Minute); base == ""; {
		if m := running.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v\n%s%s", err, stdout.String(), stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not serve in time:\n%s%s", stdout.String(), stderr.String())
		}
	}
	resp, err := http.Get(base + "/accounts/" + uniqueStack("nobody"))
	if err != nil {
		t.Fatalf("GET an account from the running API: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET an unknown account: %s, want 404 Not Found", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after its context was cancelled: %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not return after its context was cancelled:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "stopping") {
		t.Errorf("run did not say it was stopping:\n%s", stdout.String())
	}
	u, _ := url.Parse(base)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after run returned", u.Host)
	}
}
