#!/usr/bin/env bash
# Throughput of `keyferry serve` next to `redis-server`, measured in the same
# run with redis-benchmark, and printed as ops/s and the ratio per command.
#
#   scripts/bench_serve.sh [REQUESTS]        (default 100000 per command)
#
# Both servers get the same pre-populated keyspace (random keys from a
# 1,000,000-key range, so the load is not one hot key) and the same load:
# 50 clients, without pipelining (-P 1) and with 16 commands per round trip
# (-P 16). redis-server runs without persistence; keyferry with its default
# durability (synchronous=NORMAL: an acknowledged write survives a crash of
# the process).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${1:-100000}
TESTS=${TESTS:-get,set,incr,lpush,hset,sadd,zadd,mset}
RANGE=1000000

cargo build --release --quiet
work=$(mktemp -d)
cleanup() {
    kill "${redis_pid:-}" "${kf_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
kf_port=$(free_port)
target/release/keyferry serve --db "$work/keyferry.sqlite" --port "$kf_port" \
    2>"$work/keyferry.log" &
kf_pid=$!
wait_for "$redis_port"
wait_for "$kf_port"

# Pre-populate both with the same kind of data: strings, and a few
# collections so lpush/hset/sadd/zadd land on existing keys too.
for port in "$redis_port" "$kf_port"; do
    redis-benchmark -p "$port" -q -c 50 -P 16 -n "$REQUESTS" -r "$RANGE" -t set,lpush,hset,sadd,zadd >/dev/null
done

# rps PORT TEST PIPELINE -> requests per second from redis-benchmark's CSV.
rps() {
    redis-benchmark -p "$1" -c 50 -P "$3" -n "$REQUESTS" -r "$RANGE" -t "$2" --csv \
        | awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }'
}

printf '%-8s %-4s %14s %14s %8s\n' command P redis-server keyferry ratio
for pipeline in 1 16; do
    for test in ${TESTS//,/ }; do
        r=$(rps "$redis_port" "$test" "$pipeline")
        k=$(rps "$kf_port" "$test" "$pipeline")
        printf '%-8s %-4s %14.0f %14.0f %8.2f\n' "$test" "$pipeline" "$r" "$k" \
            "$(awk -v k="$k" -v r="$r" 'BEGIN { print k / r }')"
    done
done
echo "(redis-benchmark -c 50 -n $REQUESTS -r $RANGE; $(nproc) cores; $(date -u +%F))"
