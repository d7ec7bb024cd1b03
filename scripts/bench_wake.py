"""Wake latency of a blocked client: the time from just before a producer
sends RPUSH to the moment a client blocked in BLPOP on that key has its
reply, measured against a server on the given port.

    python3 scripts/bench_wake.py PORT [SAMPLES]

Prints p50/p99/max in microseconds, then the same for a lone RPUSH round
trip on the producer's connection after the same 0.5 ms pause with no
waiter (what a wake-up costs beyond a plain write). `scripts/bench_wake.sh` runs it against
redis-server and keyferry serve in the same run. Both connections are raw
sockets (no client library on the path); the waiter is a thread of this
process, so both timestamps come from one clock."""

import socket
import statistics
import sys
import threading
import time


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        out.append(f"${len(a)}\r\n{a}\r\n".encode())
    return b"".join(out)


def read_reply(s: socket.socket, expect_end: bytes) -> None:
    buf = b""
    while not buf.endswith(expect_end):
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk


def main() -> None:
    port = int(sys.argv[1])
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    producer, waiter = connect(port), connect(port)
    producer.sendall(encode("DEL", "wake"))
    read_reply(producer, b"\r\n")
    latencies = []
    started = threading.Event()
    sent_at = [0.0]

    def wait_loop() -> None:
        for i in range(samples):
            waiter.sendall(encode("BLPOP", "wake", "0"))
            started.set()
            read_reply(waiter, f"v{i}\r\n".encode())
            latencies.append(time.perf_counter() - sent_at[0])

    t = threading.Thread(target=wait_loop)
    t.start()
    for i in range(samples):
        started.wait()
        started.clear()
        # Give the BLPOP time to arrive and block before pushing.
        time.sleep(0.0005)
        sent_at[0] = time.perf_counter()
        producer.sendall(encode("RPUSH", "wake", f"v{i}"))
        read_reply(producer, b"\r\n")
        while len(latencies) <= i:
            time.sleep(0)
    t.join()
    lone = []
    for i in range(samples):
        time.sleep(0.0005)
        started_at = time.perf_counter()
        producer.sendall(encode("RPUSH", "lone", "v"))
        read_reply(producer, b"\r\n")
        lone.append(time.perf_counter() - started_at)
    print(f"wake {summary(latencies)}; lone RPUSH {summary(lone)}")


def summary(latencies: list) -> str:
    us = sorted(x * 1e6 for x in latencies[len(latencies) // 10 :])  # drop warm-up
    p = lambda q: us[min(len(us) - 1, int(q * len(us)))]
    return f"p50={p(0.50):.0f}us p99={p(0.99):.0f}us max={us[-1]:.0f}us mean={statistics.mean(us):.0f}us"


if __name__ == "__main__":
    main()
