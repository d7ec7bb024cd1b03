"""A job queue over redis-py with real worker processes, against a server
given as argv[1] (port); argv[2] is the number of jobs.

A producer pushes the jobs; two workers take them with BRPOP (the simple
pattern) and two with BLMOVE into a per-worker processing list (the
reliable pattern: a job leaves its processing list only once done). A
fifth worker takes one job with BLMOVE and is killed with SIGKILL while
"working" on it; its processing list is then drained back into the queue,
as a reaper does, and the job is done by another worker. At the end every
job was done exactly once and every list is empty.

Prints "ok" and exits zero on success."""

import os
import signal
import subprocess
import sys
import time

import redis

QUEUE = "jobs"
DONE = "done"  # hash: job -> times done


def worker(port: int, name: str, reliable: bool) -> None:
    r = redis.Redis(port=port)
    processing = f"processing:{name}"
    while True:
        if reliable:
            job = r.blmove(QUEUE, processing, 5, "RIGHT", "LEFT")
        else:
            popped = r.brpop([QUEUE], 5)
            job = popped[1] if popped else None
        if job is None:
            continue
        if job == b"stop":
            if reliable:
                r.lrem(processing, 1, job)
            return
        r.hincrby(DONE, job, 1)
        if reliable:
            r.lrem(processing, 1, job)


def crasher(port: int) -> None:
    r = redis.Redis(port=port)
    r.blmove(QUEUE, "processing:crasher", 0, "RIGHT", "LEFT")
    time.sleep(3600)  # "working" until killed


def spawn(port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, str(port), *args])


def wait_for(what: str, check, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def main(port: int, jobs: int) -> None:
    r = redis.Redis(port=port)
    r.flushall()
    crash = spawn(port, "crasher")
    wait_for("the crasher to block", lambda: int(r.info("clients")["blocked_clients"]) == 1)
    workers = [
        spawn(port, "worker", "simple-1", "0"),
        spawn(port, "worker", "simple-2", "0"),
        spawn(port, "worker", "reliable-1", "1"),
        spawn(port, "worker", "reliable-2", "1"),
    ]
    names = [f"job:{i}" for i in range(jobs)]
    for start in range(0, jobs, 100):
        r.lpush(QUEUE, *names[start : start + 100])
    # The crasher blocked first, so it got the first job; kill it mid-job
    # and put its job back where the others find it.
    wait_for("the crasher's job", lambda: r.llen("processing:crasher") == 1)
    crash.send_signal(signal.SIGKILL)
    crash.wait()
    while r.rpoplpush("processing:crasher", QUEUE) is not None:
        pass
    wait_for("every job", lambda: r.hlen(DONE) == jobs, seconds=300)
    r.lpush(QUEUE, *(["stop"] * len(workers)))
    for w in workers:
        assert w.wait(timeout=60) == 0, "a worker failed"
    done = r.hgetall(DONE)
    assert len(done) == jobs, len(done)
    twice = [job for job, times in done.items() if times != b"1"]
    assert not twice, f"done more than once: {twice[:5]}"
    assert set(done) == {n.encode() for n in names}
    assert r.llen(QUEUE) == 0
    for name in ["crasher", "reliable-1", "reliable-2"]:
        assert r.llen(f"processing:{name}") == 0, name
    print("ok")


if __name__ == "__main__":
    port = int(sys.argv[1])
    role = sys.argv[2]
    if role == "worker":
        worker(port, sys.argv[3], sys.argv[4] == "1")
    elif role == "crasher":
        crasher(port)
    else:
        main(port, int(role))
        os._exit(0)
