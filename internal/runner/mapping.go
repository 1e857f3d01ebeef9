package runner

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// mapping is a DynamoDB event source mapping: a function's `Type: DynamoDB` event, with
// Lambda's defaults.
type mapping struct {
	function         string
	event            string
	streamARN        string
	startingPosition types.ShardIteratorType
	batchSize        int
	window           time.Duration
	maxRetries       int           // -1: until the record expires
	maxAge           time.Duration // 0: until the record expires
	bisect           bool
	reportFailures   bool
	filters          []map[string]any
	onFailure        string // the destination's logical ID, "" for none
}

func (r *Runner) addMappings(s functionSpec) error {
	for _, e := range r.tmpl.Events(s.id, "DynamoDB") {
		name, raw := e.Name, e.Properties
		p, err := r.env.Resolve(raw)
		if err != nil {
			return fmt.Errorf("%s event %s: %w", s.id, name, err)
		}
		props := p.(map[string]any)
		m := mapping{function: s.id, event: name, startingPosition: types.ShardIteratorTypeLatest, batchSize: 100, maxRetries: -1}
		m.streamARN, _ = props["Stream"].(string)
		if m.streamARN == "" {
			return fmt.Errorf("%s event %s: no Stream", s.id, name)
		}
		if sp, _ := props["StartingPosition"].(string); sp == "TRIM_HORIZON" {
			m.startingPosition = types.ShardIteratorTypeTrimHorizon
		}
		intProp := func(key string, def int) int {
			if v, ok := props[key]; ok {
				if n, err := strconv.Atoi(fmt.Sprint(v)); err == nil {
					return n
				}
			}
			return def
		}
		m.batchSize = min(max(intProp("BatchSize", 100), 1), 10000)
		m.window = time.Duration(intProp("MaximumBatchingWindowInSeconds", 0)) * time.Second
		m.maxRetries = intProp("MaximumRetryAttempts", -1)
		if a := intProp("MaximumRecordAgeInSeconds", -1); a > 0 {
			m.maxAge = time.Duration(a) * time.Second
		}
		m.bisect = fmt.Sprint(props["BisectBatchOnFunctionError"]) == "true"
		if responseTypes, ok := props["FunctionResponseTypes"].([]any); ok {
			for _, t := range responseTypes {
				m.reportFailures = m.reportFailures || t == "ReportBatchItemFailures"
			}
		}
		if fc, ok := props["FilterCriteria"].(map[string]any); ok {
			fs, _ := fc["Filters"].([]any)
			for _, f := range fs {
				pattern, _ := f.(map[string]any)["Pattern"].(string)
				var pm map[string]any
				if err := json.Unmarshal([]byte(pattern), &pm); err != nil {
					return fmt.Errorf("%s event %s: filter pattern is not a JSON object: %w", s.id, name, err)
				}
				m.filters = append(m.filters, pm)
			}
		}
		if dc, ok := raw["DestinationConfig"].(map[string]any); ok {
			if of, ok := dc["OnFailure"].(map[string]any); ok {
				m.onFailure = destinationName(of["Destination"])
			}
		}
		if fmt.Sprint(props["Enabled"]) == "false" {
			continue
		}
		r.mappings = append(r.mappings, m)
	}
	return nil
}

// destinationName names an OnFailure destination by the logical ID it refers to.
func destinationName(v any) string {
	switch d := v.(type) {
	case string:
		return d
	case map[string]any:
		if ref, ok := d["Ref"].(string); ok {
			return ref
		}
		if ga, ok := d["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			return fmt.Sprint(ga[0])
		}
	}
	return fmt.Sprint(v)
}
