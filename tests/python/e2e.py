"""redis-py against a server given as argv[1] (port): plain commands,
pipelines, MULTI/EXEC with WATCH, pub/sub, in RESP2 and RESP3.

Prints one line per check and exits non-zero on the first failure."""

import sys
import time

import redis


def run(port: int, protocol: int) -> None:
    r = redis.Redis(port=port, protocol=protocol)
    other = redis.Redis(port=port, protocol=protocol)
    r.flushall()
    assert r.ping() is True
    assert r.set("greeting", b"hello\r\n\x00") is True
    assert r.get("greeting") == b"hello\r\n\x00"
    assert r.incr("counter") == 1

    # A transaction pipeline: MULTI/EXEC, a failing command inside it
    # answers its error without undoing the others.
    with r.pipeline(transaction=True) as p:
        p.incr("counter").lpush("greeting", "x").get("counter")
        results = p.execute(raise_on_error=False)
    assert results[0] == 2, results
    assert isinstance(results[1], redis.ResponseError), results
    assert results[2] == b"2", results

    # WATCH: a change by another client aborts the transaction.
    with r.pipeline() as p:
        p.watch("counter")
        other.incr("counter")
        p.multi()
        p.set("counter", 100)
        try:
            p.execute()
            raise AssertionError("EXEC should have been aborted")
        except redis.WatchError:
            pass
    assert r.get("counter") == b"3"

    # A non-transactional pipeline sees its own writes.
    with r.pipeline(transaction=False) as p:
        for _ in range(100):
            p.incr("piped").get("piped")
        replies = p.execute()
    assert replies[-1] == b"100", replies[-2:]

    # Pub/sub.
    sub = r.pubsub()
    sub.subscribe("news")
    sub.psubscribe("n*")
    deadline = time.time() + 5
    confirmations = 0
    while confirmations < 2 and time.time() < deadline:
        if sub.get_message(timeout=1.0):
            confirmations += 1
    assert other.publish("news", "flash") == 2
    got = []
    while len(got) < 2 and time.time() < deadline:
        message = sub.get_message(timeout=1.0)
        if message:
            got.append((message["type"], message["data"]))
    assert sorted(got) == [("message", b"flash"), ("pmessage", b"flash")], got
    sub.close()
    print(f"RESP{protocol} ok")


if __name__ == "__main__":
    port = int(sys.argv[1])
    run(port, 2)
    run(port, 3)
