package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

// stackAPI is the part of the CloudFormation API deployedEnv reads a stack with.
type stackAPI interface {
	DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	cloudformation.ListStackResourcesAPIClient
}

var _ stackAPI = (*cloudformation.Client)(nil)

// Errors deployedEnv returns, wrapped with the stack's name, so that callers (and tests) can
// tell them apart from a failed call.
var (
	// errNoStack is returned when CloudFormation knows no stack of the name (in the region and
	// account of the credentials).
	errNoStack = errors.New("no such stack")
	// errStackNotUsable is returned when the stack exists in a status whose resources are not
	// all in place: being created, updated or deleted, or left by a failed creation.
	errStackNotUsable = errors.New("stack not usable")
	// errNoResource is returned by deployment.need (and so by the commands) when the stack has no
	// resource of a logical ID the command uses.
	errNoResource = errors.New("no such resource in the stack")
	// errMixedEndpoints is returned by resolve when the stack would be read in one place and
	// acted on in another: a stack deployed on AWS with a local KMS endpoint (-kms-endpoint or
	// EVENTFOLD_KMS_ENDPOINT), or an emulator's stack (-cloudformation-endpoint) with no local
	// DynamoDB endpoint.
	errMixedEndpoints = errors.New("the stack and the endpoints are not in one place")
)

// noEchoMask is what DescribeStacks returns as the value of a NoEcho parameter.
const noEchoMask = "****"

// usableStatuses are the stack statuses in which every resource the stack lists is in place.
var usableStatuses = []cfntypes.StackStatus{
	cfntypes.StackStatusCreateComplete, cfntypes.StackStatusUpdateComplete, cfntypes.StackStatusUpdateRollbackComplete,
	cfntypes.StackStatusImportComplete, cfntypes.StackStatusImportRollbackComplete,
}

// cloudFormation returns the client of -cloudformation-endpoint (an emulator, with the local
// stack's fixed region and dummy credentials); without one, of the environment's AWS
// configuration (credentials, region from AWS_REGION or the profile).
func (c *common) cloudFormation(ctx context.Context) (*cloudformation.Client, error) {
	if c.cfnEndpoint != "" {
		return localaws.CloudFormation(c.cfnEndpoint), nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return cloudformation.NewFromConfig(cfg), nil
}

// deployedEnv returns the Env of the deployed stack name: Ref of every resource the stack lists
// is its physical ID, Fn::GetAtt Arn (and the other attributes stackAttrs knows) what
// CloudFormation returns for it, computed from the physical ID and the region, account and
// partition of the stack's ID; the parameters are the stack's values (a template parameter the
// stack lacks has its default; a NoEcho one, which CloudFormation masks, has no value), and the
// conditions are evaluated with them. A resource the stack lacks has no name in it. It fails
// with errNoStack or errStackNotUsable, wrapped, when those apply.
func deployedEnv(ctx context.Context, api stackAPI, tmpl *template.Template, name string) (template.Env, error) {
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	var apiErr smithy.APIError
	switch {
	// CloudFormation has no error code of its own for this: a ValidationError "Stack with id
	// NAME does not exist".
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist"):
		return template.Env{}, fmt.Errorf("stack %s: %w (check -stack, and the region: AWS_REGION or the profile's)", name, errNoStack)
	case err != nil:
		return template.Env{}, fmt.Errorf("stack %s: describe: %w", name, err)
	case len(out.Stacks) != 1:
		return template.Env{}, fmt.Errorf("stack %s: %w (CloudFormation described %d stacks)", name, errNoStack, len(out.Stacks))
	}
	stack := out.Stacks[0]
	if !slices.Contains(usableStatuses, stack.StackStatus) {
		return template.Env{}, fmt.Errorf("stack %s is %s: %w (wait until it is %s, or fix it)", name, stack.StackStatus, errStackNotUsable,
			strings.Join(statusNames(usableStatuses), ", "))
	}
	id, err := arn.Parse(aws.ToString(stack.StackId))
	if err != nil {
		return template.Env{}, fmt.Errorf("stack %s: its ID %q is no ARN: %w", name, aws.ToString(stack.StackId), err)
	}
	env := template.Env{
		Refs: map[string]string{
			"AWS::StackName": aws.ToString(stack.StackName),
			"AWS::StackId":   aws.ToString(stack.StackId),
			"AWS::Region":    id.Region,
			"AWS::AccountId": id.AccountID,
			"AWS::Partition": id.Partition,
			"AWS::URLSuffix": urlSuffix(id.Partition),
		},
		Attrs: map[string]string{},
		Lists: map[string][]string{},
	}
	values := map[string]string{}
	for _, p := range stack.Parameters {
		v := aws.ToString(p.ParameterValue)
		if p.ResolvedValue != nil { // an SSM parameter type: the value it resolved to
			v = aws.ToString(p.ResolvedValue)
		}
		values[aws.ToString(p.ParameterKey)] = v
	}
	for pname, p := range tmpl.Parameters {
		v, ok := values[pname]
		if !ok {
			v = p.Default
		}
		if ok && v == noEchoMask { // a NoEcho parameter, whose value CloudFormation does not tell
			continue
		}
		env.Refs[pname] = v
		if p.Type == "CommaDelimitedList" {
			env.Lists[pname] = template.SplitList(v)
		}
	}
	if env.Conditions, err = tmpl.EvalConditions(env); err != nil {
		return template.Env{}, fmt.Errorf("stack %s: %w", name, err)
	}
	pages := cloudformation.NewListStackResourcesPaginator(api, &cloudformation.ListStackResourcesInput{StackName: stack.StackId})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return template.Env{}, fmt.Errorf("stack %s: list resources: %w", name, err)
		}
		for _, r := range page.StackResourceSummaries {
			physical := aws.ToString(r.PhysicalResourceId)
			if physical == "" || r.ResourceStatus == cfntypes.ResourceStatusDeleteComplete {
				continue // never made, or gone
			}
			logical := aws.ToString(r.LogicalResourceId)
			env.Refs[logical] = physical
			for attr, v := range stackAttrs(aws.ToString(r.ResourceType), physical, id) {
				env.Attrs[logical+"."+attr] = v
			}
		}
	}
	return env, nil
}

func statusNames(ss []cfntypes.StackStatus) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// urlSuffix is AWS::URLSuffix in the partition.
func urlSuffix(partition string) string {
	if partition == "aws-cn" {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// stackAttrs returns the Fn::GetAtt attributes of a resource of the type typ whose physical ID
// is physical, in the stack whose ID is stack, as CloudFormation returns them, for the types
// whose attributes follow from the physical ID; none for the others. Roles are taken to have
// the path "/", as the template's have.
func stackAttrs(typ, physical string, stack arn.ARN) map[string]string {
	at := func(service, resource string) string {
		return arn.ARN{Partition: stack.Partition, Service: service, Region: stack.Region, AccountID: stack.AccountID, Resource: resource}.String()
	}
	switch typ {
	case template.TableType:
		return map[string]string{"Arn": at("dynamodb", "table/"+physical)}
	case localaws.QueueType: // the physical ID is the queue's URL, which ends in its name
		name := physical[strings.LastIndex(physical, "/")+1:]
		return map[string]string{"Arn": at("sqs", name), "QueueName": name, "QueueUrl": physical}
	case "AWS::KMS::Key":
		return map[string]string{"Arn": at("kms", "key/"+physical), "KeyId": physical}
	case localaws.ScheduleGroupType:
		return map[string]string{"Arn": at("scheduler", "schedule-group/"+physical)}
	case "AWS::IAM::Role":
		return map[string]string{"Arn": arn.ARN{Partition: stack.Partition, Service: "iam", AccountID: stack.AccountID, Resource: "role/" + physical}.String()}
	case "AWS::Lambda::Function":
		return map[string]string{"Arn": at("lambda", "function:"+physical)}
	case "AWS::Logs::LogGroup":
		return map[string]string{"Arn": at("logs", "log-group:"+physical+":*")}
	case "AWS::Cognito::UserPool":
		return map[string]string{"Arn": at("cognito-idp", "userpool/"+physical),
			"ProviderName": "cognito-idp." + stack.Region + "." + urlSuffix(stack.Partition) + "/" + physical}
	}
	return nil
}

// need returns nil when the deployment names the resource logicalID, which what (a flag, a
// variable) needs; for a deployed stack that lacks it, an error wrapping errNoResource that names
// the stack, the logical ID and what needed it.
func (d *deployment) need(logicalID, what string) error {
	if d.stack == "" {
		return nil
	}
	if _, ok := d.env.Refs[logicalID]; ok {
		return nil
	}
	return fmt.Errorf("stack %s has no resource %s, which %s needs: %w (is it deployed from this template?)", d.stack, logicalID, what, errNoResource)
}

// subRef matches a name ${Name} or ${Name.Attribute} of an Fn::Sub string, not ${!Literal}.
var subRef = regexp.MustCompile(`\$\{([^}!.][^}.]*)(\.[^}]*)?\}`)

// references returns the names v refers to through Ref, Fn::GetAtt and Fn::Sub, in order of
// appearance, with repeats; they may be parameters, pseudo parameters or resources.
func references(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					if s, ok := arg.(string); ok {
						return []string{s}
					}
				case "Fn::GetAtt":
					switch a := arg.(type) {
					case []any:
						if len(a) > 0 {
							return append(out, fmt.Sprint(a[0]))
						}
					case string:
						id, _, _ := strings.Cut(a, ".")
						return []string{id}
					}
				case "Fn::Sub":
					format, vars := arg, map[string]any{}
					if a, ok := arg.([]any); ok && len(a) == 2 {
						format = a[0]
						vars, _ = a[1].(map[string]any)
						out = append(out, references(a[1])...)
					}
					if s, ok := format.(string); ok {
						for _, m := range subRef.FindAllStringSubmatch(s, -1) {
							if _, local := vars[m[1]]; !local {
								out = append(out, m[1])
							}
						}
					}
					return out
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out = append(out, references(v[k])...)
		}
	case []any:
		for _, x := range v {
			out = append(out, references(x)...)
		}
	}
	return out
}
