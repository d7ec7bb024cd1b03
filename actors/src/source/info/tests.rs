//! Unit tests of the INFO parser and the notification flag arithmetic.

use super::*;

/// Excerpts of a real Redis 7.0 `INFO all` reply, CRLF line ends included.
const REPLY: &str = "# Server\r\n\
redis_version:7.0.15\r\n\
run_id:4f1c0e2a9b7d3c5e8f6a1b2c3d4e5f6a7b8c9d0e\r\n\
executable:/usr/bin/redis-server\r\n\
\r\n\
# Memory\r\n\
used_memory:1048576\r\n\
maxmemory_policy:noeviction\r\n\
\r\n\
# Commandstats\r\n\
cmdstat_flushdb:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n\
cmdstat_config|get:calls=7,usec=30,usec_per_call=4.29,rejected_calls=0,failed_calls=0\r\n\
\r\n\
# Cluster\r\n\
cluster_enabled:0\r\n\
\r\n\
# Keyspace\r\n\
db3:keys=2,expires=1,avg_ttl=1000\r\n\
db0:keys=5,expires=0,avg_ttl=0,subexpiry=0\r\n";

#[test]
fn parses_fields_across_sections() {
    let info = Info::parse(REPLY);
    assert_eq!(
        info.run_id(),
        Some("4f1c0e2a9b7d3c5e8f6a1b2c3d4e5f6a7b8c9d0e")
    );
    assert_eq!(info.version(), Some((7, 0, 15)));
    assert_eq!(info.used_memory(), Some(1_048_576));
    assert_eq!(info.get("maxmemory_policy"), Some("noeviction"));
    // The value keeps everything after the first ':'.
    assert_eq!(info.get("executable"), Some("/usr/bin/redis-server"));
    assert!(!info.cluster_enabled());
    assert!(Info::parse("cluster_enabled:1\r\n").cluster_enabled());
    assert_eq!(info.get("Server"), None);
}

#[test]
fn keyspace_is_sorted_by_database() {
    assert_eq!(
        Info::parse(REPLY).keyspace(),
        vec![
            DbStats {
                db: 0,
                keys: 5,
                expires: 0
            },
            DbStats {
                db: 3,
                keys: 2,
                expires: 1
            },
        ]
    );
    assert!(Info::parse("# Keyspace\r\n").keyspace().is_empty());
}

#[test]
fn command_calls_reads_commandstats_and_defaults_to_zero() {
    let info = Info::parse(REPLY);
    assert_eq!(info.command_calls("flushdb"), 3);
    assert_eq!(info.command_calls("FLUSHDB"), 3);
    assert_eq!(info.command_calls("config|get"), 7);
    assert_eq!(info.command_calls("flushall"), 0);
}

#[test]
fn versions_tolerate_short_and_suffixed_numbers() {
    let version = |v: &str| Info::parse(&format!("redis_version:{v}")).version();
    assert_eq!(version("6.2"), Some((6, 2, 0)));
    assert_eq!(version("7.4.0-rc1"), Some((7, 4, 0)));
    assert_eq!(version("garbage"), None);
    assert_eq!(Info::parse("").version(), None);
}

#[test]
fn client_pause_write_needs_6_2() {
    assert!(!supports_client_pause_write((6, 0, 16)));
    assert!(supports_client_pause_write((6, 2, 0)));
    assert!(supports_client_pause_write((7, 0, 15)));
}

#[test]
fn empty_flags_miss_the_channel_and_every_class() {
    assert_eq!(
        notification_coverage("", Channels::Keyevent).missing,
        "Eg$lshzxe"
    );
    assert_eq!(
        notification_coverage("", Channels::Keyspace).missing,
        "Kg$lshzxe"
    );
}

#[test]
fn a_expands_to_every_class() {
    // What CONFIG GET answers after CONFIG SET notify-keyspace-events KEA.
    for flags in ["AKE", "KEA", "EA"] {
        let coverage = notification_coverage(flags, Channels::Keyevent);
        assert!(coverage.is_covered(), "{flags}: {coverage:?}");
    }
    assert_eq!(notification_coverage("EA", Channels::Keyspace).missing, "K");
}

#[test]
fn keyspace_and_keyevent_letters_are_not_interchangeable() {
    assert_eq!(notification_coverage("KA", Channels::Keyevent).missing, "E");
    assert!(notification_coverage("KA", Channels::Keyspace).is_covered());
}

#[test]
fn the_seeds_letters_leave_classes_out() {
    // `t` is streams and `d` module types: neither stands for strings or
    // sets, so a setting built on the seed's letters misses them.
    assert_eq!(
        notification_coverage("Eghlzxetd", Channels::Keyevent).missing,
        "$s"
    );
}

#[test]
fn flags_to_enable_appends_only_what_is_missing() {
    assert_eq!(flags_to_enable("", Channels::Keyevent), "Eg$lshzxe");
    assert_eq!(flags_to_enable("Ex", Channels::Keyevent), "Exg$lshze");
    assert_eq!(flags_to_enable("AKE", Channels::Keyevent), "AKE");
    let enabled = flags_to_enable("Kl", Channels::Keyevent);
    assert!(notification_coverage(&enabled, Channels::Keyevent).is_covered());
    // What the operator already asked for survives.
    assert!(enabled.starts_with("Kl"));
}
