//! Command-line flags and `EMBERCHAT_*` environment variables, validated once.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use crate::chat::ChatConfig;
use crate::cluster::RedisAddress;
use crate::engineio::EngineConfig;
use crate::http::{HttpLimits, MIN_HEADER_BYTES};
use crate::socketio::SocketIoConfig;
use crate::store::{Retention, Synchronous};

/// Everything the gateway is told at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Default `0.0.0.0:3000`.
    pub listen: SocketAddr,
    /// SQLite database file. Default `chat.db`.
    pub db: PathBuf,
    /// Default `full`.
    pub synchronous: Synchronous,
    /// What the database keeps (`--keep-messages`, `--keep-days`). Default everything.
    pub retention: Retention,
    /// Free bytes the database's filesystem must keep (`--min-free-space`). Default 64 MiB.
    pub min_free_space: u64,
    /// Default `info`.
    pub log_level: LevelFilter,
    pub engine: EngineConfig,
    pub socketio: SocketIoConfig,
    pub chat: ChatConfig,
    pub http: HttpLimits,
    /// Host names served besides addresses, `localhost`, `.local` names and this machine's
    /// hostname (`--allow-host`); any other `Host` gets 421 (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Cluster mode (`--redis`): the chat's log is this Redis's stream, not the database.
    pub redis: Option<RedisAddress>,
    /// The stream's key (`--redis-stream`). Default `socket.io`, the adapter's.
    pub redis_stream: String,
    /// Entries the stream keeps (`--redis-max-len`). Default 1,000,000.
    pub redis_max_len: u64,
    /// Replicas that must have a message before it is acked (`--redis-wait-replicas`).
    /// Default 0: acked once the primary has it.
    pub redis_wait_replicas: u32,
    /// How long to wait for them (`--redis-wait-timeout`). Default 1 s.
    pub redis_wait_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            db: PathBuf::from("chat.db"),
            synchronous: Synchronous::Full,
            retention: Retention::default(),
            min_free_space: 64 * 1024 * 1024,
            log_level: LevelFilter::Info,
            engine: EngineConfig::default(),
            socketio: SocketIoConfig::default(),
            chat: ChatConfig::default(),
            http: HttpLimits::default(),
            allowed_hosts: Vec::new(),
            redis: None,
            redis_stream: "socket.io".to_owned(),
            redis_max_len: 1_000_000,
            redis_wait_replicas: 0,
            redis_wait_timeout: Duration::from_secs(1),
        }
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    /// `emberchat backup [--db PATH] OUT`: an online copy of the database.
    Backup {
        db: PathBuf,
        out: PathBuf,
    },
    /// `emberchat export [--db PATH]`: every message as JSON Lines on stdout.
    Export {
        db: PathBuf,
    },
    Help,
    Version,
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, such as `listen` for `--listen`.
    Flag(&'static str),
    /// An environment variable, such as `EMBERCHAT_LISTEN`.
    Variable(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "--{flag}"),
            Origin::Variable(name) => f.write_str(name),
        }
    }
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    NotUtf8,
    NotAnAddress(String),
    NotASynchronousMode(String),
    NotAWholeNumber(String),
    NotMilliseconds(String),
    NotALogLevel(String),
    NotAnOrigin(String),
    NotAHostName(String),
    NotARedisAddress(String),
    NotAStreamName(String),
    EmptyToken,
    BelowMinimum { value: usize, minimum: usize },
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::NotUtf8 => f.write_str("value is not valid UTF-8"),
            BadValue::NotAnAddress(value) => {
                write!(f, "`{value}` is not an address like 0.0.0.0:3000")
            }
            BadValue::NotASynchronousMode(value) => write!(f, "`{value}` is not full or normal"),
            BadValue::NotAWholeNumber(value) => write!(f, "`{value}` is not a whole number"),
            BadValue::NotMilliseconds(value) => {
                write!(f, "`{value}` is not a number of milliseconds")
            }
            BadValue::NotALogLevel(value) => {
                write!(f, "`{value}` is not error, warn, info, debug or trace")
            }
            BadValue::NotAnOrigin(value) => {
                write!(f, "`{value}` is not an origin like http://host:port")
            }
            BadValue::NotAHostName(value) => write!(
                f,
                "`{value}` is not a host name like chat.example.org (letters, digits, - and .; no port)"
            ),
            BadValue::NotARedisAddress(problem) => write!(
                f,
                "not a Redis address like redis://127.0.0.1:6379/0: {problem}"
            ),
            BadValue::NotAStreamName(value) => {
                write!(
                    f,
                    "`{value}` is not a stream name (1 to 200 visible characters)"
                )
            }
            BadValue::EmptyToken => f.write_str("the token is empty"),
            BadValue::BelowMinimum { value, minimum } => {
                write!(f, "{value} is below the minimum of {minimum}")
            }
        }
    }
}

/// Why the settings were refused.
#[derive(Debug)]
pub enum ConfigError {
    /// A flag or variable has a value that cannot be used.
    Value { origin: Origin, problem: BadValue },
    /// The command line is malformed (an unknown flag, a missing value).
    Usage(lexopt::Error),
    /// A setting that must be greater than 0 is 0.
    Zero { flag: &'static str },
    /// `--max-message-bytes` is not below `--max-payload`.
    MessageNotBelowPayload,
    /// `--inbound-memory` could not hold one message of `--max-payload`.
    InboundBelowPayload,
    /// `--outbound-memory` could not hold two clients' full queues.
    OutboundBelowQueue,
    /// `emberchat backup` without the file to write.
    NoBackupFile,
    /// `--redis` given to a build without cluster mode (the `redis` feature).
    NoClusterMode,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Value { origin, problem } => write!(f, "{origin}: {problem}"),
            ConfigError::Usage(error) => write!(f, "{error}"),
            ConfigError::Zero { flag } => write!(f, "--{flag} must be greater than 0"),
            ConfigError::MessageNotBelowPayload => {
                f.write_str("--max-message-bytes must be smaller than --max-payload")
            }
            ConfigError::InboundBelowPayload => {
                f.write_str("--inbound-memory must be at least twice --max-payload")
            }
            ConfigError::OutboundBelowQueue => {
                f.write_str("--outbound-memory must be at least twice --max-queue-bytes")
            }
            ConfigError::NoBackupFile => {
                f.write_str("backup needs the file to write: emberchat backup [--db PATH] OUT")
            }
            ConfigError::NoClusterMode => f.write_str(
                "--redis: this emberchat was built without cluster mode; build it with \
                 `make build FEATURES=redis` (README, \"Several boards, one chat\")",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

pub const HELP: &str = "\
emberchat: a small Socket.IO chat gateway

Usage: emberchat [OPTIONS]
       emberchat backup [--db PATH] OUT   copy the database while it is in use (SQLite's
                                          online backup; OUT must not exist)
       emberchat export [--db PATH]       every message as JSON Lines on stdout

Options (each also read from the environment variable shown):
  --listen ADDR:PORT         address to serve on [EMBERCHAT_LISTEN] (default 0.0.0.0:3000)
  --db PATH                  SQLite database file [EMBERCHAT_DB] (default chat.db)
  --synchronous full|normal  SQLite durability [EMBERCHAT_SYNCHRONOUS] (default full)
  --keep-messages N          keep only the newest N messages; older ones are deleted as the
                             chat goes on [EMBERCHAT_KEEP_MESSAGES] (default 0: all)
  --keep-days D              keep only messages stored in the last D days
                             [EMBERCHAT_KEEP_DAYS] (default 0: all)
  --min-free-space BYTES     below this much free space on the database's filesystem, new
                             messages get an error ack and /healthz 503, until there is room
                             [EMBERCHAT_MIN_FREE_SPACE] (default 67108864; 0 = off)
  --ping-interval MS         Engine.IO ping interval [EMBERCHAT_PING_INTERVAL] (default 25000)
  --ping-timeout MS          Engine.IO ping timeout [EMBERCHAT_PING_TIMEOUT] (default 20000)
  --upgrade-timeout MS       WebSocket upgrade timeout [EMBERCHAT_UPGRADE_TIMEOUT] (default 10000)
  --connect-timeout MS       time to join a namespace [EMBERCHAT_CONNECT_TIMEOUT] (default 45000)
  --max-header-bytes BYTES   longest HTTP request head; longer gets HTTP 431
                             [EMBERCHAT_MAX_HEADER_BYTES] (default 16384, at least 8192)
  --header-timeout MS        time for an HTTP request head to arrive
                             [EMBERCHAT_HEADER_TIMEOUT] (default 30000)
  --max-http-connections N   HTTP connections served at once (WebSockets stop counting once
                             upgraded); more wait [EMBERCHAT_MAX_HTTP_CONNECTIONS] (default 1024)
  --max-payload BYTES        largest packet body [EMBERCHAT_MAX_PAYLOAD] (default 1000000)
  --max-message-bytes BYTES  longest chat message [EMBERCHAT_MAX_MESSAGE_BYTES] (default 16384)
  --max-clients N            most clients at once; more get HTTP 503
                             [EMBERCHAT_MAX_CLIENTS] (default 4096)
  --allow-host NAME          a host name browsers may use for this gateway besides addresses,
                             localhost, .local names and this machine's hostname, such as
                             chat.example.org behind a proxy (repeat or comma-separate); any
                             other Host gets 421 [EMBERCHAT_ALLOW_HOST] (default none)
  --allow-origin ORIGIN      a browser origin besides this host that may connect, such as
                             http://laptop.local:8080 (repeat or comma-separate; * for any)
                             [EMBERCHAT_ALLOW_ORIGIN] (default none)
  --max-message-rate N       chat messages per second per client address, bursts of 2N; 0 = off
                             [EMBERCHAT_MAX_MESSAGE_RATE] (default 20)
  --token TOKEN              shared access token clients must send as auth.token
                             [EMBERCHAT_TOKEN] (default none: anyone on the network may chat)
  --max-queue-packets N      packets queued for one client before it is disconnected; chat
                             messages fill half, then it catches up from the database
                             [EMBERCHAT_MAX_QUEUE_PACKETS] (default 4096)
  --max-queue-bytes BYTES    bytes queued for one client before it is disconnected; chat
                             messages fill half [EMBERCHAT_MAX_QUEUE_BYTES] (default 1048576)
  --outbound-memory BYTES    memory all clients' queued packets and frames being written may
                             hold at once; chat messages fill three quarters, then clients
                             catch up from the database; at least twice --max-queue-bytes
                             [EMBERCHAT_OUTBOUND_MEMORY] (default 16777216)
  --inbound-memory BYTES     memory all clients' half-sent messages may hold at once; a
                             client that needs more is disconnected; at least twice
                             --max-payload [EMBERCHAT_INBOUND_MEMORY] (default 16777216)
  --replay-memory BYTES      memory all replays of missed messages may hold at once; more
                             replays wait their turn [EMBERCHAT_REPLAY_MEMORY] (default 8388608)
  --recovery-window MS       connection state recovery window, 0 = off
                             [EMBERCHAT_RECOVERY_WINDOW] (default 120000)
  --redis URL                cluster mode: keep the chat in this Redis's stream, shared with
                             other gateways and Node socket.io servers using socket.io's Redis
                             Streams adapter, instead of the database; redis://[:PASSWORD@]
                             HOST[:PORT][/DB] [EMBERCHAT_REDIS] (default none: one board)
  --redis-stream NAME        the stream's key [EMBERCHAT_REDIS_STREAM] (default socket.io)
  --redis-max-len N          entries the stream keeps, trimmed with MAXLEN ~: the chat's
                             history [EMBERCHAT_REDIS_MAX_LEN] (default 1000000)
  --redis-wait-replicas N    ack a message only once N Redis replicas have it (WAIT); else
                             the client gets the error ack and retries
                             [EMBERCHAT_REDIS_WAIT_REPLICAS] (default 0: once the primary has it)
  --redis-wait-timeout MS    how long to wait for them [EMBERCHAT_REDIS_WAIT_TIMEOUT] (default 1000)
  --log-level LEVEL          error, warn, info, debug or trace [EMBERCHAT_LOG_LEVEL] (default info)
  -h, --help                 print this help
  -V, --version              print the version
";

/// The settable options: flag name and environment variable.
const OPTIONS: &[(&str, &str)] = &[
    ("listen", "EMBERCHAT_LISTEN"),
    ("db", "EMBERCHAT_DB"),
    ("synchronous", "EMBERCHAT_SYNCHRONOUS"),
    ("keep-messages", "EMBERCHAT_KEEP_MESSAGES"),
    ("keep-days", "EMBERCHAT_KEEP_DAYS"),
    ("min-free-space", "EMBERCHAT_MIN_FREE_SPACE"),
    ("ping-interval", "EMBERCHAT_PING_INTERVAL"),
    ("ping-timeout", "EMBERCHAT_PING_TIMEOUT"),
    ("upgrade-timeout", "EMBERCHAT_UPGRADE_TIMEOUT"),
    ("connect-timeout", "EMBERCHAT_CONNECT_TIMEOUT"),
    ("max-payload", "EMBERCHAT_MAX_PAYLOAD"),
    ("max-header-bytes", "EMBERCHAT_MAX_HEADER_BYTES"),
    ("header-timeout", "EMBERCHAT_HEADER_TIMEOUT"),
    ("max-http-connections", "EMBERCHAT_MAX_HTTP_CONNECTIONS"),
    ("max-message-bytes", "EMBERCHAT_MAX_MESSAGE_BYTES"),
    ("recovery-window", "EMBERCHAT_RECOVERY_WINDOW"),
    ("max-queue-packets", "EMBERCHAT_MAX_QUEUE_PACKETS"),
    ("max-clients", "EMBERCHAT_MAX_CLIENTS"),
    ("allow-origin", "EMBERCHAT_ALLOW_ORIGIN"),
    ("allow-host", "EMBERCHAT_ALLOW_HOST"),
    ("token", "EMBERCHAT_TOKEN"),
    ("max-message-rate", "EMBERCHAT_MAX_MESSAGE_RATE"),
    ("replay-memory", "EMBERCHAT_REPLAY_MEMORY"),
    ("inbound-memory", "EMBERCHAT_INBOUND_MEMORY"),
    ("max-queue-bytes", "EMBERCHAT_MAX_QUEUE_BYTES"),
    ("outbound-memory", "EMBERCHAT_OUTBOUND_MEMORY"),
    ("redis", "EMBERCHAT_REDIS"),
    ("redis-stream", "EMBERCHAT_REDIS_STREAM"),
    ("redis-max-len", "EMBERCHAT_REDIS_MAX_LEN"),
    ("redis-wait-replicas", "EMBERCHAT_REDIS_WAIT_REPLICAS"),
    ("redis-wait-timeout", "EMBERCHAT_REDIS_WAIT_TIMEOUT"),
    ("log-level", "EMBERCHAT_LOG_LEVEL"),
];

/// Reads the environment (through `env`) and then the arguments, which take precedence.
/// A first argument `backup` or `export` names a maintenance command instead of serving.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Command, ConfigError> {
    let mut args = args.into_iter().peekable();
    let tool = match args.peek().and_then(|first| first.to_str()) {
        Some(name @ ("backup" | "export")) => Some(name.to_owned()),
        _ => None,
    };
    if let Some(tool) = tool {
        args.next();
        return parse_tool(&tool, args, env);
    }
    let mut config = Config::default();
    for &(flag, variable) in OPTIONS {
        if let Some(value) = env(variable) {
            let origin = Origin::Variable(variable);
            let value = value.into_string().map_err(|_| ConfigError::Value {
                origin,
                problem: BadValue::NotUtf8,
            })?;
            apply(&mut config, flag, &value)
                .map_err(|problem| ConfigError::Value { origin, problem })?;
        }
    }
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(ConfigError::Usage)? {
        match arg {
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Ok(Command::Help),
            lexopt::Arg::Short('V') | lexopt::Arg::Long("version") => return Ok(Command::Version),
            lexopt::Arg::Long(given) if OPTIONS.iter().any(|(f, _)| *f == given) => {
                let flag = OPTIONS
                    .iter()
                    .find_map(|(f, _)| (*f == given).then_some(*f))
                    .expect("checked above");
                let origin = Origin::Flag(flag);
                let value = parser
                    .value()
                    .map_err(ConfigError::Usage)?
                    .into_string()
                    .map_err(|_| ConfigError::Value {
                        origin,
                        problem: BadValue::NotUtf8,
                    })?;
                apply(&mut config, flag, &value)
                    .map_err(|problem| ConfigError::Value { origin, problem })?;
            }
            other => return Err(ConfigError::Usage(other.unexpected())),
        }
    }
    validate(&config)?;
    config.socketio.max_attachment_bytes = config.engine.max_payload;
    Ok(Command::Run(Box::new(config)))
}

/// `backup [--db PATH] OUT` and `export [--db PATH]`; the database defaults to
/// `EMBERCHAT_DB`, then `chat.db`, as for serving.
fn parse_tool(
    tool: &str,
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Command, ConfigError> {
    let mut db = env("EMBERCHAT_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| Config::default().db);
    let mut out = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(ConfigError::Usage)? {
        match arg {
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Ok(Command::Help),
            lexopt::Arg::Long("db") => {
                db = PathBuf::from(parser.value().map_err(ConfigError::Usage)?);
            }
            lexopt::Arg::Value(file) if tool == "backup" && out.is_none() => {
                out = Some(PathBuf::from(file));
            }
            other => return Err(ConfigError::Usage(other.unexpected())),
        }
    }
    match tool {
        "backup" => Ok(Command::Backup {
            db,
            out: out.ok_or(ConfigError::NoBackupFile)?,
        }),
        _ => Ok(Command::Export { db }),
    }
}

fn apply(config: &mut Config, flag: &str, value: &str) -> Result<(), BadValue> {
    match flag {
        "listen" => {
            config.listen = value
                .parse()
                .map_err(|_| BadValue::NotAnAddress(value.to_owned()))?;
        }
        "db" => config.db = PathBuf::from(value),
        "synchronous" => {
            config.synchronous = match value.to_ascii_lowercase().as_str() {
                "full" => Synchronous::Full,
                "normal" => Synchronous::Normal,
                _ => return Err(BadValue::NotASynchronousMode(value.to_owned())),
            };
        }
        // 0 keeps everything, as leaving the setting out does.
        "keep-messages" => {
            config.retention.keep_messages = Some(number(value)? as u64).filter(|&n| n > 0);
        }
        "keep-days" => {
            let days = u32::try_from(number(value)?)
                .map_err(|_| BadValue::NotAWholeNumber(value.to_owned()))?;
            config.retention.keep_days = Some(days).filter(|&n| n > 0);
        }
        "min-free-space" => config.min_free_space = number(value)? as u64,
        "ping-interval" => config.engine.ping_interval = millis(value)?,
        "ping-timeout" => config.engine.ping_timeout = millis(value)?,
        "upgrade-timeout" => config.engine.upgrade_timeout = millis(value)?,
        "connect-timeout" => config.socketio.connect_timeout = millis(value)?,
        "max-payload" => config.engine.max_payload = number(value)?,
        "max-header-bytes" => {
            let bytes = number(value)?;
            if bytes < MIN_HEADER_BYTES {
                return Err(BadValue::BelowMinimum {
                    value: bytes,
                    minimum: MIN_HEADER_BYTES,
                });
            }
            config.http.max_header_bytes = bytes;
        }
        "header-timeout" => config.http.header_timeout = millis(value)?,
        "max-http-connections" => config.http.max_connections = number(value)?,
        "max-message-bytes" => config.chat.max_message_bytes = number(value)?,
        "max-queue-packets" => config.engine.max_queue_packets = number(value)?,
        "replay-memory" => config.chat.replay_memory = number(value)?,
        "inbound-memory" => config.engine.inbound_memory = number(value)?,
        "outbound-memory" => config.engine.outbound_memory = number(value)?,
        "max-clients" => config.engine.max_sessions = number(value)?,
        "max-message-rate" => {
            config.chat.max_message_rate = value
                .parse()
                .map_err(|_| BadValue::NotAWholeNumber(value.to_owned()))?;
        }
        "token" => {
            if value.is_empty() {
                return Err(BadValue::EmptyToken);
            }
            config.chat.token = Some(value.to_owned());
        }
        "allow-host" => {
            for host in value.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                let valid = host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !valid {
                    return Err(BadValue::NotAHostName(host.to_owned()));
                }
                config.allowed_hosts.push(host.to_owned());
            }
        }
        "allow-origin" => {
            for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if origin != "*"
                    && !(origin.starts_with("http://") || origin.starts_with("https://"))
                {
                    return Err(BadValue::NotAnOrigin(origin.to_owned()));
                }
                config
                    .engine
                    .allowed_origins
                    .push(origin.trim_end_matches('/').to_owned());
            }
        }
        "max-queue-bytes" => config.engine.max_queue_bytes = number(value)?,
        "recovery-window" => {
            let window = millis(value)?;
            config.socketio.recovery_window = (!window.is_zero()).then_some(window);
            config.chat.recovery_offsets = !window.is_zero();
        }
        "redis" => {
            config.redis = Some(RedisAddress::parse(value).map_err(BadValue::NotARedisAddress)?);
        }
        "redis-stream" => {
            let valid =
                (1..=200).contains(&value.len()) && value.chars().all(|c| c.is_ascii_graphic());
            if !valid {
                return Err(BadValue::NotAStreamName(value.to_owned()));
            }
            config.redis_stream = value.to_owned();
        }
        "redis-max-len" => config.redis_max_len = number(value)? as u64,
        "redis-wait-replicas" => {
            config.redis_wait_replicas = value
                .parse()
                .map_err(|_| BadValue::NotAWholeNumber(value.to_owned()))?;
        }
        "redis-wait-timeout" => config.redis_wait_timeout = millis(value)?,
        "log-level" => {
            config.log_level = value
                .parse()
                .map_err(|_| BadValue::NotALogLevel(value.to_owned()))?;
        }
        _ => unreachable!("flag {flag} is listed in OPTIONS"),
    }
    Ok(())
}

fn number(value: &str) -> Result<usize, BadValue> {
    value
        .parse()
        .map_err(|_| BadValue::NotAWholeNumber(value.to_owned()))
}

fn millis(value: &str) -> Result<Duration, BadValue> {
    let ms: u64 = value
        .parse()
        .map_err(|_| BadValue::NotMilliseconds(value.to_owned()))?;
    Ok(Duration::from_millis(ms))
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    let positive = [
        ("ping-interval", config.engine.ping_interval.as_millis()),
        ("ping-timeout", config.engine.ping_timeout.as_millis()),
        ("upgrade-timeout", config.engine.upgrade_timeout.as_millis()),
        (
            "connect-timeout",
            config.socketio.connect_timeout.as_millis(),
        ),
        ("max-payload", config.engine.max_payload as u128),
        ("max-message-bytes", config.chat.max_message_bytes as u128),
        ("max-queue-packets", config.engine.max_queue_packets as u128),
        ("max-queue-bytes", config.engine.max_queue_bytes as u128),
        ("max-clients", config.engine.max_sessions as u128),
        ("max-http-connections", config.http.max_connections as u128),
        ("replay-memory", config.chat.replay_memory as u128),
        ("inbound-memory", config.engine.inbound_memory as u128),
        ("outbound-memory", config.engine.outbound_memory as u128),
        ("redis-max-len", config.redis_max_len as u128),
    ];
    for (flag, value) in positive {
        if value == 0 {
            return Err(ConfigError::Zero { flag });
        }
    }
    if config.redis.is_some() && !cfg!(feature = "redis") {
        return Err(ConfigError::NoClusterMode);
    }
    if config.chat.max_message_bytes >= config.engine.max_payload {
        return Err(ConfigError::MessageNotBelowPayload);
    }
    // A frame in parts and the fragments before it: two payloads, for one client at least.
    if config.engine.inbound_memory < config.engine.max_payload.saturating_mul(2) {
        return Err(ConfigError::InboundBelowPayload);
    }
    if config.engine.outbound_memory < config.engine.max_queue_bytes.saturating_mul(2) {
        return Err(ConfigError::OutboundBelowQueue);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let command = parse(args.iter().map(OsString::from), |name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        })?;
        match command {
            Command::Run(config) => Ok(*config),
            other => panic!("{other:?}"),
        }
    }

    use std::path::Path;

    fn command(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        parse(args.iter().map(OsString::from), |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn reads_the_retention() {
        assert_eq!(run(&[], &[]).unwrap().retention, Retention::default());
        let config = run(
            &["--keep-messages", "5000"],
            &[("EMBERCHAT_KEEP_DAYS", "30")],
        )
        .unwrap();
        assert_eq!(
            config.retention,
            Retention {
                keep_messages: Some(5000),
                keep_days: Some(30)
            }
        );
        // 0 keeps everything.
        let zero = run(&["--keep-messages", "0", "--keep-days", "0"], &[]).unwrap();
        assert!(zero.retention.keeps_everything());
        assert!(run(&["--keep-days", "-1"], &[]).is_err());
        assert!(run(&["--keep-days", "99999999999"], &[]).is_err());
    }

    #[test]
    fn reads_the_maintenance_commands() {
        let backup = command(&["backup", "--db", "a.db", "copy.db"], &[]).unwrap();
        assert!(matches!(
            backup,
            Command::Backup { ref db, ref out } if db == Path::new("a.db") && out == Path::new("copy.db")
        ));
        let export = command(&["export"], &[("EMBERCHAT_DB", "/var/lib/e/chat.db")]).unwrap();
        assert!(matches!(
            export,
            Command::Export { ref db } if db == Path::new("/var/lib/e/chat.db")
        ));
        assert!(matches!(
            command(&["export"], &[]).unwrap(),
            Command::Export { ref db } if db == Path::new("chat.db")
        ));
        assert!(matches!(
            command(&["backup"], &[]),
            Err(ConfigError::NoBackupFile)
        ));
        for bad in [
            &["backup", "a", "b"][..],
            &["export", "out.json"],
            &["export", "--listen", "x"],
        ] {
            assert!(
                matches!(command(bad, &[]), Err(ConfigError::Usage(_))),
                "{bad:?}"
            );
        }
        // Only as the first word: elsewhere it is a stray argument.
        assert!(command(&["--db", "x.db", "backup"], &[]).is_err());
    }

    #[test]
    fn defaults_match_socket_io() {
        let config = run(&[], &[]).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(config.db, PathBuf::from("chat.db"));
        assert_eq!(config.engine.ping_interval, Duration::from_secs(25));
        assert_eq!(config.engine.ping_timeout, Duration::from_secs(20));
        assert_eq!(config.engine.upgrade_timeout, Duration::from_secs(10));
        assert_eq!(config.engine.max_payload, 1_000_000);
        assert_eq!(config.socketio.connect_timeout, Duration::from_secs(45));
        assert_eq!(config.synchronous, Synchronous::Full);
        assert_eq!(
            config.socketio.recovery_window,
            Some(Duration::from_secs(120))
        );
        assert!(config.chat.recovery_offsets);
        let off = run(&["--recovery-window", "0"], &[]).unwrap();
        assert_eq!(off.socketio.recovery_window, None);
        assert!(!off.chat.recovery_offsets);
    }

    #[test]
    fn flags_override_environment() {
        let config = run(
            &["--listen", "127.0.0.1:4000", "--ping-interval=300"],
            &[
                ("EMBERCHAT_LISTEN", "127.0.0.1:5000"),
                ("EMBERCHAT_DB", "/tmp/x.db"),
            ],
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:4000");
        assert_eq!(config.db, PathBuf::from("/tmp/x.db"));
        assert_eq!(config.engine.ping_interval, Duration::from_millis(300));
    }

    #[test]
    fn bad_values_are_explained() {
        let error = run(&["--listen", "nowhere"], &[]).unwrap_err();
        assert!(matches!(
            &error,
            ConfigError::Value {
                origin: Origin::Flag("listen"),
                problem: BadValue::NotAnAddress(value),
            } if value == "nowhere"
        ));
        assert_eq!(
            error.to_string(),
            "--listen: `nowhere` is not an address like 0.0.0.0:3000"
        );
        let error = run(&[], &[("EMBERCHAT_PING_TIMEOUT", "soon")]).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Value {
                origin: Origin::Variable("EMBERCHAT_PING_TIMEOUT"),
                problem: BadValue::NotMilliseconds(_),
            }
        ));
        assert!(matches!(
            run(&["--ping-interval", "0"], &[]),
            Err(ConfigError::Zero {
                flag: "ping-interval"
            })
        ));
        assert!(matches!(run(&["--bogus"], &[]), Err(ConfigError::Usage(_))));
        assert!(matches!(
            run(&["--synchronous", "sometimes"], &[]),
            Err(ConfigError::Value {
                problem: BadValue::NotASynchronousMode(_),
                ..
            })
        ));
        assert!(matches!(
            run(&["--max-header-bytes", "100"], &[]),
            Err(ConfigError::Value {
                problem: BadValue::BelowMinimum {
                    value: 100,
                    minimum: 8192
                },
                ..
            })
        ));
        assert!(matches!(
            run(&["--max-message-bytes", "2000000"], &[]),
            Err(ConfigError::MessageNotBelowPayload)
        ));
        assert!(matches!(
            run(&["--inbound-memory", "1500000"], &[]),
            Err(ConfigError::InboundBelowPayload)
        ));
        assert!(matches!(
            run(&["--outbound-memory", "1500000"], &[]),
            Err(ConfigError::OutboundBelowQueue)
        ));
    }

    #[test]
    fn origins_accumulate() {
        let config = run(
            &[
                "--allow-origin",
                "http://a:1,https://b/",
                "--allow-origin=*",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            config.engine.allowed_origins,
            ["http://a:1", "https://b", "*"]
        );
        assert!(matches!(
            run(&["--allow-origin", "evil.example"], &[]),
            Err(ConfigError::Value {
                problem: BadValue::NotAnOrigin(_),
                ..
            })
        ));
    }

    #[test]
    fn hosts_accumulate_and_must_be_names() {
        let config = run(
            &[
                "--allow-host",
                "chat.example.org, pi-2",
                "--allow-host=x.lan",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.allowed_hosts, ["chat.example.org", "pi-2", "x.lan"]);
        for bad in ["chat.example.org:8080", "http://x", "a b"] {
            assert!(
                matches!(
                    run(&["--allow-host", bad], &[]),
                    Err(ConfigError::Value {
                        problem: BadValue::NotAHostName(_),
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn help_and_version() {
        let parsed = parse([OsString::from("--help")], |_| None).unwrap();
        assert!(matches!(parsed, Command::Help));
        let parsed = parse([OsString::from("-V")], |_| None).unwrap();
        assert!(matches!(parsed, Command::Version));
    }
}
