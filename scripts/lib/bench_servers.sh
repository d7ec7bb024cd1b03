# Sourced by the benchmark scripts: builds keyferry (release) and starts a
# redis-server (no persistence) and a `keyferry serve` (a fresh file) on free
# loopback ports, both stopped and cleaned up when the script exits.
# Sets: work (temp dir), redis_port, kf_port.

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
