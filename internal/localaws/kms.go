package localaws

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/eventfold/eventfold/internal/template"
)

// KMS returns a client for the KMS emulator at endpoint.
func KMS(endpoint string) *kms.Client {
	return kms.NewFromConfig(Config(), func(o *kms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// KMSAPI is the part of the KMS API CreateKeys uses.
type KMSAPI interface {
	CreateKey(context.Context, *kms.CreateKeyInput, ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	CreateAlias(context.Context, *kms.CreateAliasInput, ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	EnableKeyRotation(context.Context, *kms.EnableKeyRotationInput, ...func(*kms.Options)) (*kms.EnableKeyRotationOutput, error)
}

// CreateKeys creates the template's AWS::KMS::Key and AWS::KMS::Alias resources on the KMS
// emulator and records their names in env: Ref of a key is its key ID, Fn::GetAtt Key.Arn its
// ARN, Ref of an alias its name. A key that an alias of the template already names is reused, so
// a second run against the same emulator creates nothing new.
func CreateKeys(ctx context.Context, api KMSAPI, tmpl *template.Template, env template.Env) error {
	aliases := tmpl.OfType("AWS::KMS::Alias")
	// Which alias names which key, to find keys made by an earlier run.
	aliasOf := map[string]string{}
	for _, id := range aliases {
		p := tmpl.Resources[id].Properties
		name, err := env.String(p["AliasName"])
		if err != nil {
			return fmt.Errorf("%s AliasName: %w", id, err)
		}
		env.Refs[id] = name
		if ref, ok := p["TargetKeyId"].(map[string]any); ok {
			if key, ok := ref["Ref"].(string); ok {
				aliasOf[key] = name
			}
		}
	}
	keys := tmpl.OfType("AWS::KMS::Key")
	sort.Strings(keys)
	for _, id := range keys {
		p := tmpl.Resources[id].Properties
		var meta *types.KeyMetadata
		if alias, ok := aliasOf[id]; ok {
			if out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)}); err == nil {
				meta = out.KeyMetadata
			}
		}
		if meta == nil {
			in := &kms.CreateKeyInput{Description: aws.String(fmt.Sprint(p["Description"]))}
			if s, ok := p["KeySpec"].(string); ok {
				in.KeySpec = types.KeySpec(s)
			}
			if u, ok := p["KeyUsage"].(string); ok {
				in.KeyUsage = types.KeyUsageType(u)
			}
			out, err := api.CreateKey(ctx, in)
			if err != nil {
				return fmt.Errorf("create key %s: %w", id, err)
			}
			meta = out.KeyMetadata
			if fmt.Sprint(p["EnableKeyRotation"]) == "true" {
				if _, err := api.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: meta.KeyId}); err != nil {
					return fmt.Errorf("enable rotation of key %s: %w", id, err)
				}
			}
		}
		env.Refs[id] = aws.ToString(meta.KeyId)
		env.Attrs[id+".Arn"] = aws.ToString(meta.Arn)
		env.Attrs[id+".KeyId"] = aws.ToString(meta.KeyId)
	}
	for _, id := range aliases {
		p := tmpl.Resources[id].Properties
		target, err := env.String(p["TargetKeyId"])
		if err != nil {
			return fmt.Errorf("%s TargetKeyId: %w", id, err)
		}
		if out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(env.Refs[id])}); err == nil && aws.ToString(out.KeyMetadata.KeyId) == target {
			continue
		}
		if _, err := api.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(env.Refs[id]), TargetKeyId: aws.String(target)}); err != nil {
			return fmt.Errorf("create alias %s: %w", id, err)
		}
	}
	return nil
}
