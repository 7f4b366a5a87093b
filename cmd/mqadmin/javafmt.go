package main

// Java formatting the tables depend on: MQVersion names, UtilAll's date
// formats, frontStringAtLeast, Map.toString and the timestamp arguments
// mqadmin accepts.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// versionDesc is MQVersion.getVersionDesc: the name of the Version enum
// constant with the given ordinal (HIGHER_VERSION past the end). The enum
// is irregular up to V3_0_FINAL; after it every version has a SNAPSHOT and a
// release constant (V3_3 to V3_9 have no x.y.0), so only the head is listed.
func versionDesc(v int) string {
	head := []string{"V3_0_0_SNAPSHOT", "V3_0_0_ALPHA1", "V3_0_0_BETA1", "V3_0_0_BETA2", "V3_0_0_BETA3",
		"V3_0_0_BETA4", "V3_0_0_BETA5", "V3_0_0_BETA6_SNAPSHOT", "V3_0_0_BETA6", "V3_0_0_BETA7_SNAPSHOT",
		"V3_0_0_BETA7", "V3_0_0_BETA8_SNAPSHOT", "V3_0_0_BETA8", "V3_0_0_BETA9_SNAPSHOT", "V3_0_0_BETA9",
		"V3_0_0_FINAL"}
	pair := func(base int, name string) string {
		if (v-base)%2 == 0 {
			return name + "_SNAPSHOT"
		}
		return name
	}
	switch {
	case v < 0:
		return head[0]
	case v < len(head):
		return head[v]
	case v < 46: // V3_0_1 .. V3_0_15
		return pair(16, fmt.Sprintf("V3_0_%d", (v-16)/2+1))
	case v < 86: // V3_1_0 .. V3_2_9
		i := (v - 46) / 2
		return pair(46, fmt.Sprintf("V3_%d_%d", 1+i/10, i%10))
	case v < 212: // V3_3_1 .. V3_9_9 (no x.y.0)
		i := (v - 86) / 2
		return pair(86, fmt.Sprintf("V3_%d_%d", 3+i/9, i%9+1))
	case v < 612: // V4_0_0 .. V5_9_9
		i := (v - 212) / 2
		return pair(212, fmt.Sprintf("V%d_%d_%d", 4+i/100, (i/10)%10, i%10))
	default:
		return "HIGHER_VERSION"
	}
}

// humanTime2 is UtilAll.timeMillisToHumanString2: "yyyy-MM-dd HH:mm:ss,SSS".
func humanTime2(ms int64) string {
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05,000")
}

// formatDate is UtilAll.formatDate(date, "yyyy-MM-dd HH:mm:ss").
func formatDate(ms int64) string {
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05")
}

// frontStringAtLeast truncates s to size characters.
func frontStringAtLeast(s string, size int) string {
	r := []rune(s)
	if len(r) > size {
		return string(r[:size])
	}
	return s
}

// javaMap renders a map as Java's AbstractMap.toString does ({k=v, k2=v2});
// keys are sorted so the output is stable.
func javaMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// parseTimestamp accepts what resetOffsetByTime, printMsg and
// consumeMessage accept: "now" (when allowNow), epoch milliseconds, or
// "yyyy-MM-dd#HH:mm:ss:SSS" in local time.
func parseTimestamp(s string, allowNow bool) (int64, error) {
	if allowNow && s == "now" {
		return time.Now().UnixMilli(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	bad := usagef("bad timestamp %q: want now, epoch milliseconds or yyyy-MM-dd#HH:mm:ss:SSS", s)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return 0, bad
	}
	ms, err := strconv.Atoi(s[i+1:])
	if err != nil || ms < 0 || ms > 999 || len(s[i+1:]) != 3 {
		return 0, bad
	}
	// Go layouts only know fractions after '.' or ','.
	t, err := time.ParseInLocation("2006-01-02#15:04:05", s[:i], time.Local)
	if err != nil {
		return 0, bad
	}
	return t.UnixMilli() + int64(ms), nil
}

// parseBool is Boolean.parseBoolean: "true" in any case is true.
func parseBool(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

// parseIntOpt parses an integer option value, naming the option on failure.
func parseIntOpt(o *option) (int64, error) {
	n, err := strconv.ParseInt(o.str(), 10, 64)
	if err != nil {
		return 0, usagef("option -%s: %q is not a number", o.short, o.str())
	}
	return n, nil
}
