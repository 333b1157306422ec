//! Sending a socket a long run of events (a replay of stored messages), paced to what its
//! client reads: the application asks for room, fills a batch, and sends it, without touching
//! Engine.IO's queue itself.

use super::packet::{self, EventArgs};
use crate::engineio::{EncodedPacket, TextBatch};

/// How much of a backlog may be queued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogRoom {
    /// Most packets in this part.
    pub(super) packets: usize,
    /// Most bytes in this part (a single longer event still goes alone).
    pub(super) bytes: usize,
}

impl BacklogRoom {
    /// A part of at most `max_packets`, a quarter of the queue's packet limit and an eighth of
    /// its byte limit: far enough from the limits that a client reading at its own pace is
    /// never dropped for overflow, and little in memory at a time.
    pub(super) fn within(max_packets: usize, queue_packets: usize, queue_bytes: usize) -> Self {
        BacklogRoom {
            packets: max_packets.min(queue_packets / 4).max(1),
            bytes: (queue_bytes / 8).max(1),
        }
    }
}

/// Events of one name encoded side by side into one buffer (one allocation per part).
pub struct EventBatch {
    /// `42[<nsp>,]["<event>"`, encoded once for the whole batch.
    head: String,
    room: BacklogRoom,
    batch: TextBatch,
}

impl EventBatch {
    pub(super) fn new(namespace: &str, event: &str, room: BacklogRoom) -> Self {
        let mut head = String::with_capacity(namespace.len() + event.len() + 8);
        packet::write_event_head(&mut head, namespace, event);
        EventBatch {
            head,
            room,
            batch: TextBatch::with_capacity(room.packets.min(256), room.bytes.min(64 * 1024)),
        }
    }

    /// Whether an event with about `bytes` of arguments still fits this part.
    pub fn has_room_for(&self, bytes: usize) -> bool {
        self.batch.is_empty()
            || (self.batch.len() < self.room.packets
                && self.batch.bytes() + bytes < self.room.bytes)
    }

    /// Encodes one more event; `args` appends its arguments.
    pub fn push(&mut self, args: impl FnOnce(&mut EventArgs<'_>)) {
        let head = &self.head;
        self.batch.push(|out| {
            out.push_str(head);
            packet::write_event_tail(out, args);
        });
    }

    pub(super) fn into_packets(self) -> impl Iterator<Item = EncodedPacket> {
        self.batch.into_packets()
    }
}
