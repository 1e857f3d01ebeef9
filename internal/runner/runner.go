// Package runner runs eventfold on one machine, wired exactly as template.yaml wires it in AWS:
// it creates the template's tables on DynamoDB Local, builds every AWS::Serverless::Function
// for the host the way `sam build` does, runs each bootstrap binary behind its own Lambda
// Runtime API, serves the template's HttpApi routes as API Gateway HTTP API payload v2.0, and
// delivers the streams of its DynamoDB events as Lambda's event source mappings do, and fires the
// one-time schedules of its schedule groups as EventBridge Scheduler does. No Docker, no AWS
// account.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

// Config configures a Runner.
type Config struct {
	// Template is the SAM template's path; Root, the directory `make build-<Function>` runs in
	// (the repository root). Root defaults to the template's directory.
	Template string
	Root     string
	// Stack names the local resources ("<stack>-<LogicalID>"); default "eventfold".
	Stack string
	// Params are the template's parameter values; parameters without a value take their Default.
	Params map[string]string
	// DynamoDBEndpoint and KMSEndpoint are the local stack's endpoints. KMSEndpoint is moto's
	// server, which also serves the template's schedule groups (EventBridge Scheduler) and queues
	// (SQS); a template that declares schedule groups needs it.
	DynamoDBEndpoint string
	KMSEndpoint      string
	// Addr is where the HTTP API listens; default 127.0.0.1:3000 (port 0 picks a free one).
	Addr string
	// BuildDir receives the built functions; default a temporary directory.
	BuildDir string
	// MaxInstances bounds the instances of one function; default 4.
	MaxInstances int
	// RetryDelay is the first wait before a stream batch or a schedule's target is retried; it
	// doubles per attempt, up to 30 s for a batch and 5 s for a schedule. Default 1 s.
	RetryDelay time.Duration
	// Now is the clock the HTTP API's authorizers check tokens' and signatures' times against;
	// default time.Now.
	Now func() time.Time
	// CallLog, when set, is a directory where every AWS call is recorded (package awscall), one
	// file per principal: "<LogicalID>.jsonl" of each function (its code's calls, through
	// awscall.EnvLog, and those the runner makes as Lambda under its role: OnFailure
	// destinations) and of each IAM role the runner acts as (a schedule's target invoked as its
	// RoleArn). The least-privilege test compares them with the template's policies. Default: none.
	CallLog string
	// Log receives the runner's own log; Output, the functions' stdout and stderr.
	Log    *slog.Logger
	Output io.Writer
}

// Runner is eventfold running locally. Close stops it.
type Runner struct {
	cfg       Config
	tmpl      *template.Template
	env       template.Env
	functions map[string]*function
	routes    []route
	mappings  []mapping
	ln        net.Listener
	srv       *http.Server
	tmpDir    string
	stop      context.CancelFunc // stops the stream pollers and the schedule loop
	pollers   sync.WaitGroup
	groups    []string            // the template's schedule groups, on moto's server
	queues    map[string]string   // the template's queues on moto's server: URL by ARN
	apiAuths  map[string]*apiAuth // the HttpApis' Auth, by logical ID ("" for the implicit API)

	failMu      sync.Mutex
	failures    map[string][]FailureRecord
	invocations []Invocation
	deadLetters []DeadLetter
}

// Start brings the system up: tables, builds, one warm instance per function, the HTTP API. When
// it fails, it stops what it started, and its error includes what Close returned.
func Start(ctx context.Context, cfg Config) (_ *Runner, err error) {
	if cfg.Template == "" || cfg.DynamoDBEndpoint == "" {
		return nil, errors.New("runner: Template and DynamoDBEndpoint are required")
	}
	if cfg.Root == "" {
		cfg.Root = filepath.Dir(cfg.Template)
	}
	if cfg.Stack == "" {
		cfg.Stack = "eventfold"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:3000"
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 4
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	cfg.Output = &lockedWriter{w: cfg.Output}
	tmpl, err := template.ParseFile(cfg.Template)
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, tmpl: tmpl, functions: map[string]*function{}}
	ok := false
	defer func() {
		if !ok {
			err = errors.Join(err, r.Close())
		}
	}()
	if err := r.resources(ctx); err != nil {
		return nil, err
	}
	if err := r.startFunctions(ctx); err != nil {
		return nil, err
	}
	if err := r.serve(); err != nil {
		return nil, err
	}
	r.startPollers()
	ok = true
	return r, nil
}

// startPollers polls every DynamoDB event source, as Lambda's event source mappings do.
func (r *Runner) startPollers() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	api := dynamodbstreams.NewFromConfig(localaws.Config(), func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(r.cfg.DynamoDBEndpoint)
	})
	for _, m := range r.mappings {
		r.pollers.Add(1)
		go func() {
			defer r.pollers.Done()
			r.poll(ctx, api, m)
		}()
		r.cfg.Log.Info("stream trigger", "function", m.function, "event", m.event, "batch_size", m.batchSize,
			"window", m.window.String(), "starting_position", string(m.startingPosition))
	}
	if len(r.groups) > 0 {
		r.pollers.Add(1)
		go func() {
			defer r.pollers.Done()
			r.fireSchedules(ctx, localaws.Scheduler(r.cfg.KMSEndpoint), localaws.SQS(r.cfg.KMSEndpoint))
		}()
		r.cfg.Log.Info("schedules", "groups", strings.Join(r.groups, ","), "poll_ms", scheduleInterval.Milliseconds())
	}
}

// URL is the HTTP API's base URL.
func (r *Runner) URL() string { return "http://" + r.ln.Addr().String() }

// CallLog is the directory calls are recorded in (Config.CallLog), or "".
func (r *Runner) CallLog() string { return r.cfg.CallLog }

// Env returns the names the template's references resolve to locally.
func (r *Runner) Env() template.Env { return r.env }

// Routes returns the HTTP API's route keys.
func (r *Runner) Routes() []string {
	var keys []string
	for _, rt := range r.routes {
		keys = append(keys, rt.key)
	}
	sort.Strings(keys)
	return keys
}

// RouteAuthorizer returns the authorizer of the route with the given key, as the template
// names it: a JWT authorizer's name, AWS_IAM, or NONE.
func (r *Runner) RouteAuthorizer(key string) string {
	for _, rt := range r.routes {
		if rt.key != key {
			continue
		}
		switch rt.auth.kind {
		case authJWT:
			return rt.auth.jwt.name
		case authIAM:
			return "AWS_IAM"
		}
		return "NONE"
	}
	return ""
}

// Invoke invokes a function synchronously (RequestResponse) with a JSON payload.
func (r *Runner) Invoke(ctx context.Context, logicalID string, payload []byte) ([]byte, error) {
	f, ok := r.functions[logicalID]
	if !ok {
		return nil, fmt.Errorf("runner: no function %s", logicalID)
	}
	return f.invoke(ctx, newRequestID(), payload)
}

// Close stops the stream pollers, the schedule loop (a target's invocation under way is cut
// short and its schedule left to fire again at the next start), the HTTP API and every function
// instance, waits for them, and
// removes the functions' temporary build directory. It does all of that even when a step fails,
// and returns every failure, joined: requests still running when the HTTP API's 5 s for a
// graceful shutdown ran out, an instance's process group that could not be signalled, a build
// directory that could not be removed.
func (r *Runner) Close() error {
	if r.stop != nil {
		r.stop()
		r.pollers.Wait()
	}
	var errs []error
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("runner: HTTP API shutdown: %w", err))
		}
		cancel()
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, f := range r.functions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if r.tmpDir != "" {
		if err := os.RemoveAll(r.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("runner: remove the build directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// resources resolves the template's names and creates its tables.
func (r *Runner) resources(ctx context.Context) error {
	env, err := r.tmpl.LocalEnv(r.cfg.Stack, localaws.Region, localaws.Account)
	if err != nil {
		return err
	}
	for name, v := range r.cfg.Params {
		if _, ok := r.tmpl.Parameters[name]; !ok {
			return fmt.Errorf("runner: parameter %s is not in the template", name)
		}
		env.Refs[name] = v
		if r.tmpl.Parameters[name].Type == "CommaDelimitedList" {
			env.Lists[name] = template.SplitList(v)
		}
	}
	// Resources under a false Condition are not created, as CloudFormation leaves them out.
	if env.Conditions, err = r.tmpl.EvalConditions(env); err != nil {
		return err
	}
	if err := r.tmpl.Prune(env.Conditions); err != nil {
		return err
	}
	if ids := r.tmpl.OfType("AWS::KMS::Key"); len(ids) > 0 {
		if r.cfg.KMSEndpoint == "" {
			return errors.New("runner: the template declares KMS keys and no KMS endpoint is set")
		}
		if err := localaws.CreateKeys(ctx, localaws.KMS(r.cfg.KMSEndpoint), r.tmpl, env); err != nil {
			return err
		}
		for _, id := range ids {
			r.cfg.Log.Info("kms key", "resource", id, "key_id", env.Refs[id])
		}
	}
	if ids := r.tmpl.OfType(localaws.ScheduleGroupType); len(ids) > 0 {
		if r.cfg.KMSEndpoint == "" {
			return errors.New("runner: the template declares schedule groups and no moto endpoint (KMSEndpoint) is set")
		}
		groups, err := localaws.CreateScheduleGroups(ctx, localaws.Scheduler(r.cfg.KMSEndpoint), r.tmpl, env)
		if err != nil {
			return err
		}
		r.groups = groups
		for i, id := range ids {
			r.cfg.Log.Info("schedule group", "resource", id, "name", groups[i])
		}
	}
	// Queues are created on moto's server when there is one, so that a schedule's dead-letter
	// queue receives what it would in AWS.
	if ids := r.tmpl.OfType(localaws.QueueType); len(ids) > 0 && r.cfg.KMSEndpoint != "" {
		queues, err := localaws.CreateQueues(ctx, localaws.SQS(r.cfg.KMSEndpoint), r.tmpl, env)
		if err != nil {
			return err
		}
		r.queues = queues
		for _, id := range ids {
			r.cfg.Log.Info("queue", "resource", id, "url", env.Refs[id])
		}
	}
	// Secrets are created on moto's server, generated as CloudFormation generates them, and kept
	// across runs as a redeploy keeps them.
	if ids := r.tmpl.OfType(localaws.SecretType); len(ids) > 0 {
		if r.cfg.KMSEndpoint == "" {
			return errors.New("runner: the template declares secrets and no moto endpoint (KMSEndpoint) is set")
		}
		if err := localaws.CreateSecrets(ctx, localaws.SecretsManager(r.cfg.KMSEndpoint), r.tmpl, env); err != nil {
			return err
		}
		for _, id := range ids {
			r.cfg.Log.Info("secret", "resource", id, "arn", env.Refs[id])
		}
	}
	// User pools and their app clients are created on moto's server, which signs their users'
	// tokens and serves their keys; the HTTP API's JWT authorizers verify against those.
	if ids := append(r.tmpl.OfType(localaws.UserPoolType), r.tmpl.OfType(localaws.UserPoolClientType)...); len(ids) > 0 {
		if r.cfg.KMSEndpoint == "" {
			return errors.New("runner: the template declares Cognito user pools and no moto endpoint (KMSEndpoint) is set")
		}
		if err := localaws.CreateUserPools(ctx, localaws.Cognito(r.cfg.KMSEndpoint), r.tmpl, env); err != nil {
			return err
		}
		for _, id := range ids {
			r.cfg.Log.Info("cognito", "resource", id, "id", env.Refs[id])
		}
	}
	// A function's name is its FunctionName, else its logical ID (the name its process gets in
	// AWS_LAMBDA_FUNCTION_NAME); Ref gives the name and Arn its ARN, as Lambda has them.
	for _, id := range r.tmpl.OfType("AWS::Serverless::Function") {
		name, err := r.functionName(id, env)
		if err != nil {
			return err
		}
		env.Refs[id] = name
		env.Attrs[id+".Arn"] = functionARN(name)
	}
	// Resources the runner does not create (roles, topics) still get a name and an ARN of their
	// service's shape, so references to them resolve.
	for id, res := range r.tmpl.Resources {
		if _, ok := env.Refs[id]; !ok {
			env.Refs[id] = r.cfg.Stack + "-" + id
		}
		if _, ok := env.Attrs[id+".Arn"]; !ok {
			env.Attrs[id+".Arn"] = resourceARN(res.Type, r.cfg.Stack+"-"+id)
		}
	}
	tables, err := r.tmpl.Tables(env)
	if err != nil {
		return err
	}
	descs, err := localaws.CreateTables(ctx, localaws.DynamoDB(r.cfg.DynamoDBEndpoint), tables)
	if err != nil {
		return err
	}
	for i, d := range descs {
		id := tables[i].LogicalID
		env.Attrs[id+".Arn"] = aws.ToString(d.TableArn)
		if d.LatestStreamArn != nil {
			env.Attrs[id+".StreamArn"] = aws.ToString(d.LatestStreamArn)
		}
		r.cfg.Log.Info("table", "resource", id, "name", aws.ToString(d.TableName))
	}
	r.env = env
	return nil
}

// arn is the ARN of a resource of the local stack, which pretends to be in localaws.Region and
// localaws.Account.
func arn(service, resource string) string {
	return "arn:aws:" + service + ":" + localaws.Region + ":" + localaws.Account + ":" + resource
}

// functionARN is the ARN of a function of the local stack.
func functionARN(name string) string { return arn("lambda", "function:"+name) }

// resourceARN is the ARN a resource of the given type and physical name has in the local stack:
// IAM's are global ("arn:aws:iam::<account>:role/<name>"), the others regional.
func resourceARN(resourceType, name string) string {
	switch resourceType {
	case "AWS::IAM::Role":
		return "arn:aws:iam::" + localaws.Account + ":role/" + name
	case "AWS::IAM::ManagedPolicy":
		return "arn:aws:iam::" + localaws.Account + ":policy/" + name
	}
	return arn(service(resourceType), name)
}

// functionName is the name of the function with the given logical ID: its FunctionName, resolved,
// or else the logical ID.
func (r *Runner) functionName(id string, env template.Env) (string, error) {
	fn, ok := r.tmpl.Resources[id].Properties["FunctionName"]
	if !ok {
		return id, nil
	}
	name, err := env.String(fn)
	if err != nil {
		return "", fmt.Errorf("%s FunctionName: %w", id, err)
	}
	return name, nil
}

// service is the ARN service of a resource type: "sqs" for AWS::SQS::Queue.
func service(resourceType string) string {
	parts := strings.Split(resourceType, "::")
	if len(parts) < 2 {
		return "local"
	}
	if parts[1] == "Serverless" {
		return "lambda"
	}
	return strings.ToLower(parts[1])
}

// functionSpec is a function's properties after Globals are applied and intrinsics resolved.
type functionSpec struct {
	id      string
	props   map[string]any
	build   string // BuildMethod
	timeout time.Duration
	memory  int
}

func (r *Runner) spec(id string) (functionSpec, error) {
	res := r.tmpl.Resources[id]
	props := map[string]any{}
	if g, ok := r.tmpl.Globals["Function"].(map[string]any); ok {
		for k, v := range g {
			props[k] = v
		}
	}
	for k, v := range res.Properties {
		if k == "Environment" {
			props[k] = mergeEnvironment(props[k], v)
			continue
		}
		props[k] = v
	}
	resolvedEnv, err := r.env.Resolve(props["Environment"])
	if err != nil {
		return functionSpec{}, fmt.Errorf("%s Environment: %w", id, err)
	}
	props["Environment"] = resolvedEnv
	s := functionSpec{id: id, props: props, timeout: 3 * time.Second, memory: 128}
	if t, err := strconv.Atoi(fmt.Sprint(props["Timeout"])); err == nil && t > 0 {
		s.timeout = time.Duration(t) * time.Second
	}
	if m, err := strconv.Atoi(fmt.Sprint(props["MemorySize"])); err == nil && m > 0 {
		s.memory = m
	}
	if md, ok := res.Metadata["BuildMethod"].(string); ok {
		s.build = md
	}
	return s, nil
}

// mergeEnvironment applies a function's Environment over the Globals one, variable by variable,
// as SAM does.
func mergeEnvironment(global, local any) any {
	vars := map[string]any{}
	for _, e := range []any{global, local} {
		if m, ok := e.(map[string]any); ok {
			if v, ok := m["Variables"].(map[string]any); ok {
				for k, val := range v {
					vars[k] = val
				}
			}
		}
	}
	return map[string]any{"Variables": vars}
}

func (r *Runner) startFunctions(ctx context.Context) error {
	dir := r.cfg.BuildDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "eventfold-functions-")
		if err != nil {
			return err
		}
		r.tmpDir, dir = tmp, tmp
	}
	for _, id := range r.tmpl.OfType("AWS::Serverless::Function") {
		s, err := r.spec(id)
		if err != nil {
			return err
		}
		binary, err := r.build(ctx, s, filepath.Join(dir, id))
		if err != nil {
			return err
		}
		env, err := r.processEnv(s)
		if err != nil {
			return err
		}
		f := newFunction(id, r.env.Attrs[id+".Arn"], binary, env, s.timeout, r.cfg.MaxInstances, r.cfg.Log, r.cfg.Output)
		r.functions[id] = f
		if err := f.warm(ctx); err != nil {
			return err
		}
		if err := r.addRoutes(s); err != nil {
			return err
		}
		if err := r.addMappings(s); err != nil {
			return err
		}
	}
	return nil
}

// build builds a function for the host the way `sam build` would for Lambda: `make
// build-<LogicalID>` for BuildMethod makefile, `go build` of CodeUri for go1.x.
func (r *Runner) build(ctx context.Context, s functionSpec, out string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	var cmd *exec.Cmd
	switch s.build {
	case "makefile":
		cmd = exec.CommandContext(ctx, "make", "-s", "build-"+s.id, "ARTIFACTS_DIR="+out,
			"LAMBDA_GOOS="+runtime.GOOS, "LAMBDA_GOARCH="+runtime.GOARCH)
		cmd.Dir = r.cfg.Root
	case "go1.x", "":
		code, _ := s.props["CodeUri"].(string)
		if code == "" {
			return "", fmt.Errorf("%s: no CodeUri to build", s.id)
		}
		cmd = exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", filepath.Join(out, "bootstrap"), ".")
		cmd.Dir = code
		if !filepath.IsAbs(code) {
			cmd.Dir = filepath.Join(filepath.Dir(r.cfg.Template), code)
		}
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	default:
		return "", fmt.Errorf("%s: BuildMethod %s is not supported locally", s.id, s.build)
	}
	started := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", s.id, err, output)
	}
	r.cfg.Log.Info("built", "function", s.id, "ms", time.Since(started).Milliseconds())
	return filepath.Join(out, "bootstrap"), nil
}

// processEnv is a function process's environment: what Lambda sets, the template's variables,
// and the local endpoints, which come last and so win over the template's (it declares them
// empty, for `sam local`; exec keeps the last value of a key). Nothing else of the runner's
// environment leaks in but PATH and HOME.
func (r *Runner) processEnv(s functionSpec) ([]string, error) {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TZ=:UTC",
		"AWS_REGION=" + localaws.Region, "AWS_DEFAULT_REGION=" + localaws.Region,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_LAMBDA_FUNCTION_NAME=" + r.env.Refs[s.id], "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(s.memory),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + s.id, "_HANDLER=bootstrap",
	}
	if r.cfg.CallLog != "" {
		env = append(env, awscall.EnvLog+"="+r.callLogPath(s.id), awscall.EnvAccount+"="+localaws.Account)
	}
	envProp, _ := s.props["Environment"].(map[string]any)
	vars, _ := envProp["Variables"].(map[string]any)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+fmt.Sprint(vars[k]))
	}
	env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+r.cfg.DynamoDBEndpoint, "AWS_ENDPOINT_URL_DYNAMODB_STREAMS="+r.cfg.DynamoDBEndpoint)
	if r.cfg.KMSEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_KMS="+r.cfg.KMSEndpoint, "AWS_ENDPOINT_URL_SCHEDULER="+r.cfg.KMSEndpoint,
			"AWS_ENDPOINT_URL_SECRETS_MANAGER="+r.cfg.KMSEndpoint)
	}
	return env, nil
}

// callLogPath is the file the calls of principal (a logical ID) are recorded in.
func (r *Runner) callLogPath(principal string) string {
	return filepath.Join(r.cfg.CallLog, principal+".jsonl")
}

// recordCall records a call the runner makes on behalf of principal (a function or a role, by
// logical ID) as the AWS service by does, when CallLog is set; a failure to record is logged.
func (r *Runner) recordCall(principal, by string, c awscall.Call) {
	if r.cfg.CallLog == "" {
		return
	}
	c.By = by
	l, err := awscall.Open(r.callLogPath(principal))
	if err == nil {
		err = errors.Join(l.Write(c), l.Close())
	}
	if err != nil {
		r.cfg.Log.Error("record call", "principal", principal, "action", c.Action, "error", err.Error())
	}
}

// roleByARN is the logical ID of the template's IAM role with that ARN, or "".
func (r *Runner) roleByARN(arn string) string {
	for _, id := range r.tmpl.OfType("AWS::IAM::Role") {
		if r.env.Attrs[id+".Arn"] == arn {
			return id
		}
	}
	return ""
}

// lockedWriter serialises writes from many functions' output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
