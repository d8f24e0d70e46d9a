//! The data folder's keys: whether the folder is set up (and cleaning up after a set-up that
//! died half way), opening the database with what a key slot yields (finishing or abandoning
//! a re-key a crash interrupted), re-keying, and a new recovery key.
//!
//! Re-keying, in an order where a crash at any step leaves a folder that opens:
//! 1. every slot gets the new key sealed beside the old one (the slot file is written);
//! 2. the database is re-encrypted with the new key in one transaction (`Db::rekey`), which
//!    is all old or all new;
//! 3. the slots keep only the new key.
//!
//! Signing in tries the old key, then the new one. If the old one opened the database, step
//! 2 never committed: the new key is forgotten. If the new one did, step 3 is finished.

use std::path::Path;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use specta::Type;

use super::keyslots::{KeySlots, SLOT_FILE};
use super::{Cx, Error, Host};
use crate::error::Result;
use crate::ids;
use crate::staff;
use crate::store::{Db, DbKey, StoreTable, DB_FILE};

/// Present while set-up is writing the folder; removed as its last step.
const SETUP_MARKER: &str = "setup.incomplete";
/// Held (locked) while a re-key runs, so that a sign-in elsewhere leaves its state alone.
const REKEY_LOCK: &str = "rekey.lock";

pub(crate) use crate::faults::crash_point;

/// Writes (or removes) a file and makes the change durable in its folder.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub(crate) fn initialized(dir: &Path) -> bool {
    (dir.join(DB_FILE).exists() || KeySlots::exists(dir)) && !dir.join(SETUP_MARKER).exists()
}

/// A set-up that died before its last step left the marker: what it wrote is moved aside
/// (into `setup-aborted-<time>/`, never deleted), so set-up can run again. Only set-up writes
/// the marker, so a folder in use never has one; if someone drops one there, the files are
/// still all in that folder.
pub(crate) fn clean_half_made_setup(dir: &Path) -> Result<()> {
    if !dir.join(SETUP_MARKER).exists() {
        return Ok(());
    }
    let aside = dir.join(format!(
        "setup-aborted-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f")
    ));
    std::fs::create_dir_all(&aside)?;
    for f in [
        DB_FILE,
        "clinic.db-wal",
        "clinic.db-shm",
        SLOT_FILE,
        SETUP_MARKER,
    ] {
        match std::fs::rename(dir.join(f), aside.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    sync_dir(dir)
}

pub(crate) fn begin_setup(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::File::create(dir.join(SETUP_MARKER))?.sync_all()?;
    sync_dir(dir)
}

pub(crate) fn finish_setup(dir: &Path) -> Result<()> {
    std::fs::remove_file(dir.join(SETUP_MARKER))?;
    sync_dir(dir)
}

pub(crate) fn load_slots(dir: &Path) -> Result<KeySlots> {
    if !initialized(dir) {
        return Err(Error::NotInitialized.into());
    }
    KeySlots::load(dir)
}

/// Opens the database with the first of `keys` that opens it, and settles a re-key a crash
/// interrupted (see the module's note).
pub(crate) fn open_with_keys(host: &Host, keys: &[DbKey]) -> Result<Db> {
    let dir = host.data_dir();
    if !dir.join(DB_FILE).exists() {
        return Err(Error::NotInitialized.into());
    }
    let mut last = None;
    for (i, key) in keys.iter().enumerate() {
        match Db::open(dir, key, host.clock().clone()) {
            Ok(db) => {
                if keys.len() > 1 {
                    settle_rekey(dir, i > 0)?;
                }
                return Ok(db);
            }
            Err(crate::Error::DatabaseUnreadable) => last = Some(crate::Error::DatabaseUnreadable),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(crate::Error::DatabaseUnreadable))
}

fn settle_rekey(dir: &Path, new_key_opened: bool) -> Result<()> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(REKEY_LOCK))?;
    // A re-key running right now (in another window) settles its own state.
    if lock.try_lock().is_err() {
        return Ok(());
    }
    KeySlots::modify(dir, |s| {
        if new_key_opened {
            s.finish_rekey();
        } else {
            s.abandon_rekey();
        }
        Ok(())
    })?;
    let _ = lock.unlock();
    Ok(())
}

/// A new recovery key (the old one stops opening the slot file; see SECURITY.md for copies).
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct RecoveryKey {
    /// Shown once.
    pub recovery_key: String,
}

/// Writes a slot sealing the database's key, and returns its public key for the caller to
/// record. Under the re-key lock (shared: no re-key runs meanwhile, in any window), and only
/// while this window's key still opens the file: after a re-key elsewhere it would seal a key
/// that opens nothing.
pub(crate) fn write_slot<T>(
    cx: &Cx,
    f: impl FnOnce(&mut KeySlots, &DbKey) -> Result<T>,
) -> Result<T> {
    let dir = cx.host().data_dir();
    let db = cx.db()?;
    let lock = rekey_lock(dir)?;
    lock.lock_shared()?;
    if !db.key_still_opens() {
        return Err(Error::KeyOutdated.into());
    }
    let key = db.key();
    let out = KeySlots::modify(dir, |s| f(s, &key));
    let _ = lock.unlock();
    out
}

fn rekey_lock(dir: &Path) -> Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(REKEY_LOCK))?)
}

/// A new recovery key. Its public key is recorded (and the change audited) first, then the
/// slot replaced: if the slot can't be written, the old key still works and the next re-key
/// refuses until a new recovery key is made; it never leaves a recovery key nobody was shown.
pub fn rotate_recovery_key(cx: &Cx) -> Result<RecoveryKey> {
    let db = cx.db()?.clone();
    let code = ids::random_code(32);
    let dir = cx.host().data_dir();
    let lock = rekey_lock(dir)?;
    lock.lock_shared()?;
    if !db.key_still_opens() {
        return Err(Error::KeyOutdated.into());
    }
    let key = db.key();
    // The slot is made (and its public key known) before anything is written.
    let mut probe = KeySlots::load(dir)?;
    probe.set_recovery(&code, &key)?;
    let made = probe
        .recovery_slot()
        .cloned()
        .ok_or_else(|| crate::Error::internal("no recovery slot made"))?;
    let public = made.public_key_b64().to_string();
    cx.write_durable(|w| {
        Db::set_recovery_public_key(w, &db.device().id, &public)?;
        w.record_event(
            "recovery_key_rotated",
            StoreTable::Device,
            &db.device().id,
            None,
        )
    })?;
    crash_point("recovery_recorded");
    KeySlots::modify(dir, |s| {
        s.put_recovery_slot(made);
        Ok(())
    })?;
    let _ = lock.unlock();
    Ok(RecoveryKey {
        recovery_key: ids::group(&code, 4),
    })
}

/// Where a re-key is, for the progress bar.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct RekeyProgress {
    pub running: bool,
    /// Re-encrypted so far, out of `total_bytes` (the database file's size).
    pub done_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct RekeyReport {
    /// Accounts whose slot predates key pairs and could not receive the new key: they need
    /// a new password from an administrator.
    pub accounts_needing_new_password: Vec<String>,
    pub seconds: f64,
}

pub fn rekey_progress(cx: &Cx) -> Result<RekeyProgress> {
    let p = cx.host().rekey();
    Ok(RekeyProgress {
        running: p.running.load(Ordering::Relaxed),
        done_bytes: p.done.load(Ordering::Relaxed),
        total_bytes: p.total.load(Ordering::Relaxed),
    })
}

/// Gives the database a new key, and every active account and the recovery key the new key:
/// copies of the slot file taken before open nothing.
pub fn rekey(cx: &Cx) -> Result<RekeyReport> {
    let started = std::time::Instant::now();
    let host = cx.host();
    let dir = host.data_dir();
    let db = cx.db()?.clone();
    let synced: bool =
        db.read(|c| Ok(c.prepare_cached("SELECT 1 FROM sync_state")?.exists([])?))?;
    if synced {
        return Err(Error::RekeyWhileSynced.into());
    }
    let progress = host.rekey();
    if progress.running.swap(true, Ordering::SeqCst) {
        return Err(crate::Error::Busy);
    }
    let _running = scopeguard(|| progress.running.store(false, Ordering::SeqCst));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(REKEY_LOCK))?;
    lock.lock()?;
    if KeySlots::load(dir)?.rekey_pending() {
        // An earlier re-key ended in an error: a sign-in settles which key opens the file
        // before another one starts.
        return Err(Error::KeyOutdated.into());
    }
    // The recipients are what the database records, never what the slot file lists.
    let staff_keys = db.read(staff::slot_keys)?;
    let recovery = db.recovery_public_key()?;
    let next: DbKey = zeroize::Zeroizing::new(ids::random_bytes());
    let dropped = KeySlots::modify(dir, |s| {
        s.begin_rekey(&next, &staff_keys, recovery.as_deref())
    })?;
    crash_point("rekey_sealed");
    progress.total.store(
        std::fs::metadata(dir.join(DB_FILE))?.len(),
        Ordering::Relaxed,
    );
    progress.done.store(0, Ordering::Relaxed);
    // Whatever happens now, both keys stay sealed until one is known to open the file: an
    // error after SQLCipher committed must not throw the new key away.
    db.rekey(&next, |done| progress.done.store(done, Ordering::Relaxed))?;
    crash_point("rekey_committed");
    KeySlots::modify(dir, |s| {
        s.finish_rekey();
        Ok(())
    })?;
    let _ = lock.unlock();
    let details = serde_json::json!({ "accounts_needing_new_password": dropped });
    cx.write_durable(|w| {
        w.record_event(
            "database_rekeyed",
            StoreTable::Device,
            &db.device().id,
            Some(details),
        )
    })?;
    Ok(RekeyReport {
        accounts_needing_new_password: dropped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs `f` when dropped (also on an early return or a panic).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}
