//! Runs a live migration from code: copies a Redis into a database file
//! while the source keeps taking writes, prints progress, cuts over
//! automatically (a write freeze of about a second) and prints the report.
//!
//! ```text
//! redis-cli config set notify-keyspace-events KEA
//! cargo run --example migrate_from_code -- redis://127.0.0.1:6379 data.sqlite [RUN_ID]
//! ```
//!
//! Interrupted (Ctrl-C), it resumes from its last checkpoint when run
//! again with the same run id.

use keyferry::embed::{Config, Cutover, Keyferry, MigrationSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(db)) = (args.next(), args.next()) else {
        return Err("usage: migrate_from_code SOURCE_URI DB_PATH [RUN_ID]".into());
    };
    let run_id = args.next().unwrap_or_else(|| "example".to_string());

    let keyferry = Keyferry::open(Config::new(&db)).await?;
    // The switch command runs while source writes are frozen: this is
    // where a real deployment repoints its clients at keyferry.
    let cutover = Cutover::Auto {
        switch_cmd: Some("echo 'switch: point clients at keyferry now'".into()),
    };
    let migration = keyferry
        .start_migration(MigrationSpec::new(run_id, source, cutover))
        .await?;
    println!("migrating as run {}", migration.run_id());

    // Progress is a watch channel: print each change until the migration
    // ends and the channel closes.
    let mut progress = migration.progress();
    let printer = tokio::spawn(async move {
        loop {
            let line = {
                let status = progress.borrow_and_update();
                format!(
                    "{}: scanned {} migrated {} | pending {} applied {} deleted {}{}",
                    status.status.as_str(),
                    status.counters.scanned_keys,
                    status.counters.migrated_keys,
                    status.pending_keys,
                    status.dirty_keys_applied,
                    status.dirty_keys_deleted,
                    if status.scan_done { " | scan done" } else { "" },
                )
            };
            println!("{line}");
            if progress.changed().await.is_err() {
                break;
            }
        }
    });

    let outcome = migration.wait().await;
    let _ = printer.await;
    keyferry.shutdown().await;
    let report = outcome?;
    if let Some(freeze) = report.freeze {
        println!("writes frozen for {} ms", freeze.as_millis());
    }
    println!(
        "final delta: {} applied, {} deleted; sample mismatches: {}; switched: {}",
        report.final_delta.applied,
        report.final_delta.deleted,
        report.sample_mismatches,
        report.switched
    );
    Ok(())
}
