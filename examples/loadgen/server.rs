//! What the kernel says about the server under test: memory from `/proc/PID/status` and CPU
//! time, to the nanosecond, from every thread's `/proc/PID/task/TID/schedstat`.

use std::fs;
use std::io;

pub struct Server {
    pid: u32,
}

impl Server {
    pub fn new(pid: u32) -> Server {
        Server { pid }
    }

    /// A field of `/proc/PID/status` in KiB (or a plain count, for `Threads`).
    pub fn status(&self, field: &str) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{}/status", self.pid)))
    }

    /// Resets VmHWM to the current RSS, so a later VmHWM is the peak since now.
    pub fn reset_peak(&self) -> io::Result<()> {
        fs::write(format!("/proc/{}/clear_refs", self.pid), "5")
    }

    /// CPU time used by the server so far, in nanoseconds: the per-thread `schedstat` sum
    /// (to the nanosecond), or `/proc/PID/stat`'s utime + stime (10 ms ticks, but counting
    /// threads that have ended) when that is more.
    pub fn cpu_ns(&self) -> io::Result<u64> {
        Ok(self.live_threads_cpu_ns()?.max(self.process_cpu_ns()?))
    }

    fn process_cpu_ns(&self) -> io::Result<u64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        // Linux reports them in USER_HZ, 100 per second on every architecture it runs on.
        Ok(fields.iter().sum::<u64>() * 10_000_000)
    }

    fn live_threads_cpu_ns(&self) -> io::Result<u64> {
        let mut total = 0;
        for task in fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let path = task?.path().join("schedstat");
            // A thread that ended since the listing has taken its time with it.
            let Ok(text) = fs::read_to_string(path) else {
                continue;
            };
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(total)
    }
}
