package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

// devTokenCommand is `eventfold dev token`.
type devTokenCommand struct {
	template, stack, endpoint, user, password string
}

// cognitoAPI is what dev token calls: the pool and client look-ups, sign-up and sign-in.
type cognitoAPI interface {
	localaws.UserPoolAPI
	localaws.SignInAPI
}

// errNoUserPool is returned by dev token when the stack has no user pool or app client of the
// template's names.
var errNoUserPool = errors.New("no user pool")

func (c *devTokenCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("dev token", "-user NAME [flags]", `
Token signs -user in to the stack's Cognito user pool (the template's UserPool and
UserPoolClient, found by name with ListUserPools and ListUserPoolClients) with
USER_PASSWORD_AUTH, and prints their access token: the bearer token of the user routes. A user the
pool does not know is signed up first (SignUp, then AdminConfirmSignUp). The same calls work
against AWS; locally the pool is on moto, which make run created it on.

Operators call the AWS_IAM routes with SigV4 signatures, not tokens: make run prints how.`)
	fs.StringVar(&c.template, "template", "template.yaml", "the SAM template")
	fs.StringVar(&c.stack, "stack", "eventfold", "the stack name the user pool is named after")
	fs.StringVar(&c.endpoint, "cognito-endpoint", os.Getenv(localaws.EnvKMSEndpoint), "Cognito endpoint (moto's server); empty: AWS")
	fs.StringVar(&c.user, "user", "", "the user name (required)")
	fs.StringVar(&c.password, "password", localaws.DevPassword, "the user's password")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.user == "" {
		return errors.New("dev token: -user is required")
	}
	pool, client, err := c.names()
	if err != nil {
		return err
	}
	api, err := c.cognito(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	poolID, err := localaws.FindUserPool(ctx, api, pool)
	if err != nil {
		return err
	}
	if poolID == "" {
		return fmt.Errorf("%w %s: start the stack (make run) or pass -stack", errNoUserPool, pool)
	}
	clientID, err := localaws.FindUserPoolClient(ctx, api, poolID, client)
	if err != nil {
		return err
	}
	if clientID == "" {
		return fmt.Errorf("%w: pool %s has no app client %s", errNoUserPool, pool, client)
	}
	res, err := localaws.SignIn(ctx, api, poolID, clientID, c.user, c.password)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, aws.ToString(res.AccessToken))
	return nil
}

// names are the names the template gives the stack's user pool and its app client.
func (c *devTokenCommand) names() (pool, client string, err error) {
	tmpl, err := template.ParseFile(c.template)
	if err != nil {
		return "", "", err
	}
	env, err := tmpl.LocalEnv(c.stack, localaws.Region, localaws.Account)
	if err != nil {
		return "", "", err
	}
	pools, clients := tmpl.OfType(localaws.UserPoolType), tmpl.OfType(localaws.UserPoolClientType)
	if len(pools) != 1 || len(clients) != 1 {
		return "", "", fmt.Errorf("%w: %s declares %d user pools and %d app clients, want one of each", errNoUserPool, c.template, len(pools), len(clients))
	}
	if pool, err = tmpl.Name(pools[0], "UserPoolName", env); err != nil {
		return "", "", err
	}
	// An app client without a ClientName is named by its logical ID alone.
	client = clients[0]
	if v, ok := tmpl.Resources[clients[0]].Properties["ClientName"]; ok {
		if client, err = env.String(v); err != nil {
			return "", "", err
		}
	}
	return pool, client, nil
}

// cognito is the client of -cognito-endpoint; without one, of the environment's AWS
// configuration.
func (c *devTokenCommand) cognito(ctx context.Context) (cognitoAPI, error) {
	return awsClient(ctx, c.endpoint, localaws.Cognito, cip.NewFromConfig)
}

// devSAMEnvCommand is `eventfold dev sam-env`.
type devSAMEnvCommand struct {
	common
	host string
}

func (c *devSAMEnvCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("dev sam-env", "[flags]", `
Sam-env prints the --env-vars file of sam local (start-api, invoke) for the local deployment of
the template under -stack: each function's environment variables, resolved as make run names
the resources, and the AWS_ENDPOINT_URL_* variables the template declares (empty in AWS),
pointed at the local stack: -endpoint for DynamoDB, -kms-endpoint (moto's server) for the rest.
sam local overrides only variables the template declares. With -host, the endpoints name that
host instead of theirs: the address the functions' containers reach this machine at (with
--docker-network host on Linux, 127.0.0.1 needs none). make run creates the resources the file
names; see the README, "Other local paths".`)
	c.attach(fs, keysTable)
	fs.StringVar(&c.host, "host", "", "the host the functions' containers reach the local stack at (default: the endpoints' own)")
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.endpoint == "" || c.kmsEndpoint == "" {
		return fmt.Errorf("dev sam-env points the functions at the local stack: pass -endpoint and -kms-endpoint, or set %s and %s (make up prints them)",
			localaws.EnvDynamoDBEndpoint, localaws.EnvKMSEndpoint)
	}
	endpoints := map[string]string{}
	for name, e := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": c.endpoint, "AWS_ENDPOINT_URL_KMS": c.kmsEndpoint,
		"AWS_ENDPOINT_URL_SCHEDULER": c.kmsEndpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER": c.kmsEndpoint,
	} {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			return fmt.Errorf("dev sam-env: %q is not an endpoint URL", e)
		}
		if c.host != "" {
			u.Host = net.JoinHostPort(c.host, u.Port())
		}
		endpoints[name] = u.String()
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	file := map[string]map[string]string{}
	for _, id := range d.tmpl.OfType("AWS::Serverless::Function") {
		vars, err := d.functionEnv(id)
		if err != nil {
			return err
		}
		for name := range vars {
			if e, ok := endpoints[name]; ok {
				vars[name] = e
			} else if strings.HasPrefix(name, "AWS_ENDPOINT_URL") {
				return fmt.Errorf("dev sam-env: %s declares %s, which it cannot point at the local stack", id, name)
			}
		}
		file[id] = vars
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(file)
}
