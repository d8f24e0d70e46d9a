//! The encrypted SQLite database: opening it with a raw 256-bit key, the connection
//! settings every connection gets, and the embedded migrations.
//!
//! Reads use `Db::conn()`; writes go through `Db::write`, which hands the caller a
//! `Write` (see `audit.rs`) over an immediate transaction. Nothing else writes.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use zeroize::Zeroizing;

use crate::audit::{Actor, Write};
use crate::error::{Error, Result};
use crate::ids::Clock;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// The 256-bit database key. Lives in memory only while someone is signed in.
pub type DbKey = Zeroizing<[u8; 32]>;

pub const DB_FILE: &str = "clinic.db";

/// This PC's identity inside its database.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub code: String,
}

pub struct Db {
    conn: Connection,
    device: Device,
    clock: Clock,
}

fn keyed_connection(path: &Path, key: &DbKey, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    let hex = Zeroizing::new(hex::encode(key.as_slice()));
    // A raw key ("x'...'") skips SQLCipher's own PBKDF2: the key is already random.
    conn.execute_batch(&Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex.as_str())))?;
    // The first read fails with NOTADB when the key is wrong or the file is not ours.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| match Error::from(e) {
            Error::Internal(_) => Error::DatabaseUnreadable,
            other => other,
        })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // A 64 MiB page cache: every page read from disk is decrypted and authenticated, so
    // keeping hot pages (indexes, today's appointments) decrypted in memory pays.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

impl Db {
    /// Creates a new database file (which must not exist), runs every migration and
    /// records this device.
    pub fn create(dir: &Path, key: &DbKey, device_code: &str, clock: Clock) -> Result<Db> {
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(Error::AlreadyInitialized);
        }
        let mut conn = keyed_connection(
            &path,
            key,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        migrate(&mut conn)?;
        let device = Device { id: crate::ids::new_id(), code: device_code.to_string() };
        let mut db = Db { conn, device: device.clone(), clock };
        db.write(&Actor::setup(), |w| {
            w.insert(
                "device",
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
            return Err(Error::NotInitialized);
        }
        let mut conn = keyed_connection(
            &path,
            key,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        migrate(&mut conn)?;
        let device = conn.query_row("SELECT id, code FROM device LIMIT 1", [], |r| {
            Ok(Device { id: r.get(0)?, code: r.get(1)? })
        })?;
        Ok(Db { conn, device, clock })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }

    /// For reads. Writing through this connection bypasses the audit trail:
    /// don't (a test checks that only the write path calls `execute`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one immediate transaction. Every row it writes is audited and
    /// appended to the change log inside the same transaction; an error rolls all back.
    pub fn write<T>(&mut self, actor: &Actor, f: impl FnOnce(&mut Write<'_>) -> Result<T>) -> Result<T> {
        let now = (self.clock)();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut w = Write::new(tx, actor.clone(), now, &self.device);
        let out = f(&mut w)?;
        w.commit()?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    embedded::migrations::runner().run(conn).map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
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
