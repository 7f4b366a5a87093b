package metadata

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// quoteIntKeys turns the unquoted integer object keys fastjson writes
// ({0:12,1:5}) into standard JSON ({"0":12,"1":5}) so encoding/json can read
// RocketMQ's files. Keys already quoted and everything inside strings are
// left alone. Input that is not JSON stays not JSON: the decoder reports it.
func quoteIntKeys(in []byte) []byte {
	var out []byte // allocated on the first rewrite
	last := 0
	inString := false
	expectKey := false // just after '{' or ',' inside an object
	var stack []byte   // '{' or '['
	for i := 0; i < len(in); i++ {
		c := in[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			expectKey = false
		case '{':
			stack = append(stack, '{')
			expectKey = true
		case '[':
			stack = append(stack, '[')
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		case ' ', '\t', '\r', '\n':
		default:
			if expectKey && (c == '-' || (c >= '0' && c <= '9')) {
				j := i + 1
				for j < len(in) && in[j] >= '0' && in[j] <= '9' {
					j++
				}
				if out == nil {
					out = make([]byte, 0, len(in)+64)
				}
				out = append(out, in[last:i]...)
				out = append(out, '"')
				out = append(out, in[i:j]...)
				out = append(out, '"')
				last = j
				i = j - 1
			}
			expectKey = false
		}
	}
	if out == nil {
		return in
	}
	return append(out, in[last:]...)
}

// decodeFastjson unmarshals RocketMQ JSON (possibly with unquoted integer
// keys) into v.
func decodeFastjson(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return errEmpty
	}
	return json.Unmarshal(quoteIntKeys(data), v)
}

// intTableWriter writes RocketMQ's pretty JSON with unquoted integer keys.
type intTableWriter struct{ b bytes.Buffer }

func (w *intTableWriter) str(s string) {
	q, _ := json.Marshal(s)
	w.b.Write(q)
}

// intMap writes {k:v,k:v} with keys ascending and unquoted, as fastjson does
// for Map<Integer, Long>.
func (w *intTableWriter) intMap(m map[int32]int64) {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.b.WriteString(strconv.FormatInt(int64(k), 10))
		w.b.WriteByte(':')
		w.b.WriteString(strconv.FormatInt(m[k], 10))
	}
	w.b.WriteByte('}')
}

func (w *intTableWriter) dataVersion(d DataVersion, indent string) {
	w.b.WriteString("{\n" + indent + "\t\"counter\":")
	w.b.WriteString(strconv.FormatInt(d.Counter, 10))
	w.b.WriteString(",\n" + indent + "\t\"stateVersion\":")
	w.b.WriteString(strconv.FormatInt(d.StateVersion, 10))
	w.b.WriteString(",\n" + indent + "\t\"timestamp\":")
	w.b.WriteString(strconv.FormatInt(d.Timestamp, 10))
	w.b.WriteString("\n" + indent + "}")
}

// fastjsonIndent pretty-prints v as fastjson's PrettyFormat does: tab
// indentation and no blank after ':'.
func fastjsonIndent(v any) []byte {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		panic("metadata: marshal: " + err.Error()) // only plain structs and maps reach here
	}
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		out = append(out, c)
		if inString {
			switch c {
			case '\\':
				i++
				out = append(out, b[i])
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ':':
			if i+1 < len(b) && b[i+1] == ' ' {
				i++
			}
		}
	}
	return out
}
