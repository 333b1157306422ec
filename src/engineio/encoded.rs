//! Outbound packets in their encoded form, shared between queues without copying.

use std::fmt;

use bytes::Bytes;

/// UTF-8 text held in reference-counted bytes: cloning shares the buffer, and the transports
/// write the bytes as they are. The only constructors take a `str` or `String`, or cut at
/// boundaries `TextBatch` checked, so the bytes are always valid UTF-8. [`SharedText::as_str`]
/// relies on that: any new constructor must keep it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SharedText(Bytes);

impl SharedText {
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor starts from a valid `str` or cuts one at char boundaries
        // (see the type's doc), and the bytes are never mutated.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes, for a transport to write.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> SharedText {
        SharedText(Bytes::from(text.into_bytes()))
    }
}

impl From<&'static str> for SharedText {
    fn from(text: &'static str) -> SharedText {
        SharedText(Bytes::from_static(text.as_bytes()))
    }
}

impl std::ops::Deref for SharedText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An Engine.IO packet encoded for sending. Cloning is cheap (reference counted), so a
/// broadcast encodes once and every receiver's queue shares the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodedPacket {
    /// A whole text packet, type digit included, e.g. `42["chat message","hi",1]`.
    Text(SharedText),
    /// A binary message (a Socket.IO attachment).
    Binary(Bytes),
}

impl EncodedPacket {
    pub fn text(text: impl Into<SharedText>) -> EncodedPacket {
        EncodedPacket::Text(text.into())
    }

    pub fn len(&self) -> usize {
        match self {
            EncodedPacket::Text(text) => text.len(),
            EncodedPacket::Binary(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Text packets cut from one shared buffer: one allocation for a run of packets (a page of
/// replayed messages) instead of one each.
#[derive(Default)]
pub struct TextBatch {
    text: String,
    ends: Vec<usize>,
}

impl TextBatch {
    pub fn with_capacity(packets: usize, bytes: usize) -> TextBatch {
        TextBatch {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(packets),
        }
    }

    /// Appends one packet, written by `write`.
    pub fn push(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
    }

    /// Packets pushed so far.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text pushed so far.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The packets, in order, sharing the batch's buffer.
    pub fn into_packets(self) -> impl Iterator<Item = EncodedPacket> {
        // `push` hands out the whole String: a writer that rewrote earlier text could have
        // moved a cut inside a character. Checked here, so every cut below is a boundary.
        let mut start = 0;
        for &end in &self.ends {
            assert!(
                start <= end && self.text.is_char_boundary(end),
                "TextBatch: a packet boundary was overwritten"
            );
            start = end;
        }
        let bytes = Bytes::from(self.text.into_bytes());
        let mut start = 0;
        self.ends.into_iter().map(move |end| {
            let slice = bytes.slice(start..end);
            start = end;
            // Between two char boundaries of what was a valid String (checked above).
            EncodedPacket::Text(SharedText(slice))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_batch_cuts_packets_at_push_boundaries() {
        let mut batch = TextBatch::default();
        batch.push(|out| out.push_str("42[\"é\"]"));
        batch.push(|_| {});
        batch.push(|out| out.push('3'));
        let packets: Vec<EncodedPacket> = batch.into_packets().collect();
        assert_eq!(
            packets,
            [
                EncodedPacket::text("42[\"é\"]"),
                EncodedPacket::text(""),
                EncodedPacket::text("3")
            ]
        );
    }

    #[test]
    #[should_panic(expected = "boundary was overwritten")]
    fn text_batch_refuses_a_cut_inside_a_character() {
        let mut batch = TextBatch::default();
        batch.push(|out| out.push('a'));
        batch.push(|out| {
            out.clear();
            out.push('é');
        });
        let _ = batch.into_packets().count();
    }
}
