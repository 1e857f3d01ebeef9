package tools_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLintValidate holds tools/lint.sh's sam validate step to running the SAM transform, not only
// cfn-lint: samconfig.toml's `lint = true` for validate would make a plain `sam validate` skip
// the transform, and a template the transform rejects would pass. It needs aws-sam-cli in
// tools/.venv/sam (make lint installs it); a missing one fails the test.
func TestLintValidate(t *testing.T) {
	if _, err := os.Stat(filepath.Join(".venv", "sam", "bin", "sam")); err != nil {
		t.Fatalf("%v: install the pinned tools with tools/lint.sh install (make lint does)", err)
	}
	tests := []struct {
		name     string
		template string
		wantErr  string // in the output; "" for a pass
	}{
		{name: "the project's template", template: "../template.yaml"},
		{
			name:     "a template only the transform rejects",
			template: "testdata/iam-route-without-iam-authorizer.yaml",
			wantErr:  "Unable to set Authorizer [AWS_IAM]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// At the repository root, where samconfig.toml is read, as make lint runs it.
			template, err := filepath.Abs(tt.template)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "tools/lint.sh", "validate", template)
			cmd.Dir = ".."
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err = cmd.Run()
			var exit *exec.ExitError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("lint.sh validate: %v\n%s", err, out.String())
			case tt.wantErr != "" && !errors.As(err, &exit):
				t.Errorf("lint.sh validate: %v, want a non-zero exit\n%s", err, out.String())
			case tt.wantErr != "" && !strings.Contains(out.String(), tt.wantErr):
				t.Errorf("output lacks %q:\n%s", tt.wantErr, out.String())
			}
		})
	}
}

// TestGuidedDeployAuthCheck holds tools/samauth.py, the lint step that asks SAM CLI's own
// question before `sam deploy --guided` ("… has no authentication. Is this okay?"), to passing
// the project's template and failing one with an open route.
func TestGuidedDeployAuthCheck(t *testing.T) {
	python := filepath.Join(".venv", "sam", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%v: install the pinned tools with tools/lint.sh install (make lint does)", err)
	}
	for _, tt := range []struct {
		template, want string
		fails          bool
	}{
		{template: "../template.yaml"},
		{template: "testdata/open-route.yaml", want: "OpenFunction has no authentication", fails: true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, python, "samauth.py", tt.template).CombinedOutput()
		cancel()
		if (err != nil) != tt.fails || !strings.Contains(string(out), tt.want) {
			t.Errorf("samauth.py %s: %v\n%s", tt.template, err, out)
		}
	}
}

// TestDeployConfigCheck holds tools/samdeploy.py, the lint step that reads samconfig.toml as
// `sam deploy` does, to passing the project's files and naming every problem of bad ones.
func TestDeployConfigCheck(t *testing.T) {
	python := filepath.Join(".venv", "sam", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%v: install the pinned tools with tools/lint.sh install (make lint does)", err)
	}
	for _, tt := range []struct {
		template, config string
		want             []string // in the output; none for a pass
	}{
		{template: "../template.yaml", config: "../samconfig.toml"},
		{template: "../template.yaml", config: "testdata/samconfig-bad.toml", want: []string{
			"sets no region", "sets no tags", "does not confirm changesets", "want \"CAPABILITY_IAM\"",
			"overrides EmailHashKey, which the template does not declare", "LogRetentionInDays=2 is not one of its AllowedValues",
			"KeysRecoveryPeriodInDays=90 is above its MaxValue",
		}},
		{template: "testdata/parameter-without-default.yaml", config: "../samconfig.toml", want: []string{
			"parameter MustInvent has no Default", "[prod] overrides LogRetentionInDays, which the template does not declare",
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, python, "samdeploy.py", tt.template, tt.config).CombinedOutput()
		cancel()
		if (err != nil) != (len(tt.want) > 0) {
			t.Errorf("samdeploy.py %s %s: %v\n%s", tt.template, tt.config, err, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("samdeploy.py %s %s: output lacks %q:\n%s", tt.template, tt.config, w, out)
			}
		}
	}
}
