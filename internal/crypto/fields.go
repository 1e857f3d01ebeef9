package crypto

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix starts a sealed field in a JSON payload: "ef1." then the sealed value in
// base64url.
const sealedPrefix = "ef1."

// SealFields replaces the named top-level fields of the JSON object data with sealed strings,
// under subject's stored key, bound to place. Like Seal, it returns ErrShredded for a subject
// without a key (erased, or never given one).
func (k *Keyring) SealFields(ctx context.Context, subject, place string, data json.RawMessage, fields []string) (json.RawMessage, error) {
	obj, err := object(data, fields)
	if err != nil || obj == nil {
		return data, err
	}
	var key [KeySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, subject, &key); err != nil {
		return nil, err
	}
	return sealObject(&key, subject, place, obj, fields)
}

// sealObject seals the named fields of obj under key and encodes it.
func sealObject(key *[KeySize]byte, subject, place string, obj map[string]json.RawMessage, fields []string) (json.RawMessage, error) {
	for _, f := range fields {
		v, ok := obj[f]
		if !ok || string(v) == "null" {
			continue
		}
		sealed, err := Seal(key[:], subject, place+"/"+f, v)
		if err != nil {
			return nil, err
		}
		obj[f], _ = json.Marshal(sealedPrefix + base64.RawURLEncoding.EncodeToString(sealed))
	}
	return json.Marshal(obj)
}

// OpenFields opens the named fields SealFields sealed. When the subject was erased they become
// null and shredded is true. A field that is not sealed is left as it is.
func (k *Keyring) OpenFields(ctx context.Context, subject, place string, data json.RawMessage, fields []string) (out json.RawMessage, shredded bool, err error) {
	obj, err := object(data, fields)
	if err != nil || obj == nil {
		return data, false, err
	}
	var key [KeySize]byte
	defer clear(key[:])
	haveKey := false
	for _, f := range fields {
		sealed, ok := sealedField(obj[f])
		if !ok {
			continue
		}
		if !haveKey && !shredded {
			switch err := k.dataKey(ctx, subject, &key); {
			case errors.Is(err, ErrShredded):
				shredded = true
			case err != nil:
				return nil, false, err
			default:
				haveKey = true
			}
		}
		if shredded {
			obj[f] = json.RawMessage("null")
			continue
		}
		plain, err := Open(key[:], subject, place+"/"+f, sealed)
		if err != nil {
			return nil, false, fmt.Errorf("field %s: %w", f, err)
		}
		obj[f] = plain
	}
	out, err = json.Marshal(obj)
	return out, shredded, err
}

// IsSealed reports whether a JSON value is a sealed field.
func IsSealed(v json.RawMessage) bool {
	_, ok := sealedField(v)
	return ok
}

func sealedField(v json.RawMessage) ([]byte, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil || !strings.HasPrefix(s, sealedPrefix) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(sealedPrefix):])
	return b, err == nil
}

// object decodes a payload that has fields to seal or open; nil when it has none.
func object(data json.RawMessage, fields []string) (map[string]json.RawMessage, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%w: payload with personal fields is not a JSON object", ErrFormat)
	}
	return obj, nil
}
