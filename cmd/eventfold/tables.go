package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eventfold/eventfold/internal/localaws"
)

// tablesCreateCommand is `eventfold tables create`.
type tablesCreateCommand struct {
	common
}

func (c *tablesCreateCommand) run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("tables create", "[flags]", `
Create creates the tables template.yaml declares on DynamoDB Local, named as a local deployment
of the template under -stack names them (with -cloudformation-endpoint: as the stack -stack
there names them), and prints each table's name and, where it has one, its stream. A table
that exists is left as it is, so the command can run again.`)
	c.attach(fs)
	if err := fs.parse(args, out, errOut); err != nil {
		return err
	}
	if c.endpoint == "" {
		return fmt.Errorf("no DynamoDB Local endpoint: pass -endpoint or set %s (make up prints it)", localaws.EnvDynamoDBEndpoint)
	}
	d, err := c.resolve(ctx)
	if err != nil {
		return err
	}
	tables, err := d.tmpl.Tables(d.env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	descs, err := localaws.CreateTables(ctx, localaws.DynamoDB(d.endpoint), tables)
	if err != nil {
		return err
	}
	for i, desc := range descs {
		fmt.Fprintf(out, "%-18s %s", tables[i].LogicalID, aws.ToString(desc.TableName))
		if desc.LatestStreamArn != nil {
			fmt.Fprintf(out, "  stream %s", aws.ToString(desc.LatestStreamArn))
		}
		fmt.Fprintln(out)
	}
	return nil
}
