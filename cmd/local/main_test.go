package main

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func port(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		t.Fatalf("endpoint %q has no port (%v)", endpoint, err)
	}
	return u.Port()
}

// makeRun is `make run` started by a test, pointed at the test suite's stack (already running:
// `-o up` keeps make from starting one) under a stack name of its own.
type makeRun struct {
	cmd    *exec.Cmd
	out    *awstest.SyncBuffer
	exited chan error
	ctx    context.Context
}

// startMakeRun starts `make run` in a process group of its own; with terminal, inside a
// pseudo-terminal made by script(1), as a shell in a terminal would run it.
func startMakeRun(t *testing.T, terminal bool) *makeRun {
	t.Helper()
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ddbPort := port(t, awstest.DynamoDBEndpoint(t))
	kmsPort := port(t, os.Getenv(localaws.EnvKMSEndpoint))
	stack := "ctrlc" + strconv.FormatInt(time.Now().UnixNano(), 36)
	args := []string{"make", "-o", "up", "run", "RUN_ADDR=127.0.0.1:0", "RUN_STACK=" + stack, "LOCAL_BIN=" + filepath.Join(t.TempDir(), "local")}
	if terminal {
		if _, err := exec.LookPath("script"); err != nil {
			t.Fatal("script(1) from util-linux is needed to run make in a pseudo-terminal: apt-get install util-linux")
		}
		args = []string{"script", "--quiet", "--return", "--command", strings.Join(args, " "), "/dev/null"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "EVENTFOLD_DYNAMODB_PORT="+ddbPort, "EVENTFOLD_KMS_PORT="+kmsPort)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 30 * time.Second
	m := &makeRun{cmd: cmd, out: &awstest.SyncBuffer{}, exited: make(chan error, 1), ctx: ctx}
	cmd.Stdout, cmd.Stderr = m.out, m.out
	return m
}

func (m *makeRun) start(t *testing.T) {
	t.Helper()
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("make run: %v", err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	const running = "eventfold is running on"
	for !strings.Contains(m.out.String(), running) {
		select {
		case err := <-m.exited:
			t.Fatalf("make run ended before serving: %v\n%s", err, m.out.String())
		case <-m.ctx.Done():
			t.Fatalf("make run did not say %q in time\n%s", running, m.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopped waits for make run to end and checks that the runner stopped in order and make
// reported no error; it returns how make ended.
func (m *makeRun) stopped(t *testing.T) error {
	t.Helper()
	var err error
	select {
	case err = <-m.exited:
	case <-m.ctx.Done():
		t.Fatalf("make run did not stop on Ctrl-C\n%s", m.out.String())
	}
	got := m.out.String()
	if !strings.Contains(got, "stopping") {
		t.Errorf("the runner did not stop in order (no \"stopping\"):\n%s", got)
	}
	if strings.Contains(got, "make: ***") {
		t.Errorf("make reported an error for a clean stop:\n%s", got)
	}
	return err
}

// TestMakeRunStopsCleanlyOnCtrlC interrupts the process group of `make run` without a terminal
// (as a process supervisor would): the runner stops and exits 0, so make reports no error.
// (Make itself receives the SIGINT too and ends by it, as GNU make always does.)
func TestMakeRunStopsCleanlyOnCtrlC(t *testing.T) {
	m := startMakeRun(t, false)
	m.start(t)
	if err := syscall.Kill(-m.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatalf("interrupt the process group: %v", err)
	}
	err := m.stopped(t)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		ws, ok := exit.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			t.Errorf("make run ended with %v, want exit 0 or make's own SIGINT:\n%s", err, m.out.String())
		}
	default:
		t.Errorf("make run: %v\n%s", err, m.out.String())
	}
}

// TestMakeRunInATerminalExitsZeroOnCtrlC types Ctrl-C into the terminal `make run` runs in: the
// runner holds the terminal's foreground (cmd/local's foreground), so the interrupt reaches it
// alone, and make, and so the shell, see a clean exit 0.
func TestMakeRunInATerminalExitsZeroOnCtrlC(t *testing.T) {
	m := startMakeRun(t, true)
	keys, err := m.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.start(t)
	if _, err := keys.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	if err := m.stopped(t); err != nil {
		t.Errorf("make run in a terminal ended with %v on Ctrl-C, want exit 0:\n%s", err, m.out.String())
	}
}
