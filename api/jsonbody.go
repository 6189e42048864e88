package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/httpapi"
)

// decodeBody reads a request's JSON body into v strictly (strictUnmarshal):
// 413 when it is over the body limit, however it was sent (Echo's limit
// reader reports a chunked body only as it is read), 400 naming the
// problem otherwise.
func decodeBody(c echo.Context, v any) *httpapi.Error {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return httpapi.Errorf(http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
		}
		return httpapi.Errorf(http.StatusBadRequest, "body could not be read")
	}
	if err := strictUnmarshal(data, v); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "body: "+err.Error())
	}
	return nil
}

// maxJSONDepth bounds how deeply a body may nest.
const maxJSONDepth = 16

// strictUnmarshal decodes data, one JSON object, into the struct v points
// to, refusing what encoding/json lets through: a key that matches a field
// only when case is ignored ("ClientSecret" for "clientSecret"), the same
// key twice (where the last would silently win), keys of no field, and
// anything after the object. Which keys exist comes from v's json tags, so
// a field added to the struct is accepted without touching this function.
// Errors name the key, never a value.
func strictUnmarshal(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic("strictUnmarshal: v must point to a struct")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not valid JSON")
	}
	if tok != json.Delim('{') {
		return errors.New("must be a JSON object")
	}
	if err := checkObject(dec, t.Elem(), 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("must be one JSON object and nothing after it")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("field %s has the wrong type (%s)", quoteKey(te.Field), te.Value)
		}
		return errors.New("not valid JSON")
	}
	return nil
}

// checkObject checks the keys of an object whose '{' was read, for type t
// (nil: any type, where only duplicates are refused), and its values.
func checkObject(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("nested too deeply")
	}
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("not valid JSON")
		}
		key := tok.(string) // the decoder allows only strings as keys
		if seen[key] {
			return fmt.Errorf("duplicate field %s", quoteKey(key))
		}
		seen[key] = true
		vt := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				return unknownField(key, fields)
			}
			vt = ft
		}
		if err := checkValue(dec, vt, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return errors.New("not valid JSON")
	}
	return nil
}

// checkValue reads one value meant for type t (nil: any) and checks the
// objects in it.
func checkValue(dec *json.Decoder, t reflect.Type, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not valid JSON")
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, depth+1)
	case json.Delim('['):
		if depth+1 > maxJSONDepth {
			return errors.New("nested too deeply")
		}
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkValue(dec, elem, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return errors.New("not valid JSON")
		}
	}
	return nil
}

func unknownField(key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Errorf("unknown field %s: field names are case-sensitive, did you mean %q?", quoteKey(key), name)
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	return fmt.Errorf("unknown field %s: the fields are %s", quoteKey(key), strings.Join(names, ", "))
}

// quoteKey quotes a caller's key for a message, cut short.
func quoteKey(k string) string {
	const maxLen = 64
	if len(k) > maxLen {
		return strconv.QuoteToASCII(k[:maxLen]) + "…"
	}
	return strconv.QuoteToASCII(k)
}

var fieldsByType sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON names of struct type t's fields, as
// encoding/json sees them (tag name, else field name; "-" and unexported
// fields left out; untagged embedded structs flattened), with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldsByType.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && !strings.HasPrefix(tag, "-,") {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					fields[n] = typ
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldsByType.Store(t, fields)
	return fields
}
