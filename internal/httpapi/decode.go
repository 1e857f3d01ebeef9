package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// decode reads body into v strictly: one JSON object, no unknown fields, nothing after it. Its
// errors are 400 problems that name the offending field or offset, never the value.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return newProblem(http.StatusBadRequest, TypeMalformed, "the body must hold one JSON object and nothing after it")
	}
	return nil
}

func malformed(err error) *Problem {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		detail string
	)
	switch {
	case errors.Is(err, io.EOF):
		detail = "the request needs a JSON body"
	case errors.As(err, &syntax):
		detail = fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			detail = fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		} else {
			detail = "the body must be a JSON object"
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		detail = "the body ends in the middle of a JSON value"
	default:
		// json: unknown field "x" — the name is the client's own field name.
		detail = err.Error()
		if len(detail) > 120 {
			detail = detail[:120]
		}
	}
	return newProblem(http.StatusBadRequest, TypeMalformed, detail)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer"
	case "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return goKind
}
