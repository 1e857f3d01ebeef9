package app

import (
	"errors"
	"io"

	"github.com/eventfold/eventfold/internal/metrics"
)

// MetricsFromEnv returns the emitter of a deployed function: EMF lines to w (stdout), each with
// the metrics.DimStack dimension METRICS_STACK names (template.yaml sets it to the stack's
// name in every function), so that the alarms of one stack never see another's metrics. An
// empty METRICS_STACK is an error: the stack's alarms would not see the function's metrics.
func MetricsFromEnv(getenv func(string) string, w io.Writer) (*metrics.Emitter, error) {
	stack := getenv("METRICS_STACK")
	if stack == "" {
		return nil, errors.New("METRICS_STACK is required: the stack's name, the Stack dimension of every metric")
	}
	return metrics.New(w).With(metrics.DimStack, stack), nil
}
