package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/viper"
)

// Errors a caller can test for with errors.Is on a *KeyError.
var (
	// ErrUnknownKey: the key is neither an rmqd key nor a known RocketMQ key.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue: the value does not parse as the key's type or enum.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNotImplemented: the key exists in Java RocketMQ but rmqd ignores it.
	// Load turns this into a warning; Set returns it so a runtime
	// UPDATE_BROKER_CONFIG can report the key as ignored.
	ErrNotImplemented = errors.New("RocketMQ key not implemented by rmqd")
)

// KeyError names the file (empty for Set), the line (0 if unknown) and the key,
// spelled as the caller spelled it.
type KeyError struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *KeyError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("conf: %s: key %q: %v", e.File, e.Key, e.Err)
	}
	return fmt.Sprintf("conf: key %q: %v", e.Key, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// valueError is an ErrInvalidValue with a precise message.
type valueError struct{ msg string }

func (e *valueError) Error() string        { return e.msg }
func (e *valueError) Is(target error) bool { return target == ErrInvalidValue }

func invalid(format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...)}
}

// field describes one settable key of a config struct, from its struct tags:
//
//	key:"listenPort"            the Java spelling (required)
//	enum:"ASYNC_FLUSH,SYNC_FLUSH" allowed values of a string field
//	path:"true"                 expand ~ and ${user.home}
//	important:"true"            printed by ImportantProperties (-m)
type field struct {
	key       string
	lower     string
	index     int
	kind      reflect.Kind
	enum      []string
	path      bool
	important bool
}

type table struct {
	fields  []field
	byLower map[string]int
}

var tables sync.Map // reflect.Type -> *table

func tableOf(t reflect.Type) *table {
	if v, ok := tables.Load(t); ok {
		return v.(*table)
	}
	tb := &table{byLower: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := sf.Tag.Get("key")
		if key == "" {
			continue
		}
		f := field{key: key, lower: strings.ToLower(key), index: i, kind: sf.Type.Kind(), path: sf.Tag.Get("path") == "true", important: sf.Tag.Get("important") == "true"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		switch f.kind {
		case reflect.String, reflect.Int, reflect.Int64, reflect.Bool:
		default:
			panic(fmt.Sprintf("conf: field %s has unsupported kind %s", sf.Name, f.kind))
		}
		if _, dup := tb.byLower[f.lower]; dup {
			panic("conf: duplicate key " + key)
		}
		tb.byLower[f.lower] = len(tb.fields)
		tb.fields = append(tb.fields, f)
	}
	tables.Store(t, tb)
	return tb
}

func (tb *table) lookup(key string) (field, bool) {
	i, ok := tb.byLower[strings.ToLower(key)]
	if !ok {
		return field{}, false
	}
	return tb.fields[i], true
}

// setField parses raw into the field of the struct v points to.
func setField(v reflect.Value, f field, raw string) error {
	raw = strings.TrimSpace(raw)
	fv := v.Elem().Field(f.index)
	switch f.kind {
	case reflect.String:
		if f.enum != nil {
			for _, e := range f.enum {
				if strings.EqualFold(e, raw) {
					fv.SetString(e)
					return nil
				}
			}
			return invalid("invalid value %q (want %s)", raw, strings.Join(f.enum, " or "))
		}
		if f.path {
			raw = ExpandPath(raw)
		}
		fv.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return invalid("invalid integer %q", raw)
		}
		fv.SetInt(n)
	case reflect.Bool:
		switch strings.ToLower(raw) {
		case "true":
			fv.SetBool(true)
		case "false":
			fv.SetBool(false)
		default:
			return invalid("invalid boolean %q (want true or false)", raw)
		}
	}
	return nil
}

func formatField(v reflect.Value, f field) string {
	fv := v.Elem().Field(f.index)
	switch f.kind {
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(fv.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(fv.Bool())
	default:
		return fv.String()
	}
}

// setKey implements Set for any config struct pointer.
func setKey(ptr any, javaOnly map[string]bool, key, value string) error {
	tb := tableOf(reflect.TypeOf(ptr).Elem())
	f, ok := tb.lookup(key)
	if !ok {
		if javaOnly[strings.ToLower(key)] {
			return &KeyError{Key: key, Err: ErrNotImplemented}
		}
		return &KeyError{Key: key, Err: unknownKeyErr(tb, key)}
	}
	if err := setField(reflect.ValueOf(ptr), f, value); err != nil {
		return &KeyError{Key: key, Err: err}
	}
	return nil
}

// getKey returns the formatted value of key.
func getKey(ptr any, key string) (string, bool) {
	tb := tableOf(reflect.TypeOf(ptr).Elem())
	f, ok := tb.lookup(key)
	if !ok {
		return "", false
	}
	return formatField(reflect.ValueOf(ptr), f), true
}

// properties prints every key of ptr in declaration order as key=value lines.
func properties(ptr any) string { return printFields(ptr, false) }

func importantProperties(ptr any) string { return printFields(ptr, true) }

func printFields(ptr any, onlyImportant bool) string {
	tb := tableOf(reflect.TypeOf(ptr).Elem())
	v := reflect.ValueOf(ptr)
	var b strings.Builder
	for _, f := range tb.fields {
		if onlyImportant && !f.important {
			continue
		}
		b.WriteString(f.key)
		b.WriteByte('=')
		b.WriteString(escapeValue(formatField(v, f)))
		b.WriteByte('\n')
	}
	return b.String()
}

func keysOf(ptr any) []string {
	tb := tableOf(reflect.TypeOf(ptr).Elem())
	out := make([]string, len(tb.fields))
	for i, f := range tb.fields {
		out[i] = f.key
	}
	return out
}

func unknownKeyErr(tb *table, key string) error {
	best, bestD := "", 3
	lk := strings.ToLower(key)
	for _, f := range tb.fields {
		if d := editDistance(lk, f.lower); d < bestD {
			best, bestD = f.key, d
		}
	}
	if best != "" {
		return fmt.Errorf("%w (did you mean %q?)", ErrUnknownKey, best)
	}
	return ErrUnknownKey
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// loadFile reads path into ptr (already holding defaults). Unknown keys and
// bad values are errors naming the file and key; keys Java knows but rmqd
// ignores, repeated keys and keys spelled with a different case are warnings.
//
// The lines are parsed by ReadProperties; viper is used as the value store
// (case-insensitive key lookup, last write wins), not as the file reader,
// because viper's properties reader does not report line numbers and expands
// ${...} references on its own terms.
func loadFile(path string, ptr any, javaOnly map[string]bool) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	defer fh.Close()
	entries, err := ReadProperties(fh)
	if err != nil {
		return nil, fmt.Errorf("conf: %s: %w", path, err)
	}
	return applyEntries(path, entries, ptr, javaOnly)
}

func applyEntries(file string, entries []Entry, ptr any, javaOnly map[string]bool) ([]string, error) {
	tb := tableOf(reflect.TypeOf(ptr).Elem())
	store := viper.NewWithOptions(viper.KeyDelimiter("\x00"))
	seen := map[string]Entry{}
	var warnings []string
	warn := func(e Entry, msg string) {
		warnings = append(warnings, fmt.Sprintf("conf: %s:%d: key %q: %s", file, e.Line, e.Key, msg))
	}
	for _, e := range entries {
		f, ok := tb.lookup(e.Key)
		if !ok {
			if javaOnly[strings.ToLower(e.Key)] {
				warn(e, ErrNotImplemented.Error()+"; ignored")
				continue
			}
			return nil, &KeyError{File: file, Line: e.Line, Key: e.Key, Err: unknownKeyErr(tb, e.Key)}
		}
		if e.Key != f.key {
			warn(e, fmt.Sprintf("taken as %q (RocketMQ keys are case-sensitive)", f.key))
		}
		if prev, dup := seen[f.lower]; dup {
			warn(e, fmt.Sprintf("repeats line %d; the last value wins", prev.Line))
		}
		seen[f.lower] = e
		store.Set(f.lower, e.Value)
	}
	v := reflect.ValueOf(ptr)
	for _, f := range tb.fields {
		if !store.IsSet(f.lower) {
			continue
		}
		e := seen[f.lower]
		if err := setField(v, f, store.GetString(f.lower)); err != nil {
			return nil, &KeyError{File: file, Line: e.Line, Key: e.Key, Err: err}
		}
	}
	return warnings, nil
}

// ExpandPath replaces a leading "~" and every "${user.home}" with the user's
// home directory (Java's user.home). Other text is left alone.
func ExpandPath(p string) string {
	if !strings.Contains(p, "~") && !strings.Contains(p, "${user.home}") {
		return p
	}
	home := userHome()
	p = strings.ReplaceAll(p, "${user.home}", home)
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") || strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		return filepath.Join(home, p[2:])
	}
	return p
}

func userHome() string {
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	return "."
}
