#!/usr/bin/env bash
# The one test command (README "Set up"): installs what the tests need when it
# is missing, then runs the format check, clippy with warnings denied, and
# every test of the workspace. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests start a real redis-server on a free loopback port; redis-cli and
# redis-benchmark are used as real clients.
# The TLS source tests make a throwaway CA with the openssl command.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null ||
    ! command -v openssl >/dev/null; then
    echo "== installing redis-server, redis-tools and openssl (Debian packages)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq redis-server redis-tools openssl >/dev/null
    # The Debian package starts a system redis on 6379; tests never use it.
    ($SUDO systemctl stop redis-server 2>/dev/null || $SUDO service redis-server stop 2>/dev/null || true) >/dev/null
fi

# A real client library (redis-py) drives `keyferry serve` end to end.
if ! python3 -c 'import redis' 2>/dev/null; then
    echo "== installing redis-py (PyPI)"
    # A Debian-managed python3 refuses plain pip installs (PEP 668); this
    # machine kind ships pyenv's, where the first form works.
    python3 -m pip install --quiet 'redis>=5,<9' ||
        python3 -m pip install --quiet --user --break-system-packages 'redis>=5,<9'
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
