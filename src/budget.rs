//! A byte budget that many holders share: what clients are still sending (a WebSocket frame
//! in parts, a fragmented message, a polling body) is held only within one total, whatever
//! the number of clients, so no crowd of half-sent messages can exhaust a small board. The
//! same holds for what waits to go out to clients that read slowly.

use std::cell::Cell;
use std::rc::Rc;

/// The shared total.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: Cell<usize>,
}

impl Budget {
    pub fn new(limit: usize) -> Rc<Budget> {
        Rc::new(Budget {
            limit,
            used: Cell::new(0),
        })
    }

    /// Bytes held now, by all.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// The total that may be held.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` for a holder that keeps its own count (a session's queue) if the total
    /// stays within `ceiling` (itself capped at the limit); false, taking nothing, if not.
    pub fn take_within(&self, bytes: usize, ceiling: usize) -> bool {
        let total = self.used.get() + bytes;
        if total > ceiling.min(self.limit) {
            return false;
        }
        self.used.set(total);
        true
    }

    /// Takes `bytes` whatever is left, for what must not be refused (a session's close
    /// packet, a byte): the total may pass the limit by that much.
    pub fn take(&self, bytes: usize) {
        self.used.set(self.used.get() + bytes);
    }

    /// Gives back `bytes` taken with [`Budget::take_within`].
    pub fn give_back(&self, bytes: usize) {
        self.used.set(self.used.get() - bytes);
    }
}

/// One holder's share; given back when dropped.
#[derive(Debug)]
pub struct Lease {
    budget: Rc<Budget>,
    held: usize,
}

impl Lease {
    /// A share of nothing yet.
    pub fn new(budget: &Rc<Budget>) -> Lease {
        Lease {
            budget: budget.clone(),
            held: 0,
        }
    }

    /// Holds `bytes` in all, growing or shrinking the share. False, keeping the share as it
    /// was, when the budget has not that much left.
    pub fn hold(&mut self, bytes: usize) -> bool {
        let others = self.budget.used.get() - self.held;
        if bytes > self.held && others + bytes > self.budget.limit {
            return false;
        }
        self.budget.used.set(others + bytes);
        self.held = bytes;
        true
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.used.set(self.budget.used.get() - self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_stay_within_the_total_and_come_back() {
        let budget = Budget::new(100);
        let mut a = Lease::new(&budget);
        let mut b = Lease::new(&budget);
        assert!(a.hold(60));
        assert!(!b.hold(50), "60 + 50 is over 100");
        assert!(b.hold(40));
        assert_eq!(budget.used(), 100);
        // Shrinking always works, growing again only within what is left.
        assert!(a.hold(10));
        assert!(b.hold(90));
        assert!(!a.hold(11));
        drop(b);
        assert_eq!(budget.used(), 10);
        assert!(a.hold(100));
    }

    #[test]
    fn counted_takes_respect_their_ceiling() {
        let budget = Budget::new(100);
        assert!(budget.take_within(70, 75));
        assert!(!budget.take_within(10, 75), "80 is over the ceiling");
        assert!(
            budget.take_within(30, 1000),
            "a ceiling past the limit is the limit"
        );
        assert!(!budget.take_within(1, 1000));
        budget.give_back(100);
        assert_eq!(budget.used(), 0);
    }
}
