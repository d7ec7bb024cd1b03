#!/usr/bin/env python3
"""A steady write load for the migration benchmarks.

    rate_writer.py PORT KEYS RATE

Sends about RATE SETs per second to the redis-server on 127.0.0.1:PORT,
each to a random key among key:000000000000 .. key:<KEYS-1>, as pipelines
of 100 SETs (every 10 ms at 10k/s). It does not make up for time lost while
the server held its writes (CLIENT PAUSE): after a stall it carries on at
RATE rather than bursting. On SIGTERM or SIGINT it prints one line:

    writes=N seconds=S rate=R max_stall_ms=M

where max_stall_ms is the longest any pipeline waited for its replies
(what a client saw of the freeze).
"""

import random
import signal
import sys
import time

import redis

BATCH = 100


def main() -> None:
    port, keys, rate = (int(a) for a in sys.argv[1:4])
    interval = BATCH / rate
    client = redis.Redis(host="127.0.0.1", port=port)
    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    written = 0
    max_stall = 0.0
    started = time.monotonic()
    next_at = started
    value = b"x" * 32
    while not stop:
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.set(b"key:%012d" % random.randrange(keys), value)
        sent = time.monotonic()
        pipe.execute()
        now = time.monotonic()
        max_stall = max(max_stall, now - sent)
        written += BATCH
        next_at += interval
        if next_at < now - 1.0:
            # Held up (paused source): resume the pace, no catch-up burst.
            next_at = now
        if next_at > now:
            time.sleep(next_at - now)
    elapsed = time.monotonic() - started
    print(
        f"writes={written} seconds={elapsed:.1f} rate={written / elapsed:.0f} "
        f"max_stall_ms={max_stall * 1000:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
