package test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/rmqd/rmqd"

// allowed lists, per package of ours (by prefix, relative to the module), the
// packages of ours and the third-party modules it may import directly
// (design.md §7, style.md Part 2 (b)). The standard library is always allowed.
// A package not listed here fails the test: add it with its arrows on purpose.
var allowed = []struct {
	pkg   string // relative path; "x/" matches x and everything under it
	ours  []string
	third []string
}{
	{pkg: "internal/vfs", ours: nil},
	{pkg: "internal/clock", ours: nil},
	{pkg: "internal/logging", ours: nil, third: []string{"go.uber.org/zap"}},
	{pkg: "dledger/", ours: []string{"dledger/", "internal/vfs", "internal/clock"}, third: []string{"go.uber.org/zap"}},
	{pkg: "remoting/", ours: []string{"remoting/"}, third: []string{"github.com/panjf2000/gnet/v2", "github.com/tidwall/gjson", "go.uber.org/zap"}},
	{pkg: "protocol/", ours: []string{"protocol/", "remoting"}, third: []string{"github.com/tidwall/gjson"}},
	{pkg: "dledgernet/", ours: []string{"dledgernet/", "dledger/", "remoting/"}, third: []string{"go.uber.org/zap"}},
	{pkg: "store/", ours: []string{"store/", "internal/vfs"}, third: []string{"go.uber.org/zap"}},
	{pkg: "metadata/", ours: []string{"metadata/", "internal/vfs"}, third: []string{"go.uber.org/zap", "github.com/tidwall/gjson"}},
	{pkg: "broker/", ours: []string{"broker/", "store/", "metadata/", "protocol/", "remoting/", "conf", "internal/vfs"}, third: []string{"go.uber.org/zap", "github.com/tidwall/gjson"}},
	{pkg: "namesrv/", ours: []string{"namesrv/", "protocol/", "remoting/", "internal/vfs"}, third: []string{"go.uber.org/zap", "github.com/tidwall/gjson"}},
	{pkg: "conf", ours: nil, third: []string{"github.com/spf13/viper"}},
	{pkg: "cmd/", ours: []string{""}, third: []string{""}},
	{pkg: "test/", ours: []string{""}, third: []string{""}},
}

func matches(pattern, rel string) bool {
	if strings.HasSuffix(pattern, "/") {
		base := strings.TrimSuffix(pattern, "/")
		return rel == base || strings.HasPrefix(rel, pattern)
	}
	return rel == pattern || pattern == ""
}

// TestArchitecture fails on any import that goes against the dependency
// direction of design.md §7: remoting knows nothing of brokers, dledger
// nothing of RocketMQ, only conf imports viper, and so on.
func TestArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		rule := -1
		for i, a := range allowed {
			if matches(a.pkg, rel) {
				rule = i
				break
			}
		}
		if rule < 0 {
			t.Errorf("package %s has no dependency rule in test/arch_test.go", rel)
			continue
		}
		a := allowed[rule]
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, module) {
				irel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
				ok := false
				for _, o := range a.ours {
					if matches(o, irel) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s must not import %s (design.md §7)", rel, irel)
				}
				continue
			}
			first, _, _ := strings.Cut(imp, "/")
			if !strings.Contains(first, ".") { // standard library
				continue
			}
			ok := false
			for _, th := range a.third {
				if th == "" || imp == th || strings.HasPrefix(imp, th+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s must not import %s", rel, imp)
			}
		}
	}
}

func TestArchMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, rel string
		want         bool
	}{
		{"dledger/", "dledger", true},
		{"dledger/", "dledger/logstore", true},
		{"dledger/", "dledgernet", false},
		{"conf", "conf", true},
		{"conf", "conf/x", false},
		{"", "anything", true},
	} {
		if got := matches(c.pattern, c.rel); got != c.want {
			t.Errorf("matches(%q, %q) = %v", c.pattern, c.rel, got)
		}
	}
}
