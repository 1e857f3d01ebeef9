package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// Problem types of the query routes.
const (
	// TypeNotYetConsistent is the problem type of a read that asked to wait for a version the
	// event store has and the read model has not reached in time (503, with Retry-After).
	TypeNotYetConsistent = typePrefix + "not-yet-consistent"
	// TypeVersionNotFound is the problem type of a read that asked to wait for a version the event
	// store does not have (404, answered at once: no wait can bring it).
	TypeVersionNotFound = typePrefix + "version-not-found"
)

type queryRoute func(context.Context, auth.Caller, events.APIGatewayV2HTTPRequest) (any, int64, error)

// Queries serves the query routes: read models by ID (optionally waiting for a version:
// ?minVersion=N, read-your-writes, or as they stood at a time: ?asOf=RFC3339, folded from the
// event store), lists and a stream's audit trail, paged with opaque cursors. Each answers only
// what the caller may see (package query decides; see the package doc for the statuses). The
// operator routes under /ops/ give the answers of the user routes of the same name about
// anyone, to operators only (403 to a user); API Gateway's IAM auth refuses anyone else first.
// It is safe for concurrent use.
type Queries struct {
	q      *query.Service
	log    *slog.Logger
	ids    *store.IDs
	routes map[string]queryRoute
}

// NewQueries returns the query handler.
func NewQueries(q *query.Service, log *slog.Logger) *Queries {
	h := &Queries{q: q, log: log, ids: store.NewIDs(nil)}
	h.routes = h.queryRoutes()
	return h
}

// Routes returns the route keys the handler serves, sorted.
func (h *Queries) Routes() []string { return routeKeys(h.routes) }

// Handle serves one API Gateway HTTP API request; every outcome is an HTTP response.
func (h *Queries) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	correlationID := requestCorrelationID(req, h.ids)
	resp := h.serve(ctx, req, correlationID)
	resp.Headers["X-Correlation-Id"] = correlationID
	h.log.InfoContext(ctx, "query", "route", req.RouteKey, "status", resp.StatusCode, "correlation_id", correlationID)
	return resp, nil
}

func (h *Queries) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, correlationID string) events.APIGatewayV2HTTPResponse {
	run, ok := h.routes[req.RouteKey]
	if !ok {
		return newProblem(http.StatusNotFound, TypeRouteNotFound, "no such route").response(correlationID)
	}
	caller, err := auth.FromRequest(req.RequestContext)
	if err != nil {
		p, _ := problemFor(err)
		return p.response(correlationID)
	}
	v, version, err := run(ctx, caller, req)
	switch {
	case err == nil:
		body, _ := json.Marshal(v)
		headers := map[string]string{"Content-Type": "application/json"}
		if version > 0 {
			headers["ETag"] = etag(version)
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: headers, Body: string(body)}
	case errors.Is(err, query.ErrBehind):
		resp := newProblem(http.StatusServiceUnavailable, TypeNotYetConsistent, "the read model has not reached that version yet; retry").response(correlationID)
		resp.Headers["Retry-After"] = "1"
		return resp
	case errors.Is(err, query.ErrNoVersion):
		return newProblem(http.StatusNotFound, TypeVersionNotFound, "the stream does not have that version; waiting cannot bring it").response(correlationID)
	case errors.Is(err, query.ErrBadCursor):
		return invalidParam("cursor", "is not a cursor this API issued").response(correlationID)
	}
	p, internal := problemFor(err)
	if internal {
		h.log.ErrorContext(ctx, "query failed", "route", req.RouteKey, "correlation_id", correlationID, "error", err.Error())
	}
	return p.response(correlationID)
}

func invalidParam(name, reason string) *Problem {
	p := newProblem(http.StatusBadRequest, TypeValidation, "the request has invalid fields")
	p.InvalidParams = []InvalidParam{{Name: name, Reason: reason}}
	return p
}

// intParam reads an optional integer query parameter in [lo, hi].
func intParam(req events.APIGatewayV2HTTPRequest, name string, def, lo, hi int64) (int64, error) {
	s, ok := req.QueryStringParameters[name]
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalidParam(name, "must be an integer from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10))
	}
	return n, nil
}

// byID is a get-by-ID route: ?minVersion waits for the read model (read-your-writes), ?asOf
// folds the event store up to a time instead.
func byID[T any](get func(context.Context, auth.Caller, string, int64) (T, error), asOf func(context.Context, auth.Caller, string, time.Time) (T, error),
	param string, version func(T) int64) queryRoute {
	return func(ctx context.Context, caller auth.Caller, req events.APIGatewayV2HTTPRequest) (any, int64, error) {
		var (
			v   T
			err error
		)
		if at := req.QueryStringParameters["asOf"]; at != "" {
			t, perr := time.Parse(time.RFC3339Nano, at)
			if perr != nil {
				return nil, 0, invalidParam("asOf", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			v, err = asOf(ctx, caller, req.PathParameters[param], t)
		} else {
			mv, perr := intParam(req, "minVersion", 0, 0, 1<<53)
			if perr != nil {
				return nil, 0, perr
			}
			v, err = get(ctx, caller, req.PathParameters[param], mv)
		}
		return v, version(v), err
	}
}

// operatorOnly is an operator route: the route of a user of the same answers, for operators only.
// A user is refused (403) before the query runs, even about what is their own: the route is not
// theirs (API Gateway's IAM auth refuses them first).
func operatorOnly(run queryRoute) queryRoute {
	return func(ctx context.Context, caller auth.Caller, req events.APIGatewayV2HTTPRequest) (any, int64, error) {
		if err := caller.AsOperator(); err != nil {
			return nil, 0, err
		}
		return run(ctx, caller, req)
	}
}

// queryRoutes maps API Gateway route keys to queries. Keep it equal to the HttpApi events of
// QueriesFunction in template.yaml (TestRoutesMatchTemplate checks).
func (h *Queries) queryRoutes() map[string]queryRoute {
	routes := h.userRoutes()
	for user, ops := range map[string]string{
		"GET /users/{id}":             "GET /ops/users/{id}",
		"GET /accounts/{id}":          "GET /ops/accounts/{id}",
		"GET /orders/{id}":            "GET /ops/orders/{id}",
		"GET /orders/{id}/fulfilment": "GET /ops/orders/{id}/fulfilment",
		"GET /customers/{id}/orders":  "GET /ops/customers/{id}/orders",
	} {
		routes[ops] = operatorOnly(routes[user])
	}
	return routes
}

func (h *Queries) userRoutes() map[string]queryRoute {
	q := h.q
	return map[string]queryRoute{
		"GET /users/{id}":             byID(q.User, q.UserAsOf, "id", func(u query.User) int64 { return u.Version }),
		"GET /accounts/{id}":          byID(q.Account, q.AccountAsOf, "id", func(a query.Account) int64 { return a.Version }),
		"GET /inventory/{sku}":        byID(q.Item, q.ItemAsOf, "sku", func(i query.Item) int64 { return i.Version }),
		"GET /orders/{id}":            byID(q.Order, q.OrderAsOf, "id", func(o query.Order) int64 { return o.Version }),
		"GET /orders/{id}/fulfilment": byID(q.Fulfilment, q.FulfilmentAsOf, "id", func(f query.Fulfilment) int64 { return f.Version }),
		"GET /users": func(ctx context.Context, caller auth.Caller, req events.APIGatewayV2HTTPRequest) (any, int64, error) {
			status := req.QueryStringParameters["status"]
			if status != "active" && status != "deactivated" {
				return nil, 0, invalidParam("status", "must be active or deactivated")
			}
			limit, err := intParam(req, "limit", 25, 1, 100)
			if err != nil {
				return nil, 0, err
			}
			p, err := q.UsersByStatus(ctx, caller, status, req.QueryStringParameters["cursor"], int(limit))
			return p, 0, err
		},
		"GET /customers/{id}/orders": func(ctx context.Context, caller auth.Caller, req events.APIGatewayV2HTTPRequest) (any, int64, error) {
			if err := domain.ValidUserID("id", req.PathParameters["id"]); err != nil {
				return nil, 0, err
			}
			limit, err := intParam(req, "limit", 25, 1, 100)
			if err != nil {
				return nil, 0, err
			}
			p, err := q.OrdersByCustomer(ctx, caller, req.PathParameters["id"], req.QueryStringParameters["cursor"], int(limit))
			return p, 0, err
		},
		"GET /streams/{streamId}/events": func(ctx context.Context, caller auth.Caller, req events.APIGatewayV2HTTPRequest) (any, int64, error) {
			cursor := req.QueryStringParameters["cursor"]
			if cursor != "" && req.QueryStringParameters["from"] != "" {
				return nil, 0, invalidParam("from", "cannot be given with cursor: the cursor says where the page starts")
			}
			from, err := intParam(req, "from", 1, 1, 1<<53)
			if err != nil {
				return nil, 0, err
			}
			limit, err := intParam(req, "limit", 100, 1, 1000)
			if err != nil {
				return nil, 0, err
			}
			t, err := q.Audit(ctx, caller, req.PathParameters["streamId"], from, cursor, int(limit))
			return t, 0, err
		},
	}
}
