//! The sockets of one namespace, and broadcast to them.
//!
//! A broadcast encodes its packet once; every receiver's queue gets a reference-counted clone
//! of the same bytes, so fan-out costs a pointer copy per receiver, not an encode.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::packet::{self, EventArgs};
use super::socket::Socket;
use crate::engineio::EncodedPacket;

/// Connected sockets in slots, so joining and leaving are O(1) and broadcast walks an array.
pub struct Hub<D> {
    namespace: Rc<str>,
    slots: RefCell<Vec<Option<Rc<Socket<D>>>>>,
    free: RefCell<Vec<usize>>,
    count: Cell<usize>,
}

impl<D> Hub<D> {
    pub(super) fn new(namespace: Rc<str>) -> Self {
        Hub {
            namespace,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            count: Cell::new(0),
        }
    }

    /// Adds a socket; it remembers its slot.
    pub(super) fn insert(&self, socket: Rc<Socket<D>>) {
        self.count.set(self.count.get() + 1);
        let mut slots = self.slots.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        socket.set_slot(slot);
        slots[slot] = Some(socket);
    }

    /// Removes a socket; removing one that is not here does nothing.
    pub(super) fn remove(&self, socket: &Rc<Socket<D>>) {
        let slot = socket.slot();
        let mut slots = self.slots.borrow_mut();
        if let Some(entry) = slots.get_mut(slot)
            && entry.as_ref().is_some_and(|s| Rc::ptr_eq(s, socket))
        {
            *entry = None;
            self.count.set(self.count.get() - 1);
            self.free.borrow_mut().push(slot);
        }
    }

    /// Number of connected sockets.
    pub fn len(&self) -> usize {
        self.count.get()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes `event` for this namespace (`args` appends its arguments; `capacity` is the
    /// expected size in bytes), once, for any number of receivers.
    pub fn encode_event(
        &self,
        event: &str,
        capacity: usize,
        args: impl FnOnce(&mut EventArgs<'_>),
    ) -> EncodedPacket {
        let mut text = String::with_capacity(capacity + event.len() + 16);
        packet::write_event(&mut text, &self.namespace, event, args);
        EncodedPacket::text(text)
    }

    /// Queues one of `forms` (each encoded once, see [`Hub::encode_event`]), numbered `seq`,
    /// to every socket that is live and does not have it yet (see [`Socket::go_live`]):
    /// `form_of` picks each socket's form. Used for messages numbered by their
    /// stored id. A socket it finds no room for falls behind (see
    /// [`NamespaceHandler::on_behind`]).
    ///
    /// [`NamespaceHandler::on_behind`]: super::NamespaceHandler::on_behind
    pub fn broadcast_ordered(
        &self,
        seq: i64,
        forms: &[EncodedPacket],
        form_of: impl Fn(&Socket<D>) -> usize,
    ) {
        let mut behind = Vec::new();
        for socket in self.slots.borrow().iter().flatten() {
            if !socket.offer(&forms[form_of(socket)], seq) {
                behind.push(socket.clone());
            }
        }
        // Told once the walk is over: what the application does may join or leave sockets.
        for socket in behind {
            let after = socket.delivered();
            socket.host().fell_behind(&socket, after);
        }
    }

    /// Queues `packet` to every socket `to` picks, where there is room: a volatile event
    /// (presence, typing), which a busy client misses rather than queues.
    pub fn broadcast_volatile(&self, packet: &EncodedPacket, to: impl Fn(&Socket<D>) -> bool) {
        for socket in self.slots.borrow().iter().flatten() {
            if to(socket) {
                socket.offer_volatile(packet);
            }
        }
    }

    /// The connected sockets, in slot order.
    #[cfg(test)]
    pub fn sockets(&self) -> Vec<Rc<Socket<D>>> {
        self.slots.borrow().iter().flatten().cloned().collect()
    }
}
