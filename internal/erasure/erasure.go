// Package erasure proves an erasure: for a data subject it reads the raw tables — events,
// snapshots, read models, idempotency records, parked events, keys — and reports every place
// where personal data of theirs is still readable. It needs no plaintext to look for: personal
// fields must be sealed and must no longer open, read models must hold no personal attributes,
// and the subject's key must be gone.
package erasure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// Tables names the tables to audit.
type Tables struct {
	Events, Snapshots, ReadModels, Idempotency, Parking, Keys string
}

// Finding is one place where a subject's personal data is still readable. It names the place,
// never the data.
type Finding struct {
	Table, Item, Problem string
}

func (f Finding) String() string { return f.Table + " " + f.Item + ": " + f.Problem }

// API is the part of DynamoDB the audit reads with.
type API interface {
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Audit looks for the subject's readable personal data. keys must read the keys table without
// a cache (a fresh keyring), so that it proves what other processes will see.
func Audit(ctx context.Context, api API, keys *crypto.Keyring, t Tables, subject string) ([]Finding, error) {
	var out []Finding
	add := func(table, item, problem string) { out = append(out, Finding{table, item, problem}) }

	// The key: a tombstone, no wrapped key.
	k, err := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.Keys), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: subject}}})
	if err != nil {
		return nil, err
	}
	switch {
	case k.Item == nil:
		add(t.Keys, subject, "no erasure recorded (no tombstone)")
	case k.Item["wrapped"] != nil:
		add(t.Keys, subject, "the wrapped data key is still there")
	}

	// Events: every personal field sealed, and none opens.
	subj := expression.Name(store.AttrSubject).Equal(expression.Value(subject))
	err = scan(ctx, api, t.Events, &subj, func(item map[string]types.AttributeValue) error {
		e, err := store.DecodeItem(item)
		if err != nil {
			add(t.Events, fmt.Sprint(item[store.AttrStream]), "undecodable event item")
			return nil
		}
		checkEvent(ctx, keys, e, t.Events, add)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Snapshots holding the subject's data must be sealed (whole); the erased key keeps them
	// shut.
	err = scan(ctx, api, t.Snapshots, &subj, func(item map[string]types.AttributeValue) error {
		if !crypto.IsSealed(json.RawMessage(attr(item, store.AttrData))) {
			add(t.Snapshots, attr(item, store.AttrStream), "a snapshot of the subject's data in plain text")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Read models: the user's item and the customer's orders hold no personal attribute.
	personal := map[string]bool{}
	for _, typ := range domain.EventTypes() {
		for _, f := range domain.PersonalFields(typ) {
			personal[f] = true
		}
	}
	ofSubject := expression.Name(projection.AttrKey).Equal(expression.Value("user-" + subject)).Or(expression.Name(projection.AttrCustomerID).Equal(expression.Value(subject)))
	err = scan(ctx, api, t.ReadModels, &ofSubject, func(item map[string]types.AttributeValue) error {
		for name := range item {
			if personal[name] {
				add(t.ReadModels, attr(item, projection.AttrKey), "personal attribute "+name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Parked events: like events, from the record they keep.
	err = scan(ctx, api, t.Parking, nil, func(item map[string]types.AttributeValue) error {
		var rec events.DynamoDBEventRecord
		undecodable := func() {
			add(t.Parking, attr(item, "sk"), "a parked record the audit cannot read (it may hold anyone's data)")
		}
		if json.Unmarshal([]byte(attr(item, "record")), &rec) != nil {
			undecodable()
			return nil
		}
		img, err := ddbstream.Item(rec.Change.NewImage)
		if err != nil {
			undecodable()
			return nil
		}
		e, err := store.DecodeItem(img)
		if err != nil {
			undecodable()
			return nil
		}
		if e.Subject != subject {
			return nil
		}
		checkEvent(ctx, keys, e, t.Parking, add)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Idempotency records keep responses only; none may carry a personal field.
	err = scan(ctx, api, t.Idempotency, nil, func(item map[string]types.AttributeValue) error {
		resp, ok := item["response"].(*types.AttributeValueMemberM)
		if !ok {
			return nil
		}
		var body map[string]json.RawMessage
		if json.Unmarshal([]byte(attr(resp.Value, "body")), &body) != nil {
			return nil
		}
		for name := range body {
			if personal[name] {
				add(t.Idempotency, attr(item, "pk"), "a recorded response with personal field "+name)
			}
		}
		return nil
	})
	return out, err
}

// checkEvent reports an event of the subject whose personal fields are plain or still open.
func checkEvent(ctx context.Context, keys *crypto.Keyring, e store.Event, table string, add func(table, item, problem string)) {
	fields := domain.PersonalFields(e.Type)
	if len(fields) == 0 {
		return
	}
	where := fmt.Sprintf("%s@%d", e.StreamID, e.Version)
	var obj map[string]json.RawMessage
	if json.Unmarshal(e.Data, &obj) != nil {
		add(table, where, "payload is not a JSON object")
		return
	}
	sealed := 0
	for _, f := range fields {
		v, ok := obj[f]
		switch {
		case !ok || string(v) == "null":
		case crypto.IsSealed(v):
			sealed++
		default:
			add(table, where, "field "+f+" in plain text")
		}
	}
	if sealed == 0 {
		return
	}
	_, shredded, err := keys.OpenFields(ctx, e.Subject, e.ID, e.Data, fields)
	switch {
	case err != nil && !errors.Is(err, crypto.ErrShredded):
		add(table, where, "sealed fields do not authenticate: "+err.Error())
	case !shredded:
		add(table, where, "sealed fields still open")
	}
}

func attr(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// scan scans table (see store.ScanTable) when the audit was given one: a table not named is
// not audited.
func scan(ctx context.Context, api API, table string, filter *expression.ConditionBuilder, each func(map[string]types.AttributeValue) error) error {
	if table == "" {
		return nil
	}
	return store.ScanTable(ctx, api, table, filter, each)
}
