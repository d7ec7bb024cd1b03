//! The commands the server implements itself ([`Exec::Server`]):
//! connection (`PING ECHO QUIT RESET SELECT HELLO AUTH CLIENT`), server
//! (`COMMAND INFO TIME CONFIG FUNCTION`), transaction
//! (`MULTI EXEC DISCARD WATCH UNWATCH`) and pub/sub commands. Replies and
//! error texts are Redis 7.0's.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use keyferry_engine::command::args::{is, parse_i64};
use keyferry_engine::command::{CommandSpec, Exec, all, lookup};
use keyferry_engine::reply::errors;
use keyferry_engine::{Db, DbKeys, Protocol, Reply};

use super::pubsub::Kind;
use super::session::{Flow, Session};
use super::state::{ClientHandle, lock};

/// The Redis version keyferry reports (`HELLO`, `INFO`): the one whose
/// behaviour it reproduces, so client libraries enable the right features.
const REDIS_VERSION: &str = "7.0.15";

/// A reply that Redis sends as a RESP3 verbatim string (`=`), a bulk
/// string in RESP2.
enum Answer {
    Reply(Reply),
    Verbatim(String),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}

impl Answer {
    /// The answer inside an `EXEC` array (always a bulk string there).
    fn into_reply(self) -> Reply {
        match self {
            Answer::Reply(reply) => reply,
            Answer::Verbatim(text) => Reply::Bulk(text.into_bytes()),
        }
    }
}

impl Session {
    /// Runs server command `spec`.
    pub(super) async fn server_command(
        &mut self,
        spec: &'static CommandSpec,
        argv: Vec<Vec<u8>>,
    ) -> Flow {
        match spec.name {
            "quit" => {
                self.reply(Reply::ok()).await;
                self.send(super::connection::Outgoing::Close).await;
                return Flow::Close;
            }
            "reset" => return self.reset().await,
            "multi" => return self.multi().await,
            "exec" => return self.exec(spec).await,
            "discard" => return self.discard(spec).await,
            "watch" => return self.watch(spec, argv).await,
            "unwatch" => self.unwatch(spec).await,
            "subscribe" => self.subscribe(Kind::Channel, &argv[1..]).await,
            "psubscribe" => self.subscribe(Kind::Pattern, &argv[1..]).await,
            "unsubscribe" => self.unsubscribe(Kind::Channel, &argv[1..]).await,
            "punsubscribe" => self.unsubscribe(Kind::Pattern, &argv[1..]).await,
            _ => {
                let answer = self.answer(spec, &argv);
                match answer {
                    Answer::Reply(reply) => self.reply(reply).await,
                    Answer::Verbatim(text) => {
                        let bytes = verbatim(self.protocol, &text);
                        self.send(super::connection::Outgoing::Bytes(bytes)).await;
                    }
                }
            }
        }
        Flow::Continue
    }

    /// A server command queued in `MULTI`, run when `EXEC` is dispatched.
    pub(super) fn server_reply_in_exec(
        &mut self,
        spec: &'static CommandSpec,
        argv: Vec<Vec<u8>>,
    ) -> Reply {
        match spec.name {
            // EXEC checks and forgets the watched keys before the block
            // runs, so an UNWATCH inside it has nothing left to do.
            "unwatch" => Reply::ok(),
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => Reply::Error(format!(
                "ERR '{}' is not supported inside MULTI by keyferry",
                spec.name
            )),
            _ => self.answer(spec, &argv).into_reply(),
        }
    }

    /// The commands whose whole effect is one reply.
    fn answer(&mut self, spec: &'static CommandSpec, argv: &[Vec<u8>]) -> Answer {
        match spec.name {
            // A subscribed RESP2 client gets a pub/sub-shaped reply.
            "ping" if self.subscribed() && self.protocol == Protocol::Resp2 => Reply::Array(vec![
                Reply::bulk("pong"),
                Reply::Bulk(argv.get(1).cloned().unwrap_or_default()),
            ])
            .into(),
            "ping" => match argv {
                [_] => Reply::Status("PONG".into()),
                [_, message] => Reply::Bulk(message.clone()),
                _ => errors::wrong_arity("ping"),
            }
            .into(),
            "echo" => Reply::Bulk(argv[1].clone()).into(),
            "select" => self.select(&argv[1]).into(),
            "auth" => self.auth(argv).into(),
            "hello" => self.hello(argv).into(),
            "time" => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Reply::Array(vec![
                    Reply::bulk(now.as_secs().to_string()),
                    Reply::bulk(now.subsec_micros().to_string()),
                ])
                .into()
            }
            "publish" => Reply::Integer(self.server.pubsub.publish(&argv[1], &argv[2])).into(),
            "pubsub" => self.pubsub(argv).into(),
            "client" => self.client(argv),
            "command" => command(argv).into(),
            "config" => self.config(argv).into(),
            "function" => function(argv).into(),
            "info" => Answer::Verbatim(self.info(argv)),
            _ => Reply::Error(format!("ERR '{}' is not implemented", spec.name)).into(),
        }
    }

    fn select(&mut self, index: &[u8]) -> Reply {
        let index = match parse_i64(index) {
            Ok(i) => i,
            Err(reply) => return reply,
        };
        match Db::new(index) {
            Ok(db) => {
                self.db = db;
                lock(&self.client.info).db = db.index();
                Reply::ok()
            }
            Err(_) => Reply::error("ERR DB index is out of range"),
        }
    }

    /// `AUTH [username] password`, for the `default` user (no ACL users).
    fn auth(&mut self, argv: &[Vec<u8>]) -> Reply {
        let requirepass = self.server.config.requirepass();
        let (user, password) = match argv {
            [_, password] => {
                if requirepass.is_none() {
                    return Reply::error(
                        "ERR AUTH <password> called without any password configured for the default user. \
                         Are you sure your configuration is correct?",
                    );
                }
                (&b"default"[..], password)
            }
            [_, user, password] => (&user[..], password),
            _ => return errors::syntax(),
        };
        if self.check_password(user, password) {
            self.authenticated = true;
            Reply::ok()
        } else {
            Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    fn check_password(&self, user: &[u8], password: &[u8]) -> bool {
        user == b"default"
            && match self.server.config.requirepass() {
                None => true,
                Some(expected) => same_secret(expected.as_bytes(), password),
            }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    fn hello(&mut self, argv: &[Vec<u8>]) -> Reply {
        let mut protocol = self.protocol;
        if let Some(version) = argv.get(1) {
            protocol = match parse_i64(version) {
                Ok(2) => Protocol::Resp2,
                Ok(3) => Protocol::Resp3,
                Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
                Err(_) => {
                    return Reply::error("ERR Protocol version is not an integer or out of range");
                }
            };
        }
        let (mut auth, mut name) = (None, None);
        let mut i = 2;
        while i < argv.len() {
            let more = argv.len() - i - 1;
            if is(&argv[i], "AUTH") && more >= 2 {
                auth = Some((&argv[i + 1], &argv[i + 2]));
                i += 3;
            } else if is(&argv[i], "SETNAME") && more >= 1 {
                name = Some(&argv[i + 1]);
                i += 2;
            } else {
                return Reply::Error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&argv[i])
                ));
            }
        }
        if let Some((user, password)) = auth {
            if !self.check_password(user, password) {
                return Reply::error(
                    "WRONGPASS invalid username-password pair or user is disabled.",
                );
            }
            self.authenticated = true;
        }
        if !self.authenticated {
            return Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = name
            && let Err(reply) = self.set_name(name)
        {
            return reply;
        }
        self.protocol = protocol;
        lock(&self.client.info).protocol = protocol;
        let field = |k: &'static str, v: Reply| (Reply::bulk(k), v);
        Reply::Map(vec![
            field("server", Reply::bulk("redis")),
            field("version", Reply::bulk(REDIS_VERSION)),
            field(
                "proto",
                Reply::Integer(if protocol == Protocol::Resp3 { 3 } else { 2 }),
            ),
            field("id", Reply::Integer(self.client.id as i64)),
            field("mode", Reply::bulk("standalone")),
            field("role", Reply::bulk("master")),
            field("modules", Reply::Array(Vec::new())),
        ])
    }

    fn set_name(&self, name: &[u8]) -> Result<(), Reply> {
        if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            return Err(Reply::error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        lock(&self.client.info).name = name.to_vec();
        Ok(())
    }

    /// `CLIENT` subcommands other than `KILL`.
    fn client(&mut self, argv: &[Vec<u8>]) -> Answer {
        let sub = argv[1].to_ascii_lowercase();
        match &sub[..] {
            b"id" => Reply::Integer(self.client.id as i64).into(),
            b"setname" => match self.set_name(&argv[2]) {
                Ok(()) => Reply::ok().into(),
                Err(reply) => reply.into(),
            },
            b"getname" => {
                let name = lock(&self.client.info).name.clone();
                if name.is_empty() {
                    Reply::Null
                } else {
                    Reply::Bulk(name)
                }
                .into()
            }
            b"info" => Answer::Verbatim(format!("{}\n", self.client.describe())),
            b"kill" => self.client_kill(argv).into(),
            b"list" => self.client_list(&argv[2..]),
            b"no-evict" => {
                let on = if is(&argv[2], "on") {
                    true
                } else if is(&argv[2], "off") {
                    false
                } else {
                    return errors::syntax().into();
                };
                lock(&self.client.info).no_evict = on;
                Reply::ok().into()
            }
            b"unblock" => {
                let id = match parse_i64(&argv[2]) {
                    Ok(id) => id,
                    Err(reply) => return reply.into(),
                };
                let reply = match argv.get(3) {
                    Some(reason) if !is(reason, "TIMEOUT") && !is(reason, "ERROR") => {
                        return Reply::error(
                            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                        )
                        .into();
                    }
                    _ if argv.len() > 4 => return errors::syntax().into(),
                    Some(reason) if is(reason, "ERROR") => {
                        Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                    }
                    _ => Reply::NullArray,
                };
                let waits = &self.server.keyspace.waits;
                let unblocked = u64::try_from(id).is_ok_and(|id| waits.unblock(id, reply));
                Reply::Integer(i64::from(unblocked)).into()
            }
            _ => help(
                "CLIENT",
                &[
                    "ID",
                    "INFO",
                    "KILL <ip:port>|<option> <value> [...]",
                    "LIST [TYPE <type>] [ID <id> [...]]",
                    "GETNAME",
                    "SETNAME <name>",
                    "NO-EVICT (ON|OFF)",
                    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                ],
            )
            .into(),
        }
    }

    /// `CLIENT LIST [TYPE normal|pubsub|master|replica] [ID id…]`.
    fn client_list(&self, options: &[Vec<u8>]) -> Answer {
        let mut clients = self.server.clients.all();
        match options {
            [] => {}
            [t, kind] if is(t, "TYPE") => {
                let pubsub = |c: &ClientHandle| lock(&c.info).subscriptions != (0, 0);
                if is(kind, "normal") {
                    clients.retain(|c| !pubsub(c));
                } else if is(kind, "pubsub") {
                    clients.retain(|c| pubsub(c));
                } else if is(kind, "master") || is(kind, "replica") || is(kind, "slave") {
                    clients.clear();
                } else {
                    return Reply::Error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(kind)
                    ))
                    .into();
                }
            }
            [id, ids @ ..] if is(id, "ID") && !ids.is_empty() => {
                let mut wanted = Vec::new();
                for id in ids {
                    match parse_i64(id) {
                        Ok(n) if n > 0 => wanted.push(n as u64),
                        _ => return Reply::error("ERR Invalid client ID").into(),
                    }
                }
                clients.retain(|c| wanted.contains(&c.id));
            }
            _ => return errors::syntax().into(),
        }
        Answer::Verbatim(clients.iter().fold(String::new(), |mut text, c| {
            text.push_str(&c.describe());
            text.push('\n');
            text
        }))
    }

    /// `CLIENT KILL addr` or `CLIENT KILL <filter> <value> …`.
    fn client_kill(&self, argv: &[Vec<u8>]) -> Reply {
        let clients = self.server.clients.all();
        if argv.len() == 3 {
            let addr = String::from_utf8_lossy(&argv[2]);
            return match clients.iter().find(|c| c.addr.to_string() == addr) {
                Some(c) => {
                    c.kill();
                    Reply::ok()
                }
                None => Reply::error("ERR No such client"),
            };
        }
        let mut matching: Vec<_> = clients.clone();
        let mut skip_me = true;
        for pair in argv[2..].chunks(2) {
            let [option, value] = pair else {
                return errors::syntax();
            };
            if is(option, "ID") {
                match parse_i64(value) {
                    Ok(id) if id > 0 => matching.retain(|c| c.id == id as u64),
                    _ => return Reply::error("ERR client-id should be greater than 0"),
                }
            } else if is(option, "ADDR") {
                matching.retain(|c| c.addr.to_string().as_bytes() == value.as_slice());
            } else if is(option, "LADDR") {
                matching.retain(|c| c.laddr.to_string().as_bytes() == value.as_slice());
            } else if is(option, "USER") {
                if value.as_slice() != b"default" {
                    return Reply::Error(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(value)
                    ));
                }
            } else if is(option, "SKIPME") {
                if is(value, "yes") {
                    skip_me = true;
                } else if is(value, "no") {
                    skip_me = false;
                } else {
                    return errors::syntax();
                }
            } else if is(option, "TYPE") {
                let pubsub = |c: &ClientHandle| lock(&c.info).subscriptions != (0, 0);
                if is(value, "normal") {
                    matching.retain(|c| !pubsub(c));
                } else if is(value, "pubsub") {
                    matching.retain(|c| pubsub(c));
                } else if is(value, "master") || is(value, "replica") || is(value, "slave") {
                    matching.clear();
                } else {
                    return Reply::Error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(value)
                    ));
                }
            } else if is(option, "MAXAGE") {
                match parse_i64(value) {
                    Ok(age) => matching.retain(|c| c.created.elapsed().as_secs() as i64 >= age),
                    Err(reply) => return reply,
                }
            } else {
                return errors::syntax();
            }
        }
        if skip_me {
            matching.retain(|c| c.id != self.client.id);
        }
        for c in &matching {
            c.kill();
        }
        Reply::Integer(matching.len() as i64)
    }

    /// `PUBSUB CHANNELS [pattern] | NUMSUB channel… | NUMPAT`.
    fn pubsub(&self, argv: &[Vec<u8>]) -> Reply {
        let pubsub = &self.server.pubsub;
        let sub = argv[1].to_ascii_lowercase();
        match &sub[..] {
            b"channels" if argv.len() <= 3 => Reply::Array(
                pubsub
                    .channels(argv.get(2).map(Vec::as_slice))
                    .into_iter()
                    .map(Reply::Bulk)
                    .collect(),
            ),
            b"channels" => errors::wrong_arity("pubsub|channels"),
            // A flat array even in RESP3, as in Redis 7.0.
            b"numsub" => Reply::Array(
                argv[2..]
                    .iter()
                    .flat_map(|c| {
                        [
                            Reply::Bulk(c.clone()),
                            Reply::Integer(pubsub.numsub(c) as i64),
                        ]
                    })
                    .collect(),
            ),
            b"numpat" => Reply::Integer(pubsub.numpat() as i64),
            _ => help(
                "PUBSUB",
                &["CHANNELS [<pattern>]", "NUMPAT", "NUMSUB [<channel> ...]"],
            ),
        }
    }

    /// `CONFIG GET pattern… | SET name value… | RESETSTAT | REWRITE`.
    fn config(&self, argv: &[Vec<u8>]) -> Reply {
        let sub = argv[1].to_ascii_lowercase();
        match &sub[..] {
            b"get" => {
                let values = self.config_values();
                let mut pairs = Vec::new();
                for (name, value) in &values {
                    if argv[2..]
                        .iter()
                        .any(|p| keyferry_engine::glob::matches_nocase(p, name.as_bytes()))
                    {
                        pairs.push((Reply::bulk(*name), Reply::bulk(value.as_bytes())));
                    }
                }
                Reply::Map(pairs)
            }
            b"set" if argv.len() % 2 == 1 => errors::wrong_arity("config|set"),
            b"set" => {
                for pair in argv[2..].chunks(2) {
                    if let Err(reply) = self.config_set(&pair[0], &pair[1]) {
                        return reply;
                    }
                }
                Reply::ok()
            }
            b"resetstat" => {
                for (_, stats) in self.server.stats.used() {
                    for counter in [&stats.calls, &stats.usec, &stats.rejected, &stats.failed] {
                        counter.store(0, Ordering::Relaxed);
                    }
                }
                self.server.stats.commands.store(0, Ordering::Relaxed);
                Reply::ok()
            }
            b"rewrite" => Reply::error("ERR The server is running without a config file"),
            _ => help(
                "CONFIG",
                &[
                    "GET <pattern>",
                    "SET <directive> <value>",
                    "RESETSTAT",
                    "REWRITE",
                ],
            ),
        }
    }

    /// Every parameter `CONFIG GET` knows, with its current value.
    fn config_values(&self) -> Vec<(&'static str, String)> {
        let config = &self.server.config;
        let limits = self.server.keyspace.waits.limits();
        vec![
            ("bind", self.server.addr.ip().to_string()),
            ("port", self.server.addr.port().to_string()),
            ("databases", Db::COUNT.to_string()),
            (
                "requirepass",
                config
                    .requirepass()
                    .map_or_else(String::new, |p| p.to_string()),
            ),
            (
                "maxclients",
                config.maxclients.load(Ordering::Relaxed).to_string(),
            ),
            (
                "proto-max-bulk-len",
                config
                    .proto_max_bulk_len
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            (
                "client-query-buffer-limit",
                config
                    .query_buffer_limit
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            // keyferry never evicts and keeps no data in memory.
            ("maxmemory", "0".to_owned()),
            ("maxmemory-policy", "noeviction".to_owned()),
            // Persistence is SQLite's: no RDB snapshots, no AOF.
            ("save", String::new()),
            ("appendonly", "no".to_owned()),
            // No keyspace notifications are published.
            ("notify-keyspace-events", String::new()),
            // keyferry's own: the limits of blocked clients.
            ("blocked-max-clients", limits.total.to_string()),
            ("blocked-max-per-key", limits.per_key.to_string()),
            (
                "blocked-max-keys-per-call",
                limits.keys_per_call.to_string(),
            ),
        ]
    }

    fn config_set(&self, name: &[u8], value: &[u8]) -> Result<(), Reply> {
        let config = &self.server.config;
        let name_text = String::from_utf8_lossy(name).to_ascii_lowercase();
        let failed = |why: &str| {
            Reply::Error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name_text}') - {why}"
            ))
        };
        let memory =
            || parse_memory(value).ok_or_else(|| failed("argument must be a memory value"));
        match name_text.as_str() {
            "requirepass" => config.set_requirepass(&String::from_utf8_lossy(value)),
            "maxclients" => match parse_i64(value) {
                Ok(n) if n >= 1 => config.maxclients.store(n as u64, Ordering::Relaxed),
                Ok(_) => {
                    return Err(failed(
                        "argument must be between 1 and 4294967295 inclusive",
                    ));
                }
                Err(_) => return Err(failed("argument couldn't be parsed into an integer")),
            },
            "proto-max-bulk-len" => match memory()? {
                n if n >= 1024 * 1024 => config.proto_max_bulk_len.store(n, Ordering::Relaxed),
                _ => {
                    return Err(failed(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
            },
            "client-query-buffer-limit" => match memory()? {
                n if n >= 1024 * 1024 => {
                    config.query_buffer_limit.store(n as u64, Ordering::Relaxed)
                }
                _ => {
                    return Err(failed(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
            },
            "blocked-max-clients" | "blocked-max-per-key" | "blocked-max-keys-per-call" => {
                let n = match parse_i64(value) {
                    Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
                    Ok(_) => {
                        return Err(failed(
                            "argument must be between 1 and 9223372036854775807 inclusive",
                        ));
                    }
                    Err(_) => return Err(failed("argument couldn't be parsed into an integer")),
                };
                let waits = &self.server.keyspace.waits;
                let mut limits = waits.limits();
                match name_text.as_str() {
                    "blocked-max-clients" => limits.total = n,
                    "blocked-max-per-key" => limits.per_key = n,
                    _ => limits.keys_per_call = n,
                }
                waits.set_limits(limits);
            }
            "bind" | "port" | "databases" => return Err(failed("can't set immutable config")),
            // Accepted only when they keep the value keyferry implements.
            "maxmemory" | "maxmemory-policy" | "save" | "appendonly" | "notify-keyspace-events" => {
                let current = self.config_values();
                let (_, now) = current
                    .iter()
                    .find(|(n, _)| *n == name_text)
                    .expect("listed in config_values");
                if !now.as_bytes().eq_ignore_ascii_case(value) {
                    return Err(failed("keyferry does not support changing this parameter"));
                }
            }
            _ => {
                return Err(Reply::Error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(name)
                )));
            }
        }
        Ok(())
    }

    /// `INFO [section…]`: Redis's format, with the sections and fields
    /// keyferry can fill.
    fn info(&self, argv: &[Vec<u8>]) -> String {
        const DEFAULT: &[&str] = &[
            "server",
            "clients",
            "memory",
            "persistence",
            "stats",
            "replication",
            "cpu",
            "keyspace",
        ];
        let wanted: Vec<String> = argv[1..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        let everything = wanted.iter().any(|w| w == "all" || w == "everything");
        let show = |section: &str| {
            if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
                DEFAULT.contains(&section)
            } else {
                everything || wanted.iter().any(|w| w == section)
            }
        };
        let server = &self.server;
        let mut text = String::new();
        let mut section = |name: &str, body: &dyn Fn(&mut String)| {
            if show(&name.to_ascii_lowercase()) {
                if !text.is_empty() {
                    text.push_str("\r\n");
                }
                let _ = write!(text, "# {name}\r\n");
                body(&mut text);
            }
        };
        section("Server", &|t| {
            let uptime = server.started.elapsed().as_secs();
            let _ = write!(
                t,
                "redis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\n\
                 process_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{}\r\nexecutable:keyferry\r\nconfig_file:\r\nkeyferry_version:{}\r\n",
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                server.run_id,
                server.addr.port(),
                uptime / 86_400,
                env!("CARGO_PKG_VERSION"),
            );
        });
        section("Clients", &|t| {
            let clients = server.clients.all();
            let pubsub = clients
                .iter()
                .filter(|c| lock(&c.info).subscriptions != (0, 0))
                .count();
            let _ = write!(
                t,
                "connected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\n\
                 pubsub_clients:{pubsub}\r\n",
                clients.len(),
                server.config.maxclients.load(Ordering::Relaxed),
                server.keyspace.waits.blocked(),
            );
        });
        section("Memory", &|t| {
            t.push_str("used_memory:0\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n");
        });
        section("Persistence", &|t| {
            t.push_str("loading:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n");
        });
        section("Stats", &|t| {
            let _ = write!(
                t,
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n\
                 pubsub_channels:{}\r\npubsub_patterns:{}\r\n",
                server.clients.accepted.load(Ordering::Relaxed),
                server.stats.commands.load(Ordering::Relaxed),
                server.clients.rejected.load(Ordering::Relaxed),
                server.pubsub.channels(None).len(),
                server.pubsub.numpat(),
            );
        });
        section("Replication", &|t| {
            t.push_str("role:master\r\nconnected_slaves:0\r\n");
        });
        section("CPU", &|_| {});
        section("Commandstats", &|t| {
            for (name, stats) in server.stats.used() {
                let calls = stats.calls.load(Ordering::Relaxed);
                let usec = stats.usec.load(Ordering::Relaxed);
                let per_call = if calls == 0 {
                    0.0
                } else {
                    usec as f64 / calls as f64
                };
                let _ = write!(
                    t,
                    "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                    stats.rejected.load(Ordering::Relaxed),
                    stats.failed.load(Ordering::Relaxed),
                );
            }
        });
        section(
            "Keyspace",
            &|t| match server.store.read(|view| view.keyspace_summary()) {
                Ok(dbs) => {
                    for DbKeys { db, keys, expires } in dbs {
                        let _ = write!(t, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "INFO cannot count keys"),
            },
        );
        text
    }
}

/// `COMMAND [COUNT | INFO name… | DOCS name… | LIST]`.
fn command(argv: &[Vec<u8>]) -> Reply {
    let Some(sub) = argv.get(1).map(|s| s.to_ascii_lowercase()) else {
        return Reply::Array(all().map(command_info).collect());
    };
    let named = || argv[2..].iter().map(|n| lookup(&n.to_ascii_lowercase()));
    match &sub[..] {
        b"count" => Reply::Integer(all().count() as i64),
        b"list" if argv.len() == 2 => Reply::Array(all().map(|s| Reply::bulk(s.name)).collect()),
        b"list" => errors::syntax(),
        b"info" if argv.len() == 2 => Reply::Array(all().map(command_info).collect()),
        b"info" => Reply::Array(
            named()
                .map(|s| s.map_or(Reply::Null, command_info))
                .collect(),
        ),
        b"docs" => {
            let specs: Vec<&CommandSpec> = if argv.len() == 2 {
                all().collect()
            } else {
                named().flatten().collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|s| (Reply::bulk(s.name), command_docs(s)))
                    .collect(),
            )
        }
        _ => help(
            "COMMAND",
            &[
                "(no subcommand)",
                "COUNT",
                "DOCS [<command-name> ...]",
                "INFO [<command-name> ...]",
                "LIST",
            ],
        ),
    }
}

/// One `COMMAND INFO` entry: name, arity, flags, key positions, ACL
/// categories (derived from the flags), tips, key specs, subcommands.
fn command_info(spec: &CommandSpec) -> Reply {
    let status = |s: &str| Reply::Status(s.to_owned().into());
    let mut categories = Vec::new();
    for (flag, category) in [
        ("write", "@write"),
        ("readonly", "@read"),
        ("fast", "@fast"),
        ("pubsub", "@pubsub"),
    ] {
        if spec.has_flag(flag) {
            categories.push(status(category));
        }
    }
    if !spec.has_flag("fast") {
        categories.push(status("@slow"));
    }
    if matches!(spec.exec, Exec::Server) && !spec.has_flag("pubsub") {
        categories.push(status("@connection"));
    }
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(spec.flags.iter().map(|f| status(f)).collect()),
        Reply::Integer(i64::from(spec.first_key)),
        Reply::Integer(i64::from(spec.last_key)),
        Reply::Integer(i64::from(spec.step)),
        Reply::Set(categories),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

/// A `COMMAND DOCS` entry: keyferry keeps no documentation text, only the
/// command's group.
fn command_docs(spec: &CommandSpec) -> Reply {
    let group = match spec.exec {
        Exec::Server if spec.has_flag("pubsub") => "pubsub",
        Exec::Server => "connection",
        _ => "generic",
    };
    Reply::Map(vec![
        (
            Reply::bulk("summary"),
            Reply::bulk(spec.name.to_ascii_uppercase()),
        ),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(group)),
        (Reply::bulk("complexity"), Reply::bulk("")),
    ])
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`: no functions exist, so there is nothing
/// to flush.
fn function(argv: &[Vec<u8>]) -> Reply {
    if argv[1].eq_ignore_ascii_case(b"help") {
        return help("FUNCTION", &["FLUSH [ASYNC|SYNC]"]);
    }
    match argv.get(2) {
        None => Reply::ok(),
        Some(mode) if argv.len() == 3 && (is(mode, "ASYNC") || is(mode, "SYNC")) => Reply::ok(),
        Some(_) => Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
    }
}

/// A `… HELP` reply: the usage lines, then `HELP` itself.
fn help(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(
        format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Status((*l).to_owned().into())));
    out.push(Reply::Status("HELP".into()));
    Reply::Array(out)
}

/// `text` as a RESP3 verbatim string (`=len\r\ntxt:…`), a bulk string in
/// RESP2.
fn verbatim(protocol: Protocol, text: &str) -> Vec<u8> {
    match protocol {
        Protocol::Resp3 => format!("={}\r\ntxt:{text}\r\n", text.len() + 4).into_bytes(),
        Protocol::Resp2 => {
            let mut out = Vec::new();
            Reply::bulk(text).encode(protocol, &mut out);
            out
        }
    }
}

/// A memory size as Redis's `memtoull` reads it: digits with an optional
/// `k`, `kb`, `m`, `mb`, `g` or `gb` (any case; `k` = 1000, `kb` = 1024).
fn parse_memory(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<i64>().ok()?.checked_mul(multiplier)
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
}
