//! The message store: SQLite on its own thread, with group commit.
//!
//! SQLite calls block (an fsync can take milliseconds on an SD card), so one thread owns the
//! connection and the event loop never waits on it. Inserts queue up while a commit is in
//! flight; the thread then writes everything queued in one transaction, so durable ingest is
//! not capped at one fsync per message. Results come back in request order, batch by batch,
//! which is also id order: the caller can broadcast in order without sorting.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, ErrorCode, params};
use tokio::sync::mpsc as async_mpsc;
use tokio::sync::oneshot;

/// SQLite's `synchronous` setting for the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: an acked message survives a power cut. The default.
    Full,
    /// fsync at checkpoints only: fewer writes (SD-card wear), but a power cut can lose the
    /// last commits, whose ids may then be handed out again.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// Most inserts written in one transaction. Default 1024.
    pub max_batch: usize,
    /// How long SQLite waits on a lock held by another process. Default 5 s.
    pub busy_timeout_ms: u64,
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            max_batch: 1024,
            busy_timeout_ms: 5000,
        }
    }
}

/// A failure of the database, with the message clients and logs get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        let text = match error.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => "database is read-only".to_owned(),
            Some(ErrorCode::DiskFull) => "database or disk is full".to_owned(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                "database is locked".to_owned()
            }
            Some(ErrorCode::NotADatabase) => "file is not a database".to_owned(),
            _ => error.to_string(),
        };
        StoreError(text)
    }
}

/// A chat message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub content: String,
    pub client_offset: Option<String>,
}

/// What became of one insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored durably under this id.
    Stored(i64),
    /// Its client offset was already stored: nothing written.
    Duplicate,
    /// The transaction failed; nothing of it was written.
    Failed(StoreError),
}

/// One insert and its outcome, returned in request order.
#[derive(Debug)]
pub struct Committed {
    pub insert: Insert,
    pub outcome: Outcome,
}

/// A stored message, as replay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub content: String,
}

type PageReply = oneshot::Sender<Result<Vec<Row>, StoreError>>;

/// A page read on its way; see [`Store::request_page`].
pub struct PageRequest(oneshot::Receiver<Result<Vec<Row>, StoreError>>);

impl PageRequest {
    pub async fn rows(self) -> Result<Vec<Row>, StoreError> {
        self.0
            .await
            .map_err(|_| StoreError("the store has stopped".into()))?
    }
}

enum Command {
    Insert(Insert),
    /// Answers once the database can be read.
    Check(oneshot::Sender<Result<(), StoreError>>),
    /// Up to `limit` rows with `id > after`, in id order.
    Page {
        after: i64,
        limit: usize,
        reply: PageReply,
    },
}

/// The handle the event loop holds; dropping it (or [`Store::close`]) stops the thread.
pub struct Store {
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    last_id_at_open: i64,
}

impl Store {
    /// Opens (creating if needed) the database and starts the store thread. Results of inserts
    /// arrive on the returned receiver, one `Vec` per transaction.
    pub fn open(
        config: StoreConfig,
    ) -> Result<(Store, async_mpsc::UnboundedReceiver<Vec<Committed>>), StoreError> {
        let connection = open_connection(&config)?;
        let last_id_at_open = connection
            .query_row("SELECT coalesce(max(id), 0) FROM messages", [], |row| {
                row.get(0)
            })
            .map_err(|e| describe(&config.path, e))?;
        let (commands, command_rx) = mpsc::channel();
        let (results, result_rx) = async_mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || writer(connection, config, command_rx, results))
            .map_err(|e| StoreError(format!("cannot start the store thread: {e}")))?;
        Ok((
            Store {
                commands: Some(commands),
                thread: Some(thread),
                last_id_at_open,
            },
            result_rx,
        ))
    }

    /// Queues an insert; its outcome arrives on the results channel.
    pub fn insert(&self, insert: Insert) -> Result<(), StoreError> {
        self.commands
            .as_ref()
            .and_then(|c| c.send(Command::Insert(insert)).ok())
            .ok_or_else(|| StoreError("the store has stopped".into()))
    }

    /// The highest id stored when the database was opened (0 when empty).
    pub fn last_id_at_open(&self) -> i64 {
        self.last_id_at_open
    }

    /// Asks for up to `limit` rows with `id > after`, in id order. The read runs on the store
    /// thread after the inserts queued before it; await [`PageRequest::rows`] for the answer
    /// (the request does not borrow the store).
    pub fn request_page(&self, after: i64, limit: usize) -> Result<PageRequest, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .as_ref()
            .and_then(|c| {
                c.send(Command::Page {
                    after,
                    limit,
                    reply,
                })
                .ok()
            })
            .ok_or_else(|| StoreError("the store has stopped".into()))?;
        Ok(PageRequest(answer))
    }

    /// Asks the store thread to read the database; resolves to `Ok` when it answers (for a
    /// health check). Does not borrow the store.
    pub fn check(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(Command::Check(reply)).is_ok());
        async move {
            if !sent {
                return Err(StoreError("the store has stopped".into()));
            }
            answer
                .await
                .map_err(|_| StoreError("the store has stopped".into()))?
        }
    }

    /// Finishes queued commits, checkpoints the WAL and closes the database.
    pub fn close(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shut_down();
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_offset TEXT UNIQUE,
    content TEXT
)";

fn open_connection(config: &StoreConfig) -> Result<Connection, StoreError> {
    let connection = Connection::open(&config.path).map_err(|e| describe(&config.path, e))?;
    // SQLite opens a file it may not write read-only without a word; every message would
    // then fail. Better to refuse to start, where the operator sees it.
    if connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| describe(&config.path, e))?
    {
        return Err(StoreError(format!(
            "{}: the database is read-only; the gateway needs to write to it",
            config.path.display()
        )));
    }
    connection
        .busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))
        .map_err(|e| describe(&config.path, e))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| describe(&config.path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("{}: journal mode is {mode}, not WAL", config.path.display());
    }
    connection
        .execute_batch(&format!(
            // A 256 KiB page cache (SQLite's default is 2 MB): a replay streams the table
            // through it, and the gateway's memory should not grow with the backlog.
            "PRAGMA synchronous={};\nPRAGMA cache_size=-256;\n{SCHEMA};",
            config.synchronous.pragma()
        ))
        .map_err(|e| describe(&config.path, e))?;
    check_schema(&connection).map_err(|e| describe(&config.path, e))?;
    Ok(connection)
}

/// Refuses a database whose `messages` table is not ours (another application's file).
fn check_schema(connection: &Connection) -> Result<(), rusqlite::Error> {
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('messages') ORDER BY cid")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if columns != ["id", "client_offset", "content"] {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "table messages has columns {columns:?}, expected id, client_offset, content"
        )));
    }
    Ok(())
}

fn describe(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError(format!("{}: {}", path.display(), StoreError::from(error)))
}

/// The store thread: group commit until every handle is dropped.
fn writer(
    mut connection: Connection,
    config: StoreConfig,
    commands: mpsc::Receiver<Command>,
    results: async_mpsc::UnboundedSender<Vec<Committed>>,
) {
    // An in-memory database has no file to watch.
    let identity = match FileIdentity::of(&config.path) {
        Ok(identity) => Some(identity),
        Err(error) => {
            if config.path != Path::new(":memory:") {
                log::warn!(
                    "{}: cannot watch the database file ({error}); its removal would go unnoticed",
                    config.path.display()
                );
            }
            None
        }
    };
    let mut batch = Vec::new();
    while let Ok(first) = commands.recv() {
        batch.push(first);
        while batch.len() < config.max_batch {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut inserts = Vec::new();
        let mut pages = Vec::new();
        let mut checks = Vec::new();
        for command in batch.drain(..) {
            match command {
                Command::Insert(insert) => inserts.push(insert),
                Command::Check(reply) => checks.push(reply),
                Command::Page {
                    after,
                    limit,
                    reply,
                } => pages.push((after, limit, reply)),
            }
        }
        if !inserts.is_empty() {
            log::trace!("committing {} messages", inserts.len());
            let file = identity.map(|identity| (identity, config.path.as_path()));
            let committed = write_batch(&mut connection, file, inserts);
            if results.send(committed).is_err() {
                break;
            }
        }
        for reply in checks {
            let answer = identity
                .map_or(Ok(()), |identity| identity.check(&config.path))
                .and_then(|()| {
                    connection
                        .query_row(
                            "SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1)",
                            [],
                            |_| Ok(()),
                        )
                        .map_err(StoreError::from)
                });
            let _ = reply.send(answer);
        }
        for (after, limit, reply) in pages {
            let rows = read_page(&connection, after, limit).map_err(StoreError::from);
            if let Err(error) = &rows {
                log::warn!("reading messages after {after} failed: {error}");
            }
            // The reader may have gone (its client disconnected): nothing to do then.
            let _ = reply.send(rows);
        }
    }
    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        log::warn!(
            "WAL checkpoint on close failed: {}",
            StoreError::from(error)
        );
    }
    if let Err((_, error)) = connection.close() {
        log::warn!("closing the database failed: {}", StoreError::from(error));
    }
}

fn read_page(
    connection: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<Row>, rusqlite::Error> {
    let mut statement = connection
        .prepare_cached("SELECT id, content FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = statement.query_map(params![after, limit as i64], |row| {
        Ok(Row {
            id: row.get(0)?,
            content: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// The database file's identity on disk (device and inode), to notice it being removed or
/// replaced under the gateway: SQLite would go on writing to the open, deleted file, and
/// everything acked from then on would vanish at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)?;
        Ok(FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    /// Fails unless `path` is still the file that was opened.
    fn check(self, path: &Path) -> Result<(), StoreError> {
        match FileIdentity::of(path) {
            Ok(now) if now == self => Ok(()),
            Ok(_) => Err(StoreError(format!(
                "{} was replaced by another file; restore it or restart the gateway",
                path.display()
            ))),
            Err(error) => Err(StoreError(format!(
                "{} is gone ({error}); restore it or restart the gateway",
                path.display()
            ))),
        }
    }
}

/// Writes `inserts` in one transaction. On any failure the transaction is rolled back and
/// every insert of it is reported failed, so nothing is acked that is not on disk.
fn write_batch(
    connection: &mut Connection,
    file: Option<(FileIdentity, &Path)>,
    inserts: Vec<Insert>,
) -> Vec<Committed> {
    let written = match file {
        Some((identity, path)) => identity.check(path),
        None => Ok(()),
    }
    .and_then(|()| try_write_batch(connection, &inserts).map_err(StoreError::from));
    match written {
        Ok(ids) => inserts
            .into_iter()
            .zip(ids)
            .map(|(insert, id)| Committed {
                insert,
                outcome: id.map_or(Outcome::Duplicate, Outcome::Stored),
            })
            .collect(),
        Err(error) => {
            log::warn!("storing {} message(s) failed: {error}", inserts.len());
            inserts
                .into_iter()
                .map(|insert| Committed {
                    insert,
                    outcome: Outcome::Failed(error.clone()),
                })
                .collect()
        }
    }
}

fn try_write_batch(
    connection: &mut Connection,
    inserts: &[Insert],
) -> Result<Vec<Option<i64>>, rusqlite::Error> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(inserts.len());
    {
        // Looking the offset up first, rather than `ON CONFLICT DO NOTHING`, keeps ids gapless:
        // an upsert that does nothing still advances the AUTOINCREMENT sequence.
        let mut known =
            transaction.prepare_cached("SELECT 1 FROM messages WHERE client_offset = ?1")?;
        // OR ROLLBACK: a failure undoes the whole batch anyway (nothing of it is acked), and
        // it spares SQLite a statement journal per row.
        let mut add = transaction.prepare_cached(
            "INSERT OR ROLLBACK INTO messages (content, client_offset) VALUES (?1, ?2)",
        )?;
        for insert in inserts {
            if let Some(offset) = &insert.client_offset {
                if known.exists(params![offset])? {
                    ids.push(None);
                    continue;
                }
            }
            ids.push(Some(
                add.insert(params![insert.content, insert.client_offset])?,
            ));
        }
    }
    transaction.commit()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("emberchat-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("chat.db")
    }

    fn insert(content: &str, offset: Option<&str>) -> Insert {
        Insert {
            content: content.into(),
            client_offset: offset.map(Into::into),
        }
    }

    #[test]
    fn stores_in_order_and_skips_duplicate_offsets() {
        let path = temp_db("order");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let first = write_batch(
            &mut connection,
            None,
            vec![
                insert("a", Some("c-1")),
                insert("b", None),
                insert("a again", Some("c-1")),
            ],
        );
        let outcomes: Vec<_> = first.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [Outcome::Stored(1), Outcome::Stored(2), Outcome::Duplicate]
        );
        let second = write_batch(
            &mut connection,
            None,
            vec![insert("c", Some("c-1")), insert("d", None)],
        );
        let outcomes: Vec<_> = second.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(outcomes, [Outcome::Duplicate, Outcome::Stored(3)]);
        let count: i64 = connection
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn refuses_to_write_once_the_file_is_removed_or_replaced() {
        let path = temp_db("removed");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let identity = FileIdentity::of(&path).unwrap();
        let file = Some((identity, path.as_path()));
        let stored = write_batch(&mut connection, file, vec![insert("kept", None)]);
        assert_eq!(stored[0].outcome, Outcome::Stored(1));
        std::fs::rename(&path, path.with_extension("moved")).unwrap();
        let refused = write_batch(&mut connection, file, vec![insert("lost?", None)]);
        assert!(
            matches!(&refused[0].outcome, Outcome::Failed(e) if e.0.contains("is gone")),
            "{:?}",
            refused[0].outcome
        );
        std::fs::write(&path, b"").unwrap();
        let refused = write_batch(&mut connection, file, vec![insert("lost?", None)]);
        assert!(
            matches!(&refused[0].outcome, Outcome::Failed(e) if e.0.contains("replaced")),
            "{:?}",
            refused[0].outcome
        );
    }

    #[test]
    fn refuses_a_foreign_database() {
        let path = temp_db("foreign");
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        drop(other);
        let error = open_connection(&StoreConfig::new(&path)).unwrap_err();
        assert!(
            error.0.contains("expected id, client_offset, content"),
            "{error}"
        );
        let garbage = temp_db("garbage");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        let error = open_connection(&StoreConfig::new(&garbage)).unwrap_err();
        assert!(error.0.contains("not a database"), "{error}");
    }

    #[tokio::test]
    async fn thread_commits_and_reports_in_order() {
        let path = temp_db("thread");
        let (store, mut results) = Store::open(StoreConfig::new(&path)).unwrap();
        for i in 0..100 {
            store
                .insert(insert(&format!("m{i}"), Some(&format!("o{i}"))))
                .unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            for committed in results.recv().await.unwrap() {
                seen.push(committed);
            }
        }
        for (i, committed) in seen.iter().enumerate() {
            assert_eq!(committed.insert.content, format!("m{i}"));
            assert_eq!(committed.outcome, Outcome::Stored(i as i64 + 1));
        }
        store.close();
        // A clean close leaves no WAL content behind.
        let wal = path.with_extension("db-wal");
        assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0));
    }
}
