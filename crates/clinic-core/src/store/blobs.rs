//! The bytes of files (attachments), by their SHA-256, apart from the rows that name them.
//!
//! A file's record (an `attachments` row) carries its hash and size and syncs like any row;
//! the bytes live here, inside the encrypted database, and travel on their own as a sealed,
//! chunked blob (`sync::blobs`). So no row is larger than a push, and a PC may hold a record
//! before its file has arrived. This table is bookkeeping: never audited (the record is) and
//! never in the change log.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Write;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Blobs,
}

impl super::Table for Table {
    fn journaled(self) -> bool {
        false
    }
    fn synced(self) -> bool {
        false
    }
}

/// The SHA-256 of `bytes`, in hex: a blob's name here.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Keeps bytes made on this PC (still to be uploaded once sync is on). Returns their hash.
pub fn put(w: &mut Write<'_>, bytes: &[u8]) -> Result<String> {
    let sha = sha256_hex(bytes);
    w.keep_draft(
        Table::Blobs,
        "INSERT INTO blobs (sha256, size, data, stored_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sha256) DO NOTHING",
        (&sha, bytes.len() as i64, bytes, w.now_ts()),
    )?;
    Ok(sha)
}

/// Keeps bytes fetched from the server for a record that names `sha256`: refused unless they
/// are what the record names (the server can't slip in other content).
pub fn put_fetched(w: &mut Write<'_>, sha256: &str, bytes: &[u8]) -> Result<()> {
    if sha256_hex(bytes) != sha256 {
        return Err(Error::Internal(
            "a fetched file is not the one its record names".into(),
        ));
    }
    let now = w.now_ts();
    w.keep_draft(
        Table::Blobs,
        "INSERT INTO blobs (sha256, size, data, uploaded_at, stored_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (sha256) DO UPDATE SET uploaded_at = coalesce(uploaded_at, excluded.uploaded_at)",
        (sha256, bytes.len() as i64, bytes, &now),
    )?;
    Ok(())
}

/// The bytes of a file, if this PC holds them.
pub fn get(c: &Connection, sha256: &str) -> Result<Option<Vec<u8>>> {
    Ok(
        c.prepare_cached("SELECT data FROM blobs WHERE sha256 = ?1")?
            .query_row([sha256], |r| r.get(0))
            .optional()?,
    )
}

/// Whether this PC holds the bytes of a file.
pub fn has(c: &Connection, sha256: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM blobs WHERE sha256 = ?1")?
        .exists([sha256])?)
}

/// Notes that the server holds every chunk of a file.
pub fn mark_uploaded(w: &mut Write<'_>, sha256: &str) -> Result<()> {
    let now = w.now_ts();
    w.keep_draft(
        Table::Blobs,
        "UPDATE blobs SET uploaded_at = coalesce(uploaded_at, ?2) WHERE sha256 = ?1",
        (sha256, &now),
    )?;
    Ok(())
}

/// Files still to be uploaded, oldest first: (hash, size).
pub fn pending_upload(c: &Connection, limit: usize) -> Result<Vec<(String, u64)>> {
    let rows = c
        .prepare_cached(
            "SELECT sha256, size FROM blobs WHERE uploaded_at IS NULL ORDER BY stored_at, sha256 LIMIT ?1",
        )?
        .query_map([limit as i64], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
