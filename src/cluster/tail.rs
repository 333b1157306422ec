//! The tail of the shared stream: each gateway reads every entry, in stream order, on a
//! connection of its own (XREAD BLOCK), and hands the chat's messages to the chat, which
//! broadcasts them. A gateway's own messages come back this way too, so every receiver on
//! every gateway sees one order: the stream's.
//!
//! It starts at the stream's end (what is older reaches clients by replay) and, after Redis
//! goes away and comes back, goes on after the last entry it read: no gap, no repeat.

use std::rc::Rc;
use std::time::Duration;

use redis::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::connect::{Backoff, connect};
use super::entry;
use super::model::{Delivered, StreamSettings, TailEvent};
use super::reads::{self, RawEntry};
use super::stream_id::StreamId;

/// Entries read at a time, and how long one read waits for new ones.
const READ_COUNT: usize = 100;
const BLOCK_MS: u64 = 5000;
/// A blocking read answers within its block time; give up well after it.
const READ_TIMEOUT: Duration = Duration::from_millis(BLOCK_MS + 5000);

pub async fn run(settings: Rc<StreamSettings>, events: UnboundedSender<TailEvent>) {
    let mut position: Option<StreamId> = None;
    let mut backoff = Backoff::new();
    let mut down = false;
    loop {
        let mut connection = match connect(&settings.address, Some(READ_TIMEOUT)).await {
            Ok(connection) => connection,
            Err(error) => {
                if !down {
                    log::error!(
                        "Redis at {} is unreachable ({error}): no messages from the shared \
                         log until it is back",
                        settings.address
                    );
                    down = true;
                }
                tokio::time::sleep(backoff.pause()).await;
                continue;
            }
        };
        if down {
            log::info!(
                "Redis at {} is back: reading the shared log again",
                settings.address
            );
            down = false;
        }
        backoff.reset();
        let start = match position {
            Some(position) => position,
            None => {
                let last: Result<Value, _> = redis::cmd("XREVRANGE")
                    .arg(&settings.stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut connection)
                    .await;
                let Some(last) = last.ok().and_then(reads::entries) else {
                    tokio::time::sleep(backoff.pause()).await;
                    continue;
                };
                let last = last.first().map_or(StreamId::START, |entry| entry.id);
                // An end the chat cannot number (only a hand-made id) starts it from 0.
                let key = last.key().unwrap_or(0);
                log::debug!("the shared log {} ends at {last}", settings.stream);
                if events.send(TailEvent::Positioned(key)).is_err() {
                    return;
                }
                position = Some(last);
                last
            }
        };
        let mut at = start;
        loop {
            let answer: Result<Value, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&settings.stream)
                .arg(at.to_string())
                .query_async(&mut connection)
                .await;
            let entries = match answer {
                Ok(Value::Nil) => continue,
                Ok(value) => match read_reply(value) {
                    Some(entries) => entries,
                    None => {
                        log::warn!("unexpected XREAD reply from Redis: reading again");
                        break;
                    }
                },
                Err(error) => {
                    log::warn!("reading the shared log failed ({error}): reconnecting");
                    break;
                }
            };
            let mut delivered = Vec::with_capacity(entries.len());
            for raw in entries {
                at = raw.id;
                if let Some(message) = deliverable(&settings, raw) {
                    delivered.push(message);
                }
            }
            position = Some(at);
            if !delivered.is_empty() && events.send(TailEvent::Entries(delivered)).is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff.pause()).await;
    }
}

/// A chat message to deliver, or `None` (logged) for an entry that is not one.
fn deliverable(settings: &StreamSettings, raw: RawEntry) -> Option<Delivered> {
    let key = reads::keyed(raw.id)?;
    let fields = raw.fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
    match entry::decode(fields, settings.max_message_bytes) {
        Ok(message) => Some(Delivered { key, message }),
        Err(skip) => {
            reads::skipped(raw.id, &skip);
            None
        }
    }
}

/// The entries of an XREAD reply for one stream: `[[stream, [[id, fields], …]]]`.
fn read_reply(value: Value) -> Option<Vec<RawEntry>> {
    let Value::Array(mut streams) = value else {
        return None;
    };
    let Value::Array(mut stream) = streams.pop()? else {
        return None;
    };
    if stream.len() != 2 {
        return None;
    }
    reads::entries(stream.pop()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_xread_reply() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("socket.io"),
            Value::Array(vec![Value::Array(vec![
                bulk("1733312345678-0"),
                Value::Array(vec![bulk("nsp"), bulk("/")]),
            ])]),
        ])]);
        let entries = read_reply(reply).unwrap();
        assert_eq!(entries[0].id.to_string(), "1733312345678-0");
        assert!(read_reply(Value::Array(vec![])).is_none());
    }
}
