// Package crypto is eventfold's envelope encryption for personal data, made for erasure by
// deletion (crypto-shredding).
//
// The scheme: one customer-managed KMS key wraps a 256-bit data key per data subject, made by
// GenerateDataKey with the subject in the encryption context and kept, wrapped, in the keys
// table: stored by the same atomic append as the first events sealed under it, so that a refused
// append leaves no key and an erased subject's tombstone is never overwritten. Fields are sealed with AES-256-GCM under the subject's key: a fresh random nonce per
// seal, and associated data binding the ciphertext to its subject and to where it is stored (an
// event ID, say), so a ciphertext copied elsewhere does not open. Sealed values carry a format
// version. Erasing a subject deletes their wrapped key, leaving a tombstone: every ciphertext
// of theirs, wherever it was copied, can no longer be opened, and opening one reports
// ErrShredded. Unwrapped keys are cached in memory, bounded in count and time, so erasure takes
// effect in other processes within the cache's TTL.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/eventfold/eventfold/internal/store"
)

var (
	// ErrShredded is returned when a subject's data can no longer be opened: their key was
	// erased (or never existed).
	ErrShredded = errors.New("personal data erased")
	// ErrTampered is returned by Open when a sealed value does not authenticate: it was
	// altered, or it belongs to another subject or place. It wraps store.ErrCorrupt.
	ErrTampered = fmt.Errorf("sealed value does not authenticate: %w", store.ErrCorrupt)
	// ErrFormat is returned by Open for a value that is not a sealed value of a known format.
	// It wraps store.ErrCorrupt.
	ErrFormat = fmt.Errorf("not a sealed value: %w", store.ErrCorrupt)
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// format1 is the first byte of sealed values of format 1: format, 12-byte nonce, AES-GCM
// ciphertext and tag.
const format1 = 0x01

const nonceSize = 12

// aad binds a sealed value to its subject and its place.
func aad(subject, place string) []byte {
	b := make([]byte, 0, len("eventfold/1\x00")+len(subject)+1+len(place))
	b = append(b, "eventfold/1\x00"...)
	b = append(b, subject...)
	b = append(b, 0)
	return append(b, place...)
}

// Seal encrypts plaintext under key for subject, bound to place.
func Seal(key []byte, subject, place string, plaintext []byte) ([]byte, error) {
	gcm, err := aead(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+gcm.Overhead())
	out[0] = format1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, err
	}
	return gcm.Seal(out, out[1:1+nonceSize], plaintext, aad(subject, place)), nil
}

// Open decrypts a value sealed for subject at place. It returns ErrFormat or ErrTampered,
// wrapped; never the value.
func Open(key []byte, subject, place string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+16 || sealed[0] != format1 {
		return nil, ErrFormat
	}
	gcm, err := aead(key)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad(subject, place))
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

func aead(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("data key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
