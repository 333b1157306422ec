//! A small `log` backend that writes one line per record to stderr.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with its syslog priority, `<3>` for
//! errors to `<7>` for trace, which journald reads; otherwise lines carry a plain level tag.

use std::io::Write;

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
        let line = if self.journald {
            let priority = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{priority}>{}\n", record.args())
        } else {
            format!("{:<5} {}\n", record.level(), record.args())
        };
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
