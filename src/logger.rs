//! A small `log` backend that writes one line per record to stderr, and the tools to log what
//! clients send safely: [`untrusted`] text and [`Throttle`]d lines.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with its syslog priority, `<3>` for
//! errors to `<7>` for trace, which journald reads; otherwise lines carry a plain level tag.
//! Control characters in a record are escaped, so no text can end a line and forge the next
//! one (a priority prefix included).

use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    journald: bool,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = if self.journald {
            let priority = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{priority}>")
        } else {
            format!("{:<5} ", record.level())
        };
        let _ = write!(Escaped(&mut line), "{}", record.args());
        line.push('\n');
        // One write per line keeps lines whole when several threads log.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger with `level`; calling it twice keeps the first.
pub fn init(level: LevelFilter) {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    if log::set_logger(Box::leak(Box::new(StderrLogger { journald }))).is_ok() {
        log::set_max_level(level);
    }
}

/// Writes into a string with control characters escaped (`\n` as `\u{a}`).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for c in text.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_unicode())?;
            } else {
                self.0.push(c);
            }
        }
        Ok(())
    }
}

/// Longest piece of client text a log line quotes.
const UNTRUSTED_CHARS: usize = 64;

/// Client text for a log line: quoted as Rust would (control characters and quotes escaped)
/// and cut at 64 characters, so a client can neither forge lines nor flood one.
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted(text)
}

pub struct Untrusted<'a>(&'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.char_indices();
        f.write_char('"')?;
        for (_, c) in chars.by_ref().take(UNTRUSTED_CHARS) {
            write!(f, "{}", c.escape_debug())?;
        }
        f.write_char('"')?;
        if chars.next().is_some() {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// At most `burst` lines of one kind per `period`: what a client can cause to be logged once
/// per request must not let it fill the disk. The first line let through after some were held
/// back says how many.
pub struct Throttle {
    burst: u32,
    period: Duration,
    /// Start of the current period, in milliseconds since the first use of any throttle.
    window: AtomicU64,
    taken: AtomicU32,
    held_back: AtomicU64,
}

impl Throttle {
    pub const fn new(burst: u32, period: Duration) -> Throttle {
        Throttle {
            burst,
            period,
            window: AtomicU64::new(0),
            taken: AtomicU32::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// Logs `args` at `level` unless this kind of line is over its budget.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if !log::log_enabled!(level) {
            return;
        }
        if let Some(held_back) = self.admit(millis_since_start()) {
            if held_back > 0 {
                log::log!(level, "{args} ({held_back} more like this not logged)");
            } else {
                log::log!(level, "{args}");
            }
        }
    }

    /// `Some(lines held back before)` when a line may be logged at `now_ms`.
    fn admit(&self, now_ms: u64) -> Option<u64> {
        let period = self.period.as_millis() as u64;
        if now_ms.saturating_sub(self.window.load(Ordering::Relaxed)) >= period {
            self.window.store(now_ms, Ordering::Relaxed);
            self.taken.store(0, Ordering::Relaxed);
        }
        if self.taken.fetch_add(1, Ordering::Relaxed) < self.burst {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Counts events logged one by one at debug level only (a refused token, say), and says at
/// info how many there were: on the first, then at most once a `period`.
pub struct Tally {
    what: &'static str,
    period: Duration,
    /// When the last summary was logged, in milliseconds since the first use of any throttle.
    logged_at: AtomicU64,
    count: AtomicU64,
}

impl Tally {
    pub const fn new(what: &'static str, period: Duration) -> Tally {
        Tally {
            what,
            period,
            logged_at: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one event, and logs the summary when it is due.
    pub fn add(&self) {
        if let Some(count) = self.add_at(millis_since_start()) {
            log::info!("{} {} in the last {:?}", count, self.what, self.period);
        }
    }

    /// `Some(events since the last summary)` when a summary is due at `now_ms`.
    fn add_at(&self, now_ms: u64) -> Option<u64> {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let period = self.period.as_millis() as u64;
        if now_ms.saturating_sub(self.logged_at.load(Ordering::Relaxed)) < period {
            return None;
        }
        self.logged_at.store(now_ms, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        Some(count)
    }
}

fn millis_since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    // Offset by an hour so the first period starts at once.
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 3_600_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        let mut line = String::new();
        let name = "x\n<3>forged\r\u{1b}[31m";
        write!(Escaped(&mut line), "refused `{name}`").unwrap();
        assert_eq!(line, "refused `x\\u{a}<3>forged\\u{d}\\u{1b}[31m`");
        assert!(!line.chars().any(char::is_control));
    }

    #[test]
    fn untrusted_text_is_quoted_escaped_and_cut() {
        assert_eq!(untrusted("a\nb").to_string(), r#""a\nb""#);
        let long = "é".repeat(100);
        let shown = untrusted(&long).to_string();
        assert_eq!(shown, format!("\"{}\"... (200 bytes)", "é".repeat(64)));
    }

    #[test]
    fn a_tally_sums_up_at_most_once_a_period() {
        let tally = Tally::new("refusals", Duration::from_secs(60));
        let start = 10_000_000;
        assert_eq!(tally.add_at(start), Some(1));
        assert_eq!(tally.add_at(start + 1), None);
        assert_eq!(tally.add_at(start + 59_999), None);
        assert_eq!(tally.add_at(start + 60_000), Some(3));
        assert_eq!(tally.add_at(start + 60_001), None);
    }

    #[test]
    fn a_throttle_lets_a_burst_through_per_period_and_counts_the_rest() {
        let throttle = Throttle::new(2, Duration::from_secs(60));
        let start = 10_000_000;
        assert_eq!(throttle.admit(start), Some(0));
        assert_eq!(throttle.admit(start + 1), Some(0));
        assert_eq!(throttle.admit(start + 2), None);
        assert_eq!(throttle.admit(start + 3), None);
        assert_eq!(throttle.admit(start + 60_000), Some(2));
        assert_eq!(throttle.admit(start + 60_001), Some(0));
        assert_eq!(throttle.admit(start + 60_002), None);
    }
}
