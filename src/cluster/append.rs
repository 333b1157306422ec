//! Appending to the shared stream: each `chat message` becomes one entry, written by a Lua
//! script that also remembers the message's client offset, so that a retry (on this gateway
//! or another) gets the first entry's id back instead of adding a second one. Scripts run
//! atomically in Redis, so two gateways racing with the same offset store it once.
//!
//! Inserts are sent as they come, many in flight on one multiplexed connection, and their
//! outcomes return in request order, as the SQLite store's do. While Redis is away, messages
//! get their error at once (the client may retry) and the connection is tried again after a
//! pause that grows to 5 s.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use super::connect::{Backoff, connect};
use super::entry;
use super::model::StreamSettings;
use super::stream_id::StreamId;
use crate::logger::Throttle;
use crate::store::{Committed, Insert, Outcome, StoreError};

/// KEYS[1] the stream; KEYS[2], when the message has a client offset, where its entry's id
/// is kept. ARGV: the stream's length (trimmed with `~`), this gateway's uid, the adapter's
/// `data`, the time, the name ('' for none), how long an offset is kept (ms).
/// Returns {1, id} for a new entry, {0, id} for an offset seen before.
const APPEND: &str = r"
if KEYS[2] then
  local first = redis.call('GET', KEYS[2])
  if first then return {0, first} end
end
local id
if ARGV[5] ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', '/',
    'type', '3', 'data', ARGV[3], 'time', ARGV[4], 'name', ARGV[5])
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', '/',
    'type', '3', 'data', ARGV[3], 'time', ARGV[4])
end
if KEYS[2] then redis.call('SET', KEYS[2], id, 'PX', ARGV[6]) end
return {1, id}
";

/// Inserts sent together at most (each is its own script call, pipelined).
const MAX_BATCH: usize = 256;
/// A script call that takes longer than this has failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The appender's connection, and when to try again while Redis is away.
struct Link {
    connection: Option<MultiplexedConnection>,
    retry_at: Instant,
    backoff: Backoff,
    /// Redis is known to be away: logged once per outage.
    down: bool,
}

impl Link {
    async fn connection(
        &mut self,
        settings: &StreamSettings,
    ) -> Result<MultiplexedConnection, StoreError> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        if self.down && Instant::now() < self.retry_at {
            return Err(unreachable());
        }
        // A WAIT for replicas answers within its own timeout: leave it room.
        let timeout = APPEND_TIMEOUT.max(settings.wait_timeout + Duration::from_secs(1));
        match connect(&settings.address, Some(timeout)).await {
            Ok(connection) => {
                if self.down {
                    log::info!(
                        "Redis at {} is back: messages are stored again",
                        settings.address
                    );
                }
                self.down = false;
                self.backoff.reset();
                self.connection = Some(connection.clone());
                Ok(connection)
            }
            Err(error) => {
                self.failed(settings, &error);
                Err(unreachable())
            }
        }
    }

    fn failed(&mut self, settings: &StreamSettings, error: &redis::RedisError) {
        self.connection = None;
        if !self.down {
            log::error!(
                "Redis at {} cannot take messages ({error}): they get an error ack until it \
                 is back",
                settings.address
            );
        }
        self.down = true;
        self.retry_at = Instant::now() + self.backoff.pause();
    }
}

fn unreachable() -> StoreError {
    StoreError::Redis("the shared log is unreachable".into())
}

/// Appends what arrives on `inserts` and sends each outcome on `results`, in order.
pub async fn run(
    settings: Rc<StreamSettings>,
    uid: Rc<str>,
    mut inserts: UnboundedReceiver<Insert>,
    results: UnboundedSender<Vec<Committed>>,
    queued: Rc<Cell<usize>>,
) {
    let script: Rc<str> = APPEND.into();
    let mut link = Link {
        connection: None,
        retry_at: Instant::now(),
        backoff: Backoff::new(),
        down: false,
    };
    while let Some(first) = inserts.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inserts.try_recv() {
                Ok(insert) => batch.push(insert),
                Err(_) => break,
            }
        }
        let time = now_ms();
        let outcomes = match link.connection(&settings).await {
            Ok(connection) => {
                let calls: Vec<_> = batch
                    .iter()
                    .map(|insert| {
                        tokio::task::spawn_local(append(
                            connection.clone(),
                            script.clone(),
                            settings.clone(),
                            uid.clone(),
                            insert.clone(),
                            time,
                        ))
                    })
                    .collect();
                let mut outcomes = Vec::with_capacity(calls.len());
                for call in calls {
                    let outcome = match call.await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(error)) => {
                            if error.is_io_error()
                                || error.is_timeout()
                                || error.is_connection_dropped()
                            {
                                link.failed(&settings, &error);
                            } else {
                                log::warn!("Redis refused a message: {error}");
                            }
                            Outcome::Failed(StoreError::Redis(error.to_string()))
                        }
                        Err(_) => Outcome::Failed(StoreError::Stopped),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
            Err(error) => vec![Outcome::Failed(error); batch.len()],
        };
        let outcomes = match link.connection.clone() {
            Some(connection) if settings.wait_replicas > 0 => {
                replicated(connection, &settings, outcomes).await
            }
            _ => outcomes,
        };
        queued.set(queued.get().saturating_sub(batch.len()));
        let committed = batch
            .into_iter()
            .zip(outcomes)
            .map(|(insert, outcome)| Committed {
                insert,
                outcome,
                time,
            })
            .collect();
        if results.send(committed).is_err() {
            break;
        }
    }
}

/// With `--redis-wait-replicas`: the batch's stored messages are acked only once that many
/// replicas have everything this connection wrote (WAIT); otherwise they get the error ack,
/// and the client's retry finds them by their offset (and waits again).
async fn replicated(
    mut connection: MultiplexedConnection,
    settings: &StreamSettings,
    outcomes: Vec<Outcome>,
) -> Vec<Outcome> {
    if !outcomes
        .iter()
        .any(|outcome| matches!(outcome, Outcome::Stored(_) | Outcome::Duplicate(_)))
    {
        return outcomes;
    }
    let answer: redis::RedisResult<u32> = redis::cmd("WAIT")
        .arg(settings.wait_replicas)
        .arg(settings.wait_timeout.as_millis() as u64)
        .query_async(&mut connection)
        .await;
    let problem = match answer {
        Ok(replicas) if replicas >= settings.wait_replicas => return outcomes,
        Ok(replicas) => format!(
            "only {replicas} of {} replicas have it after {} ms",
            settings.wait_replicas,
            settings.wait_timeout.as_millis()
        ),
        Err(error) => error.to_string(),
    };
    WAIT_FAILED.log(
        log::Level::Warn,
        format_args!("messages not acked: {problem}"),
    );
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Stored(_) | Outcome::Duplicate(_) => {
                Outcome::Failed(StoreError::Redis(problem.clone()))
            }
            failed => failed,
        })
        .collect()
}

/// Replicas falling behind: one line per batch would flood the log.
static WAIT_FAILED: Throttle = Throttle::new(5, Duration::from_secs(60));

/// One script call: the outcome of one insert.
async fn append(
    mut connection: MultiplexedConnection,
    script: Rc<str>,
    settings: Rc<StreamSettings>,
    uid: Rc<str>,
    insert: Insert,
    time: i64,
) -> redis::RedisResult<Outcome> {
    let mut call = redis::cmd("EVAL");
    call.arg(&*script)
        .arg(if insert.client_offset.is_some() { 2 } else { 1 })
        .arg(settings.stream.as_str());
    if let Some(offset) = &insert.client_offset {
        call.arg(offset_key(&settings.stream, offset));
    }
    call.arg(settings.max_len)
        .arg(&*uid)
        .arg(entry::broadcast_data(&insert.content))
        .arg(time)
        .arg(insert.name.as_deref().unwrap_or(""))
        .arg(settings.offset_lifetime.as_millis() as u64);
    let answer: Value = call.query_async(&mut connection).await?;
    Ok(outcome(answer))
}

/// Where a client offset's entry id is kept.
fn offset_key(stream: &str, offset: &str) -> String {
    format!("emberchat:{stream}:offset:{offset}")
}

/// The script's `{new, id}` as an insert's outcome.
fn outcome(answer: Value) -> Outcome {
    let parsed = match &answer {
        Value::Array(parts) => match parts.as_slice() {
            [Value::Int(new), Value::BulkString(id)] => std::str::from_utf8(id)
                .ok()
                .and_then(StreamId::parse)
                .map(|id| (*new == 1, id)),
            _ => None,
        },
        _ => None,
    };
    let Some((new, id)) = parsed else {
        return Outcome::Failed(StoreError::Redis(format!(
            "unexpected answer from the append script: {answer:?}"
        )));
    };
    match id.key() {
        Some(key) if new => Outcome::Stored(key),
        Some(key) => Outcome::Duplicate(key),
        // Stored, but under an id the chat cannot number (see stream_id): the tail skips
        // it with a warning, and the client hears that it was not stored.
        None => Outcome::Failed(StoreError::Redis(format!(
            "entry {id} is outside what emberchat numbers"
        ))),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_answer() {
        let id = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let key = StreamId::parse("1733312345678-2").unwrap().key().unwrap();
        assert_eq!(
            outcome(Value::Array(vec![Value::Int(1), id("1733312345678-2")])),
            Outcome::Stored(key)
        );
        assert_eq!(
            outcome(Value::Array(vec![Value::Int(0), id("1733312345678-2")])),
            Outcome::Duplicate(key)
        );
        for odd in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(1), id("x")]),
            Value::Array(vec![Value::Int(1), id("5-0")]),
        ] {
            assert!(matches!(outcome(odd), Outcome::Failed(_)));
        }
    }

    #[test]
    fn offsets_are_kept_per_stream() {
        assert_eq!(
            offset_key("socket.io", "a-1"),
            "emberchat:socket.io:offset:a-1"
        );
    }
}
