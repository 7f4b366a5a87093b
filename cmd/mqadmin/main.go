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
// Commands and the request codes they send (protocol.md §9.2):
//
//	clusterList            106 (name server), 28 per broker
//	updateTopic            17 (-c: 106 first); -o true also 101/100 ORDER_TOPIC_CONFIG
//	topicList              206 (-c: 106, per topic 105 and 300)
//	topicRoute             105
//	topicStatus            105, 202 per broker group
//	deleteTopic            106, 215 per master, 216 per name server
//	updateTopicPerm        105, 17 (-c: 106)
//	consumerProgress       105 %RETRY%group, 208; -s true: 203, 307; no -g: 206, 208, 203
//	consumerConnection     105 %RETRY%group, 203
//	updateSubGroup         200 (-c: 106)
//	deleteSubGroup         207 (-c: 106, then 215/216 for the retry and DLQ topics)
//	resetOffsetByTime      105, 222; on 206 CONSUMER_NOT_ONLINE: 208 (202), 29/30, 15
//	brokerConsumeStats     317
//	brokerStatus           28 (-c: 106)
//	getBrokerConfig        26 (-c: 106)
//	updateBrokerConfig     25 (-c: 106)
//	queryMsgById           33 (offset id) else 105 + 12; -g -d: 307, 309; -s: 10
//	queryMsgByKey          105, 12
//	queryMsgByUniqueKey    105, 12; -g -d: 307, 309
//	queryMsgByOffset       105, 11
//	printMsg, consumeMessage  105, 31, 30 (29 with time bounds), 11
//	sendMessage            105 (TBW102's route when the topic has none), 10
//	statsAll               206, 105, 300, 315, 208
//	producerConnection     105, 204
//	wipeWritePerm/addWritePerm  205/327 to every name server of -n
//	getNamesrvConfig       319 to every name server of -n
//	raftStatus             2102 (-c: 106, every replica) — rmqd DLedger mode
//	raftEvents             2101 (-c: 106, every replica; -s sinceSeq, -l limit)
//	leadershipTransfer     2103 to the leader -b (-t n1); alias transferLeadership
//
// Output follows RocketMQ's tools byte for byte where scripts read it (the
// table headers and rows use Java's printf formats). Where Java's output
// depends on hash order, rmqd sorts (Map.toString by key, queues by
// MessageQueue order) or keeps the server's order (config properties);
// topicRoute prints fastjson's pretty layout with quoted integer keys (valid
// JSON). Unlike Java, a failed command exits non-zero with one line on
// stderr; warnings (a broker that does not answer one of several requests)
// go to stderr as "WARN: ..." lines. Body charsets (-c, -f) are accepted
// and bodies are printed as UTF-8.
//
// Layout: one file per command family (cluster.go, topic.go, consumer.go,
// broker.go, message.go, pull.go, send.go, namesrv.go, stats.go); each
// registers its commands in init with register (registry.go). admin.go holds the remoting client
// shared by all commands, bodies.go the JSON bodies package protocol does
// not model, javafmt.go the Java formatting helpers the tables need, raft.go
// the DLedger commands (raftStatus, raftEvents, leadershipTransfer).
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
