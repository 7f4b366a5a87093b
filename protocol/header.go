package protocol

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/rmqd/rmqd/remoting"
)

// Errors returned by DecodeHeader. Both are wrapped with the field name, so
// test with errors.Is.
var (
	// ErrMissingField: a field tagged ",required" is absent from extFields
	// (or present with an empty value).
	ErrMissingField = errors.New("protocol: missing required header field")
	// ErrInvalidField: a value does not parse as the field's type.
	ErrInvalidField = errors.New("protocol: invalid header field")
)

// EncodeHeader turns a header struct (or a pointer to one) into the
// string-valued ext fields of a RemotingCommand, in field order.
//
// Fields are mapped by the `ext` struct tag:
//
//	Topic     string `ext:"topic,required"`
//	QueueID   int32  `ext:"queueId"`
//	Unit      bool   `ext:"unitMode,omitempty"`
//	MaxReconsume *int32 `ext:"maxReconsumeTimes"` // nil = absent
//
// Supported kinds: string, bool, every signed and unsigned integer, and a
// pointer to one of these (nil pointers are left out). Integers are written
// in decimal and booleans as "true"/"false", as every RocketMQ peer expects.
// A field with ",omitempty" is left out when it holds its zero value.
// Fields without a tag, and the tag "-", are ignored. EncodeHeader panics
// if v is not a struct: that is a programming error, not a wire condition.
func EncodeHeader(v any) remoting.Fields {
	rv := reflect.Indirect(reflect.ValueOf(v))
	info := headerInfoOf(rv.Type())
	var ext remoting.Fields
	for i := range info.fields {
		f := &info.fields[i]
		fv := rv.Field(f.index)
		if f.pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		} else if f.omitEmpty && fv.IsZero() {
			continue
		}
		ext.Set(f.name, formatValue(fv))
	}
	return ext
}

// DecodeHeader fills the header struct pointed to by v from extFields.
// Keys that v does not declare are ignored (Java 5.x clients add many).
// Absent optional fields keep the value v already holds, so callers can
// preset defaults. Values are trimmed of surrounding spaces before parsing;
// booleans follow Java's Boolean.parseBoolean ("true" in any case is true,
// anything else false). The first missing required field or unparseable
// value is reported, naming the field, wrapped around ErrMissingField or
// ErrInvalidField.
func DecodeHeader(ext *remoting.Fields, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("protocol.DecodeHeader: need a non-nil pointer to a struct, got %T", v))
	}
	rv = rv.Elem()
	info := headerInfoOf(rv.Type())
	for i := range info.fields {
		f := &info.fields[i]
		raw, ok := ext.Lookup(f.name)
		if !ok || raw == "" {
			if f.required {
				return fmt.Errorf("%w %q", ErrMissingField, f.name)
			}
			continue
		}
		fv := rv.Field(f.index)
		if f.pointer {
			p := reflect.New(fv.Type().Elem())
			if err := parseValue(p.Elem(), raw); err != nil {
				return fmt.Errorf("%w %q: %q is not a valid %s", ErrInvalidField, f.name, raw, f.kind)
			}
			fv.Set(p)
			continue
		}
		if err := parseValue(fv, raw); err != nil {
			return fmt.Errorf("%w %q: %q is not a valid %s", ErrInvalidField, f.name, raw, f.kind)
		}
	}
	return nil
}

type headerField struct {
	name      string
	index     int
	kind      reflect.Kind
	pointer   bool
	required  bool
	omitEmpty bool
}

type headerInfo struct {
	fields []headerField
}

var headerCache sync.Map // reflect.Type -> *headerInfo

func headerInfoOf(t reflect.Type) *headerInfo {
	if hi, ok := headerCache.Load(t); ok {
		return hi.(*headerInfo)
	}
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("protocol: header type %s is not a struct", t))
	}
	hi := &headerInfo{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("ext")
		if !ok || tag == "-" || !sf.IsExported() {
			continue
		}
		parts := strings.Split(tag, ",")
		f := headerField{name: parts[0], index: i}
		if f.name == "" {
			f.name = sf.Name
		}
		for _, opt := range parts[1:] {
			switch opt {
			case "required":
				f.required = true
			case "omitempty":
				f.omitEmpty = true
			default:
				panic(fmt.Sprintf("protocol: %s.%s: unknown ext tag option %q", t, sf.Name, opt))
			}
		}
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			f.pointer = true
			ft = ft.Elem()
		}
		f.kind = ft.Kind()
		if !supportedKind(f.kind) {
			panic(fmt.Sprintf("protocol: %s.%s: unsupported header field type %s", t, sf.Name, sf.Type))
		}
		hi.fields = append(hi.fields, f)
	}
	actual, _ := headerCache.LoadOrStore(t, hi)
	return actual.(*headerInfo)
}

func supportedKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func formatValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	default:
		return strconv.FormatUint(v.Uint(), 10)
	}
}

func parseValue(v reflect.Value, raw string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
		return nil
	case reflect.Bool:
		v.SetBool(strings.EqualFold(strings.TrimSpace(raw), "true"))
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
		return nil
	default:
		n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
		return nil
	}
}
