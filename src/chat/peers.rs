//! What the chat remembers of each client address: its send budget, shared by every socket
//! from there (leaving and rejoining, or opening another session, does not refill it), and
//! its refused tokens, which make it wait longer and longer before the next try.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use super::rate::SendBudget;

/// Refused tokens an address may have before it must wait.
const FREE_TRIES: u32 = 3;

/// The longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One client address.
#[derive(Debug)]
pub struct Peer {
    /// What its clients may still send under the rate limit.
    pub budget: SendBudget,
    refusals: Cell<u32>,
    blocked_until: Cell<Option<Instant>>,
}

impl Peer {
    /// Whether a CONNECT from here is refused now without looking at its token.
    pub fn waiting(&self, now: Instant) -> bool {
        self.blocked_until.get().is_some_and(|until| now < until)
    }

    /// A wrong token: past the free tries, the address waits 1 s, then 2 s, 4 s… up to 60 s.
    pub fn token_refused(&self, now: Instant) {
        let refusals = self.refusals.get().saturating_add(1);
        self.refusals.set(refusals);
        if refusals >= FREE_TRIES {
            let doublings = (refusals - FREE_TRIES).min(6);
            let wait = Duration::from_secs(1 << doublings).min(MAX_BACKOFF);
            self.blocked_until.set(Some(now + wait));
        }
    }

    /// The right token: the address starts afresh.
    pub fn token_accepted(&self) {
        self.refusals.set(0);
        self.blocked_until.set(None);
    }

    /// Nothing to remember: its budget is full and it owes no wait.
    fn forgettable(&self, now: Instant) -> bool {
        self.budget.is_full(now) && !self.waiting(now) && self.refusals.get() == 0
    }
}

/// Every address seen lately.
pub struct Peers {
    rate: u32,
    known: RefCell<HashMap<IpAddr, Rc<Peer>>>,
    /// Size at which the map is next swept of forgettable addresses.
    sweep_at: Cell<usize>,
}

impl Peers {
    /// Addresses whose clients may send `rate` messages a second each.
    pub fn new(rate: u32) -> Peers {
        Peers {
            rate,
            known: RefCell::new(HashMap::new()),
            sweep_at: Cell::new(64),
        }
    }

    /// The address's state, made on first sight. Addresses no socket holds and that have
    /// nothing to remember are forgotten as the map grows, so it stays about as large as
    /// the number of clients.
    pub fn get(&self, address: IpAddr, now: Instant) -> Rc<Peer> {
        let mut known = self.known.borrow_mut();
        if let Some(peer) = known.get(&address) {
            return peer.clone();
        }
        if known.len() >= self.sweep_at.get() {
            known.retain(|_, peer| Rc::strong_count(peer) > 1 || !peer.forgettable(now));
            self.sweep_at.set((known.len() * 2).max(64));
        }
        let peer = Rc::new(Peer {
            budget: SendBudget::new(self.rate, now),
            refusals: Cell::new(0),
            blocked_until: Cell::new(None),
        });
        known.insert(address, peer.clone());
        peer
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn sockets_from_one_address_share_its_budget() {
        let now = Instant::now();
        let peers = Peers::new(5);
        let first = peers.get(address(1), now);
        assert_eq!((0..10).filter(|_| first.budget.take(now)).count(), 10);
        drop(first);
        // A new socket from the same address finds the budget spent.
        assert!(!peers.get(address(1), now).budget.take(now));
        assert!(peers.get(address(2), now).budget.take(now));
    }

    #[test]
    fn wrong_tokens_make_an_address_wait_longer_each_time() {
        let now = Instant::now();
        let peers = Peers::new(5);
        let peer = peers.get(address(1), now);
        peer.token_refused(now);
        peer.token_refused(now);
        assert!(!peer.waiting(now));
        peer.token_refused(now);
        assert!(peer.waiting(now));
        assert!(!peer.waiting(now + Duration::from_secs(1)));
        peer.token_refused(now);
        assert!(peer.waiting(now + Duration::from_millis(1999)));
        assert!(!peer.waiting(now + Duration::from_secs(2)));
        for _ in 0..20 {
            peer.token_refused(now);
        }
        assert!(peer.waiting(now + Duration::from_secs(59)));
        assert!(!peer.waiting(now + Duration::from_secs(60)));
        peer.token_accepted();
        assert!(!peer.waiting(now));
    }

    #[test]
    fn idle_addresses_are_forgotten_as_the_map_grows() {
        let now = Instant::now();
        let peers = Peers::new(5);
        let held = peers.get(address(0), now);
        let spent = peers.get(address(1), now);
        assert!(spent.budget.take(now));
        drop(spent);
        for n in 2..200 {
            peers.get(address(n), now);
        }
        // The held one and the one with a spent budget stay; idle ones went at each sweep.
        assert!(peers.len() < 130, "{} addresses kept", peers.len());
        assert!(Rc::ptr_eq(&held, &peers.get(address(0), now)));
        assert!(!peers.get(address(1), now).budget.is_full(now));
    }
}
