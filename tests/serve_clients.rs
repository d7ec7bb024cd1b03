//! Real Redis clients against `keyferry serve`: `redis-benchmark` runs the
//! issue's command set without an error reply, `redis-cli --scan` lists
//! exactly the keys, and commands piped to `redis-cli` print exactly what
//! they print against a real `redis-server` (raw and `--no-raw` output).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use keyferry_testkit::{KeyferryServe, RawClient, RedisServer, redis_tool};

fn serve() -> KeyferryServe {
    KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[])
}

/// The tests of `-t set,get,…` as `redis-benchmark --csv` names them.
const BENCHMARK_TESTS: &[&str] = &[
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "MSET (10 keys)",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `redis-benchmark` against `port` with `extra` arguments.
fn benchmark(port: u16, extra: &[&str]) -> Output {
    let port = port.to_string();
    Command::new(redis_tool("redis-benchmark"))
        .args(["-p", &port, "-n", "2000", "-r", "1000", "-c", "10", "-t"])
        .arg("set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-benchmark")
}

/// `redis-benchmark` stops with exit status 1 and prints "Error from
/// server: …" at the first error reply; it also warns when it cannot read
/// the server's CONFIG. None of that may happen, and with `--csv` every
/// test must have its row.
fn assert_benchmark_clean(port: u16, pipeline: &str) {
    let quiet = benchmark(port, &["-P", pipeline, "-q"]);
    let (out, err) = (text(&quiet.stdout), text(&quiet.stderr));
    assert!(
        quiet.status.success(),
        "-P {pipeline} -q failed ({}):\n{out}\n{err}",
        quiet.status
    );
    for line in out.lines().chain(err.lines()) {
        let lower = line.to_lowercase();
        assert!(
            !line.contains("ERR") && !lower.contains("error") && !lower.contains("warning"),
            "-P {pipeline} -q printed {line:?}:\n{out}\n{err}"
        );
    }

    let csv = benchmark(port, &["-P", pipeline, "--csv"]);
    let (out, err) = (text(&csv.stdout), text(&csv.stderr));
    assert!(
        csv.status.success(),
        "-P {pipeline} --csv failed ({}):\n{out}\n{err}",
        csv.status
    );
    assert!(
        !out.contains("ERR") && !out.to_lowercase().contains("error") && err.trim().is_empty(),
        "-P {pipeline} --csv printed an error:\n{out}\n{err}"
    );
    let mut rows = out.lines();
    assert_eq!(
        rows.next(),
        Some(
            "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\""
        ),
        "{out}"
    );
    let tests: Vec<String> = rows
        .map(|row| {
            let name = row.split("\",\"").next().unwrap_or_default();
            let rps: f64 = row
                .split("\",\"")
                .nth(1)
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("no rps in {row:?}"));
            assert!(rps > 0.0, "{row}");
            name.trim_start_matches('"').to_owned()
        })
        .collect();
    assert_eq!(tests, BENCHMARK_TESTS, "-P {pipeline} --csv:\n{out}");
}

#[test]
fn redis_benchmark_runs_every_command_without_errors() {
    let server = serve();
    assert_benchmark_clean(server.port(), "1");
    assert_benchmark_clean(server.port(), "16");
    // The server is still healthy and holds what the benchmark wrote.
    let mut conn = RawClient::connect(server.port()).unwrap();
    let size = conn.command(&[b"DBSIZE"]).unwrap();
    assert!(size.starts_with(b":") && size != b":0\r\n", "{size:?}");
    assert_eq!(conn.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

fn redis_cli(port: u16, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(redis_tool("redis-cli"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    child
        .stdin
        .take()
        .expect("redis-cli stdin")
        .write_all(stdin)
        .expect("write to redis-cli");
    let out = child.wait_with_output().expect("wait for redis-cli");
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}",
        text(&out.stderr)
    );
    out
}

#[test]
fn redis_cli_scan_lists_exactly_the_keys() {
    let server = serve();
    let mut conn = RawClient::connect(server.port()).unwrap();
    let mut wanted = BTreeSet::new();
    // Enough keys for many SCAN pages, of every type, plus keys the
    // pattern must leave out, one in another database.
    for i in 0..250 {
        let key = format!("k{i}");
        let argv: Vec<Vec<u8>> = match i % 5 {
            0 => vec![b"SET".to_vec(), key.clone().into(), b"v".to_vec()],
            1 => vec![b"RPUSH".to_vec(), key.clone().into(), b"v".to_vec()],
            2 => vec![
                b"HSET".to_vec(),
                key.clone().into(),
                b"f".into(),
                b"v".into(),
            ],
            3 => vec![b"SADD".to_vec(), key.clone().into(), b"m".to_vec()],
            _ => vec![
                b"ZADD".to_vec(),
                key.clone().into(),
                b"1".into(),
                b"m".into(),
            ],
        };
        let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        assert!(!conn.command(&argv).unwrap().starts_with(b"-"));
        wanted.insert(key);
    }
    for other in ["other", "xk1", "Kcap", "ak"] {
        conn.command(&[b"SET", other.as_bytes(), b"v"]).unwrap();
    }
    conn.command(&[b"SET", b"key:expired", b"v", b"PX", b"1"])
        .unwrap();
    conn.command(&[b"SELECT", b"1"]).unwrap();
    conn.command(&[b"SET", b"k-db1", b"v"]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let scan = |args: &[&str]| -> Vec<String> {
        let out = redis_cli(server.port(), args, b"");
        text(&out.stdout).lines().map(str::to_owned).collect()
    };
    let mut listed = scan(&["--scan", "--pattern", "k*"]);
    let count = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!(count, listed.len(), "--scan listed a key twice");
    assert_eq!(listed, wanted.iter().cloned().collect::<Vec<_>>());

    let mut all = scan(&["--scan"]);
    all.sort();
    let mut expected: Vec<String> = wanted.iter().cloned().collect();
    expected.extend(["other", "xk1", "Kcap", "ak"].map(String::from));
    expected.sort();
    assert_eq!(all, expected, "--scan without a pattern");

    assert_eq!(scan(&["-n", "1", "--scan", "--pattern", "k*"]), ["k-db1"]);
}

/// What a user types at the `redis-cli` prompt (here piped on stdin, so
/// `redis-cli` runs its read-eval-print loop without a terminal): quoting,
/// every reply type, errors, transactions, databases.
const SESSION: &str = r#"PING
SET greeting "hello world"
GET greeting
GET "missing key"
SET 'quoted key' "tab\there"
GET 'quoted key'
INCR counter
INCRBY counter 41
INCRBYFLOAT float 0x10
INCR greeting
APPEND greeting !
STRLEN greeting
MSET a 1 b 2 c 3
MGET a b nokey c
RPUSH list one two three
LRANGE list 0 -1
LPOP list
HSET hash field value other 42
HGET hash other
HLEN hash
SADD set only
SMEMBERS set
ZADD zset 1.5 one 2 two 0x10 hex
ZRANGE zset 0 -1 WITHSCORES
ZSCORE zset one
EXPIRE greeting 100
TTL greeting
TYPE list
EXISTS a b nokey
DEL a b
MULTI
SET t 1
INCR t
GET t
EXEC
SELECT 2
GET greeting
SET here db2
SELECT 0
NOSUCHCOMMAND arg
GET
LPUSH greeting x
SCAN 0 COUNT x
DBSIZE
FLUSHDB
DBSIZE
"#;

#[test]
fn redis_cli_piped_session_prints_what_redis_prints() {
    let redis = RedisServer::start();
    let keyferry = serve();
    for mode in [&[][..], &["--no-raw"][..]] {
        let expected = redis_cli(redis.port(), mode, SESSION.as_bytes());
        let got = redis_cli(keyferry.port(), mode, SESSION.as_bytes());
        let (expected, got) = (text(&expected.stdout), text(&got.stdout));
        for (i, (e, g)) in expected.lines().zip(got.lines()).enumerate() {
            assert_eq!(g, e, "redis-cli {mode:?}: line {i} differs");
        }
        assert_eq!(got, expected, "redis-cli {mode:?}: output differs");
        assert!(expected.contains("hello world"), "{expected}");
    }
}
