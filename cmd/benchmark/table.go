package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
)

// runTable reads result files (one JSON object per line, as written by
// --json here and by bench/natsbench) and prints to w one row per
// scenario: rmqd and NATS msgs/s, their ratio, both p50/p99, and the CPU
// per message of the servers and of each side's load generator. Several
// runs of the same system and scenario are summarised by their medians.
func runTable(w io.Writer, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("table: no result files")
	}
	type key struct{ flush, scenario string }
	var order []key
	runs := map[key]map[string][]Result{}
	var consumers []Result
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var r Result
			if err := json.Unmarshal(line, &r); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if r.Mode == "consumer" {
				consumers = append(consumers, r)
				continue
			}
			k := key{r.Flush, r.Scenario}
			if runs[k] == nil {
				runs[k] = map[string][]Result{}
				order = append(order, k)
			}
			runs[k][r.System] = append(runs[k][r.System], r)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flush\tscenario\trmqd msgs/s\tNATS msgs/s\tratio\trmqd p50/p99 ms\tNATS p50/p99 ms\trmqd err\tNATS err\trmqd srv µs/msg\tNATS srv µs/msg\trmqd cli µs/msg\tNATS cli µs/msg\t")
	for _, k := range order {
		rm, rmOK := medianOf(runs[k]["rmqd"])
		na, naOK := medianOf(runs[k]["nats"])
		us := func(v float64) string {
			if v <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", v)
		}
		cell := func(ok bool, r Result) (string, string, string, string, string) {
			if !ok {
				return "-", "-", "-", "-", "-"
			}
			return fmt.Sprintf("%.0f", r.MsgsPerSec), fmt.Sprintf("%.2f/%.2f", r.P50Ms, r.P99Ms), fmt.Sprintf("%d", r.Errors),
				us(r.BrokerCPUUsPerMsg), us(r.ClientCPUUsPerMsg)
		}
		rt, rl, re, rc, rcl := cell(rmOK, rm)
		nt, nl, ne, nc, ncl := cell(naOK, na)
		ratio := "-"
		if rmOK && naOK && na.MsgsPerSec > 0 {
			ratio = fmt.Sprintf("%.2fx", rm.MsgsPerSec/na.MsgsPerSec)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k.flush, k.scenario, rt, nt, ratio, rl, nl, re, ne, rc, nc, rcl, ncl)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(consumers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "flush\tconsumer\tsystem\treceived\tmsgs/s\tMB/s\tseconds\terrors\tsrv µs/msg\t")
		for _, r := range consumers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%d\t%.1f\t\n", r.Flush, r.Scenario, r.System, r.Received,
				r.MsgsPerSec, r.MBPerSec, r.DurationSec, r.Errors, r.BrokerCPUUsPerMsg)
		}
		return tw.Flush()
	}
	return nil
}

// medianOf returns the run with the median throughput, with its p50/p99
// replaced by the medians of those columns.
func medianOf(rs []Result) (Result, bool) {
	if len(rs) == 0 {
		return Result{}, false
	}
	med := func(get func(*Result) float64) float64 {
		v := make([]float64, len(rs))
		for i := range rs {
			v[i] = get(&rs[i])
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	r := rs[0]
	r.MsgsPerSec = med(func(r *Result) float64 { return r.MsgsPerSec })
	r.P50Ms = med(func(r *Result) float64 { return r.P50Ms })
	r.P99Ms = med(func(r *Result) float64 { return r.P99Ms })
	r.BrokerCPUUsPerMsg = med(func(r *Result) float64 { return r.BrokerCPUUsPerMsg })
	r.ClientCPUUsPerMsg = med(func(r *Result) float64 { return r.ClientCPUUsPerMsg })
	var errs int64
	for _, x := range rs {
		errs += x.Errors
	}
	r.Errors = errs
	return r, true
}
