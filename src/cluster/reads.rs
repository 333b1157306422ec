//! Reads of the shared stream: replay and history pages, the window of the newest messages,
//! and the health check, on a connection of their own (opened when first needed, and again
//! after a failure).
//!
//! Pages hold only the chat's messages: entries that are not (other namespaces, other
//! events, garbage) are skipped with a log line, and a read goes on past them until it has a
//! message or reaches the end, so that a run of skipped entries never looks like the end of
//! the stream to a replay.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::connect::connect;
use super::entry::{self, Skip};
use super::model::StreamSettings;
use super::session;
use super::stream_id::StreamId;
use crate::logger::Throttle;
use crate::store::{PageLimit, PageRange, Row, StoreError, Window};

/// A read that takes longer than this has failed (Redis answers in microseconds).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Skipped messages a window counts before it says "more" (each count reads entries).
const WINDOW_COUNT_CAP: u64 = 1000;
/// Entries read at a time while counting or skipping.
const SCAN_COUNT: usize = 100;

/// One entry of a range read: its id and fields.
pub struct RawEntry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

pub struct Reads {
    settings: Rc<StreamSettings>,
    connection: RefCell<Option<MultiplexedConnection>>,
}

impl Reads {
    pub fn new(settings: Rc<StreamSettings>) -> Reads {
        Reads {
            settings,
            connection: RefCell::new(None),
        }
    }

    /// Answers PING: Redis is there.
    pub async fn check(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let answer: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
        self.settle(answer.map(drop))
    }

    /// Keeps the recovery record of socket `sid` (private id `pid`) for `window`.
    pub async fn save_session(
        &self,
        pid: &str,
        sid: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let answer: redis::RedisResult<()> = redis::cmd("SET")
            .arg(session::key(pid))
            .arg(session::encode(sid, pid))
            .arg("PX")
            .arg(window.as_millis().max(1) as u64)
            .query_async(&mut connection)
            .await;
        self.settle(answer)
    }

    /// Forgets `pid`'s recovery record.
    pub async fn forget_session(&self, pid: &str) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let answer: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(session::key(pid))
            .query_async(&mut connection)
            .await;
        self.settle(answer)
    }

    /// Takes `pid`'s recovery record (GET and DEL in one transaction, as the adapter does):
    /// the socket id it names, when it is a record of that pid.
    pub async fn take_session(&self, pid: &str) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection().await?;
        let key = session::key(pid);
        let answer: redis::RedisResult<(Option<Vec<u8>>,)> = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .query_async(&mut connection)
            .await;
        let (record,) = self.settle(answer)?;
        Ok(record
            .and_then(|record| session::decode(&record))
            .filter(|(_, owner)| owner == pid)
            .map(|(sid, _)| sid))
    }

    /// The chat's messages in `range`, in stream order, within `limit`.
    pub async fn page(&self, range: PageRange, limit: PageLimit) -> Result<Vec<Row>, StoreError> {
        let count = limit.rows.max(1);
        let (mut start, end, backwards) = match range {
            PageRange::Between { after, before } => (
                exclusive(after),
                if before == i64::MAX {
                    "+".to_owned()
                } else {
                    exclusive(before)
                },
                false,
            ),
            PageRange::Before(before) => (exclusive(before), "-".to_owned(), true),
        };
        loop {
            let entries = if backwards {
                self.range("XREVRANGE", &start, &end, count).await?
            } else {
                self.range("XRANGE", &start, &end, count).await?
            };
            let read = entries.len();
            let Some(last) = entries.last().map(|entry| entry.id) else {
                return Ok(Vec::new());
            };
            let mut rows = Vec::new();
            let mut bytes = 0;
            for raw in entries {
                if bytes >= limit.bytes {
                    break;
                }
                if let Some(row) = self.row(raw) {
                    bytes += row.size();
                    rows.push(row);
                }
            }
            if !rows.is_empty() || read < count {
                if backwards {
                    rows.reverse();
                }
                return Ok(rows);
            }
            // A whole read of skipped entries: go on after them.
            start = format!("({last}");
        }
    }

    /// Where a replay of at most the `newest` messages in `after < key <= upto` starts, and
    /// how many it skips (counted up to a cap).
    pub async fn window(&self, after: i64, upto: i64, newest: usize) -> Result<Window, StoreError> {
        let end = if upto == i64::MAX {
            "+".to_owned()
        } else {
            StreamId::from_key(upto).to_string()
        };
        let newest_entries = self
            .range("XREVRANGE", &end, &exclusive(after), newest.max(1))
            .await?;
        let trimmed = after > 0 && self.trimmed_after(after).await?;
        let everything = Window {
            start_after: after,
            skipped: 0,
            more: false,
            trimmed,
        };
        if newest_entries.len() < newest.max(1) {
            return Ok(everything);
        }
        let Some(first_kept) = newest_entries.last().and_then(|entry| entry.id.key()) else {
            return Ok(everything);
        };
        drop(newest_entries);
        // Count what lies before the window, a few entries at a time.
        let mut counted = 0u64;
        let mut start = exclusive(after);
        let end = exclusive(first_kept);
        while counted <= WINDOW_COUNT_CAP {
            let entries = self.range("XRANGE", &start, &end, SCAN_COUNT).await?;
            let read = entries.len();
            let Some(last) = entries.last().map(|entry| entry.id) else {
                break;
            };
            counted += entries.iter().filter(|raw| self.decodes(raw)).count() as u64;
            if read < SCAN_COUNT {
                break;
            }
            start = format!("({last}");
        }
        Ok(Window {
            start_after: if counted == 0 { after } else { first_kept - 1 },
            skipped: counted.min(WINDOW_COUNT_CAP),
            more: counted > WINDOW_COUNT_CAP,
            trimmed,
        })
    }

    /// Whether entries after `after` were trimmed away (MAXLEN): the stream now starts after
    /// it (`recorded-first-entry-id` of XINFO STREAM, Redis 7). Stream ids are not dense, so
    /// this also says so when only the entry at `after` itself went, which the client had.
    async fn trimmed_after(&self, after: i64) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        let answer: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&self.settings.stream)
            .query_async(&mut connection)
            .await;
        let info = match answer {
            Ok(info) => info,
            // No stream yet: nothing was trimmed.
            Err(error)
                if error.kind()
                    == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                return Ok(false);
            }
            Err(error) => return self.settle(Err(error)),
        };
        Ok(first_entry(info).is_some_and(|first| StreamId::from_key(after) < first))
    }

    /// XRANGE or XREVRANGE from `start` to `end` (as Redis takes them), at most `count`.
    async fn range(
        &self,
        command: &str,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<RawEntry>, StoreError> {
        let mut connection = self.connection().await?;
        let answer: Result<Value, _> = redis::cmd(command)
            .arg(&self.settings.stream)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await;
        let value = self.settle(answer)?;
        entries(value).ok_or_else(|| StoreError::Redis(format!("unexpected {command} reply")))
    }

    /// A message for a page, or `None` (logged) for an entry that is not one.
    fn row(&self, raw: RawEntry) -> Option<Row> {
        let key = keyed(raw.id)?;
        let fields = raw.fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
        match entry::decode(fields, self.settings.max_message_bytes) {
            Ok(chat) => Some(Row {
                id: key,
                content: chat.content,
                name: chat.name,
                time: chat.time,
            }),
            Err(skip) => {
                skipped(raw.id, &skip);
                None
            }
        }
    }

    fn decodes(&self, raw: &RawEntry) -> bool {
        let fields = raw.fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
        raw.id.key().is_some() && entry::decode(fields, self.settings.max_message_bytes).is_ok()
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let existing = self.connection.borrow().clone();
        if let Some(connection) = existing {
            return Ok(connection);
        }
        let connection = connect(&self.settings.address, Some(READ_TIMEOUT))
            .await
            .map_err(|error| StoreError::Redis(error.to_string()))?;
        *self.connection.borrow_mut() = Some(connection.clone());
        Ok(connection)
    }

    /// Passes an answer on; after a failure the next read opens a new connection.
    fn settle<T>(&self, answer: redis::RedisResult<T>) -> Result<T, StoreError> {
        answer.map_err(|error| {
            if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
                self.connection.borrow_mut().take();
            }
            StoreError::Redis(error.to_string())
        })
    }
}

/// `recorded-first-entry-id` from an XINFO STREAM reply (pairs of field and value); none
/// for an empty stream.
fn first_entry(info: Value) -> Option<StreamId> {
    let fields = match info {
        Value::Array(fields) => fields,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    let mut fields = fields.into_iter();
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        if bytes(key).as_deref() == Some(b"recorded-first-entry-id".as_slice()) {
            return StreamId::parse(std::str::from_utf8(&bytes(value)?).ok()?)
                .filter(|&first| first != StreamId::START);
        }
    }
    None
}

/// `(id`: the stream after the entry a key stands for.
fn exclusive(key: i64) -> String {
    format!("({}", StreamId::from_key(key))
}

/// The hub's number for an entry id, logging the (hand-made) ids beyond it.
pub fn keyed(id: StreamId) -> Option<i64> {
    let key = id.key();
    if key.is_none() {
        SKIPPED.log(
            log::Level::Warn,
            format_args!(
                "stream entry {id} skipped: its id is outside what emberchat numbers (before \
                 2024, or more than 4096 entries in one millisecond: is Redis's clock right?)"
            ),
        );
    }
    key
}

/// Logs an entry that is not delivered: garbage at warn, others' traffic at debug.
pub fn skipped(id: StreamId, skip: &Skip) {
    match skip {
        Skip::NotChat | Skip::Unsupported(_) => {
            log::debug!("stream entry {id} skipped: {skip}")
        }
        Skip::Malformed(_) | Skip::TooLong(_) => SKIPPED.log(
            log::Level::Warn,
            format_args!("stream entry {id} skipped: {skip}"),
        ),
    }
}

/// Bad entries are logged, but one writer must not be able to flood the log.
static SKIPPED: Throttle = Throttle::new(20, Duration::from_secs(60));

/// The entries of an XRANGE/XREVRANGE reply: `[[id, [field, value, …]], …]`.
pub fn entries(value: Value) -> Option<Vec<RawEntry>> {
    let Value::Array(items) = value else {
        return None;
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else {
            return None;
        };
        if parts.len() != 2 {
            return None;
        }
        let fields = parts.pop()?;
        let id = match parts.pop()? {
            Value::BulkString(id) => StreamId::parse(std::str::from_utf8(&id).ok()?)?,
            Value::SimpleString(id) => StreamId::parse(&id)?,
            _ => return None,
        };
        let Value::Array(fields) = fields else {
            return None;
        };
        let mut pairs = Vec::with_capacity(fields.len() / 2);
        let mut fields = fields.into_iter();
        while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
            pairs.push((bytes(key)?, bytes(value)?));
        }
        entries.push(RawEntry { id, fields: pairs });
    }
    Some(entries)
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn reads_a_range_reply() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("1733312345678-0"),
                Value::Array(vec![bulk("uid"), bulk("a"), bulk("nsp"), bulk("/")]),
            ]),
            Value::Array(vec![bulk("1733312345678-1"), Value::Array(vec![])]),
        ]);
        let entries = entries(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id.to_string(), "1733312345678-0");
        assert_eq!(entries[0].fields[1], (b"nsp".to_vec(), b"/".to_vec()));
        assert!(entries[1].fields.is_empty());
    }

    #[test]
    fn refuses_a_reply_of_another_shape() {
        assert!(entries(Value::Nil).is_none());
        assert!(entries(Value::Array(vec![bulk("x")])).is_none());
        assert!(
            entries(Value::Array(vec![Value::Array(vec![
                bulk("nope"),
                Value::Array(vec![])
            ])]))
            .is_none()
        );
    }
}
