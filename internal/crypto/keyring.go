package crypto

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the part of the KMS API the keyring uses.
type KMS interface {
	GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Table is the part of the DynamoDB API the keys table uses.
type Table interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Keyring gives out data subjects' keys: from its cache, else unwrapped by KMS from the keys
// table, else (for sealing) newly made. It is safe for concurrent use.
type Keyring struct {
	kms   KMS
	table Table
	name  string // the keys table
	keyID string // the KMS key (ID, ARN or alias)
	cache *cache
	now   func() time.Time

	kmsCalls atomic.Int64
}

// New returns a keyring. It caches up to maxKeys unwrapped keys, each for ttl (erasure reaches
// other processes within ttl); clock may be nil.
func New(kmsAPI KMS, table Table, tableName, keyID string, maxKeys int, ttl time.Duration, clock func() time.Time) *Keyring {
	if clock == nil {
		clock = time.Now
	}
	return &Keyring{kms: kmsAPI, table: table, name: tableName, keyID: keyID, cache: newCache(maxKeys, ttl, clock), now: clock}
}

// KMSCalls counts the KMS requests the keyring has made.
func (k *Keyring) KMSCalls() int64 { return k.kmsCalls.Load() }

func encryptionContext(subject string) map[string]string {
	return map[string]string{"eventfold:subject": subject}
}

func (k *Keyring) key(subject string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: subject}}
}

// Seal encrypts plaintext for subject at place, making the subject's key on first use. It
// returns ErrShredded for an erased subject.
func (k *Keyring) Seal(ctx context.Context, subject, place string, plaintext []byte) ([]byte, error) {
	var key [KeySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, subject, true, &key); err != nil {
		return nil, err
	}
	return Seal(key[:], subject, place, plaintext)
}

// Open decrypts a value sealed for subject at place. It returns ErrShredded when the subject's
// key is gone, ErrTampered or ErrFormat when the value is not theirs, wrapped.
func (k *Keyring) Open(ctx context.Context, subject, place string, sealed []byte) ([]byte, error) {
	var key [KeySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, subject, false, &key); err != nil {
		return nil, err
	}
	return Open(key[:], subject, place, sealed)
}

// dataKey puts the subject's key in dst.
func (k *Keyring) dataKey(ctx context.Context, subject string, create bool, dst *[KeySize]byte) error {
	if subject == "" {
		return errors.New("crypto: no data subject")
	}
	if k.cache.get(subject, dst) {
		return nil
	}
	out, err := k.table.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(k.name), Key: k.key(subject), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("crypto: read key: %w", err)
	}
	if out.Item != nil {
		wrapped, ok := out.Item["wrapped"].(*ddbtypes.AttributeValueMemberB)
		if !ok {
			return ErrShredded // a tombstone: erased
		}
		return k.unwrap(ctx, subject, wrapped.Value, dst)
	}
	if !create {
		return ErrShredded
	}
	k.kmsCalls.Add(1)
	gen, err := k.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k.keyID), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: encryptionContext(subject)})
	if err != nil {
		return fmt.Errorf("crypto: generate data key: %w", err)
	}
	defer clear(gen.Plaintext)
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		return err
	}
	item := k.key(subject)
	item["wrapped"] = &ddbtypes.AttributeValueMemberB{Value: gen.CiphertextBlob}
	item["createdAt"] = &ddbtypes.AttributeValueMemberS{Value: k.now().UTC().Format(time.RFC3339)}
	_, err = k.table.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(k.name), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()})
	var exists *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &exists) {
		// Another process made the subject's key (or erased the subject) first: use theirs.
		return k.dataKey(ctx, subject, false, dst)
	}
	if err != nil {
		return fmt.Errorf("crypto: store key: %w", err)
	}
	copy(dst[:], gen.Plaintext)
	k.cache.put(subject, append([]byte(nil), gen.Plaintext...))
	return nil
}

func (k *Keyring) unwrap(ctx context.Context, subject string, wrapped []byte, dst *[KeySize]byte) error {
	k.kmsCalls.Add(1)
	out, err := k.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, KeyId: aws.String(k.keyID), EncryptionContext: encryptionContext(subject)})
	if err != nil {
		return fmt.Errorf("crypto: unwrap key: %w", err)
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != KeySize {
		return fmt.Errorf("crypto: unwrapped key of %d bytes", len(out.Plaintext))
	}
	copy(dst[:], out.Plaintext)
	k.cache.put(subject, append([]byte(nil), out.Plaintext...))
	return nil
}

// Erase shreds a subject: their wrapped key is removed, leaving a tombstone so that no new key is
// made for them. It is idempotent. Other processes stop opening the subject's data when their
// cached key expires (the TTL).
func (k *Keyring) Erase(ctx context.Context, subject string) error {
	upd := expression.Remove(expression.Name("wrapped")).Set(expression.Name("erasedAt"), expression.Value(k.now().UTC().Format(time.RFC3339)))
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return err
	}
	_, err = k.table.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(k.name), Key: k.key(subject),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	k.cache.drop(subject)
	if err != nil {
		return fmt.Errorf("crypto: erase: %w", err)
	}
	return nil
}
