package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/store"
)

// upgradeCheck is --upgrade-check: it reports what the in-place upgrade to
// DLedger mode (store/upgrade.go) would do with cfg's store, changing
// nothing: the classic commitlog range and the divide, whether DLedger
// data exists, the consume queues' max offsets, the groups and offsets of
// config/*.json, and the classic-prefix fingerprint to compare with the
// peers' (it does not contact them).
func upgradeCheck(cfg *conf.BrokerConfig, w io.Writer) error {
	rep, err := store.InspectUpgrade(replog.StoreConfig(cfg, nil))
	if err != nil {
		return err
	}
	hasData, err := replog.HasDataFiles(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "upgrade check (read only) of %s, enableDLegerCommitLog=%v\n", cfg.StorePathRootDir, cfg.EnableDLegerCommitLog)
	fmt.Fprintf(w, "classic commitlog %s: %d files", rep.CommitLogDir, len(rep.Files))
	if len(rep.Files) > 0 {
		fmt.Fprintf(w, ", first %s, last %s", rep.Files[0], rep.Files[len(rep.Files)-1])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  records: %v, min physical offset %d, max physical offset %d\n", rep.HasRecords, rep.MinPhyOffset, rep.MaxPhyOffset)
	if rep.Torn != "" {
		fmt.Fprintf(w, "  tail: %s (recovery removes it)\n", rep.Torn)
	}
	state := "would be"
	if rep.Sealed {
		state = "recorded (sealed)"
	}
	fmt.Fprintf(w, "  dividedCommitlogOffset: %d (%s)\n", rep.Divide, state)
	if rep.Fingerprint != "" {
		fmt.Fprintf(w, "  classic prefix fingerprint: %s (every replica of the group must show the same)\n", rep.Fingerprint)
	}
	fmt.Fprintf(w, "dledger data in %s: %v\n", cfg.DLedgerDir(), hasData)
	switch {
	case hasData && rep.Sealed:
		fmt.Fprintf(w, "action: none (upgraded; classic reads below %d)\n", rep.Divide)
	case hasData && rep.HasRecords:
		fmt.Fprintf(w, "action: none possible: DLedger data exists over unsealed classic records; DLedger mode refuses this store\n")
	case hasData:
		fmt.Fprintf(w, "action: none (DLedger store)\n")
	case rep.HasRecords || rep.Sealed:
		fmt.Fprintf(w, "action: recover and seal the classic commitlog, DLedger positions start at %d\n", rep.Divide)
	default:
		fmt.Fprintf(w, "action: none (no classic records: a fresh DLedger log; in a group upgraded from classic files this replica "+
			"begins at the leader's first entry, the group's dividedCommitlogOffset, and serves only messages from there on)\n")
	}
	keys := make([]string, 0, len(rep.Queues))
	for k := range rep.Queues {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "consume queues: %d\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(w, "  %s max offset %d\n", k, rep.Queues[k])
	}
	if _, err := os.Stat(cfg.ConfigDir()); err != nil {
		fmt.Fprintf(w, "metadata %s: none\n", cfg.ConfigDir())
		return nil
	}
	meta, err := metadata.Open(metadata.Options{Dir: cfg.ConfigDir()})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "metadata %s: %d topics, %d subscription groups\n", cfg.ConfigDir(), len(meta.Topics.Names()), len(meta.Groups.Names()))
	groups := meta.Groups.Names()
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Fprintf(w, "  group %s\n", g)
	}
	offs := meta.Offsets.Table()
	okeys := make([]string, 0, len(offs))
	for k := range offs {
		okeys = append(okeys, k)
	}
	sort.Strings(okeys)
	fmt.Fprintf(w, "consumer offsets: %d topic@group entries\n", len(okeys))
	for _, k := range okeys {
		qs := make([]int, 0, len(offs[k]))
		for q := range offs[k] {
			qs = append(qs, int(q))
		}
		sort.Ints(qs)
		for _, q := range qs {
			fmt.Fprintf(w, "  %s queue %d offset %d\n", k, q, offs[k][int32(q)])
		}
	}
	delay := meta.Delay.Table()
	levels := make([]int, 0, len(delay))
	for l := range delay {
		levels = append(levels, int(l))
	}
	sort.Ints(levels)
	fmt.Fprintf(w, "delay offsets: %d levels\n", len(levels))
	for _, l := range levels {
		fmt.Fprintf(w, "  level %d offset %d\n", l, delay[int32(l)])
	}
	return nil
}
