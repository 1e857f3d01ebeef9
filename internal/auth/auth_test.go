package auth_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/auth"
)

func jwt(claims map[string]string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims}}
}

func TestFromRequest(t *testing.T) {
	const sub = "00dad63f-04b8-4552-8337-a0b48690001b"
	arn := "arn:aws:iam::123456789012:user/ops"
	for _, c := range []struct {
		name string
		a    *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
		want auth.Caller
		err  error
	}{
		{"no authorizer context", nil, auth.Caller{}, auth.ErrUnauthenticated},
		{"an empty one", &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}, auth.Caller{}, auth.ErrUnauthenticated},
		{"a Cognito access token", jwt(map[string]string{"sub": sub, "scope": "aws.cognito.signin.user.admin"}), auth.User(sub), nil},
		{"another issuer's subject", jwt(map[string]string{"sub": "auth0|5f7c8ec7c33c6c004bbafe82"}), auth.User("auth0|5f7c8ec7c33c6c004bbafe82"), nil},
		{"claims without sub", jwt(map[string]string{"username": "ann"}), auth.Caller{}, auth.ErrUnauthenticated},
		{"a sub that cannot be a user ID", jwt(map[string]string{"sub": "../users/x"}), auth.Caller{}, auth.ErrUnauthenticated},
		{"a sub with a separator of streams", jwt(map[string]string{"sub": "a#b"}), auth.Caller{}, auth.ErrUnauthenticated},
		{"an IAM principal", &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: arn}}, auth.Operator(arn), nil},
		{"an IAM context without a principal", &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{}}, auth.Caller{}, auth.ErrUnauthenticated},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := auth.FromRequest(events.APIGatewayV2HTTPRequestContext{Authorizer: c.a})
			if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("FromRequest = %+v, %v; want %+v, %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestOwns(t *testing.T) {
	ann, bob, ops := auth.User("ann"), auth.User("bob"), auth.Operator("arn:aws:iam::1:user/ops")
	switch {
	case !ann.Owns("ann"), ann.Owns("bob"), bob.Owns("ann"), ann.Owns(""), (auth.Caller{}).Owns(""), !ops.Owns("ann"):
		t.Fatal("Owns: a user owns only their own, an operator everything, nobody what has no owner")
	}
	if (auth.Caller{}).Authenticated() || !ann.Authenticated() || !ops.Authenticated() {
		t.Fatal("Authenticated")
	}
}

func TestCallerChecks(t *testing.T) {
	ann, ops, nobody := auth.User("ann"), auth.Operator("arn:aws:iam::1:user/ops"), auth.Caller{}
	for _, c := range []struct {
		name      string
		got, want error
	}{
		{"nobody as a user", nobody.AsUser(), auth.ErrUnauthenticated},
		{"a user as a user", ann.AsUser(), nil},
		{"an operator as a user", ops.AsUser(), auth.ErrForbidden},
		{"nobody as an operator", nobody.AsOperator(), auth.ErrUnauthenticated},
		{"a user as an operator", ann.AsOperator(), auth.ErrForbidden},
		{"an operator as an operator", ops.AsOperator(), nil},
		{"nobody on ann's", nobody.MayActOn("ann"), auth.ErrUnauthenticated},
		{"ann on ann's", ann.MayActOn("ann"), nil},
		{"ann on bob's", ann.MayActOn("bob"), auth.ErrForbidden},
		{"an operator on bob's", ops.MayActOn("bob"), nil},
	} {
		if !errors.Is(c.got, c.want) || (c.want == nil) != (c.got == nil) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}
