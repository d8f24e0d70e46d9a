//! The encrypted SQLite database: opening it with a raw 256-bit key, the connection
//! settings every connection gets, the embedded migrations, and the two ways in.
//!
//! - `Db::read` lends a read-only connection from a small pool, inside one read
//!   transaction (a consistent snapshot). Readers run beside the writer: WAL lets them.
//! - `Db::write` takes the one writer connection and hands the caller a `Write` over an
//!   immediate transaction (see `write.rs`). Nothing else writes.
//!
//! So a long report or a background sync reading the database never waits for the window's
//! writes, and the window never waits for them: only writes queue, one at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::{Deserialize, Serialize};
use specta::Type;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ids::Clock;
use crate::names::name_of;

pub mod audit;
pub mod blobs;
pub mod hlc;
mod checkpoint;
mod write;

pub use write::{check_synced_table, row_text, Actor, Origin, Write, LOCAL_ONLY, LOCAL_ROWID};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// The 256-bit database key. Lives in memory only while someone is signed in.
pub type DbKey = Zeroizing<[u8; 32]>;

pub const DB_FILE: &str = "clinic.db";

/// Idle read connections kept open. Each keeps its own decrypted page cache warm.
const READERS_KEPT: usize = 4;

/// This PC's identity inside its database.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub code: String,
}

/// A table's check of a row from another PC (`Table::remote_check`).
pub type RemoteCheck = fn(&serde_json::Map<String, serde_json::Value>) -> Result<()>;

/// The check of a table with nothing to check beyond its SQL constraints.
pub fn no_remote_check(_: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    Ok(())
}

/// A table the write path may touch: each domain lists its tables as a field-less enum
/// (serde names = table names) and implements this. The name is spliced into SQL, so it can
/// only come from such an enum; `NotFound` errors name it, and the UI labels it
/// `entity.<name>`.
pub trait Table: Serialize + Copy {
    fn name(self) -> &'static str {
        name_of(&self)
    }
    /// Columns whose values never enter the audit trail (the row image shows "[redacted]").
    fn redacted(self) -> &'static [&'static str] {
        &[]
    }
    /// Whether writes to it are audited and go to the change log. Only working copies that
    /// become audited rows later (a note's draft) are not; they are written with
    /// `Write::keep_draft`.
    fn journaled(self) -> bool {
        true
    }
    /// Whether its changes go to the change log and so to the other PCs. Audited either
    /// way. Only what describes this PC itself (its device row) stays here.
    fn synced(self) -> bool {
        true
    }
    /// What a row of this table must satisfy when it arrives from another PC, beyond the
    /// database's own constraints: the checks a person's input gets that SQL can't express
    /// (a file name fit for a Save dialog, say). Refused rows are kept as conflicts.
    fn remote_check(self) -> RemoteCheck {
        no_remote_check
    }
    /// "No such row in this table".
    fn not_found(self) -> Error {
        Error::NotFound {
            entity: self.name(),
        }
    }
}

/// This PC's desk number in its clinic once sync is on (`sync_state.desk`), none before:
/// numbers people read aloud (queue tickets) carry it so two PCs never hand out the same.
pub fn desk_number(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT desk FROM sync_state")?
        .query_row([], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?)
}

/// The store's own audited table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "StoreTable")]
pub enum StoreTable {
    /// The one row naming this PC.
    Device,
}

impl Table for StoreTable {
    fn synced(self) -> bool {
        false
    }
}

pub struct Db {
    path: PathBuf,
    /// Its write-ahead log, whose size each commit looks at (`checkpoint`).
    wal: PathBuf,
    /// Changes only when the database is re-keyed (shared with the checkpoint thread).
    key: Arc<Mutex<DbKey>>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Reads hold it shared; a re-key holds it alone (a reader keyed with the old key must
    /// not start while pages change key).
    gate: Arc<RwLock<()>>,
    device: Device,
    clock: Clock,
    /// The log's checkpoints, on a thread of their own (`checkpoint`).
    checkpoints: Arc<checkpoint::Checkpoints>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.checkpoints.stop();
        if let Some(t) = self.checkpointer.take() {
            let _ = t.join();
        }
    }
}

fn keyed_connection(path: &Path, key: &DbKey, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    apply_key(&conn, key)?;
    // Before the first read: a write elsewhere holding the lock is waited for, not an error.
    conn.busy_timeout(Duration::from_secs(10))?;
    // The first read fails with NOTADB when the key is wrong or the file is not ours.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| match Error::from(e) {
        Error::Internal(_) => Error::DatabaseUnreadable,
        other => other,
    })?;
    // A 64 MiB page cache: every page read from disk is decrypted and authenticated, so
    // keeping hot pages (indexes, today's appointments) decrypted in memory pays.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 16777216;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Keys a connection through `sqlite3_key`, not `PRAGMA key`: SQL text is copied by SQLite's
/// parser into buffers nobody wipes, while this passes one buffer that is zeroed when dropped.
/// A raw key (`x'…'`) skips SQLCipher's own PBKDF2: the key is already random.
fn apply_key(conn: &Connection, key: &DbKey) -> Result<()> {
    let raw = raw_key(key);
    // SAFETY: the handle is open for the duration of the call; the pointer and length describe
    // `raw`, which outlives it; SQLCipher copies the key into its own (wiped) memory.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_key(
            conn.handle(),
            raw.as_ptr().cast(),
            raw.len() as std::os::raw::c_int,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::internal(format!("sqlite3_key failed ({rc})")));
    }
    Ok(())
}

/// `x'<hex>'`, SQLCipher's form of a raw key, built in place at its final capacity so no
/// reallocation leaves a copy behind, and zeroed when dropped.
fn raw_key(key: &DbKey) -> Zeroizing<String> {
    let hex = Zeroizing::new(hex::encode(key.as_slice()));
    let mut raw = Zeroizing::new(String::with_capacity(hex.len() + 3));
    raw.push_str("x'");
    raw.push_str(&hex);
    raw.push('\'');
    raw
}

const WRITER_FLAGS: OpenFlags =
    OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

impl Db {
    /// Creates a new database file (which must not exist), runs every migration and
    /// records this device.
    pub fn create(dir: &Path, key: &DbKey, device_code: &str, clock: Clock) -> Result<Db> {
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(Error::internal("a database file is already there"));
        }
        let mut conn = keyed_connection(
            &path,
            key,
            WRITER_FLAGS.union(OpenFlags::SQLITE_OPEN_CREATE),
        )?;
        migrate(&mut conn)?;
        checkpoint::truncate(&conn)?;
        let device = Device {
            id: crate::ids::new_id(),
            code: device_code.to_string(),
        };
        let db = Db::assemble(path, key, conn, device.clone(), clock);
        db.write(&Actor::setup(), |w| {
            w.insert(
                StoreTable::Device,
                &device.id,
                "INSERT INTO device (id, code, name, created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
                (&device.id, &device.code, hostname(), w.now_ts(), w.actor_id()),
            )
        })?;
        Ok(db)
    }

    /// Opens an existing database and brings its schema up to date.
    pub fn open(dir: &Path, key: &DbKey, clock: Clock) -> Result<Db> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(Error::internal("the database file is missing"));
        }
        let mut conn = keyed_connection(&path, key, WRITER_FLAGS)?;
        migrate(&mut conn)?;
        checkpoint::truncate(&conn)?;
        let device = conn.query_row("SELECT id, code FROM device LIMIT 1", [], |r| {
            Ok(Device {
                id: r.get(0)?,
                code: r.get(1)?,
            })
        })?;
        Ok(Db::assemble(path, key, conn, device, clock))
    }

    fn assemble(
        path: PathBuf,
        key: &DbKey,
        writer: Connection,
        device: Device,
        clock: Clock,
    ) -> Db {
        let key = Arc::new(Mutex::new(key.clone()));
        let gate = Arc::new(RwLock::new(()));
        let (checkpoints, checkpointer) =
            checkpoint::Checkpoints::start(path.clone(), key.clone(), gate.clone());
        Db {
            wal: path.with_extension("db-wal"),
            path,
            key,
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![]),
            gate,
            device,
            clock,
            checkpoints,
            checkpointer,
        }
    }

    /// Checkpoints the background thread has run (tests, benches).
    pub fn checkpoints_done(&self) -> u64 {
        self.checkpoints.done()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the key this handle holds still opens the file (another window may have
    /// re-keyed it): a fresh connection tries.
    pub fn key_still_opens(&self) -> bool {
        keyed_connection(&self.path, &self.key.lock(), WRITER_FLAGS).is_ok()
    }

    /// The recovery key's public key as recorded here (see `session::keyslots`).
    pub fn recovery_public_key(&self) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT recovery_public_key FROM device WHERE id = ?1",
                [&self.device.id],
                |r| r.get(0),
            )?)
        })
    }

    /// Records the recovery key's public key (set-up, a new recovery key).
    pub fn set_recovery_public_key(
        w: &mut Write<'_>,
        device_id: &str,
        public_key: &str,
    ) -> Result<()> {
        w.update(
            StoreTable::Device,
            device_id,
            "UPDATE device SET recovery_public_key = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
            rusqlite::params![device_id, public_key, w.now_ts(), w.actor_id()],
        )?;
        Ok(())
    }

    /// The data folder the database file is in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Whether `key` is the database's key.
    pub fn has_key(&self, key: &DbKey) -> bool {
        self.key.lock().as_slice() == key.as_slice()
    }

    /// The database's key (for sealing it into a new key slot).
    pub fn key(&self) -> DbKey {
        self.key.lock().clone()
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }

    fn open_reader(&self) -> Result<Connection> {
        let conn = keyed_connection(&self.path, &self.key.lock(), WRITER_FLAGS)?;
        // A reader can't write, whatever SQL it is handed.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Runs `f` on a read-only connection inside one read transaction: everything it
    /// reads is one snapshot, and it never waits for a write in progress.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _gate = self.gate.read();
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = match conn.execute_batch("BEGIN DEFERRED") {
            Ok(()) => {
                let out = f(&conn);
                let _ = conn.execute_batch("COMMIT");
                out
            }
            Err(e) => Err(e.into()),
        };
        let mut pool = self.readers.lock();
        if pool.len() < READERS_KEPT {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` in one immediate transaction on the writer connection. Every row it
    /// writes is audited and appended to the change log inside the same transaction; an
    /// error rolls all of it back.
    pub fn write<T>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut Write<'_>) -> Result<T>,
    ) -> Result<T> {
        let now = (self.clock)();
        self.transact(&mut self.writer.lock(), now, actor, true, f)
    }

    /// Like `write`, for a batch of rows that each may be refused on their own (sync applying
    /// a page another PC made): first with no savepoint per row (`Write::attempt`), which
    /// costs most of such a batch (FTS5 writes out its pending index at every savepoint); if
    /// anything fails, that transaction is rolled back and the batch runs again with them,
    /// so what is written is the same either way.
    pub fn write_batch<T>(
        &self,
        actor: &Actor,
        f: impl Fn(&mut Write<'_>) -> Result<T>,
    ) -> Result<T> {
        let now = (self.clock)();
        // The writer's lock ends with this statement: the second try takes it again.
        let fast = self.transact(&mut self.writer.lock(), now, actor, false, &f);
        match fast {
            Ok(out) => Ok(out),
            Err(_) => self.write(actor, f),
        }
    }

    /// Like `write`, and the commit is on disk before this returns, power cut or not
    /// (`synchronous = FULL` for this transaction; the rest run with NORMAL, which may lose
    /// the last commits, never consistency). For changes that go with a key slot.
    pub fn write_durable<T>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut Write<'_>) -> Result<T>,
    ) -> Result<T> {
        let now = (self.clock)();
        let mut conn = self.writer.lock();
        conn.pragma_update(None, "synchronous", "FULL")?;
        let out = self.transact(&mut conn, now, actor, true, f);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        out
    }

    /// The one body of `write`, `write_batch` and `write_durable`: `f` in an immediate
    /// transaction on the writer connection (held by the caller), committed if it succeeds.
    /// Without `savepoints`, `Write::attempt` opens none (`write_batch`'s first try).
    fn transact<T>(
        &self,
        conn: &mut Connection,
        now: chrono::DateTime<chrono::Utc>,
        actor: &Actor,
        savepoints: bool,
        f: impl FnOnce(&mut Write<'_>) -> Result<T>,
    ) -> Result<T> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut w = Write::new(tx, actor.clone(), now, &self.device.id);
        if !savepoints {
            w.without_savepoints();
        }
        let out = f(&mut w)?;
        w.commit()?;
        // The log is copied into the file on another thread, unless it has grown past its
        // bound (then this commit pays, as every few hundred did before).
        self.checkpoints.committed();
        if std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > checkpoint::WRITER_STEPS_IN_BYTES) {
            checkpoint::passive(conn)?;
        }
        Ok(out)
    }

    /// Re-encrypts the whole database with `next`, in one transaction: if this fails or the
    /// process dies, the old key still opens it. Reads wait meanwhile; `progress` gets the
    /// bytes re-encrypted so far (the write-ahead log growing towards the file's size).
    pub fn rekey(&self, next: &DbKey, progress: impl Fn(u64) + Sync) -> Result<()> {
        let _gate = self.gate.write();
        let conn = self.writer.lock();
        // Readers hold the old key; new ones open with the new key once this is done.
        self.readers.lock().clear();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        let wal = &self.wal;
        let done = std::sync::atomic::AtomicBool::new(false);
        let rc = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    progress(std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            let raw = raw_key(next);
            // SAFETY: as in `apply_key`; the writer connection is held for the whole call.
            let rc = unsafe {
                rusqlite::ffi::sqlite3_rekey(
                    conn.handle(),
                    raw.as_ptr().cast(),
                    raw.len() as std::os::raw::c_int,
                )
            };
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            rc
        });
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(Error::internal(format!("sqlite3_rekey failed ({rc})")));
        }
        crate::faults::fail_point("rekey_after_commit")?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        // SQLCipher's rekey can report success when it did not finish: only a fresh connection
        // opened with the new key proves it.
        drop(keyed_connection(&self.path, next, WRITER_FLAGS)?);
        *self.key.lock() = next.clone();
        progress(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0));
        Ok(())
    }

    /// The writer connection itself, outside the write path: only for tests that tamper
    /// with the file on purpose and for the data generator.
    #[cfg(feature = "dev-data")]
    pub fn raw_writer<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.writer.lock())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    embedded::migrations::runner()
        .run(conn)
        .map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "this computer".into())
}
