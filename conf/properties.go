package conf

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry is one key/value pair read from a properties file.
type Entry struct {
	Key   string // as spelled in the file (after escape processing)
	Value string // trimmed of surrounding whitespace
	Line  int    // 1-based line where the entry starts
}

// ReadProperties parses r with java.util.Properties.load rules, plus trimming:
//
//   - a line whose first non-blank character is '#' or '!' is a comment;
//   - the key ends at the first unescaped '=', ':' or blank; blanks around that
//     separator are skipped, so "k=v", "k = v", "k: v" and "k v" are the same;
//   - a line ending in an odd number of '\' continues on the next line, whose
//     leading blanks are dropped;
//   - escapes \t \n \r \f \uXXXX are decoded, any other \c is c;
//   - unlike Java, the value is also trimmed at the end (Java keeps a trailing
//     space and then fails to parse "10911 " as an integer, silently).
//
// Entries are returned in file order; a repeated key appears more than once
// (the loader lets the last one win, as Java does, and warns). The input is
// read as UTF-8; invalid UTF-8 bytes are taken as ISO-8859-1, which is what
// Java reads.
func ReadProperties(r io.Reader) ([]Entry, error) {
	spans, err := readSpans(r)
	out := make([]Entry, len(spans))
	for i, s := range spans {
		out[i] = s.Entry
	}
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// span is an entry with the last physical line it occupies (continuations).
type span struct {
	Entry
	end int
}

func readSpans(r io.Reader) ([]span, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var out []span
	lineNo := 0
	var logical strings.Builder
	start := 0
	continuing := false
	for sc.Scan() {
		lineNo++
		line := latin1Fallback(sc.Text())
		line = strings.TrimRight(line, "\r")
		if continuing {
			line = strings.TrimLeft(line, " \t\f")
		} else {
			trimmed := strings.TrimLeft(line, " \t\f")
			if trimmed == "" || trimmed[0] == '#' || trimmed[0] == '!' {
				continue
			}
			line = trimmed
			start = lineNo
		}
		if endsWithOddBackslashes(line) {
			logical.WriteString(line[:len(line)-1])
			continuing = true
			continue
		}
		logical.WriteString(line)
		continuing = false
		e, err := splitEntry(logical.String())
		logical.Reset()
		if err != nil {
			return out, fmt.Errorf("line %d: %w", start, err)
		}
		e.Line = start
		out = append(out, span{e, lineNo})
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	if continuing && logical.Len() > 0 {
		e, err := splitEntry(logical.String())
		if err != nil {
			return out, fmt.Errorf("line %d: %w", start, err)
		}
		e.Line = start
		out = append(out, span{e, lineNo})
	}
	return out, nil
}

func latin1Fallback(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func endsWithOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// splitEntry splits one logical line (already left-trimmed, not a comment).
func splitEntry(s string) (Entry, error) {
	keyEnd := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++ // skip the escaped character
			continue
		}
		if c == '=' || c == ':' || isBlank(c) {
			keyEnd = i
			break
		}
	}
	rest := s[keyEnd:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	key, err := unescape(s[:keyEnd])
	if err != nil {
		return Entry{}, err
	}
	val, err := unescape(rest)
	if err != nil {
		return Entry{}, fmt.Errorf("key %q: %w", key, err)
	}
	return Entry{Key: key, Value: strings.TrimSpace(val)}, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			b.WriteRune(rune(v))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// escapeValue is the inverse of unescape for values written by Properties:
// backslashes are doubled and a leading blank is escaped, so that reading the
// output back yields the same value.
func escapeValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	s = strings.ReplaceAll(s, "\r", `\r`)
	return s
}
