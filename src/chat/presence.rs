//! Who is online: a count of people (two tabs with one name are one person; each socket
//! without a name is one) and their names, with the joins and leaves since the last update.
//! Sent to clients that opted in as `('presence', {...})`, never stored.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::json;

/// Names listed in an update, at most (the count covers the rest).
pub const LISTED_NAMES: usize = 50;
/// Joins or leaves named in one update, at most (the rest are counted).
const LISTED_CHANGES: usize = 20;

/// Names that came or went since the last update, capped.
#[derive(Default)]
struct Changes {
    joined: Vec<Rc<str>>,
    left: Vec<Rc<str>>,
    /// Joins and leaves beyond the lists.
    more_joined: usize,
    more_left: usize,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.more_joined + self.more_left == 0
    }

    /// A name came: a leave of the same name in this update cancels out (a reconnect).
    fn came(&mut self, name: &Rc<str>) {
        if let Some(at) = self.left.iter().position(|n| n == name) {
            self.left.swap_remove(at);
        } else if self.joined.len() < LISTED_CHANGES {
            self.joined.push(name.clone());
        } else {
            self.more_joined += 1;
        }
    }

    fn went(&mut self, name: &Rc<str>) {
        if let Some(at) = self.joined.iter().position(|n| n == name) {
            self.joined.swap_remove(at);
        } else if self.left.len() < LISTED_CHANGES {
            self.left.push(name.clone());
        } else {
            self.more_left += 1;
        }
    }
}

/// The chat's presence: kept as sockets join, leave and rename.
#[derive(Default)]
pub struct Presence {
    /// Sockets per name.
    named: RefCell<BTreeMap<Rc<str>, usize>>,
    /// Sockets without a name.
    anonymous: Cell<usize>,
    /// Sockets that take the extended protocol (and so get presence updates).
    extended: Cell<usize>,
    changes: RefCell<Changes>,
    /// Something changed since the last update was sent.
    dirty: Cell<bool>,
}

impl Presence {
    /// A socket joined; true when this changes what clients were told.
    pub fn join(&self, name: Option<&Rc<str>>, extended: bool) -> bool {
        if extended {
            self.extended.set(self.extended.get() + 1);
        }
        self.add(name);
        self.mark()
    }

    /// A socket left.
    pub fn leave(&self, name: Option<&Rc<str>>, extended: bool) -> bool {
        if extended {
            self.extended.set(self.extended.get().saturating_sub(1));
        }
        self.remove(name);
        self.mark()
    }

    /// A socket changed its name.
    pub fn rename(&self, old: Option<&Rc<str>>, new: &Rc<str>) -> bool {
        self.remove(old);
        self.add(Some(new));
        self.mark()
    }

    fn add(&self, name: Option<&Rc<str>>) {
        match name {
            None => self.anonymous.set(self.anonymous.get() + 1),
            Some(name) => {
                let mut named = self.named.borrow_mut();
                let sockets = named.entry(name.clone()).or_insert(0);
                *sockets += 1;
                if *sockets == 1 {
                    self.changes.borrow_mut().came(name);
                }
            }
        }
    }

    fn remove(&self, name: Option<&Rc<str>>) {
        match name {
            None => self.anonymous.set(self.anonymous.get().saturating_sub(1)),
            Some(name) => {
                let mut named = self.named.borrow_mut();
                let Some(sockets) = named.get_mut(name) else {
                    return;
                };
                *sockets -= 1;
                if *sockets == 0 {
                    named.remove(name);
                    self.changes.borrow_mut().went(name);
                }
            }
        }
    }

    /// Marks an update due; true when it is the first since the last one was sent.
    fn mark(&self) -> bool {
        !self.dirty.replace(true)
    }

    /// Whether any socket takes the extended protocol.
    pub fn any_extended(&self) -> bool {
        self.extended.get() > 0
    }

    /// People online: distinct names, plus each socket without one.
    pub fn count(&self) -> usize {
        self.named.borrow().len() + self.anonymous.get()
    }

    /// The update due, as the event's JSON argument, with the changes since the last one
    /// (which it clears); `None` when nothing changed.
    pub fn take_update(&self) -> Option<String> {
        if !self.dirty.replace(false) {
            return None;
        }
        let changes = std::mem::take(&mut *self.changes.borrow_mut());
        Some(self.write(&changes))
    }

    /// Who is online now, for a socket that just connected (no changes listed).
    pub fn snapshot(&self) -> String {
        self.write(&Changes::default())
    }

    /// `{"count":N,"anonymous":N,"names":[...],"joined":[...],"left":[...]}`; `more_joined`
    /// and `more_left` when the lists were capped.
    fn write(&self, changes: &Changes) -> String {
        let named = self.named.borrow();
        let mut out = String::with_capacity(64 + LISTED_NAMES * 12);
        out.push_str("{\"count\":");
        out.push_str(itoa::Buffer::new().format(self.count()));
        out.push_str(",\"anonymous\":");
        out.push_str(itoa::Buffer::new().format(self.anonymous.get()));
        out.push_str(",\"names\":");
        write_names(&mut out, named.keys().take(LISTED_NAMES));
        if !changes.is_empty() {
            out.push_str(",\"joined\":");
            write_names(&mut out, changes.joined.iter());
            out.push_str(",\"left\":");
            write_names(&mut out, changes.left.iter());
            for (key, more) in [
                ("more_joined", changes.more_joined),
                ("more_left", changes.more_left),
            ] {
                if more > 0 {
                    out.push_str(",\"");
                    out.push_str(key);
                    out.push_str("\":");
                    out.push_str(itoa::Buffer::new().format(more));
                }
            }
        }
        out.push('}');
        out
    }
}

fn write_names<'a>(out: &mut String, names: impl Iterator<Item = &'a Rc<str>>) {
    out.push('[');
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_string(out, name);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Rc<str> {
        Rc::from(text)
    }

    #[test]
    fn counts_people_not_tabs() {
        let presence = Presence::default();
        let ana = name("Ana");
        assert!(presence.join(Some(&ana), true));
        // Second tab of Ana, and a tutorial client without a name.
        assert!(!presence.join(Some(&ana), true));
        assert!(!presence.join(None, false));
        assert_eq!(presence.count(), 2);
        assert_eq!(
            presence.take_update().unwrap(),
            r#"{"count":2,"anonymous":1,"names":["Ana"],"joined":["Ana"],"left":[]}"#
        );
        assert_eq!(presence.take_update(), None);
        // One of Ana's tabs closes: she is still here, and no notice.
        presence.leave(Some(&ana), true);
        assert_eq!(
            presence.take_update().unwrap(),
            r#"{"count":2,"anonymous":1,"names":["Ana"]}"#
        );
        presence.leave(Some(&ana), true);
        assert_eq!(
            presence.take_update().unwrap(),
            r#"{"count":1,"anonymous":1,"names":[],"joined":[],"left":["Ana"]}"#
        );
        assert!(!presence.any_extended());
    }

    #[test]
    fn a_reconnect_within_one_update_is_no_news() {
        let presence = Presence::default();
        let bo = name("Bo");
        presence.join(Some(&bo), true);
        presence.take_update();
        presence.leave(Some(&bo), true);
        presence.join(Some(&bo), true);
        assert_eq!(
            presence.take_update().unwrap(),
            r#"{"count":1,"anonymous":0,"names":["Bo"]}"#
        );
        presence.rename(Some(&bo), &name("Bob"));
        assert_eq!(
            presence.take_update().unwrap(),
            r#"{"count":1,"anonymous":0,"names":["Bob"],"joined":["Bob"],"left":["Bo"]}"#
        );
    }

    #[test]
    fn a_big_room_is_listed_in_part() {
        let presence = Presence::default();
        for i in 0..200 {
            presence.join(Some(&name(&format!("p{i:03}"))), true);
        }
        let update = presence.take_update().unwrap();
        assert!(update.starts_with(r#"{"count":200,"anonymous":0,"names":["p000","p001""#));
        let listed = json::object_get(&update, "names").unwrap();
        assert_eq!(json::array_elements(listed).count(), LISTED_NAMES);
        let joined = json::object_get(&update, "joined").unwrap();
        assert_eq!(json::array_elements(joined).count(), 20);
        assert_eq!(json::object_get(&update, "more_joined"), Some("180"));
        assert_eq!(
            presence.snapshot().len(),
            update.find(",\"joined\"").unwrap() + 1
        );
    }
}
