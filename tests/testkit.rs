//! The test support itself: `RedisServer` is a real, persistence-free
//! redis-server that is gone after drop, and `RawClient` reads replies
//! whole, nested ones included.

use std::net::{Ipv4Addr, TcpStream};

use keyferry_testkit::{RawClient, RedisServer};

#[tokio::test]
async fn redis_server_is_real_isolated_and_persistence_free() {
    let server = RedisServer::start();
    let other = RedisServer::start();
    assert_ne!(server.port(), other.port());

    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg(b"v\0\xff")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let value: Vec<u8> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, b"v\0\xff");
    let other_value: Option<Vec<u8>> = redis::cmd("GET")
        .arg("k")
        .query_async(
            &mut redis::Client::open(other.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(other_value, None, "the two servers share data");

    let config = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            let pair: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut conn)
                .await
                .unwrap();
            pair[1].clone()
        }
    };
    assert_eq!(config("save").await, "");
    assert_eq!(config("appendonly").await, "no");
    assert_eq!(config("bind").await, "127.0.0.1");
    let dir = config("dir").await;
    assert!(
        dir.contains("keyferry-test-"),
        "not in its own temp dir: {dir}"
    );

    let port = server.port();
    drop(server);
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "redis-server outlived its guard"
    );
    assert!(
        !std::path::Path::new(&dir).exists(),
        "its temp dir outlived its guard"
    );
}

#[test]
fn raw_client_reads_nested_and_null_replies_whole() {
    let server = RedisServer::start();
    let mut client = RawClient::connect(server.port()).unwrap();
    assert_eq!(
        client.command(&[b"RPUSH", b"l", b"a\r\nb", b""]).unwrap(),
        b":2\r\n"
    );
    // Two replies sent at once still come back one at a time.
    client.send(b"LRANGE l 0 -1\r\nGET missing\r\n").unwrap();
    assert_eq!(
        client.read_reply().unwrap(),
        b"*2\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"
    );
    assert_eq!(client.read_reply().unwrap(), b"$-1\r\n");
}
