//! The message rate limit: a token bucket per client address.

use std::cell::Cell;

use tokio::time::Instant;

/// A token bucket: `rate` messages a second, bursts of up to twice that.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate) * 2.0,
            at: now,
        }
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let rate = f64::from(rate);
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate * 2.0);
        self.at = now;
    }

    fn take(&mut self, rate: u32, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One client's send budget; `rate` 0 means unlimited.
#[derive(Debug)]
pub struct SendBudget {
    rate: u32,
    bucket: Cell<Bucket>,
}

impl SendBudget {
    pub fn new(rate: u32, now: Instant) -> SendBudget {
        SendBudget {
            rate,
            bucket: Cell::new(Bucket::full(rate, now)),
        }
    }

    /// Whether the budget has refilled to its burst (nothing of it is owed).
    pub fn is_full(&self, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut bucket = self.bucket.get();
        bucket.refill(self.rate, now);
        bucket.tokens >= f64::from(self.rate) * 2.0
    }

    /// Takes one message from the budget; false when it is spent.
    pub fn take(&self, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut bucket = self.bucket.get();
        let taken = bucket.take(self.rate, now);
        self.bucket.set(bucket);
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_bursts_then_the_rate() {
        let start = Instant::now();
        let budget = SendBudget::new(5, start);
        assert_eq!((0..12).filter(|_| budget.take(start)).count(), 10);
        let later = start + Duration::from_millis(400);
        assert_eq!((0..5).filter(|_| budget.take(later)).count(), 2);
    }

    #[test]
    fn zero_means_unlimited() {
        let now = Instant::now();
        let budget = SendBudget::new(0, now);
        assert!((0..10_000).all(|_| budget.take(now)));
    }
}
