#!/usr/bin/env bash
# The long version of the migration crash test (tests/migrate_crash.rs):
# more kill -9 points on a bigger data set, release build.
#
#   scripts/crash_migrate.sh [KILLS] [KEYS_PER_DB]     (defaults: 100, 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-100}"
keys="${2:-20000}"
KEYFERRY_CRASH_KILLS="$kills" KEYFERRY_MIGRATE_KEYS="$keys" \
    cargo test --release --locked --test migrate_crash -- --nocapture 2>&1 \
    | grep -E '^kill |kills by phase|test result|panicked|differences'
