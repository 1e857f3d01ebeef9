package localaws_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/template"
)

const cognitoTemplate = `
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UserPoolName: !Sub "${AWS::StackName}-users"
      Policies:
        PasswordPolicy:
          MinimumLength: 12
          RequireNumbers: true
  Client:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      ClientName: !Sub "${AWS::StackName}-api"
      ExplicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH]
`

// TestCreateUserPoolsKeepsWhatExists: a second run against the same moto finds the pool and its
// client by name, and the users signed up in the first are still there.
func TestCreateUserPoolsKeepsWhatExists(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(cognitoTemplate))
	if err != nil {
		t.Fatal(err)
	}
	stack := "up" + strconv.FormatInt(time.Now().UnixNano(), 36)
	api := localaws.Cognito(awstest.KMSEndpoint(t))
	ctx := context.Background()
	var ids [2][2]string
	for run := range 2 {
		env, err := tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
		if err != nil {
			t.Fatal(err)
		}
		if err := localaws.CreateUserPools(ctx, api, tmpl, env); err != nil {
			t.Fatal(err)
		}
		ids[run] = [2]string{env.Refs["Pool"], env.Refs["Client"]}
		if got, want := env.Attrs["Pool.ProviderURL"], localaws.CognitoIssuer(localaws.Region, env.Refs["Pool"]); got != want {
			t.Errorf("Pool.ProviderURL = %q, want %q", got, want)
		}
		if run == 0 {
			awstest.SignIn(t, env.Refs["Pool"], env.Refs["Client"], "kept")
		}
	}
	if ids[0] != ids[1] || ids[0][0] == "" || ids[0][1] == "" {
		t.Fatalf("pool and client of the two runs: %v, want the same, created once", ids)
	}
	// The user of the first run signs in again (SignUp says the name exists; sign-in works).
	awstest.SignIn(t, ids[1][0], ids[1][1], "kept")
	// The template's password policy applies: a short password is refused.
	if _, err := localaws.SignIn(ctx, api, ids[1][0], ids[1][1], "short", "Ab1"); err == nil {
		t.Error("a password shorter than the policy's 12 was accepted")
	}
}
