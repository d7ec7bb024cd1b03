//! What the source says about itself, and what the migration needs of it.
//!
//! [`Info`] parses an `INFO` reply: the version, `run_id` (a new one means
//! the source restarted and a stored SCAN cursor is worthless), cluster
//! mode, keys per database, and the `INFO commandstats` call counters
//! through which FLUSHDB/FLUSHALL/SWAPDB are noticed (they emit no per-key
//! notification at all).
//!
//! The keyspace tracker only sees writes that `notify-keyspace-events`
//! announces. [`notification_coverage`] says which flag letters a setting
//! lacks for the tracker, and [`flags_to_enable`] what to set instead; the
//! letters follow Redis, not the seed (`$` is string, `s` set, `t` stream).

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError};

#[cfg(test)]
mod tests;

/// The configuration parameter holding the notification flags.
const NOTIFY_PARAMETER: &str = "notify-keyspace-events";

/// Event classes the tracker needs: generic (`del`, `expire`, `rename_*`…),
/// string, list, set, hash, zset, expired and evicted. Streams (`t`) are
/// not migrated and module events (`d`) are not understood, so neither is
/// needed.
const NEEDED_CLASSES: &str = "g$lshzxe";

/// The classes Redis's `A` stands for.
const ALL_CLASSES: &str = "g$lshzxetd";

/// A parsed `INFO` reply: every `field:value` line of every section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    fields: HashMap<String, String>,
}

/// Keys in one database, from `INFO keyspace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DbStats {
    /// The database number.
    pub db: u32,
    /// How many keys it holds.
    pub keys: u64,
    /// How many of them have a time to live.
    pub expires: u64,
}

impl Info {
    /// Parses the text of an `INFO` reply. Section headers (`# Server`),
    /// blank lines and lines without a `:` are skipped; field names are
    /// unique across sections, so sections are not kept apart.
    pub fn parse(text: &str) -> Info {
        let fields = text
            .lines()
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.starts_with('#'))
            // A value may itself contain ':' (`executable:/usr/bin/…`).
            .filter_map(|line| line.split_once(':'))
            .map(|(field, value)| (field.to_string(), value.to_string()))
            .collect();
        Info { fields }
    }

    /// The raw value of `field`, e.g. `get("maxmemory_policy")`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// The server's `run_id`, which changes whenever it restarts.
    pub fn run_id(&self) -> Option<&str> {
        self.get("run_id")
    }

    /// `redis_version` as (major, minor, patch); a missing part reads as 0
    /// and a suffix such as `-rc1` is ignored.
    pub fn version(&self) -> Option<(u32, u32, u32)> {
        let mut parts = self.get("redis_version")?.split('.').map(leading_number);
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some((major, minor, patch))
    }

    /// Whether the server runs in cluster mode.
    pub fn cluster_enabled(&self) -> bool {
        self.get("cluster_enabled") == Some("1")
    }

    /// The databases that hold keys (`db3:keys=5,expires=1,avg_ttl=0`),
    /// in database order. Redis leaves empty databases out.
    pub fn keyspace(&self) -> Vec<DbStats> {
        let mut dbs: Vec<DbStats> = self
            .fields
            .iter()
            .filter_map(|(field, value)| {
                let db = field.strip_prefix("db")?.parse().ok()?;
                Some(DbStats {
                    db,
                    keys: subfield(value, "keys")?,
                    expires: subfield(value, "expires").unwrap_or(0),
                })
            })
            .collect();
        dbs.sort_by_key(|stats| stats.db);
        dbs
    }

    /// How many times command `name` ran since the server started or its
    /// stats were reset (`cmdstat_flushdb:calls=3,…` in `INFO
    /// commandstats`); 0 when it never ran. Subcommands are named as Redis
    /// names them, e.g. `config|set`.
    pub fn command_calls(&self, name: &str) -> u64 {
        self.get(&format!("cmdstat_{}", name.to_ascii_lowercase()))
            .and_then(|value| subfield(value, "calls"))
            .unwrap_or(0)
    }

    /// `used_memory` in bytes (data plus the server's own overhead).
    pub fn used_memory(&self) -> Option<u64> {
        self.get("used_memory")?.parse().ok()
    }
}

/// The digits a version part starts with (`"15-rc1"` → 15).
fn leading_number(part: &str) -> Option<u32> {
    let end = part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len());
    part[..end].parse().ok()
}

/// One `name=value` item of a comma-separated INFO value, as a number.
fn subfield(value: &str, name: &str) -> Option<u64> {
    value
        .split(',')
        .filter_map(|item| item.split_once('='))
        .find(|(item, _)| *item == name)?
        .1
        .parse()
        .ok()
}

/// Sends `INFO section` (`"server"`, `"keyspace"`, `"commandstats"`,
/// `"default"`, `"all"`…) and parses the reply.
pub async fn info(conn: &mut MultiplexedConnection, section: &str) -> Result<Info, RedisError> {
    let text: String = redis::cmd("INFO").arg(section).query_async(conn).await?;
    Ok(Info::parse(&text))
}

/// Whether `error` is the server refusing a command (`ERR unknown
/// command`, `NOPERM`, a renamed or disabled command…) rather than the
/// connection failing: managed Redis services refuse CONFIG and sometimes
/// MEMORY, which preflight reports instead of failing.
pub(crate) fn is_refusal(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ResponseError | ErrorKind::ExtensionError
    )
}

/// The source's `notify-keyspace-events` flags, or `Ok(None)` when the
/// server does not let us read them (managed Redis refusing CONFIG).
pub async fn notify_flags(conn: &mut MultiplexedConnection) -> Result<Option<String>, RedisError> {
    let reply: Result<HashMap<String, String>, RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(NOTIFY_PARAMETER)
        .query_async(conn)
        .await;
    match reply {
        // A proxy may answer CONFIG GET with an empty list: as good as a
        // refusal, the setting stays unknown.
        Ok(mut parameters) => Ok(parameters.remove(NOTIFY_PARAMETER)),
        Err(error) if is_refusal(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Sets the source's `notify-keyspace-events` to `flags`.
pub async fn set_notify_flags(
    conn: &mut MultiplexedConnection,
    flags: &str,
) -> Result<(), RedisError> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(NOTIFY_PARAMETER)
        .arg(flags)
        .query_async(conn)
        .await
}

/// Which notifications the tracker subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channels {
    /// `__keyevent@<db>__:<event>`, the key in the payload (flag `E`).
    #[default]
    Keyevent,
    /// `__keyspace@<db>__:<key>`, the event in the payload (flag `K`).
    Keyspace,
}

impl Channels {
    /// The flag letter that turns these channels on.
    fn flag(self) -> char {
        match self {
            Channels::Keyevent => 'E',
            Channels::Keyspace => 'K',
        }
    }
}

/// How far a `notify-keyspace-events` setting covers what the tracker
/// needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The flag letters missing, in the order [`flags_to_enable`] appends
    /// them; empty when the setting covers everything.
    pub missing: String,
}

impl Coverage {
    /// True when nothing is missing.
    pub fn is_covered(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Which letters `flags` lacks for a tracker on `channels`: the channel
/// letter (`E` or `K`) and every class in `g$lshzxe`, where `A` counts as
/// all classes.
pub fn notification_coverage(flags: &str, channels: Channels) -> Coverage {
    let all = flags.contains('A');
    let has = |letter: char| flags.contains(letter) || (all && ALL_CLASSES.contains(letter));
    let missing = std::iter::once(channels.flag())
        .chain(NEEDED_CLASSES.chars())
        .filter(|&letter| !has(letter))
        .collect();
    Coverage { missing }
}

/// The setting that keeps everything `current` asks for and adds what the
/// tracker needs (what `--enable-notifications` sets; the old value is
/// restored afterwards). Equal to `current` when it already covers it.
pub fn flags_to_enable(current: &str, channels: Channels) -> String {
    let mut flags = current.to_string();
    flags.push_str(&notification_coverage(current, channels).missing);
    flags
}

/// Whether a server of this version has `CLIENT PAUSE … WRITE`, which
/// `--cutover auto` freezes writes with (Redis 6.2 and later).
pub fn supports_client_pause_write(version: (u32, u32, u32)) -> bool {
    version >= (6, 2, 0)
}
