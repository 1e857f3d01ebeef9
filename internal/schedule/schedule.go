// Package schedule sets and cancels one-time deadlines with Amazon EventBridge Scheduler.
//
// A deadline is a one-time schedule in a schedule group: `at(yyyy-mm-ddThh:mm:ss)` in UTC, no
// flexible time window, deleted by the scheduler once it has run (ActionAfterCompletion DELETE),
// with a target (a Lambda function's ARN and the JSON it is invoked with), the role the scheduler
// assumes to invoke it, a bounded retry policy and a dead-letter queue for a target that keeps
// failing. The schedule's name is the deadline's identity: setting a deadline whose name exists
// changes nothing, cancelling one that is gone is no error, so callers may repeat either after a
// crash. EventBridge Scheduler fires a one-time schedule within about a minute of its time.
//
// Scheduler is the adapter over the AWS SDK's client; Memory is an in-memory stand-in for tests
// that keeps the same contract. Locally, the runner (internal/runner) fires the schedules the
// scheduler emulator stores, since the emulator itself fires nothing.
package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// ErrInvalid is returned, wrapped, by Config.Validate for a configuration that cannot work, and
// by Set and Cancel for a schedule that the scheduler would refuse (a bad name, no time, no
// target, an input that is not JSON). Nothing is sent to the scheduler then.
var ErrInvalid = errors.New("invalid schedule")

// Error is what Set and Cancel return when the scheduler fails them: the operation ("set" or
// "cancel") and the schedule's name, around the SDK's error. It never holds the schedule's input.
type Error struct {
	Op   string
	Name string
	Err  error
}

func (e *Error) Error() string { return "schedule: " + e.Op + " " + e.Name + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Retry policy of every schedule's target: how often the scheduler retries a failed invocation,
// and for how long after the schedule's time. A deadline that cannot be delivered within the
// hour goes to the dead-letter queue, where an operator sees it; the scheduler's defaults (185
// attempts over 24 hours) would hide it for a day.
const (
	RetryAttempts = 10
	MaxEventAge   = time.Hour
)

// Config is where and as whom the schedules run.
type Config struct {
	// Group is the schedule group's name (the template's FulfilmentSchedules).
	Group string
	// RoleARN is the role the scheduler assumes to invoke targets.
	RoleARN string
	// DeadLetterARN is the SQS queue that receives a target's input once its retries are spent.
	DeadLetterARN string
}

var groupName = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)

// Validate reports every problem of the configuration at once, each wrapping ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if !groupName.MatchString(c.Group) {
		errs = append(errs, fmt.Errorf("%w: schedule group %q: want 1 to 64 of [0-9a-zA-Z._-]", ErrInvalid, c.Group))
	}
	if !strings.HasPrefix(c.RoleARN, "arn:") {
		errs = append(errs, fmt.Errorf("%w: scheduler role %q is not an ARN", ErrInvalid, c.RoleARN))
	}
	if !strings.HasPrefix(c.DeadLetterARN, "arn:") {
		errs = append(errs, fmt.Errorf("%w: dead-letter queue %q is not an ARN", ErrInvalid, c.DeadLetterARN))
	}
	return errors.Join(errs...)
}

// Schedule is a one-time deadline: at At (to the second; the scheduler fires within a minute),
// invoke TargetARN with Input.
type Schedule struct {
	// Name identifies the schedule in its group: 1 to 64 of [0-9a-zA-Z._-]; see Name.
	Name string
	At   time.Time
	// TargetARN is the function to invoke; Input, the JSON it is invoked with (empty: none).
	TargetARN string
	Input     []byte
}

var scheduleName = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)

// validate checks what the scheduler would refuse, without ever quoting the input.
func (s Schedule) validate() error {
	var errs []error
	if !scheduleName.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("%w: name %q: want 1 to 64 of [0-9a-zA-Z._-]", ErrInvalid, s.Name))
	}
	if s.At.IsZero() {
		errs = append(errs, fmt.Errorf("%w: %s has no time", ErrInvalid, s.Name))
	}
	if !strings.HasPrefix(s.TargetARN, "arn:") {
		errs = append(errs, fmt.Errorf("%w: %s target %q is not an ARN", ErrInvalid, s.Name, s.TargetARN))
	}
	if len(s.Input) > 0 && !json.Valid(s.Input) {
		errs = append(errs, fmt.Errorf("%w: %s input is not JSON", ErrInvalid, s.Name))
	}
	return errors.Join(errs...)
}

// Expression is the scheduler's one-time expression for t, in UTC, to the second.
func Expression(t time.Time) string {
	return "at(" + t.UTC().Format("2006-01-02T15:04:05") + ")"
}

// ParseExpression reads an `at(yyyy-mm-ddThh:mm:ss)` expression in the named IANA time zone
// ("" is UTC). It fails, wrapping ErrInvalid, for anything else (rate and cron expressions
// included).
func ParseExpression(expr, timezone string) (time.Time, error) {
	inner, ok := strings.CutPrefix(expr, "at(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%w: %q is not a one-time at() expression", ErrInvalid, expr)
	}
	loc := time.UTC
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: time zone %q: %v", ErrInvalid, timezone, err)
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", inner, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q: %v", ErrInvalid, expr, err)
	}
	return t, nil
}

// maxPrefix bounds the prefix Name keeps, so that a hashed name keeps at least 23 hex digits
// (92 bits) of the ID's hash.
const maxPrefix = 40

// Name returns a valid schedule name for the run with the given ID: "prefix-id" when that is 1
// to 64 of [0-9a-zA-Z._-], else "prefix." followed by as many hex digits of the ID's SHA-256 as
// fit in 64 characters. The same prefix and ID always give the same name, and the two forms never
// collide (the character after the prefix tells them apart). The prefix should be a short
// constant of valid characters; others are replaced by '_', and it is cut to 40 characters.
func Name(prefix, id string) string {
	p := []byte(prefix)
	for i, c := range p {
		if !validChar(c) {
			p[i] = '_'
		}
	}
	if len(p) > maxPrefix {
		p = p[:maxPrefix]
	}
	if plain := string(p) + "-" + id; scheduleName.MatchString(plain) {
		return plain
	}
	sum := sha256.Sum256([]byte(id))
	digits := hex.EncodeToString(sum[:])
	return string(p) + "." + digits[:min(len(digits), 64-len(p)-1)]
}

func validChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-'
}

// API is the part of the EventBridge Scheduler client Scheduler uses.
type API interface {
	CreateSchedule(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	DeleteSchedule(context.Context, *scheduler.DeleteScheduleInput, ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// Scheduler sets and cancels deadlines as EventBridge Scheduler one-time schedules in one group.
// It is safe for concurrent use.
type Scheduler struct {
	api API
	cfg Config
}

// New returns a Scheduler over api; it fails, wrapping ErrInvalid, when cfg does not validate.
func New(api API, cfg Config) (*Scheduler, error) {
	if api == nil {
		return nil, fmt.Errorf("%w: no scheduler client", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scheduler{api: api, cfg: cfg}, nil
}

// Set creates the one-time schedule s. When a schedule of that name exists in the group, Set
// returns nil and leaves it as it is, whatever its time and input: the name is the deadline's
// identity. It returns an error wrapping ErrInvalid for a schedule the scheduler would refuse
// (nothing is sent), and an *Error for a failed call.
func (s *Scheduler) Set(ctx context.Context, sc Schedule) error {
	if err := sc.validate(); err != nil {
		return err
	}
	target := &types.Target{
		Arn:              aws.String(sc.TargetARN),
		RoleArn:          aws.String(s.cfg.RoleARN),
		DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String(s.cfg.DeadLetterARN)},
		RetryPolicy: &types.RetryPolicy{
			MaximumRetryAttempts:     aws.Int32(RetryAttempts),
			MaximumEventAgeInSeconds: aws.Int32(int32(MaxEventAge / time.Second)),
		},
	}
	if len(sc.Input) > 0 {
		target.Input = aws.String(string(sc.Input))
	}
	_, err := s.api.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(sc.Name),
		GroupName:                  aws.String(s.cfg.Group),
		ScheduleExpression:         aws.String(Expression(sc.At)),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		Target:                     target,
	})
	var conflict *types.ConflictException
	if err != nil && !errors.As(err, &conflict) {
		return &Error{Op: "set", Name: s.cfg.Group + "/" + sc.Name, Err: err}
	}
	return nil
}

// Cancel deletes the schedule of that name. A schedule that is not there (it fired and was
// deleted, it was cancelled before, it never existed) is no error. It returns an error wrapping
// ErrInvalid for a name no schedule can have, and an *Error for a failed call.
func (s *Scheduler) Cancel(ctx context.Context, name string) error {
	if !scheduleName.MatchString(name) {
		return fmt.Errorf("%w: name %q: want 1 to 64 of [0-9a-zA-Z._-]", ErrInvalid, name)
	}
	_, err := s.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(s.cfg.Group)})
	var missing *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return &Error{Op: "cancel", Name: s.cfg.Group + "/" + name, Err: err}
	}
	return nil
}
