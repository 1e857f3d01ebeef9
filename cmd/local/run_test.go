package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os/exec"
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

// signIn signs user in to the user pool run created for stack, found by the names the template
// gives it, and returns their access token.
func signIn(t *testing.T, stack, user string) string {
	t.Helper()
	ctx := context.Background()
	api := localaws.Cognito(awstest.KMSEndpoint(t))
	pool, err := localaws.FindUserPool(ctx, api, stack+"-users")
	if err != nil || pool == "" {
		t.Fatalf("user pool %s-users: %q, %v", stack, pool, err)
	}
	client, err := localaws.FindUserPoolClient(ctx, api, pool, stack+"-api")
	if err != nil || client == "" {
		t.Fatalf("app client %s-api: %q, %v", stack, client, err)
	}
	access, _ := awstest.SignIn(t, pool, client, user)
	return access
}

func TestRunRejectsBadCommandLinesBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  []string
		want string
	}{
		{"unknown flag", []string{"-subject", "x"}, "flag provided but not defined: -subject"},
		{"param without a value", []string{"-param", "FulfilmentTimeout"}, `want Name=Value, got "FulfilmentTimeout"`},
		{"not a number", []string{"-max-instances", "many"}, `invalid value "many" for flag -max-instances`},
		{"an argument", []string{"serve"}, `unexpected argument "serve"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := uniqueStack("badargs")
			args := append([]string{"-template", "../../template.yaml", "-addr", "127.0.0.1:0", "-stack", stack,
				"-param", "FulfilmentTimeout=15m"}, tc.bad...)
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
	stack := uniqueStack("inproc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr awstest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-template", "../../template.yaml", "-addr", "127.0.0.1:0", "-stack", stack,
			"-param", "FulfilmentTimeout=15m"}, &stdout, &stderr)
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
	// Every route needs a caller; a user signed in to the stack's pool (as `eventfold dev token`
	// does, with the names it finds by) gets through.
	getAccount := func(headers ...string) int {
		req, _ := http.NewRequest("GET", base+"/accounts/"+uniqueStack("nobody"), nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET an account from the running API: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := getAccount(); status != http.StatusUnauthorized {
		t.Errorf("GET an account without a token: %d, want 401", status)
	}
	if status := getAccount("Authorization", "Bearer "+signIn(t, stack, "ann")); status != http.StatusNotFound {
		t.Errorf("GET an unknown account: %d, want 404 Not Found", status)
	}
	// What run prints for the operator routes is what the runner accepts.
	sigv4 := "--aws-sigv4 'aws:amz:" + localaws.Region + ":execute-api' --user local:local"
	if !strings.Contains(stdout.String(), sigv4) || !strings.Contains(stdout.String(), "eventfold dev token -cognito-endpoint "+awstest.KMSEndpoint(t)+" -stack "+stack+" -user ann") {
		t.Errorf("run does not say how to call as a user and as an operator:\n%s", stdout.String())
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:"+localaws.Region+":execute-api",
			"--user", "local:local", base+"/streams/account-"+uniqueStack("nobody")+"/events").CombinedOutput()
		if err != nil || string(out) != "200" {
			t.Errorf("curl %s on an operator route: %s (%v), want 200", sigv4, out, err)
		}
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
