//! Tests of the pieces of `verify` that need no server: escaping, the
//! sampler, and how outcomes are counted. The whole command is tested
//! against real servers in the root package's `tests/cli_verify.rs`.

use super::sample::Sampler;
use super::*;

#[test]
fn keys_are_escaped_as_redis_cli_shows_them() {
    assert_eq!(escape_bytes(b"plain key:1"), "plain key:1");
    assert_eq!(escape_bytes(b"a\r\n\xff\x00"), "a\\r\\n\\xff\\x00");
    assert_eq!(escape_bytes(b"q\"b\\"), "q\\\"b\\\\");
    assert_eq!(escape_bytes(b"\t\x07\x08\x7f"), "\\t\\a\\b\\x7f");
    // UTF-8 is bytes like any other: never decoded.
    assert_eq!(escape_bytes("é".as_bytes()), "\\xc3\\xa9");
}

#[test]
fn the_sample_must_be_a_percentage() {
    for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
        assert!(Sampler::new(bad).is_none(), "{bad}");
    }
    assert!(Sampler::new(0.001).is_some());
}

#[test]
fn the_sampler_takes_about_the_share_asked_and_is_consistent() {
    let db = Db::new(3).unwrap();
    let keys: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("key:{i}").into_bytes())
        .collect();
    let all = Sampler::new(100.0).unwrap();
    assert!(keys.iter().all(|key| all.chooses(db, key)));
    let half = Sampler::new(50.0).unwrap();
    let chosen: Vec<bool> = keys.iter().map(|key| half.chooses(db, key)).collect();
    let taken = chosen.iter().filter(|c| **c).count();
    assert!((9_000..=11_000).contains(&taken), "{taken} of 20000");
    // The same sampler answers the same for the same key.
    assert!(
        keys.iter()
            .zip(&chosen)
            .all(|(key, c)| half.chooses(db, key) == *c)
    );
    let tiny = Sampler::new(0.5).unwrap();
    let taken = keys.iter().filter(|key| tiny.chooses(db, key)).count();
    assert!((40..=180).contains(&taken), "{taken} of 20000 at 0.5%");
}

fn compared(key: &[u8], outcome: Outcome) -> KeyComparison {
    KeyComparison {
        key: key.to_vec(),
        outcome,
    }
}

#[test]
fn outcomes_are_counted_by_kind_with_capped_examples() {
    let mut report = VerifyReport::default();
    report.tally(0, compared(b"same", Outcome::Same), 2);
    for i in 0..3 {
        report.tally(
            1,
            compared(format!("m{i}").as_bytes(), Outcome::MissingAtDestination),
            2,
        );
    }
    report.tally(
        2,
        compared(
            b"\xff",
            Outcome::TtlMismatch {
                source_ms: Some(5000),
                destination_ms: None,
            },
        ),
        2,
    );
    report.tally(
        0,
        compared(
            b"s",
            Outcome::Unsupported {
                type_name: "stream".into(),
            },
        ),
        2,
    );
    assert_eq!(report.same, 1);
    assert_eq!(report.missing.count, 3);
    assert_eq!(report.missing.examples.len(), 2, "capped at max_examples");
    assert_eq!(report.missing.examples[0].key, "m0");
    assert_eq!(
        report.ttl_mismatches.examples,
        vec![Example {
            db: 2,
            key: "\\xff".into(),
            detail: "source ttl 5000 ms, destination no ttl".into(),
        }]
    );
    assert_eq!(report.unsupported.count, 1);
    assert_eq!(report.mismatches, 4, "unsupported keys are not mismatches");
    assert!(!report.is_clean());
}

#[test]
fn a_report_serializes_with_its_documented_field_names() {
    let json = serde_json::to_value(VerifyReport::default()).unwrap();
    let mut names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "checked_keys",
            "destination_keys_checked",
            "destination_keys_scanned",
            "extra",
            "length_mismatches",
            "mismatches",
            "missing",
            "same",
            "sample_percent",
            "source_keys_scanned",
            "ttl_mismatches",
            "type_mismatches",
            "unsupported",
            "value_mismatches",
        ]
    );
    assert_eq!(
        json["missing"],
        serde_json::json!({"count": 0, "examples": []})
    );
}
