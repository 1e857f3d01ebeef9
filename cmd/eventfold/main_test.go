package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func eventfold(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("eventfold %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func TestTablesRebuildAndParked(t *testing.T) {
	stack := "cli" + strconv.FormatInt(time.Now().UnixNano(), 36)
	common := []string{"-template", "../../template.yaml", "-stack", stack, "-endpoint", awstest.DynamoDBEndpoint(t)}
	if out := eventfold(t, append([]string{"tables", "create"}, common...)...); !strings.Contains(out, stack+"-EventsTable  stream arn:") {
		t.Fatalf("tables create:\n%s", out)
	}
	eventfold(t, append([]string{"tables", "create"}, common...)...) // idempotent
	client := awstest.DynamoDB(t)
	reg, _ := command.Registry()
	st, err := store.New(client, store.Config{EventsTable: stack + "-EventsTable", SnapshotsTable: stack + "-SnapshotsTable", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.NewIDs(nil)
	proj := projection.New(client, stack+"-ReadModelsTable", st)
	for i := 0; i < 3; i++ {
		acct := ids.New()
		data, _ := json.Marshal(domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})
		res, err := st.Append(context.Background(), "account-"+acct, 0, store.Event{ID: ids.New(), Type: domain.TypeAccountOpened, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := proj.Apply(context.Background(), res.Events[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := eventfold(t, append([]string{"projections", "rebuild", "-target", stack + "-rebuilt"}, common...)...)
	if !strings.Contains(out, "rebuilt "+stack+"-rebuilt: 3 events") || !strings.Contains(out, "2 equal, 1 live behind, 0 live ahead, 0 only live, 0 different") {
		t.Fatalf("projections rebuild:\n%s", out)
	}
	if out := eventfold(t, append([]string{"parked", "list"}, common...)...); !strings.Contains(out, "0 parked") {
		t.Fatalf("parked list:\n%s", out)
	}
	if out := eventfold(t, append([]string{"parked", "replay"}, common...)...); out != "" {
		t.Fatalf("parked replay of nothing:\n%s", out)
	}
	// An audit of a subject that was never erased fails, naming the missing tombstone.
	var out3, errOut3 bytes.Buffer
	err = run(context.Background(), append([]string{"erasure", "audit", "-subject", "nobody"}, common...), &out3, &errOut3)
	if err == nil || !strings.Contains(out3.String(), "no erasure recorded") {
		t.Fatalf("audit of a subject never erased: %v\n%s", err, out3.String())
	}
	var out2, errOut bytes.Buffer
	if err := run(context.Background(), []string{"nonsense", "cmd"}, &out2, &errOut); err == nil || !strings.Contains(errOut.String(), "usage") {
		t.Fatalf("unknown command: %v %s", err, errOut.String())
	}
}
