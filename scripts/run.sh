#!/usr/bin/env bash
# Starts (or stops) a local rmqd: one name server and a 3-replica DLedger
# broker group on loopback, from conf/namesrv.conf and
# conf/dledger/broker-n{0,1,2}.conf. Data, logs and pid files go to ./run
# (ignored by git). Used by `make run` / `make stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=run
mkdir -p "$RUN/logs"

start_one() { # name, command...
	local name=$1; shift
	if [[ -f $RUN/$name.pid ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
		echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return
	fi
	nohup "$@" >"$RUN/logs/$name.out" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

wait_port() { # host:port
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on $1 after 10 s; see $RUN/logs/" >&2; return 1
}

prop() { sed -n "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*//p" "$2" | tail -1 | tr -d '[:space:]'; }

case "${1:-start}" in
start)
	start_one namesrv bin/namesrv -c conf/namesrv.conf
	ns_port=$(prop listenPort conf/namesrv.conf); ns_port=${ns_port:-9876}
	wait_port "127.0.0.1:$ns_port"
	echo "namesrv   listens on 127.0.0.1:$ns_port   log $RUN/logs/namesrv.out"
	for n in 0 1 2; do
		c=conf/dledger/broker-n$n.conf
		start_one broker-n$n bin/broker -c "$c"
	done
	for n in 0 1 2; do
		c=conf/dledger/broker-n$n.conf
		p=$(prop listenPort "$c")
		wait_port "127.0.0.1:$p"
		echo "broker-n$n listens on 127.0.0.1:$p (peer $(prop dLegerPeers "$c" | tr ';' '\n' | grep "^n$n-" | cut -d- -f2))   log $RUN/logs/broker-n$n.out   data $(prop storePathRootDir "$c")"
	done
	echo "try:  bin/mqadmin clusterList -n 127.0.0.1:$ns_port     stop with:  make stop"
	;;
stop)
	for name in broker-n0 broker-n1 broker-n2 namesrv; do
		if [[ -f $RUN/$name.pid ]]; then
			kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
			rm -f "$RUN/$name.pid"
			echo "stopped $name"
		fi
	done
	;;
*)
	echo "usage: $0 start|stop" >&2; exit 2;;
esac
