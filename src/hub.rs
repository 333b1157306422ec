//! The sockets of one namespace, and broadcast to them.
//!
//! A broadcast encodes its packet once; every receiver's queue gets a reference-counted clone
//! of the same bytes, so fan-out costs a pointer copy per receiver, not an encode.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::engineio::Frame;
use crate::socketio::Socket;

/// Connected sockets in slots, so joining and leaving are O(1) and broadcast walks an array.
#[derive(Default)]
pub struct Hub {
    slots: RefCell<Vec<Option<Rc<Socket>>>>,
    free: RefCell<Vec<usize>>,
    count: Cell<usize>,
}

impl Hub {
    /// Adds a socket and returns its slot.
    pub fn insert(&self, socket: Rc<Socket>) -> usize {
        self.count.set(self.count.get() + 1);
        let mut slots = self.slots.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(slot) => {
                slots[slot] = Some(socket);
                slot
            }
            None => {
                slots.push(Some(socket));
                slots.len() - 1
            }
        }
    }

    /// Removes the socket in `slot`; removing an empty or unknown slot does nothing.
    pub fn remove(&self, slot: usize) {
        let mut slots = self.slots.borrow_mut();
        if let Some(entry @ Some(_)) = slots.get_mut(slot) {
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

    /// Queues `frame` to every connected socket.
    pub fn broadcast(&self, frame: &Frame) {
        for socket in self.slots.borrow().iter().flatten() {
            socket.send_frame(frame.clone());
        }
    }

    /// Queues `frame`, numbered `seq`, to every socket that is live and does not have it yet
    /// (see [`Socket::offer`]). Used for the chat's stored messages, numbered by row id.
    pub fn broadcast_ordered(&self, frame: &Frame, seq: i64) {
        for socket in self.slots.borrow().iter().flatten() {
            socket.offer(frame, seq);
        }
    }

    /// A snapshot of the connected sockets.
    pub fn sockets(&self) -> Vec<Rc<Socket>> {
        self.slots.borrow().iter().flatten().cloned().collect()
    }
}
