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

# shellcheck source=lib/bench_servers.sh
source scripts/lib/bench_servers.sh

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
