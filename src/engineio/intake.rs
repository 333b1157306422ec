//! The application's gate on client input: while it is closed (the store is behind), the
//! transports read nothing more. One task watches it for every paused transport, so a
//! thousand paused connections cost one timer, not a thousand.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

/// How often the watcher looks again whether the application takes input (it drains as
/// fast as the store writes).
const RECHECK: Duration = Duration::from_millis(1);

/// While the gate stays closed, paused transports are woken this often anyway, to see
/// whether their own pause has lasted long enough (`INTAKE_MAX_PAUSE`).
const TICK: u32 = 100;

pub(crate) struct Intake {
    accepting: RefCell<Option<Box<dyn Fn() -> bool>>>,
    changed: Notify,
    watching: Cell<bool>,
}

impl Intake {
    pub fn new() -> Rc<Intake> {
        Rc::new(Intake {
            accepting: RefCell::new(None),
            changed: Notify::new(),
            watching: Cell::new(false),
        })
    }

    pub fn set(&self, accepting: impl Fn() -> bool + 'static) {
        *self.accepting.borrow_mut() = Some(Box::new(accepting));
    }

    /// Open unless the application said otherwise.
    pub fn is_open(&self) -> bool {
        self.accepting
            .borrow()
            .as_ref()
            .is_none_or(|accepting| accepting())
    }

    /// Starts the watcher if it is not running: a transport found the gate closed. Must run
    /// inside a `LocalSet`.
    pub fn watch(self: &Rc<Self>) {
        if !self.watching.replace(true) {
            tokio::task::spawn_local(self.clone().run_watcher());
        }
    }

    /// Completes when the gate opens, or at the watcher's next tick (every 100 ms) while it
    /// stays closed. Call [`Intake::watch`] first.
    pub fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    /// Waits until the gate is open, or until `deadline`.
    pub async fn wait(self: &Rc<Self>, deadline: Instant) {
        while !self.is_open() && Instant::now() < deadline {
            self.watch();
            let _ = tokio::time::timeout_at(deadline, self.changed()).await;
        }
    }

    async fn run_watcher(self: Rc<Self>) {
        let mut looks = 0u32;
        while !self.is_open() {
            tokio::time::sleep(RECHECK).await;
            looks += 1;
            if looks.is_multiple_of(TICK) {
                self.changed.notify_waiters();
            }
        }
        self.watching.set(false);
        self.changed.notify_waiters();
    }
}
