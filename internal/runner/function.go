package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors of an invocation, as Lambda reports them.
var (
	// ErrTimeout: the function ran past its Timeout; its instance was stopped.
	ErrTimeout = errors.New("function timed out")
	// ErrCrashed: the function's process exited during an invocation or its init.
	ErrCrashed = errors.New("function process exited")
)

// FunctionError is an error the function reported through the Runtime API (an unhandled
// error of the handler): Lambda's errorType and errorMessage.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return "function error " + e.Type + ": " + e.Message }

// function runs one AWS::Serverless::Function's bootstrap binary the way Lambda does: each
// instance is a process that pulls invocations from its own Runtime API endpoint, one at a time.
// Instances start on demand up to max, and idle ones are reused (warm starts).
type function struct {
	name    string // the logical ID
	arn     string // what the Runtime API gives as the invoked function's ARN
	binary  string
	env     []string
	timeout time.Duration
	max     int
	log     *slog.Logger
	out     io.Writer // the functions' stdout and stderr, line by line, prefixed

	mu      sync.Mutex
	idle    []*instance
	running int
	freed   chan struct{} // a token per instance that went back to idle or away
	closed  bool
	all     map[*instance]bool
	seq     int
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan result // buffered, 1
}

type result struct {
	payload []byte
	err     error
}

type instance struct {
	fn        *function
	id        int
	cmd       *exec.Cmd
	srv       *http.Server
	addr      string
	next      chan *invocation
	ready     chan struct{} // closed at the first GET /next: init is over
	readyOnce sync.Once
	exited    chan struct{} // closed when the process has exited

	mu      sync.Mutex
	current *invocation
	initErr *FunctionError
}

func newFunction(name, arn, binary string, env []string, timeout time.Duration, max int, log *slog.Logger, out io.Writer) *function {
	return &function{name: name, arn: arn, binary: binary, env: env, timeout: timeout, max: max, log: log, out: out,
		freed: make(chan struct{}, 1), all: map[*instance]bool{}}
}

// invoke runs one invocation on an idle instance, starting one if none is idle and fewer than max
// run, else waiting for one to come free.
func (f *function) invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
	inst, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	inv := &invocation{id: requestID, payload: payload, deadline: time.Now().Add(f.timeout), done: make(chan result, 1)}
	select {
	case inst.next <- inv:
	case <-inst.exited:
		f.release(inst, false)
		return nil, fmt.Errorf("%s: %w before the invocation", f.name, ErrCrashed)
	case <-ctx.Done():
		f.release(inst, true)
		return nil, ctx.Err()
	}
	ended := make(chan result, 1)
	go func() { ended <- f.await(inst, inv) }()
	select {
	case res := <-ended:
		return res.payload, res.err
	case <-ctx.Done():
		// The caller gave up (a client hung up, the gateway's 30 s passed). As in Lambda, the
		// invocation runs on until it ends or times out; await then frees its instance.
		return nil, ctx.Err()
	}
}

// await waits for an invocation handed to inst to end, then releases the instance: back to idle,
// or stopped and forgotten when it crashed or timed out.
func (f *function) await(inst *instance, inv *invocation) result {
	timer := time.NewTimer(f.timeout)
	defer timer.Stop()
	select {
	case res := <-inv.done:
		f.release(inst, true)
		return res
	case <-inst.exited:
		f.release(inst, false)
		return result{err: fmt.Errorf("%s: %w during the invocation", f.name, ErrCrashed)}
	case <-timer.C:
		// Lambda stops the sandbox of a timed-out invocation; the next one starts cold.
		inst.stop()
		f.release(inst, false)
		return result{err: fmt.Errorf("%s: %w after %v", f.name, ErrTimeout, f.timeout)}
	}
}

func (f *function) acquire(ctx context.Context) (*instance, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, errors.New(f.name + ": runner closed")
		}
		if n := len(f.idle); n > 0 {
			inst := f.idle[n-1]
			f.idle = f.idle[:n-1]
			f.mu.Unlock()
			select {
			case <-inst.exited:
				f.release(inst, false)
				continue
			default:
				return inst, nil
			}
		}
		if f.running < f.max {
			f.running++
			f.seq++
			id := f.seq
			f.mu.Unlock()
			inst, err := f.start(ctx, id)
			if err != nil {
				f.mu.Lock()
				f.running--
				f.mu.Unlock()
				return nil, err
			}
			return inst, nil
		}
		f.mu.Unlock()
		// Wait for an instance to come free; the short tick covers a wake-up lost to a full
		// token channel when several come free at once.
		select {
		case <-f.freed:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release puts an instance back to idle, or forgets a dead one.
func (f *function) release(inst *instance, alive bool) {
	f.mu.Lock()
	if alive && !f.closed {
		f.idle = append(f.idle, inst)
	} else {
		f.running--
		delete(f.all, inst)
	}
	f.mu.Unlock()
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

// warm starts one instance ahead of the first invocation.
func (f *function) warm(ctx context.Context) error {
	inst, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	f.release(inst, true)
	return nil
}

// start launches an instance and waits for its init to finish (its first GET /next).
func (f *function) start(ctx context.Context, id int) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	inst := &instance{fn: f, id: id, addr: ln.Addr().String(), next: make(chan *invocation),
		ready: make(chan struct{}), exited: make(chan struct{})}
	inst.srv = &http.Server{Handler: inst.runtimeAPI(), ReadHeaderTimeout: 10 * time.Second}
	go inst.srv.Serve(ln)

	cmd := exec.Command(f.binary)
	cmd.Env = append(append([]string{}, f.env...), "AWS_LAMBDA_RUNTIME_API="+inst.addr,
		"AWS_LAMBDA_LOG_STREAM_NAME=local/"+strconv.Itoa(id))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	prefix := fmt.Sprintf("%s[%d] ", f.name, id)
	stdout, stderr := f.lineWriter(prefix), f.lineWriter(prefix)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		inst.srv.Close()
		return nil, fmt.Errorf("start %s: %w", f.name, err)
	}
	inst.cmd = cmd
	go func() {
		cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(inst.exited)
		inst.srv.Close()
	}()
	f.mu.Lock()
	if f.closed { // close ran while this instance was starting: it must not outlive the runner
		f.mu.Unlock()
		inst.stop()
		return nil, errors.New(f.name + ": runner closed")
	}
	f.all[inst] = true
	f.mu.Unlock()
	started := time.Now()
	initTimeout := time.NewTimer(10 * time.Second) // Lambda's init phase limit
	defer initTimeout.Stop()
	select {
	case <-inst.ready:
		f.log.Info("cold start", "function", f.name, "instance", id, "init_ms", time.Since(started).Milliseconds())
		return inst, nil
	case <-inst.exited:
		f.forget(inst)
		inst.mu.Lock()
		initErr := inst.initErr
		inst.mu.Unlock()
		if initErr != nil {
			return nil, fmt.Errorf("%s init: %w", f.name, initErr)
		}
		return nil, fmt.Errorf("%s: %w during init (exit status %d)", f.name, ErrCrashed, cmd.ProcessState.ExitCode())
	case <-initTimeout.C:
		inst.stop()
		f.forget(inst)
		return nil, fmt.Errorf("%s: init took more than 10s", f.name)
	case <-ctx.Done():
		inst.stop()
		f.forget(inst)
		return nil, ctx.Err()
	}
}

func (f *function) forget(inst *instance) {
	f.mu.Lock()
	delete(f.all, inst)
	f.mu.Unlock()
}

// close stops every instance and waits for the processes to exit. It returns the instances'
// stop errors, joined.
func (f *function) close() error {
	f.mu.Lock()
	f.closed = true
	all := make([]*instance, 0, len(f.all))
	for inst := range f.all {
		all = append(all, inst)
	}
	f.mu.Unlock()
	var errs []error
	for _, inst := range all {
		errs = append(errs, inst.stop())
	}
	return errors.Join(errs...)
}

// stop ends the instance's process group: SIGTERM, then SIGKILL after a grace period. It returns
// an error when the group could not be signalled; one that is already gone is not an error.
func (inst *instance) stop() error {
	if inst.cmd == nil || inst.cmd.Process == nil {
		return nil
	}
	pgid := -inst.cmd.Process.Pid
	signal := func(sig syscall.Signal) error {
		if err := syscall.Kill(pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop %s[%d]: %v: %w", inst.fn.name, inst.id, sig, err)
		}
		return nil
	}
	err := signal(syscall.SIGTERM)
	select {
	case <-inst.exited:
	case <-time.After(2 * time.Second):
		err = errors.Join(err, signal(syscall.SIGKILL))
		<-inst.exited
	}
	return err
}

const runtimePrefix = "/2018-06-01/runtime/"

// runtimeAPI serves the Lambda Runtime API for one instance.
func (inst *instance) runtimeAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"invocation/next", func(w http.ResponseWriter, r *http.Request) {
		inst.once()
		select {
		case inv := <-inst.next:
			inst.mu.Lock()
			inst.current = inv
			inst.mu.Unlock()
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", inst.fn.arn)
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+inv.id)
			h.Set("Content-Type", "application/json")
			w.Write(inv.payload)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) > 6<<20 {
			inst.finish(r.PathValue("id"), result{err: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: "response over 6 MB"}})
			http.Error(w, "response too large", http.StatusRequestEntityTooLarge)
			return
		}
		if !inst.finish(r.PathValue("id"), result{payload: body}) {
			http.Error(w, "no such invocation", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		fe := readError(r)
		if !inst.finish(r.PathValue("id"), result{err: fe}) {
			http.Error(w, "no such invocation", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST "+runtimePrefix+"init/error", func(w http.ResponseWriter, r *http.Request) {
		fe := readError(r)
		inst.mu.Lock()
		inst.initErr = fe
		inst.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// once marks init as over at the first GET /next.
func (inst *instance) once() {
	inst.readyOnce.Do(func() { close(inst.ready) })
}

func (inst *instance) finish(id string, res result) bool {
	inst.mu.Lock()
	inv := inst.current
	if inv == nil || inv.id != id {
		inst.mu.Unlock()
		return false
	}
	inst.current = nil
	inst.mu.Unlock()
	inv.done <- res
	return true
}

func readError(r *http.Request) *FunctionError {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	fe := &FunctionError{}
	if json.Unmarshal(body, fe) != nil || fe.Type == "" {
		fe.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if fe.Type == "" {
			fe.Type = "Unhandled"
		}
		if fe.Message == "" {
			fe.Message = strings.TrimSpace(string(body))
		}
	}
	return fe
}

// lineWriter copies a function's output to the runner's, a line at a time with a prefix.
func (f *function) lineWriter(prefix string) io.WriteCloser {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var b bytes.Buffer
			b.WriteString(prefix)
			b.Write(sc.Bytes())
			b.WriteByte('\n')
			f.out.Write(b.Bytes())
		}
		io.Copy(io.Discard, pr)
	}()
	return pw
}
