package schedule_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/schedule"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// deadlines is what the saga uses of a Scheduler or a Memory.
type deadlines interface {
	Set(context.Context, schedule.Schedule) error
	Cancel(context.Context, string) error
}

// lookup returns the schedule of that name as the implementation stores it.
type lookup func(t *testing.T, name string) (schedule.Schedule, bool)

const target = "arn:aws:lambda:us-east-1:000000000000:function:eventfold-saga"

// contract is what every implementation of deadlines must do.
func contract(t *testing.T, d deadlines, get lookup) {
	ctx := context.Background()
	at := time.Date(2030, 5, 6, 7, 8, 9, 500_000_000, time.FixedZone("CEST", 2*3600))
	first := schedule.Schedule{Name: schedule.Name("fulfilment", "01JORDER"), At: at, TargetARN: target, Input: []byte(`{"deadline":"d1"}`)}

	t.Run("SetStoresTheScheduleToTheSecondInUTC", func(t *testing.T) {
		if err := d.Set(ctx, first); err != nil {
			t.Fatal(err)
		}
		got, ok := get(t, first.Name)
		if !ok || !got.At.Equal(at.Truncate(time.Second)) || got.At.Location() != time.UTC || got.TargetARN != target || string(got.Input) != `{"deadline":"d1"}` {
			t.Fatalf("stored %+v (found %v), want %s at %v with its input", got, ok, target, at.UTC().Truncate(time.Second))
		}
	})
	t.Run("SetTwiceIsHarmlessAndKeepsTheFirst", func(t *testing.T) {
		again := first
		again.At, again.Input = at.Add(time.Hour), []byte(`{"deadline":"d2"}`)
		for i := 0; i < 2; i++ {
			if err := d.Set(ctx, again); err != nil {
				t.Fatalf("set %d: %v", i, err)
			}
		}
		got, _ := get(t, first.Name)
		if !got.At.Equal(at.Truncate(time.Second)) || string(got.Input) != `{"deadline":"d1"}` {
			t.Fatalf("after setting the name again: %+v, want the first schedule kept", got)
		}
	})
	t.Run("CancelTwiceIsHarmless", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if err := d.Cancel(ctx, first.Name); err != nil {
				t.Fatalf("cancel %d: %v", i, err)
			}
		}
		if got, ok := get(t, first.Name); ok {
			t.Fatalf("cancelled schedule still there: %+v", got)
		}
	})
	t.Run("CancelOfAnUnknownName", func(t *testing.T) {
		if err := d.Cancel(ctx, "never-set-"+randomID()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SetAfterCancelCreatesItAgain", func(t *testing.T) {
		if err := d.Set(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, ok := get(t, first.Name); !ok {
			t.Fatal("not set again after its cancel")
		}
	})
	t.Run("InvalidSchedulesAreRefusedAndNothingIsStored", func(t *testing.T) {
		ok := schedule.Schedule{Name: "valid-" + randomID(), At: at, TargetARN: target, Input: []byte(`{}`)}
		tests := map[string]func(*schedule.Schedule){
			"empty name":        func(s *schedule.Schedule) { s.Name = "" },
			"name with a slash": func(s *schedule.Schedule) { s.Name = "a/b" },
			"name of 65 chars":  func(s *schedule.Schedule) { s.Name = strings.Repeat("n", 65) },
			"no time":           func(s *schedule.Schedule) { s.At = time.Time{} },
			"target not an ARN": func(s *schedule.Schedule) { s.TargetARN = "eventfold-saga" },
			"input not JSON":    func(s *schedule.Schedule) { s.Input = []byte(`{"secret": nope`) },
		}
		for name, mutate := range tests {
			t.Run(name, func(t *testing.T) {
				s := ok
				mutate(&s)
				err := d.Set(ctx, s)
				if !errors.Is(err, schedule.ErrInvalid) {
					t.Fatalf("Set = %v, want ErrInvalid", err)
				}
				if strings.Contains(err.Error(), "nope") {
					t.Fatalf("the error quotes the input: %v", err)
				}
				if s.Name != "" && scheduleNameRE.MatchString(s.Name) {
					if _, found := get(t, s.Name); found {
						t.Fatal("refused schedule was stored")
					}
				}
			})
		}
		if err := d.Cancel(ctx, "a/b"); !errors.Is(err, schedule.ErrInvalid) {
			t.Fatalf("Cancel(a/b) = %v, want ErrInvalid", err)
		}
	})
}

var scheduleNameRE = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func TestMemoryContract(t *testing.T) {
	m := &schedule.Memory{}
	contract(t, m, func(t *testing.T, name string) (schedule.Schedule, bool) {
		for _, s := range m.Schedules() {
			if s.Name == name {
				return s, true
			}
		}
		return schedule.Schedule{}, false
	})
}

func TestMemoryDue(t *testing.T) {
	ctx := context.Background()
	m := &schedule.Memory{}
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []schedule.Schedule{
		{Name: "late", At: now.Add(time.Minute), TargetARN: target},
		{Name: "b-now", At: now, TargetARN: target},
		{Name: "a-now", At: now, TargetARN: target},
		{Name: "early", At: now.Add(-time.Minute), TargetARN: target},
	} {
		if err := m.Set(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, s := range m.Due(now) {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "early a-now b-now" {
		t.Fatalf("Due(now) = %s, want early a-now b-now", got)
	}
	if n := len(m.Due(now.Add(-2 * time.Minute))); n != 0 {
		t.Fatalf("%d due before any time", n)
	}
}

// mustGroup creates a schedule group of its own on moto's server.
func mustGroup(t *testing.T, api *scheduler.Client) string {
	t.Helper()
	name := "sched-test-" + randomID()
	if _, err := api.CreateScheduleGroup(context.Background(), &scheduler.CreateScheduleGroupInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		api.DeleteScheduleGroup(context.Background(), &scheduler.DeleteScheduleGroupInput{Name: aws.String(name)})
	})
	return name
}

func TestSchedulerContractOnMoto(t *testing.T) {
	api := localaws.Scheduler(awstest.KMSEndpoint(t))
	cfg := schedule.Config{Group: mustGroup(t, api), RoleARN: "arn:aws:iam::000000000000:role/eventfold-SchedulerRole",
		DeadLetterARN: "arn:aws:sqs:us-east-1:000000000000:eventfold-DeadlineDeadLetterQueue"}
	s, err := schedule.New(api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	contract(t, s, func(t *testing.T, name string) (schedule.Schedule, bool) {
		t.Helper()
		out, err := api.GetSchedule(context.Background(), &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(cfg.Group)})
		var missing *types.ResourceNotFoundException
		if errors.As(err, &missing) {
			return schedule.Schedule{}, false
		}
		if err != nil {
			t.Fatal(err)
		}
		// Everything else of the schedule, as EventBridge Scheduler needs it for a deadline.
		tg := out.Target
		switch {
		case aws.ToString(out.ScheduleExpressionTimezone) != "UTC" || out.FlexibleTimeWindow == nil || out.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff:
			t.Errorf("time zone %q, window %+v", aws.ToString(out.ScheduleExpressionTimezone), out.FlexibleTimeWindow)
		case out.ActionAfterCompletion != types.ActionAfterCompletionDelete:
			t.Errorf("ActionAfterCompletion %q", out.ActionAfterCompletion)
		case tg == nil || aws.ToString(tg.RoleArn) != cfg.RoleARN || tg.DeadLetterConfig == nil || aws.ToString(tg.DeadLetterConfig.Arn) != cfg.DeadLetterARN:
			t.Errorf("target %+v", tg)
		case tg.RetryPolicy == nil || aws.ToInt32(tg.RetryPolicy.MaximumRetryAttempts) != schedule.RetryAttempts ||
			aws.ToInt32(tg.RetryPolicy.MaximumEventAgeInSeconds) != int32(schedule.MaxEventAge/time.Second):
			t.Errorf("retry policy %+v", tg.RetryPolicy)
		}
		at, err := schedule.ParseExpression(aws.ToString(out.ScheduleExpression), aws.ToString(out.ScheduleExpressionTimezone))
		if err != nil {
			t.Fatal(err)
		}
		return schedule.Schedule{Name: aws.ToString(out.Name), At: at, TargetARN: aws.ToString(tg.Arn), Input: []byte(aws.ToString(tg.Input))}, true
	})
}

func TestSchedulerErrorsNameTheScheduleNotItsInput(t *testing.T) {
	api := localaws.Scheduler(awstest.KMSEndpoint(t))
	s, err := schedule.New(api, schedule.Config{Group: "no-such-group-" + randomID(), RoleARN: "arn:aws:iam::000000000000:role/r", DeadLetterARN: "arn:aws:sqs:us-east-1:000000000000:q"})
	if err != nil {
		t.Fatal(err)
	}
	// moto answers a schedule in a group that does not exist with a server error.
	err = s.Set(context.Background(), schedule.Schedule{Name: "n1", At: time.Now(), TargetARN: target, Input: []byte(`{"address":"1 Secret Lane"}`)})
	var se *schedule.Error
	if !errors.As(err, &se) || se.Op != "set" || !strings.Contains(err.Error(), "n1") || strings.Contains(err.Error(), "Secret") {
		t.Fatalf("Set in a missing group = %v, want a *schedule.Error naming n1 without the input", err)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := schedule.Config{Group: "bad/group"}.Validate()
	if !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("Validate = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"schedule group", "scheduler role", "dead-letter queue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
	if _, err := schedule.New(nil, schedule.Config{}); !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("New(nil) = %v", err)
	}
	good := schedule.Config{Group: "g", RoleARN: "arn:aws:iam::1:role/r", DeadLetterARN: "arn:aws:sqs:r:1:q"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestName(t *testing.T) {
	long := strings.Repeat("7", 80)
	tests := []struct {
		name, prefix, id, want string
	}{
		{"plain when it fits", "fulfilment", "01JABCDEF", "fulfilment-01JABCDEF"},
		{"exactly 64", "p", strings.Repeat("x", 62), "p-" + strings.Repeat("x", 62)},
		{"hashed when too long", "fulfilment", long, "fulfilment." + sha(long)[:53]},
		{"hashed for characters a name cannot hold", "fulfilment", "order/1 2", "fulfilment." + sha("order/1 2")[:53]},
		{"a bad prefix is made valid", "full filment", "1", "full_filment-1"},
		{"a long prefix is cut to 40", strings.Repeat("p", 50), long, strings.Repeat("p", 40) + "." + sha(long)[:23]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schedule.Name(tt.prefix, tt.id)
			if got != tt.want {
				t.Fatalf("Name(%q, %q) = %q, want %q", tt.prefix, tt.id, got, tt.want)
			}
			if !scheduleNameRE.MatchString(got) {
				t.Fatalf("%q is not a valid schedule name", got)
			}
			if again := schedule.Name(tt.prefix, tt.id); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
		})
	}
	// The hashed form never equals the plain form of another ID.
	hashed := schedule.Name("f", long)
	if plain := schedule.Name("f", strings.TrimPrefix(hashed, "f.")); plain == hashed {
		t.Fatalf("%q names two IDs", hashed)
	}
	if schedule.Name("f", "a"+long) == schedule.Name("f", "b"+long) {
		t.Fatal("two long IDs share a name")
	}
}

func FuzzName(f *testing.F) {
	f.Add("fulfilment", "01J")
	f.Add("", "")
	f.Add("x/y", strings.Repeat("é", 40))
	f.Fuzz(func(t *testing.T, prefix, id string) {
		if prefix == "" {
			prefix = "p"
		}
		got := schedule.Name(prefix, id)
		if !scheduleNameRE.MatchString(got) {
			t.Fatalf("Name(%q, %q) = %q: not a valid schedule name", prefix, id, got)
		}
	})
}

func TestParseExpression(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	if got, err := schedule.ParseExpression(schedule.Expression(at), "UTC"); err != nil || !got.Equal(at) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if got, err := schedule.ParseExpression("at(2030-05-06T09:08:09)", "Europe/Paris"); err != nil || !got.Equal(at) {
		t.Fatalf("in Europe/Paris: %v, %v; want %v", got, err, at)
	}
	for _, bad := range []string{"rate(5 minutes)", "cron(0 12 * * ? *)", "at(2030-05-06 07:08:09)", "at(2030-05-06T07:08:09", ""} {
		if _, err := schedule.ParseExpression(bad, ""); !errors.Is(err, schedule.ErrInvalid) {
			t.Errorf("ParseExpression(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := schedule.ParseExpression("at(2030-05-06T07:08:09)", "Mars/Olympus"); !errors.Is(err, schedule.ErrInvalid) {
		t.Errorf("unknown time zone: %v", err)
	}
}
