package query_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
)

// TestReadModelTagsAreProjectionNames: the read models are read with the attribute names the
// projector writes, spelled once in package projection.
func TestReadModelTagsAreProjectionNames(t *testing.T) {
	for _, tt := range []struct {
		model any
		want  map[string]string // field -> attribute
	}{
		{query.User{}, map[string]string{"ID": projection.AttrUserID, "Email": projection.AttrEmail, "Name": projection.AttrName,
			"Status": projection.AttrUserStatus, "Version": projection.AttrVersion}},
		{query.Account{}, map[string]string{"ID": projection.AttrAccountID, "OwnerID": projection.AttrOwnerID,
			"Currency": projection.AttrCurrency, "Balance": projection.AttrBalance, "Version": projection.AttrVersion}},
		{query.Item{}, map[string]string{"SKU": projection.AttrSKU, "OnHand": projection.AttrOnHand,
			"Reserved": projection.AttrReserved, "Version": projection.AttrVersion}},
		{query.Order{}, map[string]string{"ID": projection.AttrOrderID, "CustomerID": projection.AttrCustomerID,
			"Status": projection.AttrOrderStatus, "Currency": projection.AttrCurrency, "Total": projection.AttrTotal,
			"Lines": projection.AttrLineCount, "CancelReason": projection.AttrCancelReason, "Version": projection.AttrVersion}},
		{query.Fulfilment{}, map[string]string{"OrderID": projection.AttrOrderID, "Step": projection.AttrRunStep,
			"CancelReason": projection.AttrCancelReason, "Deadline": projection.AttrDeadline, "LastError": projection.AttrLastError,
			"Finished": projection.AttrFinished, "Decisions": projection.AttrDecisions, "Steps": projection.AttrSteps, "Version": projection.AttrVersion}},
		{query.RunDeadline{}, map[string]string{"At": projection.AttrDeadlineAt, "Pending": projection.AttrDeadlinePending}},
		{query.RunStep{}, map[string]string{"Step": projection.AttrStepName, "At": projection.AttrStepAt,
			"EventType": projection.AttrStepEventType, "Version": projection.AttrStepVersion}},
		{query.StuckRun{}, map[string]string{"OrderID": projection.AttrOrderID, "Step": projection.AttrRunStep, "Deadline": projection.AttrWaitingUntil}},
	} {
		typ := reflect.TypeOf(tt.model)
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("dynamodbav"), ",")
			if name == "-" {
				continue
			}
			if want, ok := tt.want[f.Name]; !ok || name != want {
				t.Errorf("query.%s.%s is read from %q, want %q", typ.Name(), f.Name, name, want)
			}
		}
	}
}
