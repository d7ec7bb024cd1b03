//! `kill -9` of a process that is appending loses no committed event and
//! leaves a file that opens, reads cleanly and replays.
//!
//! The test re-runs its own binary, filtered to itself, as the child: with
//! [`CHILD_ENV`] set, the same test function appends forever instead.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyferry_journal::connection::open_ro;
use keyferry_journal::{
    Durability, Entry, Event, Journal, Summary, WriterConfig, now_ms, registry,
};

use crate::registry::{dump, rebuilt};

/// Set (to the journal's path) in the child process.
const CHILD_ENV: &str = "KEYFERRY_JOURNAL_CRASH_CHILD";
/// Threads appending concurrently in the child, so commits are grouped.
const APPENDERS: u32 = 4;

/// The event the child appends as item `j` of batch `i` of thread `t`.
fn event(t: u32, i: u64, j: u64) -> Event {
    Event::KeyDirtied {
        run_id: "crash".into(),
        db: t,
        key: format!("{t}:{i}:{j}").into_bytes(),
        event: "set".into(),
    }
}

/// The child: appends batches of 1..=5 events from several threads and
/// prints `committed SEQ T I J` for each event once its append resolved.
fn append_forever(path: &Path) -> ! {
    let (_writer, journal) =
        Journal::open(path, Durability::Normal, WriterConfig::default()).expect("child open");
    let threads: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let n = i % 5 + 1;
                    let seqs = journal
                        .append((0..n).map(|j| event(t, i, j)).collect())
                        .wait()
                        .expect("append");
                    let mut out = std::io::stdout().lock();
                    for (j, seq) in seqs.into_iter().enumerate() {
                        writeln!(out, "committed {seq} {t} {i} {j}").expect("stdout");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    unreachable!("appenders never stop");
}

/// Parses `committed SEQ T I J`; anything else (test harness chatter) is
/// `None`.
fn parse(line: &str) -> Option<(i64, Event)> {
    let mut fields = line.strip_prefix("committed ")?.split(' ');
    let mut next = || fields.next()?.parse::<i64>().ok();
    let (seq, t, i, j) = (next()?, next()?, next()?, next()?);
    Some((seq, event(t as u32, i as u64, j as u64)))
}

#[test]
fn kill_9_loses_no_committed_event() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        append_forever(Path::new(&path));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.sqlite");
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &format!("{module}::kill_9_loses_no_committed_event"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(committed) = parse(&line) {
                let _ = tx.send(committed);
            }
        }
    });

    // Kill at a point that varies from run to run.
    let kill_after = 2_000 + (now_ms() % 3_000) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed = HashMap::new();
    while committed.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((seq, event)) => assert!(
                committed.insert(seq, event).is_none(),
                "seq {seq} reported twice"
            ),
            Err(e) => panic!(
                "child stopped reporting after {} commits: {e}",
                committed.len()
            ),
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap child");
    reader.join().expect("reader");
    // Lines the child printed before it died are committed too.
    committed.extend(rx.try_iter());

    let (writer, journal) =
        Journal::open(&path, Durability::Normal, WriterConfig::default()).expect("reopen");
    let entries: HashMap<i64, Event> = journal
        .read_from(1)
        .expect("reader")
        .map(|e| e.map(|e| (e.seq, e.event)))
        .collect::<Result<_, _>>()
        .expect("every row after the crash is valid");
    for (seq, event) in &committed {
        assert_eq!(
            entries.get(seq),
            Some(event),
            "committed seq {seq} lost or changed"
        );
    }
    let last = journal.last_seq().expect("last seq");
    assert_eq!(entries.len() as i64, last, "no gaps");
    // The registry committed with the rows: exactly their projection.
    let conn = open_ro(&path).expect("reader");
    let entries: Vec<Entry> = journal
        .read_from(1)
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("entries");
    assert_eq!(dump(&conn), dump(&rebuilt(&entries)));
    let run = registry::run(&conn, "crash").expect("query").expect("run");
    assert_eq!(run.dirty_events, last as u64);
    let replayed = journal.replay::<Summary>(None).expect("replay after crash");
    assert_eq!(replayed.state.runs["crash"].keys_dirtied, last as u64);
    let after = journal
        .append(vec![event(0, 0, 0)])
        .wait()
        .expect("append after crash");
    assert_eq!(after, [last + 1]);
    writer.shutdown();
}
