//! Unit tests of preflight's pure parts: the verdicts drawn from INFO and
//! the notification flags, the estimates, and the destination checks. The
//! whole command runs against a real redis-server in `tests/cli_preflight.rs`.

use std::time::Duration;

use super::destination::inspect;
use super::estimate::{bulk_seconds, destination_bytes, recommend};
use super::sample::extrapolate;
use super::*;

fn report() -> PreflightReport {
    let source = Source::new("redis://u:secret@127.0.0.1:1".parse().unwrap(), None).unwrap();
    let (destination, _) = inspect(Path::new("unused.db"));
    PreflightReport::new(&source, destination)
}

#[test]
fn the_report_never_holds_the_password() {
    let json = serde_json::to_string(&report()).unwrap();
    assert!(!json.contains("secret"), "{json}");
    assert!(json.contains("127.0.0.1:1"), "{json}");
}

#[test]
fn empty_flags_warn_that_the_tracker_will_refuse() {
    let mut report = report();
    report_notifications(&mut report, Some(String::new()));
    assert!(report.config_allowed);
    assert!(!report.notifications_cover_tracker);
    assert_eq!(report.notifications_missing.as_deref(), Some("Eg$lshzxe"));
    assert!(
        report.warnings[0].contains("tracker will refuse to start unless --enable-notifications"),
        "{:?}",
        report.warnings
    );
    assert!(report.problems.is_empty());
}

#[test]
fn kea_covers_the_tracker_without_a_warning() {
    let mut report = report();
    report_notifications(&mut report, Some("AKE".into()));
    assert!(report.notifications_cover_tracker);
    assert_eq!(report.notifications_missing.as_deref(), Some(""));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn refused_config_points_at_the_providers_console() {
    let mut report = report();
    report_notifications(&mut report, None);
    assert!(!report.config_allowed);
    assert_eq!(report.notifications_missing, None);
    assert!(report.warnings[0].contains("provider's console"));
    assert!(report.warnings[0].contains("CLIENT PAUSE"));
}

#[test]
fn cluster_mode_blocks_and_old_servers_lose_auto_cutover() {
    let mut report = report();
    report_server(
        &mut report,
        &Info::parse("redis_version:6.0.16\r\ncluster_enabled:1\r\n"),
    );
    assert!(report.cluster_enabled);
    assert!(report.problems[0].contains("cluster mode"));
    assert!(!report.client_pause_write);
    assert!(report.warnings[0].contains("--cutover auto is unavailable"));
}

#[test]
fn only_an_evicting_policy_with_a_limit_warns() {
    let warnings = |info: &str| {
        let mut report = report();
        report_server(&mut report, &Info::parse(info));
        report.warnings
    };
    let base = "redis_version:7.0.15\r\n";
    assert!(
        warnings(&format!(
            "{base}maxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n"
        ))
        .is_empty()
    );
    assert!(
        warnings(&format!(
            "{base}maxmemory:1024\r\nmaxmemory_policy:noeviction\r\n"
        ))
        .is_empty()
    );
    let evicting = warnings(&format!(
        "{base}maxmemory:1024\r\nmaxmemory_policy:allkeys-lru\r\n"
    ));
    assert!(evicting[0].contains("allkeys-lru"), "{evicting:?}");
}

#[test]
fn extrapolation_is_exact_for_a_whole_database_and_rounds_otherwise() {
    assert_eq!(extrapolate(3, 10, 10), 3);
    assert_eq!(extrapolate(1, 1000, 1_000_000), 1000);
    assert_eq!(extrapolate(1, 3, 2), 1);
    assert_eq!(extrapolate(5, 0, 100), 0);
    assert_eq!(extrapolate(u64::MAX, 1, 2), u64::MAX);
}

#[test]
fn bulk_seconds_takes_the_binding_limit() {
    assert_eq!(bulk_seconds(0, Some(0)), 0);
    assert_eq!(bulk_seconds(1, None), 1);
    assert_eq!(bulk_seconds(ASSUMED_KEYS_PER_SECOND * 10, Some(1)), 10);
    assert_eq!(bulk_seconds(1, Some(ASSUMED_BYTES_PER_SECOND * 7)), 7);
    assert_eq!(destination_bytes(1000), 1500);
}

#[test]
fn recommendations_shrink_pages_for_big_keys_and_widen_for_latency() {
    let local = Duration::from_micros(100);
    let small = recommend(Some(100), local);
    assert_eq!(
        small,
        Recommended {
            scan_count: 1000,
            max_concurrency: 4,
            batch_keys: 10_000
        }
    );
    let big = recommend(Some(1 << 20), local);
    assert_eq!((big.scan_count, big.batch_keys), (10, 100));
    assert_eq!(
        recommend(Some(100), Duration::from_millis(2)).max_concurrency,
        12
    );
    assert_eq!(recommend(None, Duration::from_secs(1)).max_concurrency, 32);
}

#[test]
fn human_bytes_picks_a_unit() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(3 << 30), "3.0 GiB");
}

#[test]
fn a_new_file_in_a_writable_directory_is_writable() {
    let dir = tempfile::tempdir().unwrap();
    let (found, why) = inspect(&dir.path().join("k.db"));
    assert_eq!(why, None);
    assert!(found.writable && !found.exists);
    assert!(found.free_bytes.is_some_and(|free| free > 0));
    assert!(
        !dir.path().join("k.db").exists(),
        "preflight created the file"
    );

    std::fs::write(dir.path().join("k.db"), b"").unwrap();
    let (found, why) = inspect(&dir.path().join("k.db"));
    assert_eq!(why, None);
    assert!(found.writable && found.exists);
}

#[test]
fn a_missing_directory_or_a_directory_path_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let (found, why) = inspect(&dir.path().join("missing/k.db"));
    assert!(!found.writable);
    assert!(why.unwrap().contains("does not exist"));
    let (found, why) = inspect(dir.path());
    assert!(!found.writable);
    assert_eq!(why.as_deref(), Some("it is a directory"));
}
