package localaws_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/template"
)

const secretsTemplate = `
Resources:
  Generated:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        PasswordLength: 64
        ExcludePunctuation: true
  Given:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "${AWS::StackName}/given"
      SecretString: !Sub "value of ${AWS::StackName}"
`

// TestCreateSecrets: a secret is generated as its GenerateSecretString says, named as
// CloudFormation would name it, Ref is its ARN, and a second run keeps its value, as a
// redeploy keeps it.
func TestCreateSecrets(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(secretsTemplate))
	if err != nil {
		t.Fatal(err)
	}
	stack := "sm" + strconv.FormatInt(time.Now().UnixNano(), 36)
	api := localaws.SecretsManager(awstest.KMSEndpoint(t))
	ctx := context.Background()
	values := func() (map[string]string, template.Env) {
		env, err := tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
		if err != nil {
			t.Fatal(err)
		}
		if env.Refs["Generated"] != stack+"-Generated" || env.Refs["Given"] != stack+"/given" {
			t.Fatalf("LocalEnv names the secrets %q, %q", env.Refs["Generated"], env.Refs["Given"])
		}
		if err := localaws.CreateSecrets(ctx, api, tmpl, env); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, id := range []string{"Generated", "Given"} {
			if !strings.HasPrefix(env.Refs[id], "arn:aws:secretsmanager:") {
				t.Fatalf("Ref %s = %q, want its ARN", id, env.Refs[id])
			}
			out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(env.Refs[id])})
			if err != nil {
				t.Fatal(err)
			}
			got[id] = aws.ToString(out.SecretString)
		}
		return got, env
	}
	first, _ := values()
	if !regexp.MustCompile(`^[A-Za-z0-9]{64}$`).MatchString(first["Generated"]) || first["Given"] != "value of "+stack {
		t.Fatalf("secrets created with %d characters (%v) and %q", len(first["Generated"]), regexp.MustCompile(`^[A-Za-z0-9]*$`).MatchString(first["Generated"]), first["Given"])
	}
	if second, _ := values(); second["Generated"] != first["Generated"] {
		t.Fatal("a second run generated the secret again")
	}

	json, err := template.Parse(strings.NewReader(`
Resources:
  JSON:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"user":"x"}'
        GenerateStringKey: password
`))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.LocalEnv(stack, localaws.Region, localaws.Account)
	if err := localaws.CreateSecrets(ctx, api, json, env); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("a JSON secret: %v, want it refused", err)
	}
}
