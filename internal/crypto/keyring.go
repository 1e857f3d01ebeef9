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

	"github.com/eventfold/eventfold/internal/store"
)

// KMS is the part of the KMS API the keyring uses.
type KMS interface {
	GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Table is the part of the DynamoDB API the keys table uses.
type Table interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Keyring gives out data subjects' keys: from its cache, else unwrapped by KMS from the keys
// table. New keys are made by KMS and stored in the keys table by the append of the first events
// sealed under them (see SealingStore). It is safe for concurrent use.
type Keyring struct {
	kms   KMS
	table Table
	name  string // the keys table
	keyID string // the KMS key (ID, ARN or alias)
	cache *cache
	now   func() time.Time

	kmsCalls atomic.Int64
}

// KeyringConfig configures a keyring.
type KeyringConfig struct {
	// Table names the keys table, which holds each subject's wrapped data key or tombstone.
	Table string
	// KeyID is the KMS key wrapping the data keys (ID, ARN or alias).
	KeyID string
	// MaxKeys is how many unwrapped keys the keyring caches; 0 means no cache: every Seal and
	// Open reads the keys table and asks KMS (what an erasure audit wants: it sees what any
	// process reading the tables now would).
	MaxKeys int
	// TTL is how long a cached key is used: an erasure reaches other processes within TTL.
	TTL time.Duration
	// Clock tells the time; nil means time.Now.
	Clock func() time.Time
}

// NewKeyring returns a keyring reading and writing the keys table through table and wrapping
// keys through kmsAPI, as cfg says.
func NewKeyring(kmsAPI KMS, table Table, cfg KeyringConfig) *Keyring {
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Keyring{kms: kmsAPI, table: table, name: cfg.Table, keyID: cfg.KeyID, cache: newCache(cfg.MaxKeys, cfg.TTL, clock), now: clock}
}

// KMSCalls counts the KMS requests the keyring has made.
func (k *Keyring) KMSCalls() int64 { return k.kmsCalls.Load() }

func encryptionContext(subject string) map[string]string {
	return map[string]string{"eventfold:subject": subject}
}

func (k *Keyring) key(subject string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: subject}}
}

// Seal encrypts plaintext for subject at place under the subject's stored key. It returns
// ErrShredded for an erased subject, and for one who has no key yet: keys are made only with the
// first events sealed under them (SealingStore.AppendStreams), so that no key outlives a
// refused append.
func (k *Keyring) Seal(ctx context.Context, subject, place string, plaintext []byte) ([]byte, error) {
	var key [KeySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, subject, &key); err != nil {
		return nil, err
	}
	return Seal(key[:], subject, place, plaintext)
}

// Open decrypts a value sealed for subject at place. It returns ErrShredded when the subject's
// key is gone, ErrTampered or ErrFormat when the value is not theirs, wrapped.
func (k *Keyring) Open(ctx context.Context, subject, place string, sealed []byte) ([]byte, error) {
	var key [KeySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, subject, &key); err != nil {
		return nil, err
	}
	return Open(key[:], subject, place, sealed)
}

// dataKey puts the subject's stored key in dst; ErrShredded when they have none (erased, or
// never given one).
func (k *Keyring) dataKey(ctx context.Context, subject string, dst *[KeySize]byte) error {
	found, err := k.lookup(ctx, subject, dst)
	if err == nil && !found {
		return ErrShredded
	}
	return err
}

// lookup puts the subject's stored key in dst: from the cache, else read from the keys table and
// unwrapped by KMS. found is false when the subject has no key yet; it returns ErrShredded when
// they were erased (a tombstone).
func (k *Keyring) lookup(ctx context.Context, subject string, dst *[KeySize]byte) (found bool, err error) {
	if subject == "" {
		return false, errors.New("crypto: no data subject")
	}
	if k.cache.get(subject, dst) {
		return true, nil
	}
	out, err := k.table.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(k.name), Key: k.key(subject), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("crypto: read key: %w", err)
	}
	if out.Item == nil {
		return false, nil
	}
	wrapped, ok := out.Item["wrapped"].(*ddbtypes.AttributeValueMemberB)
	if !ok {
		return false, ErrShredded // a tombstone: erased
	}
	return true, k.unwrap(ctx, subject, wrapped.Value, dst)
}

// newKey is a data key made for a subject who has none, not yet stored: it is stored by the
// append of the first events sealed under it (insert), then kept (keep) or, if that append
// fails, discarded.
type newKey struct {
	subject string
	plain   [KeySize]byte
	wrapped []byte
}

// generate makes a new data key for subject with KMS. It writes nothing.
func (k *Keyring) generate(ctx context.Context, subject string) (*newKey, error) {
	k.kmsCalls.Add(1)
	gen, err := k.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k.keyID), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: encryptionContext(subject)})
	if err != nil {
		return nil, fmt.Errorf("crypto: generate data key: %w", err)
	}
	defer clear(gen.Plaintext)
	if len(gen.Plaintext) != KeySize || len(gen.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("crypto: generated key of %d bytes", len(gen.Plaintext))
	}
	nk := &newKey{subject: subject, wrapped: gen.CiphertextBlob}
	copy(nk.plain[:], gen.Plaintext)
	return nk, nil
}

// insert is the keys table item of a new key, for the append that stores it: created only if
// the subject has no item there, neither a key nor a tombstone.
func (k *Keyring) insert(nk *newKey) store.Insert {
	return store.Insert{Table: k.name, Key: nk.subject, Attrs: map[string]any{
		"wrapped":   nk.wrapped,
		"createdAt": k.now().UTC().Format(time.RFC3339),
	}}
}

// isOwnInsert reports whether err is the failure of an insert of a new key of this keyring's.
func (k *Keyring) isOwnInsert(err error, keys map[string]*newKey) bool {
	var ie *store.InsertError
	return errors.As(err, &ie) && ie.Table == k.name && keys[ie.Key] != nil
}

// keep caches a new key once it is stored, and zeroes the caller's copy.
func (k *Keyring) keep(nk *newKey) {
	k.cache.put(nk.subject, append([]byte(nil), nk.plain[:]...))
	nk.discard()
}

// discard zeroes a new key.
func (nk *newKey) discard() { clear(nk.plain[:]) }

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
