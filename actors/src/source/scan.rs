//! One page of the source's keyspace: `SCAN cursor COUNT n`.
//!
//! The bulk scanner walks a database page by page and checkpoints the
//! cursor with the data it imported, so a page is the unit of resumption.

use redis::RedisError;
use redis::aio::MultiplexedConnection;

/// Reads one `SCAN` page of the database `conn` is bound to: the cursor to
/// continue from (0 once the walk is complete) and the keys found, as raw
/// bytes. `count` is a hint to Redis, which may return more or fewer keys,
/// and now and then a key it already returned.
pub async fn scan_page(
    conn: &mut MultiplexedConnection,
    cursor: u64,
    count: u32,
) -> Result<(u64, Vec<Vec<u8>>), RedisError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
}
