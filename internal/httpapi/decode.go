package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// strict are the options every request body is read with. A body means one thing to every
// reader, or it is refused: two parsers that read one body differently (one matching names
// case-insensitively, or taking the last of two equal names, the other not) is how a checked
// request becomes a different executed one.
var strict = json.JoinOptions(
	json.MatchCaseInsensitiveNames(false), // "AMOUNT" is not "amount"
	json.RejectUnknownMembers(true),       // nor any other name the type does not have
	jsontext.AllowDuplicateNames(false),   // {"amount":1,"amount":1000} is refused, not 1000
	jsontext.AllowInvalidUTF8(false),      // no name or string that decodes lossily
)

// decode reads body into v strictly: one JSON object, its names (and those of the objects within
// it) spelt exactly as v's fields, each once, none unknown, and nothing after it. Its errors are
// 400 problems that name at most one of v's own fields and a byte offset: never an unknown name
// (a client's key can be an email address) nor any other part of the body.
func decode(body []byte, v any) error {
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		return newProblem(http.StatusBadRequest, TypeMalformed, "the request needs a JSON body")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body), strict)
	switch kind := dec.PeekKind(); kind {
	case '{':
	case jsontext.KindInvalid:
		_, err := dec.ReadToken()
		return malformed(err)
	default:
		return newProblem(http.StatusBadRequest, TypeMalformed, "the body must be a JSON object")
	}
	if err := json.UnmarshalDecode(dec, v, strict); err != nil {
		return malformed(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return newProblem(http.StatusBadRequest, TypeMalformed, "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// fieldToken is what a token of a JSON pointer to one of the API's fields looks like: a name
// of the API's own or an array index.
var fieldToken = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// malformed describes a decoding error without quoting the body: the errors' own texts hold
// unknown names and values, so only their offsets and, for a value of the wrong type, the path
// of one of the target's own fields are used.
func malformed(err error) *Problem {
	var (
		syntax   *jsontext.SyntacticError
		semantic *json.SemanticError
		detail   string
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		detail = "the body ends in the middle of a JSON value"
	case errors.As(err, &syntax) && errors.Is(err, jsontext.ErrDuplicateName):
		detail = fmt.Sprintf("the body has a field twice in one object (at byte %d)", syntax.ByteOffset)
	case errors.As(err, &syntax):
		detail = fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.ByteOffset)
	case errors.As(err, &semantic) && errors.Is(err, json.ErrUnknownName):
		// An unknown name is the client's and may be personal data: its place, not its name.
		detail = fmt.Sprintf("the body has a field this route does not take (at byte %d); field names match exactly", semantic.ByteOffset)
	case errors.As(err, &semantic) && semantic.GoType != nil:
		// Names that reach a value were matched exactly to the target's fields: they are ours.
		var path []string
		for tok := range semantic.JSONPointer.Tokens() {
			path = append(path, tok)
			if !fieldToken.MatchString(tok) {
				path = nil
				break
			}
		}
		if len(path) == 0 {
			detail = "a field of the body has the wrong type"
		} else {
			detail = fmt.Sprintf("field %q must be a JSON %s", strings.Join(path, "."), jsonKind(semantic.GoType.Kind()))
		}
	default:
		detail = "the body is not valid JSON for this route"
	}
	return newProblem(http.StatusBadRequest, TypeMalformed, detail)
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	}
	return k.String()
}
