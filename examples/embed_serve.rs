//! Embeds keyferry and serves it: opens a database file, seeds a few keys
//! in-process, and answers Redis clients on a free loopback port until
//! Ctrl-C.
//!
//! ```text
//! cargo run --example embed_serve [DB_PATH]
//! redis-cli -p PORT lrange queue 0 -1
//! ```
//!
//! With `KEYFERRY_EXAMPLE_SECONDS=N` it stops by itself after N seconds,
//! for scripts and CI.

use std::time::Duration;

use keyferry::embed::{Config, Db, KeyValue, Keyferry, ServeOptions};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join("keyferry-embed.sqlite"),
        Into::into,
    );
    let keyferry = Keyferry::open(Config::new(&db)).await?;

    // Seed data through the store before serving: each write resolves once
    // committed.
    let store = keyferry.store();
    let db0 = Db::new(0)?;
    let seed = [
        (
            "greeting",
            KeyValue::String(b"hello from keyferry".to_vec()),
        ),
        (
            "user:1",
            KeyValue::Hash(vec![
                (b"name".to_vec(), b"Ada".to_vec()),
                (b"lang".to_vec(), b"Rust".to_vec()),
            ]),
        ),
        (
            "queue",
            KeyValue::List(vec![b"job-1".to_vec(), b"job-2".to_vec()]),
        ),
    ];
    for (key, value) in seed {
        store
            .import_key(db0, key.as_bytes().to_vec(), value, None, Vec::new())
            .await?;
    }

    // Port 0: the system picks a free one, which we print.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    println!("serving {} on 127.0.0.1:{port}", db.display());
    println!("try: redis-cli -p {port} hgetall user:1");

    let seconds = std::env::var("KEYFERRY_EXAMPLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let stop = async move {
        match seconds {
            Some(seconds) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    keyferry
        .serve(listener, ServeOptions::default(), stop)
        .await?;
    // Commits everything and closes the file.
    keyferry.shutdown().await;
    println!("stopped");
    Ok(())
}
