package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// venvPython is the Python of localstack/.venv, where localstack/requirements.txt pins
// aws-sam-translator and cfn-lint. A missing venv fails the test: the check it guards must run.
func venvPython(t *testing.T) string {
	t.Helper()
	py, err := filepath.Abs(filepath.Join("..", "localstack", ".venv", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%v: install the pinned tools with localstack/stack.sh install (make lint does)", err)
	}
	return py
}

// samtransform runs tools/samtransform.py with args and returns its exit status and output.
func samtransform(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, venvPython(t), append([]string{"samtransform.py"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), out.String()
	default:
		t.Fatalf("samtransform %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return 0, ""
	}
}

func TestSAMTransform(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		want       []string // in the output, in this order; none: no output at all
	}{
		{
			name: "the project's template transforms and its output lints",
			args: []string{"--cfn-lint", "../template.yaml"},
		},
		{
			name:       "an AWS_IAM route on an HttpApi without the IAM authorizer is rejected",
			args:       []string{"--cfn-lint", "testdata/iam-route-without-iam-authorizer.yaml"},
			wantStatus: 1,
			want: []string{
				"testdata/iam-route-without-iam-authorizer.yaml: rejected by the SAM transform",
				"Unable to set Authorizer [AWS_IAM] on API method [delete] for path [/users/{id}]",
			},
		},
		{
			name: "the same route with EnableIamAuthorizer transforms",
			args: []string{"--cfn-lint", "testdata/iam-route-with-iam-authorizer.yaml"},
		},
		{
			name: "an invalid IAM action passes the transform alone",
			args: []string{"testdata/invalid-iam-action.yaml"},
		},
		{
			name:       "an invalid IAM action in the generated role fails cfn-lint on the output",
			args:       []string{"--cfn-lint", "testdata/invalid-iam-action.yaml"},
			wantStatus: 1,
			want:       []string{"cfn-lint rejects the result", "W3037 'putitemz'", "Resources/WriteFunctionRole/Properties/Policies"},
		},
		{
			name:       "a serverless application is refused rather than looked up in AWS",
			args:       []string{"testdata/serverless-application.yaml"},
			wantStatus: 1,
			want:       []string{"rejected by the SAM transform", "the offline transform makes no AWS calls"},
		},
		{
			name:       "a rejected template fails the run when another passes",
			args:       []string{"testdata/iam-route-with-iam-authorizer.yaml", "testdata/iam-route-without-iam-authorizer.yaml"},
			wantStatus: 1,
			want:       []string{"iam-route-without-iam-authorizer.yaml: rejected by the SAM transform"},
		},
		{
			name:       "a file that is not YAML",
			args:       []string{"testdata/not-yaml.yaml"},
			wantStatus: 2,
			want:       []string{"testdata/not-yaml.yaml: not a readable template", "line 2:"},
		},
		{
			name:       "a missing file",
			args:       []string{"testdata/missing.yaml"},
			wantStatus: 2,
			want:       []string{"testdata/missing.yaml: not a readable template", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := samtransform(t, tt.args...)
			if status != tt.wantStatus {
				t.Errorf("exit status %d, want %d; output:\n%s", status, tt.wantStatus, out)
			}
			if len(tt.want) == 0 && out != "" {
				t.Errorf("want no output, got:\n%s", out)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("output lacks %q (after the earlier wants); output:\n%s", w, out)
					break
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestMakeLintRunsTheTransform holds `make lint` to running the check above on template.yaml, so
// that a template the transform rejects fails `make lint`, and so `make test` and CI.
func TestMakeLintRunsTheTransform(t *testing.T) {
	const want = "localstack/.venv/bin/python tools/samtransform.py --cfn-lint template.yaml"
	cmd := exec.Command("make", "-n", "lint")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n lint: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("make lint does not run %q; it runs:\n%s", want, out)
	}
}

// TestSAMTransformOutput holds --output to writing the transformed template that `make lint`
// runs checkov on, with each function's Metadata kept: checkov's skips (Metadata: checkov: skip)
// on an AWS::Serverless::Function reach checkov only because the transform carries them over to
// the AWS::Lambda::Function it generates.
func TestSAMTransformOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "transformed.json")
	if status, msg := samtransform(t, "--output", out, "../template.yaml"); status != 0 {
		t.Fatalf("exit status %d; output:\n%s", status, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Transform any
		Resources map[string]struct {
			Type     string
			Metadata struct {
				Checkov struct {
					Skip []struct{ ID, Comment string }
				} `json:"checkov"`
			}
		}
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if tmpl.Transform != nil {
		t.Errorf("output still has Transform %v", tmpl.Transform)
	}
	fn, ok := tmpl.Resources["CommandsFunction"]
	if !ok || fn.Type != "AWS::Lambda::Function" {
		t.Fatalf("CommandsFunction in the output: %+v, want an AWS::Lambda::Function", fn)
	}
	if len(fn.Metadata.Checkov.Skip) == 0 {
		t.Fatal("CommandsFunction lost its checkov skips in the transform")
	}
	for _, s := range fn.Metadata.Checkov.Skip {
		if s.ID == "" || strings.TrimSpace(s.Comment) == "" {
			t.Errorf("skip %+v: every suppression names its check and gives its reason", s)
		}
	}
}

func TestSAMTransformOutputTakesOneTemplate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "transformed.json")
	status, msg := samtransform(t, "--output", out, "../template.yaml", "testdata/iam-route-with-iam-authorizer.yaml")
	if status != 2 || !strings.Contains(msg, "--output takes one TEMPLATE") {
		t.Errorf("exit status %d, want 2 with a usage error; output:\n%s", status, msg)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("wrote %s anyway (%v)", out, err)
	}
}

// TestMakeLintRunsTheDeployChecks holds `make lint` to running sam validate, sam build and
// checkov (tools/lint.sh check), so that an unexplained checkov finding fails `make test` and CI.
func TestMakeLintRunsTheDeployChecks(t *testing.T) {
	cmd := exec.Command("make", "-n", "lint")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n lint: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "tools/lint.sh check") {
		t.Errorf("make lint does not run tools/lint.sh check; it runs:\n%s", out)
	}
}
