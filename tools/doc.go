// Package tools holds the project's build and lint tools that are not Go: samtransform.py, run by
// `make lint` from localstack/.venv, runs the AWS SAM transform on template.yaml offline, so a
// template CloudFormation would reject on deploy fails the lint instead. The package's tests run
// the tools on fixtures in testdata/ that they must accept or reject.
package tools
