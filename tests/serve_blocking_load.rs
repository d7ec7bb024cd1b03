//! Many blocked clients under load: 1,000 clients blocked in `BLPOP` on
//! 10 keys while 10 producers push elements; every element must reach
//! exactly one client (none lost, none duplicated) and the lists end
//! empty.
//!
//! The number of elements is `KEYFERRY_BLOCKING_ELEMENTS`: 20,000 by
//! default, to keep the suite quick; the full size is
//! `KEYFERRY_BLOCKING_ELEMENTS=100000` (about 4 s).

use std::collections::HashSet;
use std::path::Path;

use keyferry_testkit::KeyferryServe;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const KEYS: usize = 10;
const WAITERS: usize = 1_000;
const PRODUCERS: usize = 10;
const BATCH: usize = 100;

fn encode(argv: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for arg in argv {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// A minimal RESP reader for the replies this test gets.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    async fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        Self {
            reader: BufReader::new(stream),
        }
    }

    async fn send(&mut self, argv: &[&str]) {
        self.reader
            .get_mut()
            .write_all(&encode(argv))
            .await
            .expect("send");
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.expect("read");
        assert!(line.ends_with("\r\n"), "short reply {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Reads one reply; bulk strings (also inside arrays) are returned in
    /// order, other lines as they are.
    async fn reply(&mut self) -> Vec<String> {
        let head = self.line().await;
        let items = match head.strip_prefix('*') {
            Some(n) => n.parse::<usize>().expect("array length"),
            None => return vec![head],
        };
        let mut out = Vec::with_capacity(items);
        for _ in 0..items {
            let len: usize = self.line().await[1..].parse().expect("bulk length");
            let mut value = vec![0; len + 2];
            self.reader.read_exact(&mut value).await.expect("bulk");
            value.truncate(len);
            out.push(String::from_utf8(value).expect("utf-8"));
        }
        out
    }

    async fn command(&mut self, argv: &[&str]) -> Vec<String> {
        self.send(argv).await;
        self.reply().await
    }
}

/// Pops from `key` until it gets "stop"; returns what it popped.
async fn waiter(port: u16, key: String) -> Vec<String> {
    let mut conn = Conn::connect(port).await;
    let mut got = Vec::new();
    loop {
        let reply = conn.command(&["BLPOP", &key, "0"]).await;
        assert_eq!(reply.len(), 2, "unexpected reply {reply:?}");
        assert_eq!(reply[0], key);
        if reply[1] == "stop" {
            return got;
        }
        got.push(reply[1].clone());
    }
}

async fn blocked_clients(conn: &mut Conn) -> usize {
    let info = conn.command(&["INFO", "clients"]).await;
    // A bulk string: the reader returned the `$len` line, read the rest.
    let mut text = info.join("\n");
    if text.starts_with('$') {
        let len: usize = text[1..].parse().expect("length");
        let mut body = vec![0; len + 2];
        conn.reader.read_exact(&mut body).await.expect("info body");
        text = String::from_utf8_lossy(&body).into_owned();
    }
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .expect("blocked_clients")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn every_element_reaches_exactly_one_blocked_client() {
    let elements: usize = std::env::var("KEYFERRY_BLOCKING_ELEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let serve = KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[]);
    let port = serve.port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let waiters: Vec<_> = (0..WAITERS)
            .map(|i| tokio::spawn(waiter(port, format!("key{}", i % KEYS))))
            .collect();
        let mut admin = Conn::connect(port).await;
        while blocked_clients(&mut admin).await < WAITERS {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                tokio::spawn(async move {
                    let mut conn = Conn::connect(port).await;
                    let mine: Vec<String> = (p..elements)
                        .step_by(PRODUCERS)
                        .map(|e| format!("e{e}"))
                        .collect();
                    for (n, chunk) in mine.chunks(BATCH).enumerate() {
                        let key = format!("key{}", (p + n) % KEYS);
                        let mut argv = vec!["RPUSH", key.as_str()];
                        argv.extend(chunk.iter().map(String::as_str));
                        let reply = conn.command(&argv).await;
                        assert!(reply[0].starts_with(':'), "RPUSH answered {reply:?}");
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.expect("producer");
        }
        // Behind every element of each list: one "stop" per waiter.
        for k in 0..KEYS {
            let key = format!("key{k}");
            let mut argv = vec!["RPUSH", key.as_str()];
            argv.extend(std::iter::repeat_n("stop", WAITERS / KEYS));
            admin.command(&argv).await;
        }
        let mut seen = HashSet::with_capacity(elements);
        for waiter in waiters {
            for value in waiter.await.expect("waiter") {
                assert!(seen.insert(value.clone()), "{value} delivered twice");
            }
        }
        assert_eq!(seen.len(), elements, "elements lost");
        for k in 0..KEYS {
            let len = admin.command(&["LLEN", &format!("key{k}")]).await;
            assert_eq!(len, vec![":0".to_owned()]);
        }
        assert_eq!(blocked_clients(&mut admin).await, 0);
    });
}

/// The waiter limits (`CONFIG SET blocked-max-…`) refuse to block with a
/// clear error, and leave the other clients blocked.
#[test]
fn limits_answer_clear_errors() {
    use keyferry_testkit::RawClient;
    let serve = KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[]);
    let connect = || RawClient::connect(serve.port()).expect("connect");
    let (mut admin, mut c1, mut c2) = (connect(), connect(), connect());
    let cmd = |c: &mut RawClient, argv: &[&str]| {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&c.command(&argv).expect("reply")).into_owned()
    };
    assert_eq!(
        cmd(
            &mut admin,
            &["CONFIG", "SET", "blocked-max-keys-per-call", "2"]
        ),
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c1, &["BLPOP", "a", "b", "c", "0"]),
        "-ERR too many keys for a blocking command (3 > blocked-max-keys-per-call 2)\r\n"
    );
    cmd(&mut admin, &["CONFIG", "SET", "blocked-max-per-key", "1"]);
    cmd(&mut admin, &["CONFIG", "SET", "blocked-max-clients", "2"]);
    c1.send_command(&[b"BLPOP", b"k", b"0"]).expect("send");
    let blocked =
        |admin: &mut RawClient| cmd(admin, &["INFO", "clients"]).contains("blocked_clients:1\r\n");
    while !blocked(&mut admin) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(
        cmd(&mut c2, &["BLPOP", "x", "k", "0"]),
        "-ERR too many clients blocked on key 'k' (blocked-max-per-key 1)\r\n"
    );
    cmd(&mut admin, &["CONFIG", "SET", "blocked-max-clients", "1"]);
    assert_eq!(
        cmd(&mut c2, &["BLPOP", "other", "0"]),
        "-ERR too many blocked clients (blocked-max-clients 1)\r\n"
    );
    assert_eq!(
        cmd(&mut admin, &["CONFIG", "GET", "blocked-max-*"]),
        "*6\r\n$19\r\nblocked-max-clients\r\n$1\r\n1\r\n$19\r\nblocked-max-per-key\r\n$1\r\n1\r\n\
         $25\r\nblocked-max-keys-per-call\r\n$1\r\n2\r\n"
    );
    assert_eq!(cmd(&mut admin, &["RPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c1.read_reply().expect("served")),
        "*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    );
}
