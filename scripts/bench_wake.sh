#!/usr/bin/env bash
# Wake latency (RPUSH sent → the client blocked in BLPOP has its reply) of
# `keyferry serve` next to `redis-server`, measured in the same run by
# scripts/bench_wake.py.
#
#   scripts/bench_wake.sh [SAMPLES]        (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${1:-5000}
# shellcheck source=lib/bench_servers.sh
source scripts/lib/bench_servers.sh

echo "redis-server:   $(python3 scripts/bench_wake.py "$redis_port" "$SAMPLES")"
echo "keyferry serve: $(python3 scripts/bench_wake.py "$kf_port" "$SAMPLES")"
