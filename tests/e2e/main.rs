//! End-to-end tests: the real `emberchat` binary, started on a free loopback port with a fresh
//! database, driven with raw bytes and with the official clients. One module per feature:
//!
//! - `clients`: the official clients chat (socket.io-client's three transport modes,
//!   python-socketio, the page in two Chromium pages).
//! - `protocol`: HTTP and Engine.IO/Socket.IO bytes as the clients rely on them.
//! - `delivery`: every acked message reaches every client once, in order: replay, duplicate
//!   client offsets, backlogs, SIGKILL, shutdowns with broadcasts still queued.
//! - `recovery`: connection state recovery, and when there is none.
//! - `access`: the access token, the Origin check and the `Host` allow-list.
//! - `limits`: sizes, clients, memory, message rate, request heads.
//! - `slow_readers`: catching up from the database instead of being dropped, and the
//!   heartbeat dropping readers that stopped.
//! - `hostile_input`: malformed input and socket.io's security history, one class per test.
//! - `storage`: bad databases, full disks, removed files, filesystems turning read-only.
//! - `service`: SIGTERM, systemd notifications, socket activation, unit files, journald.
//! - `cluster`: gateways sharing one Redis stream (`--redis`, the `redis` feature).
//! - `cross`: the ARM builds under qemu-user, each on its oldest board's CPU (`make test-cross`).
//! - `package`: the Debian packages, inspected and installed, upgraded and purged with dpkg
//!   (`make test-packages`).
//!
//! `common` starts the gateway and holds the raw HTTP, polling and WebSocket helpers; the
//! client programs are in tests/js (sharing tests/js/e2e_common.mjs) and tests/py (sharing
//! tests/py/e2e_common.py).
//!
//! A plain `cargo test` runs what needs only Rust and the binary. A test that needs more
//! (Node.js modules, the Python virtualenv, Chromium, systemd's tools, the embedded client
//! bundle, root) is `#[ignore = "needs …"]`; `make test` installs all of it and runs every
//! test, ignored ones included, then `make test-cross`.

mod common;

mod access;
mod clients;
mod cluster;
mod cross;
mod delivery;
mod extended;
mod hostile_input;
mod limits;
mod maintenance;
mod package;
mod page;
mod protocol;
mod recovery;
mod service;
mod slow_readers;
mod storage;
