//! A byte budget that many holders share: what clients are still sending (a WebSocket frame
//! in parts, a fragmented message, a polling body) is held only within one total, whatever
//! the number of clients, so no crowd of half-sent messages can exhaust a small board.

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
}
