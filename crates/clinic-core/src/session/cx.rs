//! `Cx`: what a command's handler gets, and `Host`, the data folder, clock and sign-in
//! state behind `Core`. They live here, below the core, so that sign-in (this module) never
//! reaches up into `Core`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::Connection;

use super::{Error, Session, State};
use crate::error::Result;
use crate::ids::Clock;
use crate::perm::Role;
use crate::store::{Actor, Db, Write};

/// One data folder's sign-in state: what `Core` holds.
pub struct Host {
    dir: PathBuf,
    clock: Clock,
    state: Mutex<State>,
    rekey: RekeyState,
    join: Arc<TaskState>,
    /// Held for a round of sync (`sync_round`).
    sync: Mutex<()>,
}

/// A long task that runs on a thread of its own while the window polls its progress (a new
/// PC downloading its clinic): done and total, and how it ended.
#[derive(Default)]
pub struct TaskState {
    pub running: AtomicBool,
    pub done: std::sync::atomic::AtomicI64,
    pub total: std::sync::atomic::AtomicI64,
    /// None while running or before it ran; then Ok or the error.
    pub outcome: Mutex<Option<std::result::Result<(), crate::ApiError>>>,
}

/// A re-key's progress, read without the session lock (the progress bar polls it while the
/// re-key holds the database).
#[derive(Default)]
pub(crate) struct RekeyState {
    pub running: AtomicBool,
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl Host {
    pub(crate) fn new(dir: PathBuf, clock: Clock) -> Host {
        Host {
            dir,
            clock,
            state: Mutex::new(State::default()),
            rekey: RekeyState::default(),
            join: Arc::new(TaskState::default()),
            sync: Mutex::new(()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub(crate) fn rekey(&self) -> &RekeyState {
        &self.rekey
    }

    /// A new PC joining its clinic (`sync::join`).
    pub fn join_task(&self) -> &Arc<TaskState> {
        &self.join
    }

    /// One round of sync at a time on this PC (a connect, a download, a push and pull): a
    /// command's round waits for the background's to end; the background skips a turn
    /// while a command's runs (`try_sync_round`). Two at once would download the same pages
    /// twice and leave the window showing whichever finished last.
    pub fn sync_round(&self) -> MutexGuard<'_, ()> {
        self.sync.lock()
    }

    /// The round's lock if nobody holds it (the background's turn).
    pub fn try_sync_round(&self) -> Option<MutexGuard<'_, ()>> {
        self.sync.try_lock()
    }

    /// The open database, if someone is signed in here (for background work: sync).
    pub fn open_db(&self) -> Option<Arc<Db>> {
        self.state.lock().db.clone()
    }

    /// The sign-in state. Held briefly: never across SQL, except while signing in (which
    /// replaces the database handle itself).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }
}

/// What a command's handler gets: the time, who is asking, and the database.
pub struct Cx<'a> {
    host: &'a Host,
    now: DateTime<Utc>,
    db: Option<Arc<Db>>,
    /// A copy of the session as the command started (none for public commands run
    /// before sign-in).
    session: Option<Session>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        host: &'a Host,
        now: DateTime<Utc>,
        db: Option<Arc<Db>>,
        session: Option<Session>,
    ) -> Cx<'a> {
        Cx {
            host,
            now,
            db,
            session,
        }
    }

    pub fn host(&self) -> &'a Host {
        self.host
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The open database (someone is signed in on this PC).
    pub fn db(&self) -> Result<&Arc<Db>> {
        self.db
            .as_ref()
            .ok_or_else(|| Error::NotAuthenticated.into())
    }

    /// The database if it is open, for public commands that show less without it.
    pub fn db_if_open(&self) -> Option<&Arc<Db>> {
        self.db.as_ref()
    }

    pub fn session(&self) -> Result<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| Error::NotAuthenticated.into())
    }

    /// The signed-in person as the audit trail names them.
    pub fn actor(&self) -> Result<Actor> {
        Ok(self.session()?.actor())
    }

    pub fn staff_id(&self) -> Result<&str> {
        Ok(&self.session()?.staff.id)
    }

    /// What the signed-in person signs account grants with: their slot's signer
    /// (`session::grants`); none for a slot from before signers. Once their slot was replaced
    /// (a new password on another PC), other PCs would refuse what the old one signs: they
    /// sign in again.
    pub(crate) fn signer(&self) -> Result<Option<super::grants::Signer>> {
        let id = self.staff_id()?.to_string();
        let Some(signer) = self.host().state().signer.clone().filter(|s| s.by == id) else {
            return Ok(None);
        };
        let current = super::keyslots::KeySlots::load(self.host().data_dir())?.signing_key_of(&id);
        if current != Some(signer.verifying_key()) {
            return Err(Error::SignerOutdated.into());
        }
        Ok(Some(signer))
    }

    pub fn roles(&self) -> Result<&[Role]> {
        Ok(&self.session()?.staff.roles)
    }

    /// The clinic's time zone: local days, working hours, "today".
    pub fn tz(&self) -> Result<chrono_tz::Tz> {
        Ok(self.session()?.tz)
    }

    /// The clinic's local date now.
    pub fn today(&self) -> Result<chrono::NaiveDate> {
        Ok(self.now.with_timezone(&self.tz()?).date_naive())
    }

    /// A read on the database's reader pool (a consistent snapshot, beside any write).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.db()?.read(f)
    }

    /// One audited write transaction in the signed-in person's name.
    pub fn write<T>(&self, f: impl FnOnce(&mut Write<'_>) -> Result<T>) -> Result<T> {
        let actor = self.actor()?;
        self.db()?.write(&actor, f)
    }

    /// The same, on disk before it returns (`Db::write_durable`): for changes that go with a
    /// key slot.
    pub fn write_durable<T>(&self, f: impl FnOnce(&mut Write<'_>) -> Result<T>) -> Result<T> {
        let actor = self.actor()?;
        self.db()?.write_durable(&actor, f)
    }
}
