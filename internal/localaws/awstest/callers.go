package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/eventfold/eventfold/internal/localaws"
)

// SignIn signs user in to the local Cognito user pool (on moto, at KMSEndpoint) through the app
// client, signing them up first when the pool does not know them, and returns their access token
// and ID token.
func SignIn(tb testing.TB, poolID, clientID, user string) (access, id string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := localaws.SignIn(ctx, localaws.Cognito(KMSEndpoint(tb)), poolID, clientID, user, localaws.DevPassword)
	if err != nil {
		tb.Fatalf("sign %s in: %v", user, err)
	}
	return aws.ToString(res.AccessToken), aws.ToString(res.IdToken)
}

// OperatorCredentials are the local stack's IAM credentials, which the runner's AWS_IAM routes
// accept (runner.OperatorAccessKey and OperatorSecretKey).
var OperatorCredentials = aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}

// SignV4 signs req (whose body is body) for execute-api in the local stack's region with creds,
// as an operator's SDK or `curl --aws-sigv4` does.
func SignV4(tb testing.TB, req *http.Request, body []byte, creds aws.Credentials) {
	tb.Helper()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", localaws.Region, time.Now()); err != nil {
		tb.Fatal(err)
	}
}
