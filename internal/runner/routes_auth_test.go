package runner_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	cipt "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
)

// The callers of TestRoutesByCaller, in the order the issue lists them.
const (
	noToken = iota
	malformedToken
	expiredToken
	wrongIssuer
	wrongAudience
	missingScope // the ID token: valid, of the right issuer and audience, with no scope
	anotherUser
	theOwner
	anOperator // SigV4-signed with the local stack's credentials
	callerClasses
)

var callerClassNames = [callerClasses]string{"no token", "a malformed token", "an expired token", "a token of another issuer",
	"a token of another audience", "a token without the scope", "another user", "the owner", "an operator"}

// routeWorld is template.yaml running in the runner, with its clock under the test's control,
// an owner (registered, an account with money, an order confirmed), another user with an account
// of their own, and a token of every class.
type routeWorld struct {
	r       *runner.Runner
	skew    atomic.Int64
	output  *awstest.SyncBuffer
	tables  []string
	headers [callerClasses]func(t *testing.T, method, url string, body []byte) []string
	owner   string // the owner's subject, their user ID
	account string // the owner's
	order   string // the owner's
	victim  string // a third user, whom the operator erases
}

func bearer(token string) func(*testing.T, string, string, []byte) []string {
	return func(*testing.T, string, string, []byte) []string { return []string{"Authorization", "Bearer " + token} }
}

func subjectOf(t *testing.T, token string) string {
	t.Helper()
	var claims struct{ Sub string }
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil || json.Unmarshal(raw, &claims) != nil || claims.Sub == "" {
		t.Fatalf("no subject in the token: %v", err)
	}
	return claims.Sub
}

func newRouteWorld(t *testing.T) *routeWorld {
	t.Helper()
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w := &routeWorld{output: &awstest.SyncBuffer{}}
	w.r = startWith(t, runner.Config{
		Template:     filepath.Join(root, "template.yaml"),
		Stack:        "ra" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Params:       nil,
		MaxInstances: 2,
		Now:          func() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) },
		Output:       w.output,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := w.r.Env()
	tables, err := awstest.MustTemplate(t).Tables(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		w.tables = append(w.tables, aws.ToString(tb.Create.TableName))
	}

	pool, client := env.Refs["UserPool"], env.Refs["UserPoolClient"]
	ownerAccess, ownerID := awstest.SignIn(t, pool, client, "owner")
	otherAccess, _ := awstest.SignIn(t, pool, client, "other")
	victimAccess, _ := awstest.SignIn(t, pool, client, "victim")
	w.owner, w.victim = subjectOf(t, ownerAccess), subjectOf(t, victimAccess)
	// Tokens API Gateway must refuse although moto signed them: of a second pool (another
	// issuer), and of a second app client of the stack's pool (another audience).
	cognito := localaws.Cognito(awstest.KMSEndpoint(t))
	flows := []cipt.ExplicitAuthFlowsType{cipt.ExplicitAuthFlowsTypeAllowUserPasswordAuth, cipt.ExplicitAuthFlowsTypeAllowRefreshTokenAuth}
	pool2, err := cognito.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(env.Refs["AWS::StackName"] + "-elsewhere")})
	if err != nil {
		t.Fatal(err)
	}
	client2, err := cognito.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: pool2.UserPool.Id, ClientName: aws.String("elsewhere"), ExplicitAuthFlows: flows})
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, _ := awstest.SignIn(t, aws.ToString(pool2.UserPool.Id), aws.ToString(client2.UserPoolClient.ClientId), "owner")
	client3, err := cognito.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: aws.String(pool), ClientName: aws.String("another-app"), ExplicitAuthFlows: flows})
	if err != nil {
		t.Fatal(err)
	}
	otherAudience, _ := awstest.SignIn(t, pool, aws.ToString(client3.UserPoolClient.ClientId), "owner")

	w.headers = [callerClasses]func(*testing.T, string, string, []byte) []string{
		noToken:        func(*testing.T, string, string, []byte) []string { return nil },
		malformedToken: bearer("eyJhbGciOiJSUzI1NiJ9.not-a-token"),
		expiredToken:   bearer(ownerAccess), // sent with the runner's clock past its exp
		wrongIssuer:    bearer(otherIssuer),
		wrongAudience:  bearer(otherAudience),
		missingScope:   bearer(ownerID),
		anotherUser:    bearer(otherAccess),
		theOwner:       bearer(ownerAccess),
		anOperator: func(t *testing.T, method, url string, body []byte) []string {
			return operator(t, method, url, body)
		},
	}

	// The owner registers, opens an account, pays in and places an order that the saga
	// confirms; the other user registers and opens an account; the victim registers.
	w.must(t, theOwner, "POST", "/users", `{"email":"owner@example.com","name":"Owner"}`, 201)
	w.must(t, anotherUser, "POST", "/users", `{"email":"other@example.com","name":"Other"}`, 201)
	if resp, body := call(t, "POST", w.r.URL()+"/users", "application/json", []byte(`{"email":"victim@example.com","name":"Victim"}`), bearer(victimAccess)(t, "", "", nil)...); resp.StatusCode != 201 {
		t.Fatalf("the victim registers: %d %s", resp.StatusCode, body)
	}
	w.account = w.must(t, theOwner, "POST", "/accounts", `{"currency":"EUR"}`, 201)["id"].(string)
	w.must(t, anotherUser, "POST", "/accounts", `{"currency":"EUR"}`, 201)
	w.must(t, theOwner, "POST", "/accounts/"+w.account+"/deposits", `{"amount":10000}`, 200)
	w.must(t, anOperator, "POST", "/inventory/SKU-A/stock", `{"quantity":10}`, 200)
	w.order = w.must(t, theOwner, "POST", "/orders", w.orderBody(), 202)["id"].(string)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, body := w.send(t, theOwner, "GET", "/orders/"+w.order+"/fulfilment", "")
		if resp.StatusCode == 200 && strings.Contains(string(body), `"finished":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order's run did not finish: %d %s", resp.StatusCode, body)
		}
	}
	w.settle(t)
	return w
}

func (w *routeWorld) orderBody() string {
	return `{"paymentAccountId":"` + w.account + `","currency":"EUR","lines":[{"sku":"SKU-A","quantity":1,"unitPrice":100}],` +
		`"shippingAddress":{"name":"Owner","line1":"Hauptstraße 1","city":"Berlin","postalCode":"10115","country":"DE"}}`
}

func (w *routeWorld) send(t *testing.T, who int, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	url := w.r.URL() + path
	return call(t, method, url, ct, []byte(body), w.headers[who](t, method, url, []byte(body))...)
}

func (w *routeWorld) must(t *testing.T, who int, method, path, body string, want int) map[string]any {
	t.Helper()
	resp, out := w.send(t, who, method, path, body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s as %s = %d %s, want %d", method, path, callerClassNames[who], resp.StatusCode, out, want)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	return m
}

// counts counts the items of every table of the stack.
func (w *routeWorld) counts(t *testing.T) map[string]int32 {
	t.Helper()
	client := awstest.DynamoDB(t)
	counts := map[string]int32{}
	for _, name := range w.tables {
		in := &dynamodb.ScanInput{TableName: aws.String(name), Select: ddbtypes.SelectCount, ConsistentRead: aws.Bool(true)}
		for p := dynamodb.NewScanPaginator(client, in); p.HasMorePages(); {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			counts[name] += page.Count
		}
	}
	return counts
}

// settle waits until nothing is being written any more (the projector and the saga done with
// what came before): the tables' counts the same twice, a second apart.
func (w *routeWorld) settle(t *testing.T) {
	t.Helper()
	prev := w.counts(t)
	for i := 0; i < 30; i++ {
		time.Sleep(time.Second)
		cur := w.counts(t)
		if maps.Equal(prev, cur) {
			return
		}
		prev = cur
	}
	t.Fatal("the tables never settled")
}

// invocations is how many requests reached a function: each logs one "command" or "query" line.
func (w *routeWorld) invocations() int {
	out := w.output.String()
	return strings.Count(out, `"msg":"command"`) + strings.Count(out, `"msg":"query"`)
}

// TestRoutesByCaller sends every route of template.yaml through the runner, over HTTP, as each
// class of caller: no token, a malformed one, an expired one, one of another issuer, one of
// another audience, one without the scope (an ID token), another user, the owner, an operator
// (SigV4). It asserts each status; that what API Gateway refuses never reaches a function and
// answers with API Gateway's own body; and that every refused request wrote nothing to any
// table. Refusals run first, on a settled stack, so that a count can only move by the request
// sent; the allowed requests run after, in an order where each leaves the next its resource.
func TestRoutesByCaller(t *testing.T) {
	w := newRouteWorld(t)
	const (
		unauthorized, forbidden, notFound, ok = 401, 403, 404, 200
		created, accepted, conflict, rule     = 201, 202, 409, 422
	)
	// user is a route of the JWT authorizer: the token classes are API Gateway's to refuse, an
	// operator's signature is no token (401), and the users' answers are the application's.
	user := func(other, owner int) [callerClasses]int {
		return [callerClasses]int{unauthorized, unauthorized, unauthorized, unauthorized, unauthorized, forbidden, other, owner, unauthorized}
	}
	// ops is an AWS_IAM route: only a valid signature gets through.
	ops := func(operator int) [callerClasses]int {
		return [callerClasses]int{forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, operator}
	}
	u := "/users/" + w.owner
	type routeCase struct {
		key, path, body string
		want            [callerClasses]int
	}
	cases := []routeCase{
		{"GET /users/{id}", u, "", user(forbidden, ok)},
		{"GET /accounts/{id}", "/accounts/" + w.account, "", user(notFound, ok)},
		{"GET /inventory/{sku}", "/inventory/SKU-A", "", user(ok, ok)},
		{"GET /orders/{id}", "/orders/" + w.order, "", user(notFound, ok)},
		{"GET /orders/{id}/fulfilment", "/orders/" + w.order + "/fulfilment", "", user(notFound, ok)},
		{"GET /customers/{id}/orders", "/customers/" + w.owner + "/orders", "", user(forbidden, ok)},
		{"GET /users", "/users?status=active", "", ops(ok)},
		{"GET /streams/{streamId}/events", "/streams/account-" + w.account + "/events", "", ops(ok)},
		{"GET /ops/users/{id}", "/ops" + u, "", ops(ok)},
		{"GET /ops/accounts/{id}", "/ops/accounts/" + w.account, "", ops(ok)},
		{"GET /ops/orders/{id}", "/ops/orders/" + w.order, "", ops(ok)},
		{"GET /ops/orders/{id}/fulfilment", "/ops/orders/" + w.order + "/fulfilment", "", ops(ok)},
		{"GET /ops/customers/{id}/orders", "/ops/customers/" + w.owner + "/orders", "", ops(ok)},
		// The owner is registered: registering again is 409, as it is for the other user.
		{"POST /users", "/users", `{"email":"again@example.com","name":"Again"}`, user(conflict, conflict)},
		{"PUT /users/{id}/email", u + "/email", `{"email":"owner2@example.com"}`, user(forbidden, ok)},
		{"POST /accounts", "/accounts", `{"currency":"EUR"}`, user(created, created)},
		{"POST /accounts/{id}/deposits", "/accounts/" + w.account + "/deposits", `{"amount":5}`, user(notFound, ok)},
		{"POST /accounts/{id}/withdrawals", "/accounts/" + w.account + "/withdrawals", `{"amount":5}`, user(notFound, ok)},
		{"POST /orders", "/orders", w.orderBody(), user(rule, accepted)},
		{"POST /inventory/{sku}/stock", "/inventory/SKU-A/stock", `{"quantity":1}`, ops(ok)},
		{"POST /users/{id}/deactivate", u + "/deactivate", "", user(forbidden, ok)},
		{"DELETE /users/{id}", "/users/" + w.victim, "", ops(ok)},
	}
	var keys []string
	for _, c := range cases {
		keys = append(keys, c.key)
	}
	if got, want := slices.Sorted(slices.Values(keys)), w.r.Routes(); !slices.Equal(got, want) {
		t.Fatalf("the cases cover %v, the template declares %v", got, want)
	}

	// Refusals first: nothing is written while they run, so every table's count must stay.
	before := w.counts(t)
	for _, c := range cases {
		for who, want := range c.want {
			if want < 400 {
				continue
			}
			if who == expiredToken {
				w.skew.Store(int64(2 * time.Hour))
			}
			reached := w.invocations()
			resp, body := w.send(t, who, strings.Fields(c.key)[0], c.path, c.body)
			w.skew.Store(0)
			if resp.StatusCode != want {
				t.Errorf("%s as %s = %d %s, want %d", c.key, callerClassNames[who], resp.StatusCode, body, want)
				continue
			}
			// API Gateway refuses the token classes on a user route, and everyone but a valid
			// signature on an operator route; what it lets through, the application answers.
			edge := c.want[anOperator] == ok || (who != anotherUser && who != theOwner)
			var gateway struct{ Message string }
			strict := json.NewDecoder(bytes.NewReader(body))
			strict.DisallowUnknownFields()
			switch {
			case edge && (strict.Decode(&gateway) != nil || gateway.Message == ""):
				t.Errorf("%s as %s: %d %s, not API Gateway's answer", c.key, callerClassNames[who], resp.StatusCode, body)
			case edge && want == unauthorized && string(bytes.TrimSpace(body)) != `{"message":"Unauthorized"}`,
				edge && want == forbidden && c.want[anOperator] != ok && string(bytes.TrimSpace(body)) != `{"message":"Forbidden"}`:
				t.Errorf("%s as %s: %d %s, not the JWT authorizer's answer", c.key, callerClassNames[who], resp.StatusCode, body)
			case edge && w.invocations() != reached:
				t.Errorf("%s as %s: refused with %d, yet it reached the function", c.key, callerClassNames[who], resp.StatusCode)
			case !edge && resp.Header.Get("Content-Type") != "application/problem+json":
				t.Errorf("%s as %s: %d %s, not the application's problem", c.key, callerClassNames[who], resp.StatusCode, body)
			}
			if after := w.counts(t); !maps.Equal(before, after) {
				t.Fatalf("%s as %s: refused with %d, but the tables went from %v to %v", c.key, callerClassNames[who], resp.StatusCode, before, after)
			}
		}
	}
	// Then what is allowed, each answered by the function.
	for _, c := range cases {
		for who, want := range c.want {
			if want >= 400 {
				continue
			}
			reached := w.invocations()
			if resp, body := w.send(t, who, strings.Fields(c.key)[0], c.path, c.body); resp.StatusCode != want {
				t.Errorf("%s as %s = %d %s, want %d", c.key, callerClassNames[who], resp.StatusCode, body, want)
			}
			// The function logs its line before it answers, and the runner copies its output as
			// it comes: by now the count has moved.
			for i := 0; w.invocations() == reached && i < 50; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if w.invocations() == reached {
				t.Errorf("%s as %s: answered, but no function logged it", c.key, callerClassNames[who])
			}
		}
	}
	// The operator's erasure of the victim held.
	if resp, body := w.send(t, anOperator, "GET", "/ops/users/"+w.victim+"?minVersion=2", ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"erased"`) {
		t.Errorf("the erased victim, as the operator sees them: %d %s", resp.StatusCode, body)
	}
}
