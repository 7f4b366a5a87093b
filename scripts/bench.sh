#!/usr/bin/env bash
# rmqd vs NATS JetStream, side by side on this machine (`make bench`).
#
# For each flush mode (ASYNC_FLUSH, SYNC_FLUSH) it starts, on loopback:
#   - rmqd: a name server and the 3-replica DLedger group from
#     conf/dledger/broker-n{0,1,2}.conf; when that group does not come up as
#     one replicated group (a master and two slaves in the route, DLedger peer
#     ports listening, a smoke send succeeding), a single classic broker from
#     conf/broker.conf instead, and says so loudly;
#   - NATS: 3 nats-server nodes clustered on 127.0.0.1 with JetStream file
#     storage, and a stream with replicas 3 (sync_interval default for
#     ASYNC_FLUSH, `sync_interval: always` for SYNC_FLUSH);
# then runs every scenario (1, 16 and 64 synchronous producers and an async
# window of 256, BENCH_SIZE-byte bodies, BENCH_SECONDS each) alternating
# rmqd and NATS, drains the rmqd backlog with a consumer, and prints one
# table. Config copies, data and logs live in a temp dir; results (JSON, one
# file per run, and the table) go to bench/results/<UTC time>/. Everything
# started here is stopped on exit.
#
# Environment:
#   BENCH_SECONDS   seconds per run (15)
#   BENCH_SIZE      body bytes (1024)
#   BENCH_FLUSH     flush modes ("ASYNC_FLUSH SYNC_FLUSH")
#   BENCH_SCENARIOS subset of "sync1 sync16 sync64 async256"
#   BENCH_MODE      auto | dledger | classic (auto: DLedger if it works)
#   BENCH_NATS      1 to run the NATS side (1)
#   BENCH_CONSUMER  1 to drain the rmqd backlog after the producers (1)
#   BENCH_BACKLOG_MB  >0: drain a backlog of that many MB written to its own
#                   topic first (issue 8 asks for 1024), instead of what the
#                   scenarios left (0)
#   BENCH_PORT_BASE first of the loopback ports used (24000; each flush mode
#                   takes the next free 700-port slot at +1000, below 32768)
#   BENCH_KEEP      1 to keep the temp dir (data, configs, logs)
#   BENCH_PROFILE   1: brokers run with --pprof, and each rmqd run saves
#                   CPU (the middle of the run), allocs, mutex and block
#                   profiles of every broker, and the benchmark client's
#                   own CPU profile (<flush>-<scenario>-client.cpu.pb.gz),
#                   to bench/results/<time>/profiles (0; profiling costs
#                   some throughput)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_SIZE=${BENCH_SIZE:-1024}
BENCH_FLUSH=${BENCH_FLUSH:-"ASYNC_FLUSH SYNC_FLUSH"}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"sync1 sync16 sync64 async256"}
BENCH_MODE=${BENCH_MODE:-auto}
BENCH_NATS=${BENCH_NATS:-1}
BENCH_CONSUMER=${BENCH_CONSUMER:-1}
BENCH_BACKLOG_MB=${BENCH_BACKLOG_MB:-0}
BENCH_PORT_BASE=${BENCH_PORT_BASE:-24000}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_PROFILE=${BENCH_PROFILE:-0}
NATS_VERSION=v2.15.2
GO=${GO:-go}

# Ports of port slot k (0, 1, ...) start at BENCH_PORT_BASE + 1000*k:
# the rmqd remoting server does not set SO_REUSEADDR, so a port a stopped
# broker used stays unusable while its connections sit in TIME_WAIT.
set_ports() { # k
	BASE=$((BENCH_PORT_BASE + 1000 * $1))
	NS_PORT=$((BASE + 76))
	CLASSIC_PORT=$((BASE + 111))  # VIP channel at port-2
	DLEDGER_PORT0=$((BASE + 211)) # n0, n1, n2 at +0, +10, +20 (VIP at -2)
	PEER_PORT0=$((BASE + 311))    # DLedger peer ports n0..n2
	NATS_PORT0=$((BASE + 422))    # client ports n0..n2
	NATS_ROUTE0=$((BASE + 622))   # cluster ports n0..n2
	PPROF_PORT0=$((BASE + 511))   # --pprof of n0..n2 (BENCH_PROFILE=1)
	NS_ADDR=127.0.0.1:$NS_PORT
}
RUN_TIMEOUT=$((${BENCH_SECONDS%.*} + 90))

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rmqd-bench.XXXXXX")
RESULTS=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS/logs"
PIDS=()

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# stop_pids PID...: SIGTERM, up to 10 s, then SIGKILL.
stop_pids() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#PIDS[@]})); then stop_pids "${PIDS[@]}"; fi
	if [[ $BENCH_KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG COMMAND...: runs a process in the background, records its pid.
LAST_PID=
start() {
	local name=$1 logf=$2; shift 2
	"$@" >"$logf" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	log "started $name (pid $LAST_PID)"
}

# forget PID...: drop stopped pids from PIDS.
forget() {
	local keep=() p q drop
	for p in "${PIDS[@]}"; do
		drop=0
		for q in "$@"; do [[ $p == "$q" ]] && drop=1; done
		((drop)) || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# port_free PORT: nothing listens on it and no socket (TIME_WAIT included) uses it.
port_free() {
	if command -v ss >/dev/null; then
		[[ -z $(ss -Htan "sport = :$1" 2>/dev/null) ]]
	else
		! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port pid
	for _ in $(seq 1 150); do
		if listening "$1"; then return 0; fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# set_prop FILE KEY VALUE: replace or append key=value in a properties file.
set_prop() {
	if grep -qE "^[[:space:]]*$2[[:space:]]*[=:]" "$1"; then
		sed -i -E "s|^[[:space:]]*$2[[:space:]]*[=:].*|$2=$3|" "$1"
	else
		printf '%s=%s\n' "$2" "$3" >>"$1"
	fi
}

prop() { sed -n -E "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*//p" "$2" | tail -1 | tr -d '[:space:]'; }

# ---------------------------------------------------------------------------
# Build

log "building bin/ (make build) and the NATS side"
make --no-print-directory build >/dev/null
BENCHMARK=$ROOT/bin/benchmark
[[ -x $BENCHMARK ]] || die "bin/benchmark missing after make build"
if [[ $BENCH_NATS == 1 ]]; then
	NATS_SERVER=$ROOT/bench/bin/nats-server
	if [[ ! -x $NATS_SERVER ]] || ! "$NATS_SERVER" --version 2>/dev/null | grep -q "${NATS_VERSION#v}"; then
		log "installing nats-server $NATS_VERSION into bench/bin (go install from the module proxy)"
		GOBIN=$ROOT/bench/bin GOFLAGS=-mod=mod $GO install "github.com/nats-io/nats-server/v2@$NATS_VERSION"
	fi
	(cd bench/natsbench && $GO build -o "$ROOT/bench/bin/natsbench" .)
	NATSBENCH=$ROOT/bench/bin/natsbench
fi

check_ports() {
	local p
	for p in $PPROF_PORT0 $((PPROF_PORT0 + 1)) $((PPROF_PORT0 + 2)) $NS_PORT $CLASSIC_PORT $((CLASSIC_PORT - 2)) \
		$DLEDGER_PORT0 $((DLEDGER_PORT0 + 10)) $((DLEDGER_PORT0 + 20)) $((DLEDGER_PORT0 - 2)) $((DLEDGER_PORT0 + 8)) $((DLEDGER_PORT0 + 18)) \
		$PEER_PORT0 $((PEER_PORT0 + 1)) $((PEER_PORT0 + 2)) \
		$NATS_PORT0 $((NATS_PORT0 + 1)) $((NATS_PORT0 + 2)) $NATS_ROUTE0 $((NATS_ROUTE0 + 1)) $((NATS_ROUTE0 + 2)); do
		port_free "$p" || { log "port $p is in use (or in TIME_WAIT)"; return 1; }
	done
}

# next_ports: the next slot whose ports are all free (a run right after
# another finds the last one's ports in TIME_WAIT for a minute).
SLOT=0
next_ports() {
	local tries
	for tries in $(seq 1 8); do
		set_ports $SLOT
		SLOT=$((SLOT + 1))
		if check_ports; then return 0; fi
		((BENCH_PORT_BASE + 1000 * SLOT + 700 < 32768)) || break # stay below the ephemeral range
	done
	die "no free port range from BENCH_PORT_BASE=$BENCH_PORT_BASE (tried $tries); set it to a free range"
}

# ---------------------------------------------------------------------------
# rmqd

RMQD_PIDS=() # brokers
NS_PIDS=()
BROKER_PIDS=

start_namesrv() { # dir
	local c=$1/namesrv.conf
	cp conf/namesrv.conf "$c"
	set_prop "$c" listenPort "$NS_PORT"
	set_prop "$c" kvConfigPath "$1/namesrv/kvConfig.json"
	set_prop "$c" configStorePath "$1/namesrv/namesrv.properties"
	start namesrv "$1/namesrv.log" bin/namesrv -c "$c"
	NS_PIDS+=("$LAST_PID")
	wait_port "$NS_PORT" "$LAST_PID" || die "name server did not listen on $NS_PORT; see $1/namesrv.log"
}

stop_brokers() {
	if ((${#RMQD_PIDS[@]})); then
		stop_pids "${RMQD_PIDS[@]}"
		forget "${RMQD_PIDS[@]}"
	fi
	RMQD_PIDS=()
	BROKER_PIDS=
}

stop_rmqd() {
	stop_brokers
	if ((${#NS_PIDS[@]})); then
		stop_pids "${NS_PIDS[@]}"
		forget "${NS_PIDS[@]}"
	fi
	NS_PIDS=()
}

# start_dledger DIR FLUSH: the 3-replica group; returns non-zero (and stops
# it) when it does not work as one.
start_dledger() {
	local dir=$1 flush=$2 n c peers="" ids=() pids=() group
	for n in 0 1 2; do
		ids+=("$(prop dLegerSelfId "conf/dledger/broker-n$n.conf")")
	done
	for n in 0 1 2; do peers+="${peers:+;}${ids[$n]}-127.0.0.1:$((PEER_PORT0 + n))"; done
	for n in 0 1 2; do
		c=$dir/broker-n$n.conf
		cp "conf/dledger/broker-n$n.conf" "$c"
		set_prop "$c" listenPort $((DLEDGER_PORT0 + 10 * n))
		set_prop "$c" namesrvAddr "$NS_ADDR"
		set_prop "$c" storePathRootDir "$dir/n$n"
		set_prop "$c" dLegerPeers "$peers"
		set_prop "$c" flushDiskType "$flush"
		local pprof=()
		[[ $BENCH_PROFILE == 1 ]] && pprof=(--pprof "127.0.0.1:$((PPROF_PORT0 + n))")
		start "broker-n$n" "$dir/broker-n$n.log" bin/broker -c "$c" "${pprof[@]}"
		RMQD_PIDS+=("$LAST_PID")
		pids+=("$LAST_PID")
	done
	group=$(prop brokerName "$dir/broker-n0.conf")
	for n in 0 1 2; do
		if ! wait_port $((DLEDGER_PORT0 + 10 * n)) "${pids[$n]}"; then
			log "DLedger: broker-n$n did not start (see its log below)"; tail -5 "$dir/broker-n$n.log" >&2 || true
			return 1
		fi
	done
	for n in 0 1 2; do
		if ! listening $((PEER_PORT0 + n)); then
			log "DLedger: nothing listens on peer port $((PEER_PORT0 + n)) of broker-n$n: the broker does not run DLedger yet"
			return 1
		fi
	done
	if ! "$BENCHMARK" probe -n "$NS_ADDR" -t "$group" --min-brokers 3 --timeout 30s >"$dir/probe.txt" 2>&1; then
		log "DLedger: no master with two slaves registered for $group: $(tail -1 "$dir/probe.txt")"
		return 1
	fi
	if ! smoke "$dir"; then return 1; fi
	BROKER_PIDS=$(IFS=,; echo "${pids[*]}")
	return 0
}

start_classic() { # dir flush
	local dir=$1 flush=$2 c
	c=$dir/broker.conf
	cp conf/broker.conf "$c"
	set_prop "$c" listenPort "$CLASSIC_PORT"
	set_prop "$c" namesrvAddr "$NS_ADDR"
	set_prop "$c" storePathRootDir "$dir/broker-a"
	set_prop "$c" flushDiskType "$flush"
	start broker "$dir/broker.log" bin/broker -c "$c"
	RMQD_PIDS+=("$LAST_PID")
	BROKER_PIDS=$LAST_PID
	wait_port "$CLASSIC_PORT" "$LAST_PID" || die "classic broker did not listen; see $dir/broker.log"
	"$BENCHMARK" probe -n "$NS_ADDR" -t "$(prop brokerName "$c")" --timeout 30s >/dev/null ||
		die "classic broker did not register with the name server; see $dir/broker.log"
	smoke "$dir" || die "classic broker fails a smoke send; see $dir/broker.log"
}

smoke() { # dir: one second of sends must succeed without errors
	local out
	out=$(timeout 60 "$BENCHMARK" producer -n "$NS_ADDR" -t BenchSmoke -w 1 -s 64 -d 1 --json 2>"$1/smoke.log") || return 1
	[[ $out =~ \"errors\":0, && ! $out =~ \"sent\":0, ]] || { log "smoke send: $out"; return 1; }
}

MODE=
MODES= # "FLUSH=mode ..." for the table header
start_rmqd() { # flush
	local dir=$TMP/rmqd-$1
	mkdir -p "$dir"
	start_namesrv "$dir"
	if [[ $BENCH_MODE != classic && $MODE != classic ]]; then
		if start_dledger "$dir" "$1"; then
			MODE=dledger
			log "rmqd: 3-replica DLedger group up ($1), brokers $BROKER_PIDS"
			return
		fi
		stop_brokers # the name server stays: its port would sit in TIME_WAIT
		[[ $BENCH_MODE == dledger ]] && die "BENCH_MODE=dledger but the DLedger group does not work"
		MODE=classic
		log "************************************************************************"
		log "* DLedger mode is not available yet: benchmarking a CLASSIC single     *"
		log "* broker from conf/broker.conf (no replication) instead.               *"
		log "************************************************************************"
		rm -rf "$dir"/n[012]
	fi
	MODE=classic
	start_classic "$dir" "$1"
	log "rmqd: classic single broker up ($1), pid $BROKER_PIDS"
}

# ---------------------------------------------------------------------------
# NATS

NATS_PIDS=()
NATS_URLS=
start_nats() { # flush
	local dir=$TMP/nats-$1 n c routes sync=""
	mkdir -p "$dir"
	[[ $1 == SYNC_FLUSH ]] && sync="sync_interval: always"
	NATS_URLS=
	for n in 0 1 2; do
		routes=""
		for m in 0 1 2; do
			((m == n)) || routes+="${routes:+, }nats-route://127.0.0.1:$((NATS_ROUTE0 + m))"
		done
		c=$dir/n$n.conf
		cat >"$c" <<-EOF
			server_name: n$n
			listen: 127.0.0.1:$((NATS_PORT0 + n))
			jetstream {
			  store_dir: "$dir/n$n"
			  max_file_store: 64G
			  max_memory_store: 1G
			  $sync
			}
			cluster {
			  name: natsbench
			  listen: 127.0.0.1:$((NATS_ROUTE0 + n))
			  routes: [$routes]
			}
		EOF
		start "nats-n$n" "$dir/n$n.log" "$NATS_SERVER" -c "$c"
		NATS_PIDS+=("$LAST_PID")
		NATS_URLS+="${NATS_URLS:+,}nats://127.0.0.1:$((NATS_PORT0 + n))"
	done
	for n in 0 1 2; do
		wait_port $((NATS_PORT0 + n)) "${NATS_PIDS[$n]}" || die "nats-server n$n did not listen; see $dir/n$n.log"
	done
	log "NATS: 3-node JetStream cluster up ($1${sync:+, $sync}), pids $(IFS=,; echo "${NATS_PIDS[*]}")"
}

stop_nats() {
	if ((${#NATS_PIDS[@]})); then
		stop_pids "${NATS_PIDS[@]}"
		forget "${NATS_PIDS[@]}"
	fi
	NATS_PIDS=()
}

# ---------------------------------------------------------------------------
# Runs

scenario_args() {
	case $1 in
	sync1) echo "-w 1" ;;
	sync16) echo "-w 16" ;;
	sync64) echo "-w 64" ;;
	async256) echo "-w 1 --async-window 256" ;;
	*) die "unknown scenario $1" ;;
	esac
}

summary() { # json file
	local j
	j=$(cat "$1")
	printf '%s msgs/s, p50 %s ms, p99 %s ms, errors %s' \
		"$(sed -E 's/.*"msgs_per_sec":([0-9]+).*/\1/' <<<"$j")" \
		"$(sed -E 's/.*"p50_ms":([0-9.]+).*/\1/' <<<"$j")" \
		"$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$j")" \
		"$(sed -E 's/.*"errors":([0-9]+).*/\1/' <<<"$j")"
}

TABLE_FILES=() # in run order: the table keeps it

# profile_brokers FLUSH SCENARIO: in the background, a CPU profile of each
# DLedger broker over the middle of the run, then its allocs, mutex and
# block profiles (cumulative since start; diff them with pprof -base).
PROFILE_PIDS=()
profile_brokers() {
	[[ $BENCH_PROFILE == 1 && $MODE == dledger ]] || return 0
	local n secs=$(( ${BENCH_SECONDS%.*} > 4 ? ${BENCH_SECONDS%.*} - 3 : 1 )) dir=$RESULTS/profiles p
	mkdir -p "$dir"
	for n in 0 1 2; do
		(
			u=http://127.0.0.1:$((PPROF_PORT0 + n))/debug/pprof
			sleep 1
			curl -sf -o "$dir/$1-$2-n$n.cpu.pb.gz" "$u/profile?seconds=$secs"
			for p in allocs mutex block; do curl -sf -o "$dir/$1-$2-n$n.$p.pb.gz" "$u/$p"; done
		) &
		PROFILE_PIDS+=("$!")
	done
}

run_rmqd() { # flush scenario
	local out=$RESULTS/$1-$2-rmqd.json cprof=()
	PROFILE_PIDS=()
	profile_brokers "$1" "$2"
	if [[ $BENCH_PROFILE == 1 ]]; then
		mkdir -p "$RESULTS/profiles"
		cprof=(--cpuprofile "$RESULTS/profiles/$1-$2-client.cpu.pb.gz")
	fi
	# shellcheck disable=SC2046
	timeout "$RUN_TIMEOUT" "$BENCHMARK" producer -n "$NS_ADDR" -t "Bench_$1" -s "$BENCH_SIZE" -d "$BENCH_SECONDS" \
		$(scenario_args "$2") --json --scenario "$2" --flush "$1" --broker-pids "$BROKER_PIDS" "${cprof[@]}" \
		>"$out" 2>"$RESULTS/logs/$1-$2-rmqd.log" || { log "rmqd $1 $2 failed; see $RESULTS/logs"; return 0; }
	if ((${#PROFILE_PIDS[@]})); then wait "${PROFILE_PIDS[@]}" || log "some profiles of $1 $2 failed"; fi
	TABLE_FILES+=("$out")
	log "rmqd ($MODE) $1 $2: $(summary "$out")"
}

run_nats() { # flush scenario
	local out=$RESULTS/$1-$2-nats.json
	# shellcheck disable=SC2046
	timeout "$RUN_TIMEOUT" "$NATSBENCH" --server "$NATS_URLS" --stream "BENCH_$1" --subject "bench$1.x" --replicas 3 \
		-s "$BENCH_SIZE" -d "$BENCH_SECONDS" $(scenario_args "$2") --json --scenario "$2" --flush "$1" \
		--server-pids "$(IFS=,; echo "${NATS_PIDS[*]}")" \
		>"$out" 2>"$RESULTS/logs/$1-$2-nats.log" || { log "NATS $1 $2 failed; see $RESULTS/logs"; return 0; }
	TABLE_FILES+=("$out")
	log "NATS R3 $1 $2: $(summary "$out")"
}

run_drain() { # flush
	local out=$RESULTS/$1-drain-rmqd-consumer.json topic=Bench_$1 label=drain n
	if ((BENCH_BACKLOG_MB > 0)); then
		topic=Bench_backlog_$1
		label=drain${BENCH_BACKLOG_MB}MB
		n=$((BENCH_BACKLOG_MB * 1024 * 1024 / BENCH_SIZE))
		log "rmqd: writing a backlog of $BENCH_BACKLOG_MB MB ($n messages) to $topic"
		timeout 1900 "$BENCHMARK" producer -n "$NS_ADDR" -t "$topic" -s "$BENCH_SIZE" -d 1800 -w 4 --async-window 64 \
			--max-msgs "$n" --json --scenario backlog --flush "$1" >"$RESULTS/$1-backlog-rmqd-fill.json" \
			2>"$RESULTS/logs/$1-backlog.log" || { log "rmqd backlog $1 failed"; return 0; }
		log "rmqd: backlog written at $(sed -E 's/.*"msgs_per_sec":([0-9]+).*/\1/' "$RESULTS/$1-backlog-rmqd-fill.json") msgs/s"
	fi
	timeout 1900 "$BENCHMARK" consumer -n "$NS_ADDR" -t "$topic" -g "bench_drain_$1" -d 1800 --drain \
		--json --scenario "$label" --flush "$1" --broker-pids "$BROKER_PIDS" \
		>"$out" 2>"$RESULTS/logs/$1-drain.log" || { log "rmqd drain $1 failed"; return 0; }
	TABLE_FILES+=("$out")
	log "rmqd ($MODE) $1 drain backlog: $(sed -E 's/.*"received":([0-9]+).*/\1/' "$out") msgs at $(sed -E 's/.*"msgs_per_sec":([0-9]+).*/\1/' "$out") msgs/s, $(sed -E 's/.*"mb_per_sec":([0-9]+).*/\1/' "$out") MB/s"
}

log "results in $RESULTS, temp dir $TMP, $BENCH_SECONDS s per run"
for flush in $BENCH_FLUSH; do
	next_ports
	start_rmqd "$flush"
	MODES+=" $flush=$MODE"
	[[ $BENCH_NATS == 1 ]] && start_nats "$flush"
	for sc in $BENCH_SCENARIOS; do
		run_rmqd "$flush" "$sc"
		[[ $BENCH_NATS == 1 ]] && run_nats "$flush" "$sc"
	done
	[[ $BENCH_CONSUMER == 1 ]] && run_drain "$flush"
	stop_rmqd
	stop_nats
	rm -rf "$TMP/rmqd-$flush" "$TMP/nats-$flush"
done

{
	for m in $MODES; do
		case ${m#*=} in
		dledger) echo "rmqd ${m%=*}: 3-replica DLedger group (conf/dledger/broker-n{0,1,2}.conf)" ;;
		*) echo "rmqd ${m%=*}: CLASSIC single broker (conf/broker.conf) -- DLedger mode not available yet: no replication, NOT comparable with NATS R3" ;;
		esac
	done
	[[ $BENCH_NATS == 1 ]] && echo "NATS: nats-server $NATS_VERSION, 3 nodes, JetStream file storage, stream replicas 3"
	echo "$BENCH_SIZE-byte bodies, $BENCH_SECONDS s per run, $(nproc) cores; p50/p99 are send RT (request to ack) in ms"
	echo
	if ((${#TABLE_FILES[@]})); then "$BENCHMARK" table "${TABLE_FILES[@]}"; else echo "no run succeeded"; fi
} | tee "$RESULTS/table.txt"
log "results: $RESULTS"
