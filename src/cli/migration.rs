//! Arguments of the migration subcommands (preflight, tracker, bulk,
//! apply-dirty, status, verify, control, migrate).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use super::values::{SourceUri, parse_byte_size, parse_percent, parse_run_id};

/// Where to read from: the source Redis and, optionally, its password.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Source Redis URI: redis://host:port, or rediss:// for TLS; optionally
    /// with user:password@ before the host and /db after the port. Every
    /// database (0–15) is migrated and keeps its number, whatever /db says.
    #[arg(long, value_name = "URI")]
    pub from: SourceUri,
    /// Read the source password from this file instead of the URI (argv is
    /// visible in `ps`); KEYFERRY_SOURCE_PASSWORD works too.
    #[arg(long, value_name = "PATH")]
    pub from_password_file: Option<PathBuf>,
}

/// A migration run in a destination file: `--run-id ID --to PATH`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The migration run's id.
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: String,
    /// The destination SQLite file.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
}

/// Which notifications the tracker subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Channels {
    /// `__keyevent@*__:*` (one message per event, key in the payload).
    #[default]
    Keyevent,
    /// `__keyspace@*__:*` (one message per key, event in the payload).
    Keyspace,
}

/// What happens to source TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TtlMode {
    /// Keys keep their remaining time to live.
    #[default]
    Preserve,
    /// Keys are imported without an expiry.
    Drop,
}

/// How the final switch-over happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Cutover {
    /// The operator freezes writes and switches clients.
    #[default]
    Manual,
    /// keyferry pauses source writes (`CLIENT PAUSE … WRITE`) itself.
    Auto,
}

/// Throttles shared by `bulk` and `apply-dirty`.
#[derive(Debug, Args)]
pub struct Throttles {
    /// Keys asked for per `SCAN` call.
    #[arg(long, value_name = "N")]
    pub scan_count: Option<NonZeroU32>,
    /// Most source requests in flight at once.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<NonZeroU32>,
    /// Most source requests per second (unlimited when absent).
    #[arg(long, value_name = "N")]
    pub max_rps: Option<NonZeroU32>,
    /// Most keys written per destination batch.
    #[arg(long, value_name = "N")]
    pub batch_keys: Option<NonZeroU32>,
    /// Most bytes written per destination batch, e.g. 64mb (k/m/g = 1000,
    /// kb/mb/gb = 1024, as in redis.conf).
    #[arg(long, value_name = "SIZE", value_parser = parse_byte_size)]
    pub batch_bytes: Option<u64>,
    /// What happens to source TTLs.
    #[arg(long, value_enum)]
    pub ttl_mode: Option<TtlMode>,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "A")]
    pub metrics_addr: Option<SocketAddr>,
}

/// `keyferry preflight`.
#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The destination SQLite file.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `keyferry tracker start|stop`.
#[derive(Debug, Subcommand)]
pub enum TrackerCommand {
    /// Subscribe to the source's notifications and record dirty keys.
    Start(TrackerStartArgs),
    /// Stop a run's tracker.
    Stop(TrackerStopArgs),
}

/// `keyferry tracker start`.
#[derive(Debug, Args)]
pub struct TrackerStartArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which notifications to subscribe to.
    #[arg(long, value_enum, default_value_t)]
    pub channels: Channels,
    /// Turn on `notify-keyspace-events` on the source if it is off (it is
    /// restored at the end); without this flag the tracker refuses to start.
    #[arg(long)]
    pub enable_notifications: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "A")]
    pub metrics_addr: Option<SocketAddr>,
}

/// `keyferry tracker stop`.
#[derive(Debug, Args)]
pub struct TrackerStopArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `keyferry bulk`.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Rate and batch limits.
    #[command(flatten)]
    pub throttles: Throttles,
    /// Continue the run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

/// `keyferry apply-dirty`.
#[derive(Debug, Args)]
pub struct ApplyDirtyArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Rate and batch limits.
    #[command(flatten)]
    pub throttles: Throttles,
    /// First sweep the whole source and destination for differences the
    /// tracker may have missed (what a run marked `needs_sweep` asks for).
    #[arg(long)]
    pub sweep: bool,
}

/// `keyferry status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `keyferry verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Percentage of keys to compare (0 < PCT ≤ 100).
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub sample: Option<f64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `keyferry control`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The run and its destination file.
    #[command(flatten)]
    pub run: RunArgs,
    /// What to tell the run.
    #[command(subcommand)]
    pub action: ControlAction,
}

/// What `keyferry control` tells a run.
#[derive(Debug, Subcommand)]
pub enum ControlAction {
    /// Pause the run where it is.
    Pause,
    /// Resume a paused run.
    Resume,
    /// Stop the run for good.
    Abort,
    /// Change the run's throttles while it runs.
    Set(SetArgs),
}

/// `keyferry control … set`: at least one setting.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("setting").required(true).multiple(true)))]
pub struct SetArgs {
    /// Most source requests per second.
    #[arg(long, value_name = "N", group = "setting")]
    pub max_rps: Option<NonZeroU32>,
    /// Most source requests in flight at once.
    #[arg(long, value_name = "N", group = "setting")]
    pub max_concurrency: Option<NonZeroU32>,
    /// Most keys written per destination batch.
    #[arg(long, value_name = "N", group = "setting")]
    pub batch_keys: Option<NonZeroU32>,
    /// Keys asked for per `SCAN` call.
    #[arg(long, value_name = "N", group = "setting")]
    pub scan_count: Option<NonZeroU32>,
}

/// `keyferry migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The source Redis.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The destination SQLite file.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
    /// The migration run's id (generated when absent).
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// How the final switch-over happens.
    #[arg(long, value_enum, default_value_t)]
    pub cutover: Cutover,
    /// Command that moves clients to keyferry, run while source writes are
    /// paused (`--cutover auto`).
    #[arg(long, value_name = "CMD")]
    pub switch_cmd: Option<String>,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "A")]
    pub metrics_addr: Option<SocketAddr>,
}
