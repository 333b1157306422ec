//! History pages a client asks for as its reader scrolls: `('history', {before, after,
//! limit}, ack)`, answered in the ack with `{"messages": [...], "more": bool}`. Keyed on ids,
//! never an OFFSET, so the thousandth page back costs what the first does.

use std::rc::Rc;

use super::history;
use super::member::ChatSocket;
use super::message;
use super::message_log::MessageLog;
use super::replay_memory::ReplayMemory;
use crate::json::{self, Kind};
use crate::socketio::{Event, Socket};
use crate::store::{PageLimit, PageRange};

/// The event the page sends.
pub const HISTORY_EVENT: &str = "history";
/// Most messages in one page, whatever the client asks (and in a capped replay; under 256).
pub const MAX_PAGE_ROWS: usize = 100;
/// Messages in a page when the client does not say.
const DEFAULT_PAGE_ROWS: usize = 50;
/// Bytes of messages in one page, at most (plus one message).
const PAGE_BYTES: usize = 64 * 1024;

/// A page asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub range: PageRange,
    pub rows: usize,
}

/// Reads `('history', {before?, after?, limit?})`:
/// - `before` only: the newest messages older than `before`;
/// - `after` (and maybe `before`): the oldest messages newer than `after` (and older than
///   `before`), to read forward or fill a gap;
/// - neither: the newest messages.
///
/// Ids are positive integers; `limit` is one too, capped at [`MAX_PAGE_ROWS`].
pub fn parse(event: &Event<'_>) -> Result<PageQuery, &'static str> {
    let query = event
        .args()
        .next()
        .ok_or("history needs {before, after, limit}")?;
    if json::kind(query) != Kind::Object {
        return Err("history needs {before, after, limit}");
    }
    let id = |key| -> Result<Option<i64>, &'static str> {
        match json::object_get(query, key) {
            None => Ok(None),
            Some(raw) if json::kind(raw) == Kind::Null => Ok(None),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|&id| id >= 0)
                .map(Some)
                .ok_or("history: before and after must be message ids"),
        }
    };
    let before = id("before")?;
    let after = id("after")?;
    let rows = match json::object_get(query, "limit") {
        None => DEFAULT_PAGE_ROWS,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("history: limit must be a positive integer")?
            .min(MAX_PAGE_ROWS as u64) as usize,
    };
    let range = match (after, before) {
        (Some(after), before) => PageRange::Between {
            after,
            before: before.unwrap_or(i64::MAX),
        },
        (None, Some(before)) => PageRange::Before(before),
        (None, None) => PageRange::Before(i64::MAX),
    };
    Ok(PageQuery { range, rows })
}

/// Reads the page (within the replay memory, one page at a time per socket) and acks it.
pub async fn serve(
    messages: Rc<MessageLog>,
    memory: Rc<ReplayMemory>,
    socket: Rc<Socket<ChatSocket>>,
    query: PageQuery,
    ack: u64,
) {
    let _reserved = memory.reserve().await;
    // One row more than asked says whether there are more.
    let limit = PageLimit {
        rows: query.rows + 1,
        bytes: PAGE_BYTES,
    };
    let rows = match messages.request_page(query.range, limit) {
        Ok(request) => request.rows().await,
        Err(error) => Err(error),
    };
    socket.data().reading_history.set(false);
    let mut rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            log::debug!("socket {}: history page failed: {error}", socket.id());
            return super::commits::ack_error(&socket, ack, "history unavailable, try again");
        }
    };
    let bytes: usize = rows.iter().map(|row| row.size()).sum();
    let mut more = bytes >= PAGE_BYTES;
    if rows.len() > query.rows {
        more = true;
        // The extra row is the one farthest from where the reader is.
        match query.range {
            PageRange::Before(_) => {
                rows.remove(0);
            }
            PageRange::Between { .. } => {
                rows.pop();
            }
        }
    }
    let mut reply = String::with_capacity(bytes + 64);
    reply.push_str("[{\"messages\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            reply.push(',');
        }
        message::write_history_item(&mut reply, &history::stored(row));
    }
    reply.push_str("],\"more\":");
    reply.push_str(if more { "true" } else { "false" });
    reply.push_str("}]");
    socket.ack(ack, &reply, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(args: &str) -> Result<PageQuery, &'static str> {
        let data = format!("[\"history\"{args}]");
        let event = Event {
            name: HISTORY_EVENT,
            data: &data,
            args_tail: "",
            ack: Some(1),
            attachments: &[],
        };
        parse(&event)
    }

    #[test]
    fn reads_page_queries() {
        let page = |range, rows| Ok(PageQuery { range, rows });
        assert_eq!(
            query(",{}"),
            page(PageRange::Before(i64::MAX), DEFAULT_PAGE_ROWS)
        );
        assert_eq!(
            query(r#",{"before":500,"limit":20}"#),
            page(PageRange::Before(500), 20)
        );
        assert_eq!(
            query(r#",{"after":7,"before":90,"limit":1000}"#),
            page(
                PageRange::Between {
                    after: 7,
                    before: 90
                },
                MAX_PAGE_ROWS
            )
        );
        assert_eq!(
            query(r#",{"after":7,"before":null}"#),
            page(PageRange::after(7), DEFAULT_PAGE_ROWS)
        );
    }

    #[test]
    fn refuses_bad_queries() {
        for args in [
            "",
            ",5",
            ",\"x\"",
            r#",{"before":"5"}"#,
            r#",{"before":-1}"#,
            r#",{"after":1.5}"#,
            r#",{"before":1e3}"#,
            r#",{"limit":0}"#,
            r#",{"limit":-2}"#,
            r#",{"limit":"9"}"#,
        ] {
            assert!(query(args).is_err(), "{args}");
        }
    }
}
