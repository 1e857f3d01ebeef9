// Package awstest runs tests against the local AWS stack: AWS's DynamoDB Local and the KMS
// emulator, reached over HTTP through the real AWS SDK.
//
// A package's TestMain calls Main. Under `make test` the stack is already up and its endpoints are
// in the environment; a plain `go test` starts a private stack on free ports with
// localstack/stack.sh and stops it afterwards. A stack that cannot start fails the run with the
// script's message; tests are never skipped for want of it.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

// Main runs m with a local AWS stack and exits with its status.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(localaws.EnvDynamoDBEndpoint) != "" && os.Getenv(localaws.EnvKMSEndpoint) != "" {
		return m.Run()
	}
	root, err := RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "awstest:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "eventfold-stack-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "awstest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(),
		"EVENTFOLD_STACK_DIR="+dir,
		"EVENTFOLD_DYNAMODB_PORT="+freePort(),
		"EVENTFOLD_KMS_PORT="+freePort(),
		"EVENTFOLD_DYNAMODB_JAVA_OPTS=-Xms64m -Xmx1g",
	)
	script := filepath.Join(root, "localstack", "stack.sh")
	stack := func(args ...string) ([]byte, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if out, err := stack("up"); err != nil {
		fmt.Fprintf(os.Stderr, "awstest: the local AWS stack did not start (%v); run `make test`, or see below:\n%s", err, out)
		stack("down")
		return 1
	}
	defer stack("down")
	out, err := stack("env")
	if err != nil {
		fmt.Fprintf(os.Stderr, "awstest: %v\n%s", err, out)
		return 1
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			os.Setenv(k, v)
		}
	}
	return m.Run()
}

// RepoRoot returns the directory holding go.mod, searching up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// DynamoDBEndpoint returns the DynamoDB Local endpoint, failing tb when there is none.
func DynamoDBEndpoint(tb testing.TB) string {
	tb.Helper()
	e := os.Getenv(localaws.EnvDynamoDBEndpoint)
	if e == "" {
		tb.Fatalf("%s is not set: call awstest.Main from TestMain, or run `make test`", localaws.EnvDynamoDBEndpoint)
	}
	return e
}

// DynamoDB returns a client for DynamoDB Local.
func DynamoDB(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	return localaws.DynamoDB(DynamoDBEndpoint(tb), optFns...)
}

// MustTemplate parses the project's template.yaml.
func MustTemplate(tb testing.TB) *template.Template {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	t, err := template.ParseFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// MustTables creates every table of template.yaml under a stack name unique to this test, deletes
// them when the test ends, and returns the Env that names them (env.Refs["EventsTable"], ...).
func MustTables(tb testing.TB, client *dynamodb.Client) template.Env {
	tb.Helper()
	tmpl := MustTemplate(tb)
	var b [6]byte
	rand.Read(b[:])
	env, err := tmpl.LocalEnv("t"+hex.EncodeToString(b[:]), localaws.Region, localaws.Account)
	if err != nil {
		tb.Fatal(err)
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := localaws.CreateTables(ctx, client, tables); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, t := range tables {
			if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: t.Create.TableName}); err != nil {
				tb.Errorf("delete table %s: %v", aws.ToString(t.Create.TableName), err)
			}
		}
	})
	return env
}

// KMSEndpoint returns the KMS emulator's endpoint, failing tb when there is none.
func KMSEndpoint(tb testing.TB) string {
	tb.Helper()
	e := os.Getenv(localaws.EnvKMSEndpoint)
	if e == "" {
		tb.Fatalf("%s is not set: call awstest.Main from TestMain, or run `make test`", localaws.EnvKMSEndpoint)
	}
	return e
}

// MustKeys creates template.yaml's KMS keys and aliases on the emulator, records them in env
// (env.Refs["DataKeyAlias"], ...) and returns a KMS client.
func MustKeys(tb testing.TB, env template.Env) *kms.Client {
	tb.Helper()
	client := localaws.KMS(KMSEndpoint(tb))
	if err := localaws.CreateKeys(context.Background(), client, MustTemplate(tb), env); err != nil {
		tb.Fatal(err)
	}
	return client
}

// MustSecrets creates template.yaml's Secrets Manager secrets on moto's server and records them
// in env (env.Refs["EmailHashKeySecret"] is its ARN).
func MustSecrets(tb testing.TB, env template.Env) {
	tb.Helper()
	if err := localaws.CreateSecrets(context.Background(), localaws.SecretsManager(KMSEndpoint(tb)), MustTemplate(tb), env); err != nil {
		tb.Fatal(err)
	}
}
