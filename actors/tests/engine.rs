//! [`Engine`] opens a database file, and shuts down cleanly enough that the
//! file reopens with everything committed.

use keyferry_actors::{Durability, Engine, EngineConfig, EngineError};
use keyferry_engine::{Db, KeyValue};
use keyferry_journal::{Event, Journal, WriterConfig};

#[tokio::test]
async fn opens_a_new_file_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let engine = Engine::open(EngineConfig {
        durability: Durability::Full,
        ..EngineConfig::new(&db)
    })
    .await
    .unwrap();
    assert!(engine.failed_actors().is_empty());
    engine.shutdown().await;
    // SQLite removes the WAL when the last connection to the file closes:
    // shutdown closed the writer, the sweeper's and the readers'.
    assert!(db.exists());
    assert!(
        !dir.path().join("k.db-wal").exists(),
        "a connection outlived shutdown"
    );

    // The file was created with the journal's tables, and nothing holds
    // it: it reopens, takes writes, and opens as an engine again.
    let (writer, journal) =
        Journal::open(&db, Durability::Normal, WriterConfig::default()).unwrap();
    let event = Event::ActorRestarted {
        actor: "x".into(),
        attempt: 1,
        reason: "r".into(),
        backoff_ms: 1,
        gave_up: false,
    };
    journal.append(vec![event]).await.unwrap();
    writer.shutdown();
    Engine::open(EngineConfig::new(&db))
        .await
        .unwrap()
        .shutdown()
        .await;
    assert_eq!(journal.last_seq().unwrap(), 1);
}

#[tokio::test]
async fn two_engines_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let first = Engine::open(EngineConfig::new(&db)).await.unwrap();
    let second = Engine::open(EngineConfig::new(&db)).await.unwrap();
    // Each has its own writer; what one commits the other reads.
    let zero = Db::new(0).unwrap();
    first
        .store()
        .import_key(
            zero,
            b"k".to_vec(),
            KeyValue::String(b"v".to_vec()),
            None,
            vec![],
        )
        .await
        .unwrap();
    let seen = second
        .store()
        .read(|view| view.string_get(zero, b"k"))
        .unwrap();
    assert_eq!(seen.as_deref(), Some(&b"v"[..]));
    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn an_unopenable_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/k.db");
    match Engine::open(EngineConfig::new(missing_dir)).await {
        Err(EngineError::Open(_)) => {}
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("opened a file in a missing directory"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_snapshots_its_journal_by_policy() {
    use keyferry_journal::compaction::SnapshotPolicy;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let events: Vec<Event> = (0..50)
        .map(|i| Event::RunStarted {
            run_id: format!("run-{i}"),
            source: "redis://h:1/0".into(),
            destination: "k.db".into(),
        })
        .collect();
    let (writer, journal) =
        Journal::open(&db, Durability::Normal, WriterConfig::default()).unwrap();
    journal.append(events).await.unwrap();
    writer.shutdown();
    let engine = Engine::open(EngineConfig {
        snapshot_policy: SnapshotPolicy {
            every_events: 10,
            retain_events: None,
        },
        ..EngineConfig::new(&db)
    })
    .await
    .unwrap();
    // The maintenance actor's first tick comes at start-up.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let snapshot_seq = loop {
        let seq: Option<i64> = conn
            .query_row("SELECT MAX(seq) FROM journal_snapshots", [], |r| r.get(0))
            .unwrap();
        if let Some(seq) = seq {
            break seq;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot was taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        snapshot_seq >= 50,
        "the snapshot covers the journal: {snapshot_seq}"
    );
    engine.shutdown().await;
}
