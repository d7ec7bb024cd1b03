use redis::Value;

use super::*;

/// A `pmessage` as Redis sends it for a pattern subscription.
fn pmessage(pattern: &[u8], channel: &[u8], payload: &[u8]) -> redis::Msg {
    let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
    redis::Msg::from_owned_value(Value::Array(vec![
        bulk(b"pmessage"),
        bulk(pattern),
        bulk(channel),
        bulk(payload),
    ]))
    .expect("a pmessage")
}

#[test]
fn keyevent_messages_carry_the_event_in_the_channel_and_the_key_in_the_payload() {
    let key = b"bin\r\n\x00\xffkey";
    let msg = pmessage(b"__keyevent@*__:*", b"__keyevent@12__:hset", key);
    assert_eq!(
        parse_notification(&msg, Channels::Keyevent),
        Some((12, key.to_vec(), b"hset".to_vec()))
    );
}

#[test]
fn keyspace_messages_carry_the_key_in_the_channel_even_when_it_holds_the_separator() {
    let msg = pmessage(b"__keyspace@*__:*", b"__keyspace@3__:a__:b\xff", b"del");
    assert_eq!(
        parse_notification(&msg, Channels::Keyspace),
        Some((3, b"a__:b\xff".to_vec(), b"del".to_vec()))
    );
}

#[test]
fn other_messages_are_ignored() {
    let foreign = pmessage(b"*", b"news", b"hello");
    assert_eq!(parse_notification(&foreign, Channels::Keyevent), None);
    let bad_db = pmessage(b"*", b"__keyevent@x__:set", b"k");
    assert_eq!(parse_notification(&bad_db, Channels::Keyevent), None);
}
