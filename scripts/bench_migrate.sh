#!/usr/bin/env bash
# Migration benchmarks (issue 5), printed as one markdown table for README.
#
#   scripts/bench_migrate.sh [N]     (default 1000000; ROUNDS=k: best of k runs, default 3)
#
# 1. `cargo bench --bench migrate_bulk -- N`: bulk copy of N small string
#    keys and of N/10 mixed keys from a local redis-server, next to the raw
#    baselines (pipelined Redis reads, raw SQLite inserts of the same rows),
#    and apply-dirty throughput (see benches/migrate_bulk.rs).
# 2. Freeze: a redis-server with notify-keyspace-events KEA and 100k keys,
#    taking ~10k SETs/s spread over those keys (scripts/lib/rate_writer.py),
#    is migrated with `keyferry migrate --cutover auto --switch-cmd true`;
#    the freeze it prints is reported (target <= 1000 ms), for FREEZE_RUNS
#    migrations (default: ROUNDS) into fresh files, and the longest counts.
# 3. Peak RSS: `keyferry bulk` of one zset of 5M members (500k when N < 1M)
#    under /usr/bin/time -v (target <= 256 MB).
#
# Every redis-server runs on a free loopback port without persistence, in a
# temp dir removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
ROUNDS=${ROUNDS:-3}
FREEZE_KEYS=100000
FREEZE_RATE=10000
FREEZE_RUNS=${FREEZE_RUNS:-$ROUNDS}
if [ "$N" -ge 1000000 ]; then ZSET_MEMBERS=5000000; else ZSET_MEMBERS=500000; fi
BIN=target/release/keyferry

if ! python3 -c 'import redis' 2>/dev/null; then
    echo "the freeze test needs redis-py: pip install redis (or apt-get install python3-redis)" >&2
    exit 1
fi
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time for the peak-RSS measurement" >&2
    apt-get install -y time >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis NAME [ARGS...]: starts a redis-server; sets $port.
start_redis() {
    local name=$1
    shift
    port=$(free_port)
    mkdir -p "$work/$name"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work/$name" --logfile "$work/$name/redis.log" "$@" &
    pids+=($!)
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server ($name) did not start" >&2
    exit 1
}

# kv_resp N: N `SET key:%012d value:%012d` commands, as RESP.
kv_resp() {
    awk -v n="$1" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = sprintf("key:%012d", i); v = sprintf("value:%012d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
        }
    }'
}

# zset_resp KEY MEMBERS: ZADDs of 1000 members each, as RESP.
zset_resp() {
    awk -v key="$1" -v n="$2" 'BEGIN {
        for (s = 0; s < n; s += 1000) {
            e = s + 1000; if (e > n) e = n
            printf "*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", 2 + 2 * (e - s), length(key), key
            for (i = s; i < e; i++) {
                sc = sprintf("%d", i); m = sprintf("member:%012d", i)
                printf "$%d\r\n%s\r\n$%d\r\n%s\r\n", length(sc), sc, length(m), m
            }
        }
    }'
}

echo "== building (release)" >&2
cargo build --release --quiet
cargo bench --bench migrate_bulk --no-run --quiet 2>/dev/null || cargo bench --bench migrate_bulk --no-run

# Let the build's load settle a little (others may share the machine: the
# load averages are printed with the results).
for _ in $(seq 12); do
    awk '{ exit !($1 < 1.5) }' /proc/loadavg && break
    sleep 5
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== 1/3 bulk and apply-dirty: cargo bench --bench migrate_bulk -- $N $ROUNDS" >&2
cargo bench --quiet --bench migrate_bulk -- "$N" "$ROUNDS" | tee "$work/bench.out" >&2

echo "== 2/3 freeze under ${FREEZE_RATE} writes/s over ${FREEZE_KEYS} keys" >&2
start_redis freeze --notify-keyspace-events KEA
freeze_port=$port
kv_resp "$FREEZE_KEYS" | redis-cli -p "$freeze_port" --pipe >/dev/null
python3 scripts/lib/rate_writer.py "$freeze_port" "$FREEZE_KEYS" "$FREEZE_RATE" >"$work/writer.out" &
writer_pid=$!
pids+=("$writer_pid")
sleep 2 # the load is running before the migration starts
freeze_cmd="keyferry migrate --from redis://127.0.0.1:PORT --to DEST --cutover auto --switch-cmd true"
freezes=()
migrate_secs=()
mismatches=()
for i in $(seq "$FREEZE_RUNS"); do
    started=$(date +%s.%N)
    "$BIN" migrate --from "redis://127.0.0.1:$freeze_port" --to "$work/freeze-$i.sqlite" \
        --cutover auto --switch-cmd true >"$work/migrate-$i.out" 2>"$work/migrate-$i.err" || {
        echo "keyferry migrate failed:" >&2
        cat "$work/migrate-$i.out" "$work/migrate-$i.err" >&2
        exit 1
    }
    migrate_secs+=("$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')")
    cat "$work/migrate-$i.out" >&2
    freezes+=("$(sed -n 's/^freeze: \([0-9]*\) ms$/\1/p' "$work/migrate-$i.out")")
    mismatches+=("$(sed -n 's/.*sample mismatches: \([0-9]*\).*/\1/p' "$work/migrate-$i.out")")
done
sleep 1 # a little load after the last cutover, so the writer saw the unpause
kill -TERM "$writer_pid"
wait "$writer_pid" 2>/dev/null || true
cat "$work/writer.out" >&2
freeze_max=$(printf '%s\n' "${freezes[@]}" | sort -n | tail -1)
freeze_list=$(IFS=/; echo "${freezes[*]}")
migrate_list=$(IFS=/; echo "${migrate_secs[*]}")
mismatch_list=$(IFS=/; echo "${mismatches[*]}")
writer_rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$work/writer.out")
writer_stall=$(sed -n 's/.*max_stall_ms=\([0-9]*\).*/\1/p' "$work/writer.out")

echo "== 3/3 peak RSS: keyferry bulk of a ${ZSET_MEMBERS}-member zset" >&2
start_redis rss
rss_port=$port
zset_resp bigzset "$ZSET_MEMBERS" | redis-cli -p "$rss_port" --pipe >/dev/null
echo "   loaded: $(redis-cli -p "$rss_port" zcard bigzset) members" >&2
rss_cmd="/usr/bin/time -v keyferry bulk --run-id rss --from redis://127.0.0.1:PORT --to DEST"
started=$(date +%s.%N)
/usr/bin/time -v "$BIN" bulk --run-id rss --from "redis://127.0.0.1:$rss_port" \
    --to "$work/rss.sqlite" >"$work/rss.out" 2>"$work/rss.err" || {
    echo "keyferry bulk failed:" >&2
    cat "$work/rss.out" "$work/rss.err" >&2
    exit 1
}
rss_secs=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
cat "$work/rss.out" >&2
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$work/rss.err")
rss_bytes=$(sed -n 's/.* migrated, [0-9]* skipped, \([0-9]*\) bytes.*/\1/p' "$work/rss.out")

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
freeze_ok=$(awk -v f="${freeze_max:-999999}" 'BEGIN { print (f <= 1000) }')
rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.0f", k / 1024 }')
rss_ok=$(awk -v k="$rss_kb" 'BEGIN { print (k / 1024 <= 256) }')
rss_mbps=$(awk -v b="${rss_bytes:-0}" -v s="$rss_secs" 'BEGIN { printf "%.1f", b / 1e6 / s }')
rss_mps=$(awk -v m="$ZSET_MEMBERS" -v s="$rss_secs" 'BEGIN { printf "%.0f", m / s }')

cat <<EOF

### Migration benchmarks

\`scripts/bench_migrate.sh $N\` — $(nproc) cores, $(redis-server --version | awk '{print $3}' | tr -d 'v='), $(date -u +%F), load average ${load_before} before / ${load_after} after. Rows 1–8: \`cargo bench --bench migrate_bulk -- $N $ROUNDS\` (best of $ROUNDS); then \`$freeze_cmd\` (while \`scripts/lib/rate_writer.py\` sends ${FREEZE_RATE} SETs/s over the ${FREEZE_KEYS} keys) and \`$rss_cmd\`.

$(sed -n 's/^migrate_bulk: /Bulk: /p' "$work/bench.out")

$(grep '^|' "$work/bench.out")
| **migrate --cutover auto**: freeze, ${FREEZE_KEYS} keys, writer at ${writer_rate:-?} SETs/s (${FREEZE_RUNS} runs) | ${FREEZE_KEYS} | ${migrate_list} (whole migrate) | | | freeze ${freeze_list} ms, max ${freeze_max:-?} ms (longest client stall ${writer_stall:-?} ms; sample mismatches ${mismatch_list}) | ≤ 1000 ms ($(verdict "$freeze_ok")) |
| **keyferry bulk**: one zset of ${ZSET_MEMBERS} members | 1 | ${rss_secs} | | ${rss_mbps} | peak RSS ${rss_mb} MB (${rss_mps} members/s) | ≤ 256 MB ($(verdict "$rss_ok")) |

$(grep '^summary: ' "$work/bench.out")
EOF
