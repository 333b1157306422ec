//! What a joining client missed: where its history starts, and the paced replay from the
//! store up to the live broadcasts.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Duration;

use super::member::ChatSocket;
use super::message::{self, CHAT_EVENT};
use super::message_log::MessageLog;
use super::metrics::ChatMetrics;
use crate::json::{self, Kind};
use crate::socketio::Socket;

/// Pause before retrying a replay read that failed.
const REPLAY_RETRY: Duration = Duration::from_millis(500);

/// `auth.serverOffset` as a row id: a number or a numeric string; missing, negative or
/// anything else means 0 (everything).
pub fn server_offset(auth: &str) -> i64 {
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
    text.trim().parse::<i64>().map_or(0, |n| n.max(0))
}

/// How replay reads and sends.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySettings {
    /// Rows per read.
    pub page: usize,
    /// Append the recovery offset to each message.
    pub recovery_offsets: bool,
}

/// Sends `socket` every stored message after `cursor`, page by page, as fast as the client
/// reads them, then lets live broadcasts through. Live broadcasts are held back from the
/// socket meanwhile; the seam is exact because broadcasts are numbered by row id: the
/// replay ends only once it has read up to the last broadcast id, and a broadcast that the
/// replay already sent (read just after its commit) is skipped by number.
pub async fn replay(
    messages: Rc<MessageLog>,
    metrics: Rc<ChatMetrics>,
    socket: Rc<Socket<ChatSocket>>,
    mut cursor: i64,
    settings: ReplaySettings,
) {
    let _running = metrics.replay_started();
    let page = settings.page;
    // The next page is read while this one is sent: at most two pages are in memory, and the
    // store and the socket work at the same time.
    let mut prefetched = None;
    loop {
        if !socket.is_connected() {
            break;
        }
        if cursor >= messages.last_broadcast() {
            socket.go_live(cursor);
            break;
        }
        let request = match prefetched.take() {
            Some(request) => Ok(request),
            None => messages.request_page(cursor, page),
        };
        let rows = match request {
            Ok(request) => request.rows().await,
            Err(_) => break,
        };
        let rows = match rows {
            Ok(rows) => rows,
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
        let Some(last) = rows.last() else {
            // Rows up to the last broadcast were removed behind our back: nothing to send.
            socket.go_live(cursor);
            break;
        };
        cursor = last.id;
        if cursor < messages.last_broadcast() {
            prefetched = messages.request_page(cursor, page).ok();
        }
        // The page goes out in parts of at most a quarter page, each once the client has read
        // enough of the previous ones (the socket layer sizes the parts to its queue).
        let mut rows = rows.iter().peekable();
        while rows.peek().is_some() {
            let Some(room) = socket.backlog_room(page / 4).await else {
                break;
            };
            let mut batch = socket.event_batch(CHAT_EVENT, room);
            while let Some(row) =
                rows.next_if(|row| batch.has_room_for(row.content.len() + message::OVERHEAD))
            {
                batch.push(|args| {
                    message::write_args(args, &row.content, row.id, settings.recovery_offsets)
                });
            }
            socket.send_batch(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(server_offset(auth), offset, "{auth}");
        }
    }
}
