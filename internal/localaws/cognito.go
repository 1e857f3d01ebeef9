package localaws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/eventfold/eventfold/internal/template"
)

// Resource types CreateUserPools reads.
const (
	UserPoolType       = "AWS::Cognito::UserPool"
	UserPoolClientType = "AWS::Cognito::UserPoolClient"
)

// Cognito returns a Cognito user pools client for moto's server at endpoint. moto signs the
// pools' tokens and serves each pool's OpenID configuration and JWKS at
// <endpoint>/<pool ID>/.well-known/.
func Cognito(endpoint string) *cip.Client {
	return cip.NewFromConfig(Config(), func(o *cip.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// UserPoolAPI is the part of the Cognito user pools API CreateUserPools and FindUserPool use.
type UserPoolAPI interface {
	ListUserPools(context.Context, *cip.ListUserPoolsInput, ...func(*cip.Options)) (*cip.ListUserPoolsOutput, error)
	CreateUserPool(context.Context, *cip.CreateUserPoolInput, ...func(*cip.Options)) (*cip.CreateUserPoolOutput, error)
	ListUserPoolClients(context.Context, *cip.ListUserPoolClientsInput, ...func(*cip.Options)) (*cip.ListUserPoolClientsOutput, error)
	CreateUserPoolClient(context.Context, *cip.CreateUserPoolClientInput, ...func(*cip.Options)) (*cip.CreateUserPoolClientOutput, error)
}

// userPoolProps and userPoolClientProps are the properties of the template's pools and clients
// that matter locally: names, the password policy users sign up under, the sign-in flows.
type userPoolProps struct {
	UserPoolName string
	Policies     *ciptypes.UserPoolPolicyType
}

type userPoolClientProps struct {
	UserPoolId        string
	ClientName        string
	ExplicitAuthFlows []ciptypes.ExplicitAuthFlowsType
}

// CreateUserPools creates the template's AWS::Cognito::UserPool and UserPoolClient resources
// (those a false Condition has not pruned) and records them in env as CloudFormation does: Ref
// of a pool is its ID, Fn::GetAtt Pool.Arn its ARN and Pool.ProviderURL its issuer; Ref of a
// client is its client ID. A pool's name is its UserPoolName, else "<stack>-<LogicalID>"; a
// client's its ClientName, else its logical ID. A pool or client of that name that exists is
// reused, so a second run against the same moto keeps its users.
func CreateUserPools(ctx context.Context, api UserPoolAPI, tmpl *template.Template, env template.Env) error {
	for _, id := range tmpl.OfType(UserPoolType) {
		var p userPoolProps
		if err := resolveInto(env, tmpl.Resources[id].Properties, &p); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if p.UserPoolName == "" {
			p.UserPoolName = env.Refs["AWS::StackName"] + "-" + id
		}
		poolID, err := FindUserPool(ctx, api, p.UserPoolName)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if poolID == "" {
			out, err := api.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(p.UserPoolName), Policies: p.Policies})
			if err != nil {
				return fmt.Errorf("create user pool %s (%s): %w", p.UserPoolName, id, err)
			}
			poolID = aws.ToString(out.UserPool.Id)
		}
		env.Refs[id] = poolID
		env.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:cognito-idp:%s:%s:userpool/%s", env.Refs["AWS::Region"], env.Refs["AWS::AccountId"], poolID)
		env.Attrs[id+".ProviderURL"] = CognitoIssuer(env.Refs["AWS::Region"], poolID)
		env.Attrs[id+".ProviderName"] = fmt.Sprintf("cognito-idp.%s.amazonaws.com/%s", env.Refs["AWS::Region"], poolID)
	}
	for _, id := range tmpl.OfType(UserPoolClientType) {
		var p userPoolClientProps
		if err := resolveInto(env, tmpl.Resources[id].Properties, &p); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if p.UserPoolId == "" {
			return fmt.Errorf("%w: %s has no UserPoolId", template.ErrInvalid, id)
		}
		if p.ClientName == "" {
			p.ClientName = id
		}
		clientID, err := FindUserPoolClient(ctx, api, p.UserPoolId, p.ClientName)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if clientID == "" {
			out, err := api.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{
				UserPoolId: aws.String(p.UserPoolId), ClientName: aws.String(p.ClientName), ExplicitAuthFlows: p.ExplicitAuthFlows,
			})
			if err != nil {
				return fmt.Errorf("create user pool client %s (%s): %w", p.ClientName, id, err)
			}
			clientID = aws.ToString(out.UserPoolClient.ClientId)
		}
		env.Refs[id] = clientID
	}
	return nil
}

// CognitoIssuer is the issuer (iss) of a Cognito user pool's tokens.
func CognitoIssuer(region, poolID string) string {
	return "https://cognito-idp." + region + ".amazonaws.com/" + poolID
}

// FindUserPool returns the ID of the user pool named name, or "" when there is none.
func FindUserPool(ctx context.Context, api UserPoolAPI, name string) (string, error) {
	in := &cip.ListUserPoolsInput{MaxResults: aws.Int32(60)}
	for {
		out, err := api.ListUserPools(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list user pools: %w", err)
		}
		for _, p := range out.UserPools {
			if aws.ToString(p.Name) == name {
				return aws.ToString(p.Id), nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return "", nil
		}
		in.NextToken = out.NextToken
	}
}

// FindUserPoolClient returns the ID of the pool's app client named name, or "" when there is
// none.
func FindUserPoolClient(ctx context.Context, api UserPoolAPI, poolID, name string) (string, error) {
	in := &cip.ListUserPoolClientsInput{UserPoolId: aws.String(poolID), MaxResults: aws.Int32(60)}
	for {
		out, err := api.ListUserPoolClients(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list the clients of user pool %s: %w", poolID, err)
		}
		for _, c := range out.UserPoolClients {
			if aws.ToString(c.ClientName) == name {
				return aws.ToString(c.ClientId), nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return "", nil
		}
		in.NextToken = out.NextToken
	}
}

// resolveInto resolves a resource's properties and decodes them into v.
func resolveInto(env template.Env, props map[string]any, v any) error {
	resolved, err := env.Resolve(props)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(resolved)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", template.ErrInvalid, err)
	}
	return nil
}

// DevPassword is the password `eventfold dev token` and the tests give local users unless told
// otherwise; it meets the template's password policy. Only for the local stack.
const DevPassword = "Local-dev-password-1"

// SignInAPI is the part of the Cognito user pools API SignIn uses: the calls a user's app and
// an administrator make in AWS.
type SignInAPI interface {
	SignUp(context.Context, *cip.SignUpInput, ...func(*cip.Options)) (*cip.SignUpOutput, error)
	AdminConfirmSignUp(context.Context, *cip.AdminConfirmSignUpInput, ...func(*cip.Options)) (*cip.AdminConfirmSignUpOutput, error)
	InitiateAuth(context.Context, *cip.InitiateAuthInput, ...func(*cip.Options)) (*cip.InitiateAuthOutput, error)
}

// SignIn signs the user in to the pool through its app client with USER_PASSWORD_AUTH and
// returns the tokens. A user the pool does not know is signed up first (SignUp, then
// AdminConfirmSignUp, as an administrator confirms a user in AWS).
func SignIn(ctx context.Context, api SignInAPI, poolID, clientID, user, password string) (*ciptypes.AuthenticationResultType, error) {
	_, err := api.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String(clientID), Username: aws.String(user), Password: aws.String(password)})
	var exists *ciptypes.UsernameExistsException
	switch {
	case err == nil:
		if _, err := api.AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: aws.String(poolID), Username: aws.String(user)}); err != nil {
			return nil, fmt.Errorf("confirm the new user: %w", err)
		}
	case errors.As(err, &exists):
	default:
		return nil, fmt.Errorf("sign up: %w", err)
	}
	out, err := api.InitiateAuth(ctx, &cip.InitiateAuthInput{
		AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String(clientID),
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": password},
	})
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if out.AuthenticationResult == nil || aws.ToString(out.AuthenticationResult.AccessToken) == "" {
		return nil, fmt.Errorf("sign in: no tokens (challenge %s)", out.ChallengeName)
	}
	return out.AuthenticationResult, nil
}
