//! What a joining client missed (or a slow reader fell behind on): where its history
//! starts, and the paced replay from the store up to the live broadcasts.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Duration;

use super::member::ChatSocket;
use super::message::{self, CHAT_EVENT, Form, Ids, Stored};
use super::message_log::MessageLog;
use super::metrics::ChatMetrics;
use super::replay_memory::{ReplayMemory, Reservation};
use crate::json::{self, Kind};
use crate::socketio::Socket;
use crate::store::{PageLimit, PageRange, PageRequest, Row, StoreError};

/// Pause before retrying a replay read that failed.
pub const REPLAY_RETRY: Duration = Duration::from_millis(500);

/// `auth.serverOffset` as a key: a number or a numeric string (or in cluster mode a stream
/// id); missing, negative or anything else means 0 (everything).
pub fn server_offset(auth: &str, ids: Ids) -> i64 {
    let Some(raw) = json::object_get(auth, "serverOffset") else {
        return 0;
    };
    let text = match json::kind(raw) {
        Kind::Number => Cow::Borrowed(raw),
        Kind::String => match json::unescape(raw) {
            Ok(text) => text,
            Err(_) => return 0,
        },
        _ => return 0,
    };
    ids.key_of(&text).map_or(0, |n| n.max(0))
}

/// How replay reads and sends.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySettings {
    /// What one read from the store may return.
    pub page: PageLimit,
    /// Append the recovery offset to each message.
    pub recovery_offsets: bool,
}

/// How long a replay holds its page for a client that reads nothing before letting go of it
/// (to read it again once the client catches up). A client that reads at any pace never
/// waits this long for room: parts are small beside its queue.
const STALLED: Duration = Duration::from_secs(1);

/// A page read from the store, with its share of the replay memory.
struct Page {
    rows: Vec<Row>,
    /// The last broadcast when the page was asked for.
    asked_at: i64,
    _reserved: Reservation,
}

/// A page read ahead, on its way from the store.
struct Pending {
    request: PageRequest,
    asked_at: i64,
    reserved: Reservation,
}

/// Sends `socket` every stored message after `cursor`, page by page, as fast as the client
/// reads them, then lets live broadcasts through. Live broadcasts are held back from the
/// socket meanwhile; the seam is exact because broadcasts are numbered by row id: the
/// replay ends only once it has read up to the last broadcast id, and a broadcast that the
/// replay already sent (read just after its commit) is skipped by number.
///
/// Memory: a page is read only with a share of `memory` reserved for it, and the next one
/// is read ahead (when there is memory to spare) only while the client reads this one. A
/// client that stops reading keeps no page: after [`STALLED`] the replay lets go of what it
/// holds and reads it again from the last message queued when the client has room.
pub async fn replay(
    messages: Rc<MessageLog>,
    metrics: Rc<ChatMetrics>,
    memory: Rc<ReplayMemory>,
    socket: Rc<Socket<ChatSocket>>,
    mut cursor: i64,
    settings: ReplaySettings,
) {
    let _running = metrics.replay_started();
    let form = Form::of(socket.data().extended);
    // Parts of at most a quarter page, so that the client reads one while the next is queued.
    let part_packets = settings.page.rows / 4;
    let mut ahead: Option<Pending> = None;
    loop {
        if !socket.is_connected() {
            break;
        }
        if cursor >= messages.last_broadcast() {
            socket.go_live(cursor);
            break;
        }
        let page = match ahead.take() {
            Some(pending) => pending.rows().await,
            None => {
                // Nothing is held while waiting for a client to read.
                if socket.backlog_room(part_packets).await.is_none() {
                    break;
                }
                let reserved = memory.reserve().await;
                match messages.request_page(PageRange::after(cursor), settings.page) {
                    Ok(request) => {
                        let asked_at = messages.last_broadcast();
                        Pending {
                            request,
                            asked_at,
                            reserved,
                        }
                        .rows()
                        .await
                    }
                    Err(_) => break,
                }
            }
        };
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                // A locked or failing database: try again shortly, the client waits.
                log::warn!(
                    "socket {}: replay after {cursor} failed: {error}",
                    socket.id()
                );
                tokio::time::sleep(REPLAY_RETRY).await;
                continue;
            }
        };
        if !socket.is_connected() {
            break;
        }
        if page.rows.is_empty() {
            // A message broadcast while the page was read may be missing from it (the shared
            // stream's tail can deliver an entry before a read that started earlier sees
            // it): read again. Otherwise rows up to the last broadcast were removed behind our
            // back (or were not the chat's): nothing to send.
            if messages.last_broadcast() != page.asked_at {
                continue;
            }
            socket.go_live(cursor);
            break;
        }
        let mut rows = page.rows.iter().peekable();
        while rows.peek().is_some() {
            let room = match tokio::time::timeout(STALLED, socket.backlog_room(part_packets)).await
            {
                Ok(Some(room)) => room,
                Ok(None) => return,
                // The client stopped reading: drop the page (and anything read ahead) and
                // read from here again when it has room.
                Err(_) => {
                    ahead = None;
                    break;
                }
            };
            let mut batch = socket.event_batch(CHAT_EVENT, room);
            while let Some(row) = rows.next_if(|row| batch.has_room_for(row.size())) {
                batch.push(|args| {
                    message::write_args(
                        args,
                        &stored(row),
                        form,
                        messages.ids(),
                        settings.recovery_offsets,
                    )
                });
                cursor = row.id;
            }
            socket.send_batch(batch);
            // The client is reading: read the next page while this one goes out, memory
            // permitting.
            let last_of_page = page.rows.last().map_or(cursor, |row| row.id);
            if ahead.is_none() && last_of_page < messages.last_broadcast() {
                ahead = memory.try_reserve().and_then(|reserved| {
                    let request = messages
                        .request_page(PageRange::after(last_of_page), settings.page)
                        .ok()?;
                    Some(Pending {
                        request,
                        asked_at: messages.last_broadcast(),
                        reserved,
                    })
                });
            }
        }
    }
}

/// A row as clients receive it (a replay carries no client offsets).
pub fn stored(row: &Row) -> Stored<'_> {
    Stored {
        id: row.id,
        content: &row.content,
        name: row.name.as_deref(),
        time: row.time,
        client_offset: None,
    }
}

impl Pending {
    async fn rows(self) -> Result<Page, StoreError> {
        let rows = self.request.rows().await?;
        Ok(Page {
            rows,
            asked_at: self.asked_at,
            _reserved: self.reserved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stream_id_in_cluster_mode() {
        assert_eq!(
            server_offset("{\"serverOffset\":\"1704067200000-3\"}", Ids::Stream),
            4
        );
        assert_eq!(
            server_offset("{\"serverOffset\":\"1704067200001-0\"}", Ids::Stream),
            4097
        );
        assert_eq!(server_offset("{\"serverOffset\":4096}", Ids::Stream), 4096);
        assert_eq!(server_offset("{\"serverOffset\":\"1-0\"}", Ids::Stream), 0);
    }

    #[test]
    fn reads_server_offset() {
        for (auth, offset) in [
            ("{\"serverOffset\":12}", 12),
            ("{\"serverOffset\":\"34\"}", 34),
            ("{\"serverOffset\":-5}", 0),
            ("{\"serverOffset\":\"abc\"}", 0),
            ("{\"serverOffset\":1.5}", 0),
            ("{\"serverOffset\":null}", 0),
            ("{\"serverOffset\":99999999999999999999999}", 0),
            ("{}", 0),
            ("{\"serverOffset\":\"1704067200000-3\"}", 0),
        ] {
            assert_eq!(server_offset(auth, Ids::Rows), offset, "{auth}");
        }
    }
}
