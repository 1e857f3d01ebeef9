package localaws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/eventfold/eventfold/internal/template"
)

// SecretType is the resource type CreateSecrets reads.
const SecretType = template.SecretType

// SecretsManager returns a Secrets Manager client for moto's server at endpoint.
func SecretsManager(endpoint string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(Config(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// SecretAPI is the part of the Secrets Manager API CreateSecrets uses.
type SecretAPI interface {
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetRandomPassword(context.Context, *secretsmanager.GetRandomPasswordInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error)
	CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
}

// generateSecretString is the part of a secret's GenerateSecretString CreateSecrets honours;
// SecretStringTemplate and GenerateStringKey (a JSON secret) are refused.
type generateSecretString struct {
	PasswordLength          *int32
	ExcludeCharacters       *string
	ExcludeLowercase        *bool
	ExcludeNumbers          *bool
	ExcludePunctuation      *bool
	ExcludeUppercase        *bool
	IncludeSpace            *bool
	RequireEachIncludedType *bool
	SecretStringTemplate    *string
	GenerateStringKey       *string
}

// CreateSecrets creates the template's AWS::SecretsManager::Secret resources as CloudFormation
// would, each named by its Name, else "<stack>-<LogicalID>", and records them in env: Ref is the
// secret's ARN, as in CloudFormation. A secret with GenerateSecretString gets a value from
// GetRandomPassword with the same settings, as CloudFormation generates it; one with
// SecretString gets that. A secret that exists is kept as it is (a rerun of the local stack
// keeps its key, as a redeploy does).
func CreateSecrets(ctx context.Context, api SecretAPI, tmpl *template.Template, env template.Env) error {
	for _, id := range tmpl.OfType(SecretType) {
		props := tmpl.Resources[id].Properties
		name, err := tmpl.Name(id, "Name", env)
		if err != nil {
			return err
		}
		got, err := api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		var missing *smtypes.ResourceNotFoundException
		switch {
		case err == nil:
			env.Refs[id] = aws.ToString(got.ARN)
			continue
		case !errors.As(err, &missing):
			return fmt.Errorf("describe secret %s (%s): %w", name, id, err)
		}
		value, err := secretValue(ctx, api, id, props, env)
		if err != nil {
			return err
		}
		out, err := api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			return fmt.Errorf("create secret %s (%s): %w", name, id, err)
		}
		env.Refs[id] = aws.ToString(out.ARN)
	}
	return nil
}

// secretValue is the value the secret id is created with: its SecretString, or one generated
// as its GenerateSecretString says.
func secretValue(ctx context.Context, api SecretAPI, id string, props map[string]any, env template.Env) (string, error) {
	if v, ok := props["SecretString"]; ok {
		return env.String(v)
	}
	if _, ok := props["GenerateSecretString"]; !ok {
		return "", fmt.Errorf("%s: a secret needs SecretString or GenerateSecretString", id)
	}
	var g generateSecretString
	if err := resolveInto(env, props, &struct{ GenerateSecretString *generateSecretString }{&g}); err != nil {
		return "", fmt.Errorf("%s GenerateSecretString: %w", id, err)
	}
	if g.SecretStringTemplate != nil || g.GenerateStringKey != nil {
		return "", fmt.Errorf("%s GenerateSecretString: JSON secrets (SecretStringTemplate, GenerateStringKey) are not supported locally", id)
	}
	out, err := api.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{
		PasswordLength: aws.Int64(int64(aws.ToInt32(g.PasswordLength))), ExcludeCharacters: g.ExcludeCharacters,
		ExcludeLowercase: g.ExcludeLowercase, ExcludeNumbers: g.ExcludeNumbers, ExcludePunctuation: g.ExcludePunctuation,
		ExcludeUppercase: g.ExcludeUppercase, IncludeSpace: g.IncludeSpace, RequireEachIncludedType: g.RequireEachIncludedType,
	})
	if err != nil {
		return "", fmt.Errorf("generate secret %s: %w", id, err)
	}
	return aws.ToString(out.RandomPassword), nil
}
