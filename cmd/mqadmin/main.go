// Command mqadmin is rmqd's operator CLI, a drop-in for RocketMQ's
// `mqadmin`: the same command names, flags, exit codes and table headers
// (ecosystem.md §1.1), so scripts that parse Java mqadmin output work
// unchanged against rmqd.
//
//	mqadmin                         list the commands
//	mqadmin help <command>          a command's flags
//	mqadmin <command> [flags]       run a command; -h prints its flags
//
// Every command that talks to the cluster takes -n "host:port;host:port"
// (name servers); without it the NAMESRV_ADDR environment variable is used.
// Commands that target brokers take -b ip:port (one broker) or -c cluster
// (every master of the cluster); -b wins when both are given.
//
// Exit status: 0 on success; 1 when the command failed (unreachable name
// server or broker, unknown topic or group, an error answer); 2 on a usage
// error (unknown command, bad or missing flag). Failures print one line on
// stderr, "mqadmin <command>: <reason>", never a stack trace.
//
// Layout: one file per command family (cluster.go, topic.go, consumer.go,
// broker.go, message.go, namesrv.go, stats.go); each registers its commands
// in init with register (registry.go). admin.go holds the remoting client
// shared by all commands, bodies.go the JSON bodies package protocol does
// not model, javafmt.go the Java formatting helpers the tables need. The
// DLedger commands (raftStatus, raftEvents, leadershipTransfer) will live in
// raft.go and register the same way.
package main

import (
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// run is main without the process: it parses args, runs one command and
// returns the exit code. getenv supplies NAMESRV_ADDR (os.Getenv in main).
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		printCommandList(stdout)
		return exitOK
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) < 2 {
			printCommandList(stdout)
			return exitOK
		}
		c := lookup(args[1])
		if c == nil {
			writef(stderr, "mqadmin: the sub command %s not exist.\n", args[1])
			return exitUsage
		}
		fs, _ := c.newFlagSet()
		c.printUsage(stdout, fs)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		writef(stderr, "mqadmin: the sub command %s not exist. Run 'mqadmin' for the list.\n", name)
		return exitUsage
	}
	return c.execute(args[1:], stdout, stderr, getenv)
}
