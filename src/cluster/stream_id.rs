//! Redis stream ids (`<ms>-<seq>`), the offsets clients see in cluster mode, and their
//! packing into the `i64` sequence numbers ("keys") the hub orders broadcasts by.
//!
//! A key keeps the order of the stream and stays below 2^53, so that the page, in
//! JavaScript, holds it as an ordinary number: one more than the milliseconds since 2024 in
//! the high 41 bits (until the year 2093) and `seq` in the low 12 (4,096 entries in one
//! millisecond, far beyond what one Redis appends). Key 0 is `0-0`, before every entry. An id outside that range (only
//! a hand-made XADD gives one) has no key, and the reader skips it with a log line.

use std::fmt;

/// Bits of the sequence part in a key.
const SEQ_BITS: u32 = 12;
const SEQ_MAX: u64 = (1 << SEQ_BITS) - 1;
/// 2024-01-01T00:00:00Z in Unix milliseconds: keys count from there.
const EPOCH_MS: u64 = 1_704_067_200_000;
/// Largest millisecond part (after the epoch) a key holds: keys stay below 2^53.
const MS_MAX: u64 = (1 << (53 - SEQ_BITS)) - 1;
/// Largest key: the largest integer JavaScript holds exactly.
const KEY_MAX: u64 = (1 << 53) - 1;

/// One entry id of a Redis stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// Reads `<ms>-<seq>` as Redis writes it: decimal digits only, no sign, no spaces.
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId {
            ms: digits(ms)?,
            seq: digits(seq)?,
        })
    }

    /// The start of every stream, before its first entry.
    pub const START: StreamId = StreamId { ms: 0, seq: 0 };

    /// The hub's sequence number for this id, when it has one.
    pub fn key(self) -> Option<i64> {
        if self == StreamId::START {
            return Some(0);
        }
        let ms = self.ms.checked_sub(EPOCH_MS)?;
        if ms > MS_MAX || self.seq > SEQ_MAX {
            return None;
        }
        // Both parts checked above; 1 up so that the epoch's first entry is not 0-0.
        let key = ((ms << SEQ_BITS) | self.seq) + 1;
        (key <= KEY_MAX).then_some(key as i64)
    }

    /// The id a key was made from (0 and below: [`StreamId::START`]).
    pub fn from_key(key: i64) -> StreamId {
        if key <= 0 {
            return StreamId::START;
        }
        let key = key as u64 - 1;
        StreamId {
            ms: (key >> SEQ_BITS) + EPOCH_MS,
            seq: key & SEQ_MAX,
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A decimal number of 1 to 20 digits that fits a `u64`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_what_redis_gives() {
        let id = StreamId::parse("1733312345678-3").unwrap();
        assert_eq!(
            id,
            StreamId {
                ms: 1733312345678,
                seq: 3
            }
        );
        assert_eq!(id.to_string(), "1733312345678-3");
        assert_eq!(StreamId::parse("0-0").unwrap().key(), Some(0));
    }

    #[test]
    fn refuses_what_is_not_an_id() {
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "+1-0",
            "1-+0",
            " 1-0",
            "1-0 ",
            "1-0-0",
            "a-0",
            "1.5-0",
            "18446744073709551616-0",
            "$",
            ">",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_keep_the_stream_order() {
        let ids = [
            "0-0",
            "1704067200000-0",
            "1704067200000-1",
            "1733312345678-0",
            "1733312345678-1",
            "1733312345678-4095",
            "1733312345679-0",
            "3800000000000-7",
        ];
        let keys: Vec<i64> = ids
            .iter()
            .map(|id| StreamId::parse(id).unwrap().key().unwrap())
            .collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
        for (id, key) in ids.iter().zip(&keys) {
            assert_eq!(StreamId::from_key(*key).to_string(), *id);
        }
    }

    #[test]
    fn ids_beyond_the_packing_have_no_key() {
        for id in [
            "0-1",
            "1703999999999-5",
            "1733312345678-4096",
            "18446744073709551615-0",
        ] {
            assert_eq!(StreamId::parse(id).unwrap().key(), None, "{id}");
        }
        let last = StreamId {
            ms: EPOCH_MS + MS_MAX,
            seq: SEQ_MAX - 1,
        };
        // The largest integer JavaScript holds exactly.
        assert_eq!(last.key(), Some((1 << 53) - 1));
        assert_eq!(StreamId::from_key((1 << 53) - 1), last);
        let beyond = StreamId {
            seq: SEQ_MAX,
            ..last
        };
        assert_eq!(beyond.key(), None);
    }
}
