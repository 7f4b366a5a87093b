package main

// The command registry and flag handling. A command declares its flags in
// setup (Java commons-cli style: a one-letter name and a long name, both
// accepted as -x value / --long value) and returns the function that runs
// it. -n (name servers) and -h (help) are added to every command.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// command is one mqadmin sub-command.
type command struct {
	name string
	desc string
	// setup declares the command's flags and returns its body.
	setup func(f *flagSet) func(e *env) error
}

var registry = map[string]*command{}

// register adds c to the registry; a duplicate name is a programming error.
func register(c *command) {
	if _, dup := registry[c.name]; dup {
		panic("mqadmin: command registered twice: " + c.name)
	}
	registry[c.name] = c
}

func lookup(name string) *command { return registry[name] }

func printCommandList(w io.Writer) {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	writef(w, "The most commonly used mqadmin commands are:\n")
	for _, n := range names {
		writef(w, "   %-35s %s\n", n, registry[n].desc)
	}
	writef(w, "\nSee 'mqadmin help <command>' for more information on a specific command.\n")
}

func writef(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// option is one declared flag.
type option struct {
	short, long string
	usage       string
	hasArg      bool
	required    bool
	set         bool
	value       string
}

func (o *option) String() string { return o.value }

func (o *option) Set(v string) error {
	o.set = true
	o.value = v
	return nil
}

// IsBoolFlag makes options without an argument behave like Java's
// argument-less options (-m, -l, -a): present or not.
func (o *option) IsBoolFlag() bool { return !o.hasArg }

// has reports whether the option was given (commons-cli hasOption).
func (o *option) has() bool { return o.set }

// str is the trimmed value (commons-cli getOptionValue(...).trim()).
func (o *option) str() string { return strings.TrimSpace(o.value) }

// flagSet collects a command's options.
type flagSet struct {
	fs   *flag.FlagSet
	opts []*option
}

func (f *flagSet) add(short, long, usage string, hasArg, required bool) *option {
	o := &option{short: short, long: long, usage: usage, hasArg: hasArg, required: required}
	f.opts = append(f.opts, o)
	if short != "" {
		f.fs.Var(o, short, usage)
	}
	if long != "" && long != short {
		f.fs.Var(o, long, usage)
	}
	return o
}

// arg declares an option that takes a value.
func (f *flagSet) arg(short, long, usage string) *option {
	return f.add(short, long, usage, true, false)
}

// required declares an option that takes a value and must be given.
func (f *flagSet) required(short, long, usage string) *option {
	return f.add(short, long, usage, true, true)
}

// flag declares an option without a value.
func (f *flagSet) flag(short, long, usage string) *option {
	return f.add(short, long, usage, false, false)
}

// splitAttached rewrites commons-cli's attached form "-nHOST:PORT" into
// "-n" "HOST:PORT" for options that take a value; tokens that are option
// values, long names (-topic, --topic) and -x=value are left alone.
func (f *flagSet) splitAttached(args []string) []string {
	byShort := map[string]*option{}
	for _, o := range f.opts {
		byShort[o.short] = o
	}
	out := make([]string, 0, len(args)+2)
	skipValue := false
	for _, a := range args {
		if skipValue {
			out = append(out, a)
			skipValue = false
			continue
		}
		if a == "--" || !strings.HasPrefix(a, "-") || len(a) < 2 {
			out = append(out, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			out = append(out, a)
			continue
		}
		if o := f.fs.Lookup(name); o != nil {
			if opt, ok := o.Value.(*option); ok && opt.hasArg {
				skipValue = true
			}
			out = append(out, a)
			continue
		}
		if !strings.HasPrefix(a, "--") {
			if o, ok := byShort[a[1:2]]; ok && o.hasArg {
				out = append(out, a[:2], a[2:])
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// env is what a running command gets: its output streams, the name-server
// list and a lazily created admin client.
type env struct {
	stdout, stderr io.Writer
	namesrv        *option
	getenv         func(string) string
	adm            *admin
}

// admin returns the shared client, creating it on first use. It fails when
// no name server is configured.
func (e *env) admin() (*admin, error) {
	if e.adm != nil {
		return e.adm, nil
	}
	addrs := e.namesrv.str()
	if addrs == "" && e.getenv != nil {
		addrs = strings.TrimSpace(e.getenv("NAMESRV_ADDR"))
	}
	var list []string
	for _, a := range strings.Split(addrs, ";") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("no name server address: use -n host:port[;host:port] or set NAMESRV_ADDR")
	}
	e.adm = newAdmin(list)
	return e.adm, nil
}

func (e *env) printf(format string, args ...any) { writef(e.stdout, format, args...) }

// warnf writes a one-line warning to stderr (the command goes on).
func (e *env) warnf(format string, args ...any) {
	writef(e.stderr, "WARN: "+format+"\n", args...)
}

// usageError marks a failure caused by the command line (exit 2).
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func (c *command) newFlagSet() (*flagSet, func(e *env) error) {
	f := &flagSet{fs: flag.NewFlagSet(c.name, flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	body := c.setup(f)
	f.add("n", "namesrvAddr", "Name server address list, eg: '192.168.0.1:9876;192.168.0.2:9876'", true, false)
	f.add("h", "help", "Print help", false, false)
	return f, body
}

// printUsage prints the help as commons-cli's HelpFormatter does for Java
// mqadmin: options sorted by key, a usage line, then one line per option
// with the descriptions aligned three blanks after the longest option.
func (c *command) printUsage(w io.Writer, f *flagSet) {
	key := func(o *option) string {
		if o.short != "" {
			return strings.ToLower(o.short)
		}
		return strings.ToLower(o.long)
	}
	opts := append([]*option(nil), f.opts...)
	sort.SliceStable(opts, func(i, j int) bool { return key(opts[i]) < key(opts[j]) })
	var b strings.Builder
	b.WriteString("usage: mqadmin " + c.name)
	lefts := make([]string, len(opts))
	width := 0
	for i, o := range opts {
		s := "-" + o.short
		left := " -" + o.short
		switch {
		case o.short == "":
			s = "--" + o.long
			left = "    --" + o.long
		case o.long != "":
			left += ",--" + o.long
		}
		if o.hasArg {
			s += " <arg>"
			left += " <arg>"
		}
		if o.required {
			b.WriteString(" " + s)
		} else {
			b.WriteString(" [" + s + "]")
		}
		lefts[i] = left
		width = max(width, len(left))
	}
	writef(w, "%s\n", b.String())
	for i, o := range opts {
		writef(w, "%s%s   %s\n", lefts[i], strings.Repeat(" ", width-len(lefts[i])), o.usage)
	}
}

// execute parses args, runs the command and maps the outcome to an exit code.
func (c *command) execute(args []string, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	f, body := c.newFlagSet()
	fail := func(exit int, format string, a ...any) int {
		msg := oneLine(fmt.Sprintf(format, a...))
		writef(stderr, "mqadmin %s: %s\n", c.name, msg)
		return exit
	}
	if err := f.fs.Parse(f.splitAttached(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout, f)
			return exitOK
		}
		return fail(exitUsage, "%v (see 'mqadmin help %s')", err, c.name)
	}
	if f.fs.NArg() > 0 {
		return fail(exitUsage, "unexpected arguments %q (see 'mqadmin help %s')", f.fs.Args(), c.name)
	}
	var help, ns *option
	for _, o := range f.opts {
		switch o.short {
		case "h":
			help = o
		case "n":
			ns = o
		}
	}
	if help.has() {
		c.printUsage(stdout, f)
		return exitOK
	}
	for _, o := range f.opts {
		if o.required && (!o.has() || o.str() == "") {
			return fail(exitUsage, "missing required option: %s (see 'mqadmin help %s')", o.short, c.name)
		}
	}
	e := &env{stdout: stdout, stderr: stderr, namesrv: ns, getenv: getenv}
	defer func() {
		if e.adm != nil {
			e.adm.close()
		}
		if r := recover(); r != nil {
			if os.Getenv("MQADMIN_DEBUG") != "" {
				writef(stderr, "%s\n", debug.Stack())
			}
			code = fail(exitFail, "internal error: %v", r)
		}
	}()
	if err := body(e); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return fail(exitUsage, "%v (see 'mqadmin help %s')", err, c.name)
		}
		return fail(exitFail, "%v", err)
	}
	return exitOK
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}
