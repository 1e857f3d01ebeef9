// Package tools holds the project's build and lint tools that are not Go: samtransform.py, run by
// `make lint` from localstack/.venv, runs the AWS SAM transform on template.yaml offline, so a
// template CloudFormation would reject on deploy fails the lint instead (and, with --output,
// writes the transformed template); lint.sh, also run by `make lint`, installs aws-sam-cli and
// checkov pinned (requirements-sam.txt, requirements-checkov.txt) into tools/.venv and runs sam
// validate, sam build and checkov offline. The package's tests run the tools on fixtures in
// testdata/ that they must accept or reject.
package tools
