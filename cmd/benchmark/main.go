// Command benchmark measures rmqd (or any RocketMQ broker) in the spirit of
// RocketMQ's benchmark Producer and Consumer:
//
//	benchmark producer -n NAMESRV -t TOPIC -w THREADS -s SIZE -d SECONDS [--async-window N]
//	                   [--json] [--client rmqd|rocketmq-client-go] [--broker-pids PID,PID]
//	benchmark consumer -n NAMESRV -t TOPIC -g GROUP -d SECONDS [--json] [--drain]
//	benchmark probe    -n NAMESRV -t TOPIC [--timeout 20s]   # wait for a master route
//	benchmark table    FILE.json...                          # compare result files
//
// The default client is the project's own remoting client: route lookup at
// the name server, round robin over the writable queues of the masters,
// SEND_MESSAGE_V2 with a prebuilt body and header map reused per worker,
// re-resolving the route every few seconds and after errors (the master
// moves in DLedger mode). A progress line goes to stderr every second;
// the summary goes to stdout, as one JSON object with --json.
//
// Latencies go into a fixed-bucket log-linear histogram (benchkit), so
// measuring costs no allocation per message.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  benchmark producer -n NAMESRV -t TOPIC [-w THREADS] [-s SIZE] [-d SECONDS] [--async-window N]
                     [--json] [--client rmqd|rocketmq-client-go] [--broker-pids PID,PID]
  benchmark consumer -n NAMESRV -t TOPIC -g GROUP [-d SECONDS] [--json] [--drain]
  benchmark probe    -n NAMESRV -t TOPIC [--timeout 20s]
  benchmark table    FILE.json...
run "benchmark producer -h" for every flag.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "producer":
		err = runProducer(os.Args[2:])
	case "consumer":
		err = runConsumer(os.Args[2:])
	case "probe":
		err = runProbe(os.Args[2:])
	case "table":
		err = runTable(os.Stdout, os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmark:", err)
		os.Exit(1)
	}
}

// common are the flags both producer and consumer take.
type common struct {
	namesrv   string
	topic     string
	seconds   float64
	json      bool
	scenario  string
	flush     string
	timeout   time.Duration
	serialize string
	pids      pidList
	cpuprof   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.namesrv, "n", "127.0.0.1:9876", "name server address(es), ';'-separated")
	fs.StringVar(&c.topic, "t", "BenchmarkTest", "topic")
	fs.Float64Var(&c.seconds, "d", 15, "duration in seconds")
	fs.BoolVar(&c.json, "json", false, "print the summary as one JSON object on stdout")
	fs.StringVar(&c.scenario, "scenario", "", "scenario label copied into the JSON result")
	fs.StringVar(&c.flush, "flush", "", "flush mode label copied into the JSON result (ASYNC_FLUSH, SYNC_FLUSH)")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Second, "request timeout")
	fs.StringVar(&c.serialize, "serialize", "rocketmq", "header codec of the own client: rocketmq (binary) or json")
	fs.Var(&c.pids, "broker-pids", "comma-separated broker pids: report broker CPU time per message")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write this tool's own CPU profile to the file (is the client a bottleneck?)")
}

// startProfile starts the CPU profile asked for; the returned function
// stops it.
func (c *common) startProfile() (func(), error) {
	if c.cpuprof == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuprof)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func (c *common) namesrvs() []string {
	var out []string
	for _, a := range strings.FieldsFunc(c.namesrv, func(r rune) bool { return r == ';' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (c *common) check() error {
	if len(c.namesrvs()) == 0 {
		return fmt.Errorf("-n: no name server address")
	}
	if c.topic == "" {
		return fmt.Errorf("-t: empty topic")
	}
	if c.seconds <= 0 {
		return fmt.Errorf("-d must be > 0")
	}
	if c.serialize != "rocketmq" && c.serialize != "json" {
		return fmt.Errorf("--serialize must be rocketmq or json")
	}
	return nil
}

func (c *common) duration() time.Duration { return time.Duration(c.seconds * float64(time.Second)) }

// pidList is a flag.Value for "PID,PID".
type pidList []int

func (p *pidList) String() string {
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (p *pidList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad pid %q", f)
		}
		*p = append(*p, n)
	}
	return nil
}
