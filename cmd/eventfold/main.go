// Command eventfold holds the operations people run against an eventfold deployment or the local
// stack.
//
//	eventfold tables create [-endpoint URL] [-template FILE] [-stack NAME]
//
// tables create makes, on DynamoDB Local, every table template.yaml declares (keys, indexes,
// stream, TTL), named as a local deployment of stack NAME names them, and prints their names and
// stream ARNs. It is idempotent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/template"
)

const usage = `usage: eventfold COMMAND

commands:
  tables create   create template.yaml's tables on DynamoDB Local
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eventfold:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) >= 2 && args[0] == "tables" && args[1] == "create" {
		return tablesCreate(ctx, args[2:], out)
	}
	fmt.Fprint(os.Stderr, usage)
	return errors.New("unknown command")
}

func tablesCreate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tables create", flag.ContinueOnError)
	endpoint := fs.String("endpoint", os.Getenv(localaws.EnvDynamoDBEndpoint), "DynamoDB Local endpoint (default $"+localaws.EnvDynamoDBEndpoint+")")
	file := fs.String("template", "template.yaml", "the SAM template")
	stack := fs.String("stack", "eventfold", "the local stack name tables are named after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" {
		return fmt.Errorf("no DynamoDB endpoint: pass -endpoint or set %s (make up prints it)", localaws.EnvDynamoDBEndpoint)
	}
	tmpl, err := template.ParseFile(*file)
	if err != nil {
		return err
	}
	env, err := tmpl.LocalEnv(*stack, localaws.Region, localaws.Account)
	if err != nil {
		return err
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	descs, err := localaws.CreateTables(ctx, localaws.DynamoDB(*endpoint), tables)
	if err != nil {
		return err
	}
	for i, d := range descs {
		fmt.Fprintf(out, "%-16s %s", tables[i].LogicalID, aws.ToString(d.TableName))
		if d.LatestStreamArn != nil {
			fmt.Fprintf(out, "  stream %s", aws.ToString(d.LatestStreamArn))
		}
		fmt.Fprintln(out)
	}
	return nil
}
