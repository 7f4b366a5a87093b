package protocol

import (
	"encoding/json"
	"fmt"
)

// QuoteIntKeys rewrites fastjson output whose object keys are bare integers
// ({0:"a",1:"b"}, as Java writes Map<Long,...> fields such as brokerAddrs,
// offsetTable in consumerOffset.json, hostedQueues) into standard JSON
// ({"0":"a","1":"b"}). Everything else, including the contents of strings,
// is copied unchanged. Input that is already standard JSON comes back
// byte-for-byte identical (the same slice when nothing needed quoting).
// It does not validate: malformed input stays malformed and is reported by
// the JSON decoder that follows.
func QuoteIntKeys(data []byte) []byte {
	var out []byte // allocated on the first rewrite
	// expectKey[depth] is true while inside an object and the next token is
	// a key; the scanner only needs to know object-vs-array per level.
	var stack []bool // true = object
	expectKey := false
	last := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			// skip the whole string
			j := i + 1
			for j < len(data) {
				if data[j] == '\\' {
					j += 2
					continue
				}
				if data[j] == '"' {
					break
				}
				j++
			}
			i = j
			expectKey = false
		case c == '{':
			stack = append(stack, true)
			expectKey = true
		case c == '[':
			stack = append(stack, false)
			expectKey = false
		case c == '}' || c == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case c == ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1]
		case c == ':':
			expectKey = false
		case expectKey && (c == '-' || (c >= '0' && c <= '9')):
			j := i + 1
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			if out == nil {
				out = make([]byte, 0, len(data)+16)
			}
			out = append(out, data[last:i]...)
			out = append(out, '"')
			out = append(out, data[i:j]...)
			out = append(out, '"')
			last = j
			i = j - 1
			expectKey = false
		}
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

// UnmarshalLenient is json.Unmarshal after QuoteIntKeys: it accepts both
// standard JSON and the fastjson form with bare integer map keys that Java
// name servers and brokers emit.
func UnmarshalLenient(data []byte, v any) error {
	if err := json.Unmarshal(QuoteIntKeys(data), v); err != nil {
		return fmt.Errorf("protocol: decode %T: %w", v, err)
	}
	return nil
}
