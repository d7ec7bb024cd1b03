#!/usr/bin/env bash
# Throughput of `keyferry serve` next to `redis-server`, measured in the same
# run with redis-benchmark, and next to raw SQLite doing each command's
# storage work without a server (`benches/serve_sqlite.rs`): ops/s and the
# ratios per command.
#
#   scripts/bench_serve.sh [REQUESTS]        (default 100000 per command)
#
# Both servers get the same pre-populated keyspace (random keys from a
# 1,000,000-key range, so the load is not one hot key) and the same load:
# 50 clients, without pipelining (-P 1) and with 16 commands per round trip
# (-P 16). redis-server runs without persistence; keyferry with its default
# durability (synchronous=NORMAL: an acknowledged write survives a crash of
# the process).
#
# A last section runs HOT_TESTS (default incr) on one key, without -r: a
# counter every client increments, the page SQLite rewrites in every
# commit.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${1:-100000}
TESTS=${TESTS:-get,set,incr,lpush,hset,sadd,zadd,mset}
HOT_TESTS=${HOT_TESTS:-incr}
RANGE=1000000

# The raw SQLite floor first, while nothing else runs: one `TEST OPS` line
# per test.
declare -A raw
while read -r test ops; do
    raw[$test]=$ops
done < <(cargo bench --quiet --bench serve_sqlite -- "$REQUESTS")

# shellcheck source=lib/bench_servers.sh
source scripts/lib/bench_servers.sh

# Pre-populate both with the same kind of data: strings, and a few
# collections so lpush/hset/sadd/zadd land on existing keys too.
for port in "$redis_port" "$kf_port"; do
    redis-benchmark -p "$port" -q -c 50 -P 16 -n "$REQUESTS" -r "$RANGE" -t set,lpush,hset,sadd,zadd >/dev/null
done

# rps PORT TEST PIPELINE [REDIS-BENCHMARK ARGS...] -> requests per second
# from redis-benchmark's CSV.
rps() {
    local port=$1 test=$2 pipeline=$3
    shift 3
    redis-benchmark -p "$port" -c 50 -P "$pipeline" -n "$REQUESTS" "$@" -t "$test" --csv \
        | awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }

printf '%-10s %-4s %14s %14s %8s %12s %10s\n' \
    command P redis-server keyferry ratio raw-sqlite kf/sqlite
for pipeline in 1 16; do
    for test in ${TESTS//,/ }; do
        r=$(rps "$redis_port" "$test" "$pipeline" -r "$RANGE")
        k=$(rps "$kf_port" "$test" "$pipeline" -r "$RANGE")
        s=${raw[$test]:-nan}
        printf '%-10s %-4s %14.0f %14.0f %8.2f %12.0f %10.2f\n' "$test" "$pipeline" \
            "$r" "$k" "$(ratio "$k" "$r")" "$s" "$(ratio "$k" "$s")"
    done
done
for test in ${HOT_TESTS//,/ }; do
    r=$(rps "$redis_port" "$test" 1)
    k=$(rps "$kf_port" "$test" 1)
    printf '%-10s %-4s %14.0f %14.0f %8.2f %12s %10s\n' "$test-1key" 1 "$r" "$k" "$(ratio "$k" "$r")" - -
done
echo "(redis-benchmark -c 50 -n $REQUESTS -r $RANGE; raw SQLite: benches/serve_sqlite.rs," \
    "20 writes per transaction; $(nproc) cores; $(date -u +%F))"
