package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventfold/eventfold/internal/localaws"
)

// TestMixedEndpoints: a command never reads a stack in one place and acts in another. A stack
// deployed on AWS with the local stack's KMS endpoint still set (EVENTFOLD_KMS_ENDPOINT, which
// make up exports) would send its KMS, Scheduler and Secrets Manager calls to moto: a deadline
// "cancelled" there is not found, which Cancel takes for done, and the real one fires. A stack
// of a CloudFormation emulator with no -endpoint would name the emulator's resources on AWS's
// DynamoDB. Both are refused before any call, CloudFormation's included.
func TestMixedEndpoints(t *testing.T) {
	var calls atomic.Int32
	cfn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "no stack here", http.StatusBadRequest)
	}))
	defer cfn.Close()
	// AWS, as far as the SDK can tell: the CloudFormation it reaches is the server above.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_CLOUDFORMATION": cfn.URL, "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_MAX_ATTEMPTS": "1",
		localaws.EnvDynamoDBEndpoint: "", localaws.EnvKMSEndpoint: "", localaws.EnvCloudFormationEndpoint: "",
	} {
		t.Setenv(k, v)
	}
	common := []string{"-template", "../../template.yaml", "-stack", "eventfold"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"AWS's stack, the local KMS endpoint in the environment", map[string]string{localaws.EnvKMSEndpoint: "http://127.0.0.1:4699"},
			[]string{"sagas", "repair"}, localaws.EnvKMSEndpoint},
		{"AWS's stack, -kms-endpoint", nil,
			[]string{"erasure", "audit", "-subject", "x", "-kms-endpoint", "http://127.0.0.1:4699"}, "-kms-endpoint"},
		{"an emulator's stack, AWS's DynamoDB", nil,
			[]string{"parked", "list", "-cloudformation-endpoint", cfn.URL}, "-endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			calls.Store(0)
			err, out, errOut := runOut(t, append(tc.args, common...)...)
			if !errors.Is(err, errMixedEndpoints) {
				t.Fatalf("err %v, want %v\n%s%s", err, errMixedEndpoints, out, errOut)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("%d CloudFormation calls before the error", n)
			}
		})
	}
}
