package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a process's stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func port(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		t.Fatalf("endpoint %q has no port (%v)", endpoint, err)
	}
	return u.Port()
}

// TestMakeRunStopsCleanlyOnCtrlC runs `make run` in a process group of its own and interrupts the
// group as a terminal's Ctrl-C does: the runner stops and exits 0, so make reports no error. (Make
// itself receives the SIGINT too and ends by it, as GNU make always does.) `-o up` keeps make from
// starting a stack: the one the test suite uses is already running.
func TestMakeRunStopsCleanlyOnCtrlC(t *testing.T) {
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ddbPort := port(t, awstest.DynamoDBEndpoint(t))
	kmsPort := port(t, os.Getenv(localaws.EnvKMSEndpoint))
	stack := "ctrlc" + time.Now().Format("150405")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-o", "up", "run", "RUN_ADDR=127.0.0.1:0", "RUN_STACK="+stack,
		"LOCAL_BIN="+filepath.Join(t.TempDir(), "local"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "EVENTFOLD_DYNAMODB_PORT="+ddbPort, "EVENTFOLD_KMS_PORT="+kmsPort)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 30 * time.Second
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("make run: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	const running = "eventfold is running on"
	for !strings.Contains(out.String(), running) {
		select {
		case err := <-exited:
			t.Fatalf("make run ended before serving: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("make run did not say %q in time\n%s", running, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatalf("interrupt the process group: %v", err)
	}
	select {
	case err = <-exited:
	case <-ctx.Done():
		t.Fatalf("make run did not stop on SIGINT\n%s", out.String())
	}

	got := out.String()
	if !strings.Contains(got, "\nstopping\n") {
		t.Errorf("the runner did not stop in order (no \"stopping\"):\n%s", got)
	}
	if strings.Contains(got, "make: ***") {
		t.Errorf("make reported an error for a clean stop:\n%s", got)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		ws, ok := exit.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			t.Errorf("make run ended with %v, want exit 0 or make's own SIGINT:\n%s", err, got)
		}
	default:
		t.Errorf("make run: %v\n%s", err, got)
	}
}
