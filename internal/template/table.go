package template

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableType is the resource type Tables reads.
const TableType = "AWS::DynamoDB::Table"

// SecretType is the resource type of Secrets Manager secrets, which LocalEnv names.
const SecretType = "AWS::SecretsManager::Secret"

// Name returns the physical name of the resource id as CloudFormation gives it: its property
// prop (TableName, QueueName, Name...) resolved against env when the template sets it, else
// "<stack>-<LogicalID>" with env.Refs["AWS::StackName"]. (CloudFormation appends a random
// suffix to names it makes up; a local deployment does not.)
func (t *Template) Name(id, prop string, env Env) (string, error) {
	v, ok := t.Resources[id].Properties[prop]
	if !ok {
		return env.Refs["AWS::StackName"] + "-" + id, nil
	}
	s, err := env.String(v)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", id, prop, err)
	}
	return s, nil
}

// Table is a DynamoDB table declared in the template, as API inputs that create it.
type Table struct {
	LogicalID string
	Create    *dynamodb.CreateTableInput
	// TTL is the table's time-to-live setting, nil when the template declares none.
	TTL *types.TimeToLiveSpecification
}

// LocalEnv returns the Env a local deployment of the template resolves against: the pseudo
// parameters for the given stack name, region and account, parameter defaults, and for every
// table the physical name it gets: its TableName when the template sets one, else
// "<stack>-<LogicalID>", as CloudFormation names resources it names itself; and for every
// Secrets Manager secret its name, likewise (in AWS, Ref gives the secret's ARN; every Secrets
// Manager call takes either). Its Conditions are the template's, evaluated with the parameter
// defaults.
func (t *Template) LocalEnv(stack, region, account string) (Env, error) {
	env := Env{
		Refs: map[string]string{
			"AWS::StackName": stack,
			"AWS::Region":    region,
			"AWS::AccountId": account,
			"AWS::Partition": "aws",
			"AWS::URLSuffix": "amazonaws.com",
		},
		Attrs: map[string]string{},
		Lists: map[string][]string{},
	}
	for name, p := range t.Parameters {
		env.Refs[name] = p.Default
		if p.Type == "CommaDelimitedList" {
			env.Lists[name] = SplitList(p.Default)
		}
	}
	conds, err := t.EvalConditions(env)
	if err != nil {
		return Env{}, err
	}
	env.Conditions = conds
	for _, id := range t.OfType(TableType) {
		name, err := t.Name(id, "TableName", env)
		if err != nil {
			return Env{}, err
		}
		env.Refs[id] = name
		env.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", region, account, name)
	}
	for _, id := range t.OfType(SecretType) {
		if env.Refs[id], err = t.Name(id, "Name", env); err != nil {
			return Env{}, err
		}
	}
	return env, nil
}

// Tables returns every AWS::DynamoDB::Table of the template, named by env.Refs[LogicalID] (see
// LocalEnv), in logical-ID order. Properties that only matter in AWS (point-in-time recovery, SSE,
// deletion protection, tags) are left out.
func (t *Template) Tables(env Env) ([]Table, error) {
	var out []Table
	for _, id := range t.OfType(TableType) {
		name, ok := env.Refs[id]
		if !ok {
			return nil, fmt.Errorf("%w: no physical name for table %s", ErrUnresolved, id)
		}
		resolved, err := env.Resolve(t.Resources[id].Properties)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		raw, err := json.Marshal(resolved)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		var p tableProps
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%w: table %s: %v", ErrInvalid, id, err)
		}
		tbl, err := p.table(id, name)
		if err != nil {
			return nil, err
		}
		out = append(out, tbl)
	}
	return out, nil
}

// tableProps mirrors the CloudFormation properties of AWS::DynamoDB::Table that shape a table.
type tableProps struct {
	AttributeDefinitions []struct {
		AttributeName string
		AttributeType string
	}
	KeySchema               []keyElem
	BillingMode             string
	ProvisionedThroughput   *throughput
	GlobalSecondaryIndexes  []index
	LocalSecondaryIndexes   []index
	StreamSpecification     *struct{ StreamViewType string }
	TimeToLiveSpecification *struct {
		AttributeName string
		Enabled       flexBool
	}
}

type keyElem struct{ AttributeName, KeyType string }

type throughput struct{ ReadCapacityUnits, WriteCapacityUnits flexInt }

type index struct {
	IndexName  string
	KeySchema  []keyElem
	Projection struct {
		ProjectionType   string
		NonKeyAttributes []string
	}
	ProvisionedThroughput *throughput
}

// flexBool accepts true, "true" and "True": CloudFormation takes booleans as strings too.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		v, err := strconv.ParseBool(s)
		*b = flexBool(v)
		return err
	}
	var v bool
	err := json.Unmarshal(data, &v)
	*b = flexBool(v)
	return err
}

// flexInt accepts 5 and "5".
type flexInt int64

func (n *flexInt) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		v, err := strconv.ParseInt(s, 10, 64)
		*n = flexInt(v)
		return err
	}
	var v int64
	err := json.Unmarshal(data, &v)
	*n = flexInt(v)
	return err
}

func (p tableProps) table(id, name string) (Table, error) {
	if len(p.KeySchema) == 0 || len(p.AttributeDefinitions) == 0 {
		return Table{}, fmt.Errorf("%w: table %s needs KeySchema and AttributeDefinitions", ErrInvalid, id)
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		KeySchema:   keys(p.KeySchema),
		BillingMode: types.BillingModePayPerRequest,
	}
	for _, a := range p.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	if p.BillingMode == string(types.BillingModeProvisioned) {
		if p.ProvisionedThroughput == nil {
			return Table{}, fmt.Errorf("%w: table %s is PROVISIONED without ProvisionedThroughput", ErrInvalid, id)
		}
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = p.ProvisionedThroughput.sdk()
	}
	for _, g := range p.GlobalSecondaryIndexes {
		gsi := types.GlobalSecondaryIndex{
			IndexName:  aws.String(g.IndexName),
			KeySchema:  keys(g.KeySchema),
			Projection: projection(g),
		}
		if in.BillingMode == types.BillingModeProvisioned && g.ProvisionedThroughput != nil {
			gsi.ProvisionedThroughput = g.ProvisionedThroughput.sdk()
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, l := range p.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(l.IndexName),
			KeySchema:  keys(l.KeySchema),
			Projection: projection(l),
		})
	}
	if s := p.StreamSpecification; s != nil && s.StreamViewType != "" {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(s.StreamViewType),
		}
	}
	tbl := Table{LogicalID: id, Create: in}
	if ttl := p.TimeToLiveSpecification; ttl != nil && bool(ttl.Enabled) {
		tbl.TTL = &types.TimeToLiveSpecification{AttributeName: aws.String(ttl.AttributeName), Enabled: aws.Bool(true)}
	}
	return tbl, nil
}

func (t *throughput) sdk() *types.ProvisionedThroughput {
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(int64(t.ReadCapacityUnits)),
		WriteCapacityUnits: aws.Int64(int64(t.WriteCapacityUnits)),
	}
}

func keys(ks []keyElem) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)}
	}
	return out
}

func projection(i index) *types.Projection {
	p := &types.Projection{ProjectionType: types.ProjectionType(i.Projection.ProjectionType)}
	if p.ProjectionType == "" {
		p.ProjectionType = types.ProjectionTypeAll
	}
	if len(i.Projection.NonKeyAttributes) > 0 {
		p.NonKeyAttributes = i.Projection.NonKeyAttributes
	}
	return p
}
