package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretAPI is the part of the Secrets Manager API ReadEmailHashKey uses.
type SecretAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ErrWeakEmailHashKey is returned by ReadEmailHashKey when the secret holds no string of at
// least 32 bytes.
var ErrWeakEmailHashKey = errors.New("the email hash key secret holds no string of at least 32 bytes")

// secretTimeout bounds ReadEmailHashKey's call, retries included: it runs in a cold start,
// which Lambda gives 10 s.
const secretTimeout = 5 * time.Second

// ReadEmailHashKey reads the email hash key from the secret secretID (ARN or name) with one
// GetSecretValue: the bytes of its current SecretString, which the stack generates (64 letters
// and digits). The commands function calls it once, at cold start, and `eventfold restore
// apply` before it erases again. Errors name the secret, never its value; a secret too short to
// be a key is ErrWeakEmailHashKey.
func ReadEmailHashKey(ctx context.Context, api SecretAPI, secretID string) ([]byte, error) {
	if secretID == "" {
		return nil, errors.New("no email hash key secret given")
	}
	ctx, cancel := context.WithTimeout(ctx, secretTimeout)
	defer cancel()
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fmt.Errorf("read the email hash key from %s: %w", secretID, err)
	}
	if len(aws.ToString(out.SecretString)) < 32 {
		return nil, fmt.Errorf("%s: %w", secretID, ErrWeakEmailHashKey)
	}
	return []byte(aws.ToString(out.SecretString)), nil
}
