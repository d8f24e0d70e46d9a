//! Files between PCs, apart from the change log: an attachment's row carries its hash and
//! size and syncs like any row; its bytes (`store::blobs`) go to the server as a sealed blob
//! in chunks of `BLOB_CHUNK_BYTES`, and other PCs fetch them when someone opens the file or in
//! the background. So no row is larger than a push, and a large file (or a slow line) never
//! holds back the changes made after it: each round pushes and pulls first, then moves at most
//! `ROUND_BYTES` of files each way.
//!
//! Each PC puts its files in a place of its own on the server, and others read a file from
//! the place of a PC that made a record naming it: nobody can put chunks into another PC's
//! file first (a token holder could compute the id).
//!
//! What the server sees: a blob id (a keyed hash of the file's SHA-256 under a key derived from
//! the clinic's database key: the server can't test a guess of a known file), the file's size,
//! and sealed chunks. Each chunk is sealed (XChaCha20-Poly1305, nonce from the key and the
//! content, as the rows' seal does) and bound to its blob, its place and the blob's size, so
//! the server can't reorder, swap or cut chunks; the whole is checked against the SHA-256 the
//! row names before it is kept.

use std::collections::BTreeSet;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use clinic_sync_proto::{blob_chunks, BLOB_CHUNK_BYTES, BLOB_SEAL_BYTES};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{actor, link, Error, Transport};
use crate::error::Result;
use crate::store::{blobs, Db, DbKey};

/// Bytes of files moved each way in one round (about 3 s on a 10 Mbit/s line).
pub const ROUND_BYTES: usize = 4 * 1024 * 1024;

pub struct BlobSealer {
    key: Zeroizing<[u8; 32]>,
}

impl BlobSealer {
    pub fn new(db_key: &DbKey) -> BlobSealer {
        let mut h = Sha256::new();
        h.update(b"clinicdesk sync blobs v1\0");
        h.update(db_key.as_slice());
        BlobSealer {
            key: Zeroizing::new(h.finalize().into()),
        }
    }

    /// The blob id of a file with this SHA-256 (hex): the server's name for it.
    pub fn id(&self, sha256: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"id\0");
        h.update(self.key.as_slice());
        h.update(sha256.as_bytes());
        hex::encode(h.finalize())
    }

    fn aad(id: &str, size: u64, index: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(80);
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&index.to_le_bytes());
        v
    }

    /// Chunk `index` of a file of `size` bytes, sealed: the same bytes seal the same way.
    pub fn seal_chunk(&self, id: &str, size: u64, index: u32, plain: &[u8]) -> Vec<u8> {
        let aad = Self::aad(id, size, index);
        let mut h = Sha256::new();
        h.update(b"nonce\0");
        h.update(self.key.as_slice());
        h.update(&aad);
        h.update(plain);
        let nonce: [u8; 32] = h.finalize().into();
        let ct = XChaCha20Poly1305::new(self.key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce[..24]),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce[..24].to_vec();
        out.extend(ct);
        out
    }

    /// A sealed chunk's bytes, if it opens for this blob, place and size.
    pub fn open_chunk(&self, id: &str, size: u64, index: u32, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < BLOB_SEAL_BYTES {
            return None;
        }
        XChaCha20Poly1305::new(self.key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&sealed[..24]),
                Payload {
                    msg: &sealed[24..],
                    aad: &Self::aad(id, size, index),
                },
            )
            .ok()
    }
}

/// What moved this round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub uploaded_bytes: u64,
    pub uploaded_files: u32,
    pub fetched_files: u32,
}

/// Uploads files the server lacks, oldest first, resuming from the chunks it has, within
/// `budget` bytes; then fetches files this PC lacks, within the same budget again.
pub fn exchange(db: &Db, t: &Transport, budget: usize) -> Result<Moved> {
    let mut moved = upload(db, t, budget)?;
    moved.fetched_files = fetch_missing(db, t, budget)?;
    Ok(moved)
}

/// Uploads files not yet on the server within `budget` bytes, into this PC's own place on
/// it. One file the server refuses (its quota full, say) doesn't keep the others back; the
/// first such error is returned once the rest are done.
pub fn upload(db: &Db, t: &Transport, budget: usize) -> Result<Moved> {
    let sealer = BlobSealer::new(&db.key());
    let me = db.read(|c| Ok(link(c)?.ok_or(Error::NotConfigured)?.device_id))?;
    let mut moved = Moved::default();
    let mut sent = 0usize;
    let mut first_error = None;
    for (sha, size) in db.read(|c| blobs::pending_upload(c, 100))? {
        if sent >= budget {
            break;
        }
        match upload_one(
            db, t, &sealer, &me, &sha, size, budget, &mut sent, &mut moved,
        ) {
            Ok(()) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if moved.uploaded_bytes == 0 => Err(e),
        _ => Ok(moved),
    }
}

#[allow(clippy::too_many_arguments)]
fn upload_one(
    db: &Db,
    t: &Transport,
    sealer: &BlobSealer,
    me: &str,
    sha: &str,
    size: u64,
    budget: usize,
    sent: &mut usize,
    moved: &mut Moved,
) -> Result<()> {
    let id = sealer.id(sha);
    let have: BTreeSet<u32> = t
        .blob_info(me, &id)?
        .map(|i| i.have.into_iter().collect())
        .unwrap_or_default();
    let chunks = blob_chunks(size);
    let missing: Vec<u32> = (0..chunks).filter(|i| !have.contains(i)).collect();
    if !missing.is_empty() {
        let Some(bytes) = db.read(|c| blobs::get(c, sha))? else {
            return Ok(());
        };
        for index in missing {
            if *sent >= budget {
                return Ok(());
            }
            let start = index as usize * BLOB_CHUNK_BYTES;
            let end = (start + BLOB_CHUNK_BYTES).min(bytes.len());
            let sealed = sealer.seal_chunk(&id, size, index, &bytes[start..end]);
            *sent += sealed.len();
            t.blob_put(&id, size, index, sealed)?;
            moved.uploaded_bytes += (end - start) as u64;
        }
    }
    db.write(&actor(), |w| blobs::mark_uploaded(w, sha))?;
    moved.uploaded_files += 1;
    Ok(())
}

/// Files named by attachment rows this PC holds without their bytes: (hash, size), in an
/// order that changes each round (files that can't be had yet don't keep the others back).
/// Each pair is its own: a record naming a real file's hash with another size (made up on a
/// PC that holds no such file) doesn't keep the real one away.
fn missing(c: &rusqlite::Connection, limit: usize) -> Result<Vec<(String, u64)>> {
    let rows = c
        .prepare_cached(
            "SELECT DISTINCT a.sha256, a.size FROM attachments a
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a.sha256)
             ORDER BY random() LIMIT ?1",
        )?
        .query_map([limit as i64], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The PCs whose place on the server may hold a file: those that made a record naming it,
/// with its size.
fn makers(c: &rusqlite::Connection, sha256: &str, size: u64) -> Result<Vec<String>> {
    let rows = c
        .prepare_cached(
            "SELECT DISTINCT v.device_id FROM attachments a
             JOIN sync_versions v ON v.entity = 'attachments' AND v.entity_id = a.id
             WHERE a.sha256 = ?1 AND a.size = ?2",
        )?
        .query_map(rusqlite::params![sha256, size as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Fetches missing files the server holds whole, within `budget` bytes. Returns how many
/// were kept.
pub fn fetch_missing(db: &Db, t: &Transport, budget: usize) -> Result<u32> {
    let mut got = 0;
    let mut spent = 0usize;
    let mut first_error = None;
    for (sha, size) in db.read(|c| missing(c, 20))? {
        if spent >= budget {
            break;
        }
        spent += size as usize;
        // One file the server spoilt doesn't keep the others away.
        match fetch(db, t, &sha, size) {
            Ok(true) => got += 1,
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if got == 0 => Err(e),
        _ => Ok(got),
    }
}

/// Fetches one file the server holds whole, from the place of a PC that made a record naming
/// it, and keeps it if it is the one the record names (hash and size). False when the server
/// doesn't hold it whole yet (it is on its way from the PC that made it).
pub fn fetch(db: &Db, t: &Transport, sha256: &str, size: u64) -> Result<bool> {
    if size == 0 || size > clinic_sync_proto::MAX_BLOB_BYTES {
        return Ok(false);
    }
    let sealer = BlobSealer::new(&db.key());
    let id = sealer.id(sha256);
    let chunks = blob_chunks(size);
    for device in db.read(|c| makers(c, sha256, size))? {
        let Some(info) = t.blob_info(&device, &id)? else {
            continue;
        };
        if info.size != size || info.chunks != chunks || info.have.len() as u32 != chunks {
            continue;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        for index in 0..chunks {
            let sealed = t.blob_chunk(&device, &id, index)?;
            let plain = sealer
                .open_chunk(&id, size, index, &sealed)
                .ok_or_else(|| Error::Network {
                    message: "a file from the server does not open with this clinic's key".into(),
                })?;
            bytes.extend_from_slice(&plain);
        }
        if bytes.len() as u64 != size || blobs::sha256_hex(&bytes) != sha256 {
            return Err(Error::Network {
                message: "a file from the server is not the one its record names".into(),
            }
            .into());
        }
        db.write(&actor(), |w| blobs::put_fetched(w, sha256, &bytes))?;
        return Ok(true);
    }
    Ok(false)
}

/// Fetches one attachment's file now (someone opened it), if this PC is linked. False when
/// the server doesn't hold it whole yet.
pub fn fetch_now(db: &Db, sha256: &str, size: u64) -> Result<bool> {
    let Some(l) = db.read(link)? else {
        return Ok(false);
    };
    fetch(db, &l.transport()?, sha256, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_opens_only_for_its_blob_place_and_size() {
        let s = BlobSealer::new(&Zeroizing::new([3u8; 32]));
        let id = s.id(&"ab".repeat(32));
        assert_eq!(id.len(), 64);
        assert_ne!(
            id,
            BlobSealer::new(&Zeroizing::new([4u8; 32])).id(&"ab".repeat(32))
        );
        let c = s.seal_chunk(&id, 10, 0, b"0123456789");
        assert_eq!(c, s.seal_chunk(&id, 10, 0, b"0123456789"), "repeatable");
        assert_eq!(c.len(), 10 + BLOB_SEAL_BYTES);
        assert_eq!(
            s.open_chunk(&id, 10, 0, &c).as_deref(),
            Some(&b"0123456789"[..])
        );
        assert_eq!(s.open_chunk(&id, 10, 1, &c), None, "moved to another place");
        assert_eq!(s.open_chunk(&id, 11, 0, &c), None, "another size");
        assert_eq!(
            s.open_chunk(&s.id(&"cd".repeat(32)), 10, 0, &c),
            None,
            "another blob"
        );
        let mut bad = c.clone();
        bad[30] ^= 1;
        assert_eq!(s.open_chunk(&id, 10, 0, &bad), None);
    }
}
