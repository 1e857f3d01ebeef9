package localaws_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

func TestCreateKeysIsIdempotent(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(`
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      Description: test
      EnableKeyRotation: true
  Alias:
    Type: AWS::KMS::Alias
    Properties:
      AliasName: !Sub "alias/${AWS::StackName}-data"
      TargetKeyId: !Ref Key
`))
	if err != nil {
		t.Fatal(err)
	}
	api := localaws.KMS(os.Getenv(localaws.EnvKMSEndpoint))
	stack := "k" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var ids []string
	for i := 0; i < 2; i++ {
		env, err := tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
		if err != nil {
			t.Fatal(err)
		}
		if err := localaws.CreateKeys(context.Background(), api, tmpl, env); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		ids = append(ids, env.Refs["Key"])
		if env.Refs["Alias"] != "alias/"+stack+"-data" || !strings.HasSuffix(env.Attrs["Key.Arn"], env.Refs["Key"]) {
			t.Fatalf("env = %+v", env)
		}
	}
	if ids[0] != ids[1] {
		t.Fatalf("the second run made key %s, the first %s: want the same", ids[1], ids[0])
	}
	rot, err := api.GetKeyRotationStatus(context.Background(), &kms.GetKeyRotationStatusInput{KeyId: aws.String(ids[0])})
	if err != nil || !rot.KeyRotationEnabled {
		t.Fatalf("rotation = %+v, %v", rot, err)
	}
}
