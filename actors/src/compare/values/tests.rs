//! Tests of the value walk's pure parts: difference reports and rounds.

use super::*;

#[test]
fn first_difference_finds_the_first_differing_byte() {
    assert_eq!(first_difference(b"abc", b"abc"), None);
    assert_eq!(first_difference(b"abc", b"abd"), Some(2));
    assert_eq!(first_difference(b"ab", b"abc"), Some(2));
    assert_eq!(first_difference(b"", b"x"), Some(0));
}

#[test]
fn ordered_difference_names_the_position_and_both_sides() {
    let source = [b"a".to_vec(), b"b".to_vec()];
    let swapped = [b"b".to_vec(), b"a".to_vec()];
    assert_eq!(
        ordered_difference("index", 10, &source, &source, |e| show(e)),
        None
    );
    assert_eq!(
        ordered_difference("index", 10, &source, &swapped, |e| show(e)).as_deref(),
        Some(r#"at index 10: the source has "a", the destination "b""#)
    );
    assert_eq!(
        ordered_difference("index", 0, &source, &source[..1], |e| show(e)).as_deref(),
        Some(r#"at index 1: the source has "b", the destination nothing"#)
    );
}

#[test]
fn show_escapes_bytes_and_cuts_long_ones() {
    assert_eq!(show(b"k\xff\r\n\0"), r#""k\xff\r\n\x00""#);
    let long = vec![b'x'; SHOWN_BYTES + 1];
    let shown = show(&long);
    assert!(shown.ends_with(&format!("… ({} bytes)", SHOWN_BYTES + 1)));
    assert_eq!(shown.matches('x').count(), SHOWN_BYTES);
}

fn walker(kind: KeyKind, len: u64) -> Walker {
    Walker {
        target: Target {
            slot: 0,
            key: b"k".to_vec(),
            len,
        },
        at: At::start(kind),
    }
}

#[test]
fn a_round_holds_a_bounded_number_of_keys_and_string_bytes() {
    let mut pending: VecDeque<Walker> = (0..WALKS_PER_ROUND + 1)
        .map(|_| walker(KeyKind::Hash, 10))
        .collect();
    assert_eq!(next_round(&mut pending).len(), WALKS_PER_ROUND);
    assert_eq!(next_round(&mut pending).len(), 1);

    let half = STRING_BYTES_PER_ROUND / 2;
    let mut pending: VecDeque<Walker> = [
        walker(KeyKind::String, half),
        walker(KeyKind::List, 5),
        walker(KeyKind::String, half),
        walker(KeyKind::String, 1),
        walker(KeyKind::String, STRING_BYTES_PER_ROUND * 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(next_round(&mut pending).len(), 3, "two halves fill a round");
    assert_eq!(next_round(&mut pending).len(), 1, "the huge string waits");
    assert_eq!(next_round(&mut pending).len(), 1, "and then goes alone");
    assert!(pending.is_empty());
}

#[test]
fn commands_read_one_chunk_from_where_the_walk_stands() {
    let packed = |at: At| at.command(b"k\xff", 100).get_packed_command();
    assert_eq!(
        packed(At::String),
        redis::cmd("GET").arg(b"k\xff").get_packed_command()
    );
    assert_eq!(
        packed(At::ZSet {
            rank: 200,
            after: None
        }),
        redis::cmd("ZRANGE")
            .arg(b"k\xff")
            .arg(200)
            .arg(299)
            .arg("WITHSCORES")
            .get_packed_command()
    );
    assert_eq!(
        packed(At::Hash { cursor: 7 }),
        redis::cmd("HSCAN")
            .arg(b"k\xff")
            .arg(7)
            .arg("COUNT")
            .arg(100)
            .get_packed_command()
    );
}
