//! The write-ahead log's checkpoints, off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so one
//! booking or dispensing in a few hundred paid for copying the log into the file (the p99 of
//! both). Here the writer never checkpoints (`wal_autocheckpoint = 0`): after a commit it only
//! wakes this thread, which runs a PASSIVE checkpoint on a connection of its own (it waits for
//! no lock, so writers and readers go on meanwhile), at most every `EVERY` and only once the
//! log holds `START_BYTES`, or when writes stop; a commit only sets a flag the thread reads. Durability is SQLite's own: commits are in the
//! log (`synchronous` unchanged), and a checkpoint syncs the log before it copies.
//!
//! The log stays bounded: a checkpoint that copied everything lets the next write start the log
//! again from its beginning, `journal_size_limit` (16 MiB) trims the file then, and should the log still
//! pass `WRITER_STEPS_IN_BYTES` (readers holding old snapshots, or a writer faster than the
//! copy), the writer checkpoints itself once, as SQLite would have.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rusqlite::Connection;

use crate::error::Result;

/// At most one checkpoint in this time.
const EVERY: Duration = Duration::from_millis(250);
/// The log's size at which a checkpoint is worth its sync (SQLite's default threshold: 1,000
/// pages of 4 KiB).
const START_BYTES: u64 = 4 << 20;
/// With writes stopped this long, whatever the log holds is copied.
const QUIET: Duration = Duration::from_secs(2);
/// Past this size the writer checkpoints itself (a bound, not the usual path).
pub(crate) const WRITER_STEPS_IN_BYTES: u64 = 256 << 20;

#[derive(Default)]
struct State {
    stop: bool,
    /// Checkpoints run, for tests and the bench.
    done: u64,
}

/// What the database handle and the checkpoint thread share.
pub(crate) struct Checkpoints {
    /// Commits since the thread last looked: a flag, so a commit costs one store (no lock, no
    /// wake-up; the thread looks every `EVERY`).
    pending: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
}

impl Checkpoints {
    /// Starts the thread for the database at `path`. `key` is read at each checkpoint (a
    /// re-key changes it) and `gate` held shared meanwhile (a re-key holds it alone).
    pub(crate) fn start(
        path: PathBuf,
        key: Arc<Mutex<super::DbKey>>,
        gate: Arc<RwLock<()>>,
    ) -> (Arc<Checkpoints>, Option<std::thread::JoinHandle<()>>) {
        let shared = Arc::new(Checkpoints {
            pending: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let mine = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || mine.run(&path, &key, &gate))
            .ok();
        (shared, thread)
    }

    /// After a commit: the thread looks at the log at its next turn.
    pub(crate) fn committed(&self) {
        self.pending.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_one();
    }

    pub(crate) fn done(&self) -> u64 {
        self.state.lock().done
    }

    fn run(&self, path: &std::path::Path, key: &Mutex<super::DbKey>, gate: &RwLock<()>) {
        let wal = path.with_extension("db-wal");
        let mut conn: Option<(Connection, super::DbKey)> = None;
        let mut last_write = Instant::now();
        let mut last_checkpoint = Instant::now() - EVERY;
        // Commits not yet copied by a checkpoint of ours.
        let mut dirty = false;
        loop {
            {
                let mut s = self.state.lock();
                if !s.stop {
                    self.wake.wait_for(&mut s, EVERY);
                }
                if s.stop {
                    return;
                }
            }
            if self.pending.swap(false, Ordering::Relaxed) {
                last_write = Instant::now();
                dirty = true;
            }
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            let due = dirty && (size >= START_BYTES || last_write.elapsed() >= QUIET);
            if !due {
                continue;
            }
            let wait = EVERY.saturating_sub(last_checkpoint.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let _gate = gate.read();
            let current = key.lock().clone();
            if conn
                .as_ref()
                .is_none_or(|(_, k)| k.as_slice() != current.as_slice())
            {
                conn = super::keyed_connection(path, &current, super::WRITER_FLAGS)
                    .ok()
                    .map(|c| (c, current));
            }
            // A failed checkpoint is tried again at the next commit or quiet spell; the writer's
            // own bound keeps the log from growing meanwhile.
            if let Some((c, _)) = &conn {
                if passive(c).is_ok() {
                    last_checkpoint = Instant::now();
                    dirty = false;
                    self.state.lock().done += 1;
                }
            }
        }
    }
}

/// Copies the whole log into the file and empties it (after migrations, which may write much
/// with nobody else on the file yet).
pub(crate) fn truncate(c: &Connection) -> Result<()> {
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// A checkpoint that waits for nobody: it copies what no reader still needs.
pub(crate) fn passive(c: &Connection) -> Result<()> {
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}
