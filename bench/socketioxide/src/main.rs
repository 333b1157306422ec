//! Peer server for the emberchat benchmarks: the Socket.IO tutorial's chat
//! server (https://socket.io/docs/v4/tutorial/, "server delivery" and
//! "client delivery") written on socketioxide + axum, with rusqlite.
//!
//! Environment: PORT (listens on 127.0.0.1:PORT) and DB (SQLite file).
//!
//! socketioxide 0.18 has no connection state recovery, so every connection
//! is treated as a new session and gets the offset replay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, routing::get};
use rusqlite::{Connection, ErrorCode, params};
use serde_json::Value;
use socketioxide::{
    SendError, SocketError, SocketIo,
    extract::{AckSender, Data, SocketRef, State},
};

/// One connection, shared; every use of it happens on tokio's blocking pool.
#[derive(Clone)]
struct Db(Arc<Mutex<Connection>>);

/// An ack with no arguments. `&()` would be sent as one `null` argument; an
/// empty tuple-like value is encoded as an empty argument list.
const NO_ARGS: [(); 0] = [];

/// Rows sent per SELECT during the replay.
const PAGE_SIZE: i64 = 1000;

enum Stored {
    New(i64),
    Duplicate,
}

impl Db {
    fn open(path: &str) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 client_offset TEXT UNIQUE,
                 content TEXT
             );",
        )?;
        Ok(Db(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let conn = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&conn)
        })
        .await
        .expect("database task panicked")
    }

    async fn insert(&self, content: String, client_offset: String) -> rusqlite::Result<Stored> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached("INSERT INTO messages (content, client_offset) VALUES (?1, ?2)")?;
            match stmt.insert(params![content, client_offset]) {
                Ok(id) => Ok(Stored::New(id)),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    Ok(Stored::Duplicate)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Up to PAGE_SIZE rows with id > after, in id order.
    async fn page(&self, after: i64) -> rusqlite::Result<Vec<(i64, String)>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, content FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, PAGE_SIZE], |row| {
                Ok((row.get(0)?, row.get::<_, Option<String>>(1)?.unwrap_or_default()))
            })?;
            rows.collect()
        })
        .await
    }
}

/// `auth.serverOffset`: a number or a numeric string; anything else means 0.
fn server_offset(auth: &Value) -> i64 {
    match auth.get("serverOffset") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

async fn on_chat_message(
    io: SocketIo,
    State(db): State<Db>,
    Data((msg, client_offset)): Data<(String, String)>,
    ack: AckSender,
) {
    match db.insert(msg.clone(), client_offset).await {
        Ok(Stored::New(id)) => {
            if let Err(e) = io.emit("chat message", &(msg, id)).await {
                eprintln!("broadcast of message {id} failed for some clients: {e}");
            }
            ack.send(&NO_ARGS).ok();
        }
        // Already stored: acknowledge so that the client stops retrying.
        Ok(Stored::Duplicate) => {
            ack.send(&NO_ARGS).ok();
        }
        // Anything else: no ack, the client will retry.
        Err(e) => eprintln!("insert failed: {e}"),
    }
}

/// Sends every stored message with id > `after` to this socket only, a page at a time.
async fn replay(socket: &SocketRef, db: &Db, mut after: i64) {
    loop {
        let rows = match db.page(after).await {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("replay query failed: {e}");
                return;
            }
        };
        let done = (rows.len() as i64) < PAGE_SIZE;
        for (id, content) in rows {
            // The socket's outgoing buffer is bounded (4096 packets, set below):
            // when it is full, wait for the transport to drain it.
            loop {
                match socket.emit("chat message", &(&content, id)) {
                    Ok(()) => break,
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(_) => return, // closed: the client is gone
                }
            }
            after = id;
        }
        if done {
            return;
        }
    }
}

async fn on_connect(socket: SocketRef, State(db): State<Db>, Data(auth): Data<Value>) {
    socket.on("chat message", on_chat_message);
    replay(&socket, &db, server_offset(&auth)).await;
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let db_path = std::env::var("DB").unwrap_or_else(|_| "chat.db".to_owned());
    let db = Db::open(&db_path).expect("cannot open the database");

    // Room for a replay page and a fan-out burst per client (the default is 128 packets, past
    // which emits fail and broadcasts are dropped): what a user tuning for throughput sets.
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(4096)
        .with_state(db)
        .build_layer();
    io.ns("/", on_connect);

    let app = Router::new()
        .route(
            "/",
            get(|| async { "emberchat bench peer: socketioxide chat server\n" }),
        )
        .layer(layer);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("cannot bind");
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
