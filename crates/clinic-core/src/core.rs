//! `Core`: the API that the window, the tests and the command line all call.
//!
//! One `Core` serves one data folder. Its methods are generated from the command table
//! (`commands.rs`): each runs `Core::run`, which checks the session and the command's
//! permission (deny by default) and then calls the command's handler in `api/` with a `Cx`.
//! The session lock is held only for that check, never while SQL runs: reads go to the
//! database's reader pool and writes queue on its one writer, so background work reading
//! the database never waits for the window.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::ids::{self, Clock};
use crate::perm::{allowed, Command, Permission, Role};
use crate::session::{self, Session, State};
use crate::store::{Actor, Db, Write};

pub struct Core {
    dir: PathBuf,
    clock: Clock,
    state: Mutex<State>,
}

/// What a command's handler gets: the time, who is asking, and the database.
pub struct Cx<'a> {
    core: &'a Core,
    now: DateTime<Utc>,
    db: Option<Arc<Db>>,
    /// A copy of the session as the command started (none for public commands run
    /// before sign-in).
    session: Option<Session>,
}

impl Core {
    pub fn new(dir: impl Into<PathBuf>) -> Core {
        Core::with_clock(dir, ids::system_clock())
    }

    pub fn with_clock(dir: impl Into<PathBuf>, clock: Clock) -> Core {
        Core { dir: dir.into(), clock, state: Mutex::new(State::default()) }
    }

    /// `CLINICDESK_DATA_DIR`, else the platform's application-data folder.
    pub fn default_data_dir() -> PathBuf {
        std::env::var_os("CLINICDESK_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::data_dir().map(|d| d.join("ClinicDesk")))
            .unwrap_or_else(|| PathBuf::from("clinicdesk-data"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The sign-in state. Held briefly: never across SQL, except while signing in (which
    /// replaces the database handle itself).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Checks `cmd` against the session and the permission table, then runs `f`. Every
    /// generated command method goes through here.
    pub(crate) fn run<T>(&self, cmd: Command, f: impl FnOnce(&Cx) -> Result<T>) -> Result<T> {
        let cx = self.guard(cmd)?;
        f(&cx)
    }

    fn guard(&self, cmd: Command) -> Result<Cx<'_>> {
        let now = self.now();
        let mut st = self.state.lock();
        let perm = cmd.permission();
        if perm == Permission::Public {
            return Ok(Cx { core: self, now, db: st.db.clone(), session: st.session.clone() });
        }
        let db = st.db.clone();
        let (Some(db), Some(s)) = (db, st.session.as_mut()) else {
            return Err(session::Error::NotAuthenticated.into());
        };
        s.check(cmd, now)?;
        if !allowed(&s.staff.roles, perm) {
            return Err(Error::Forbidden { permission: perm });
        }
        s.touch(now);
        Ok(Cx { core: self, now, db: Some(db), session: Some(s.clone()) })
    }

    /// For commands that live in the window layer (opening a window): checks the session
    /// and the permission exactly as a core command would.
    pub fn authorize(&self, cmd: Command) -> Result<()> {
        self.guard(cmd).map(drop)
    }

    /// The core half of `recovery_sheet_save` (src-tauri shows the save dialog).
    pub fn recovery_sheet_pdf(&self, recovery_key: &str) -> Result<Vec<u8>> {
        self.run(Command::recovery_sheet_save, |cx| session::signin::recovery_sheet(cx, recovery_key))
    }

    /// The open database, for the data generator and tests that inspect the file itself.
    /// Not in the shipped app: only with the `dev-data` feature.
    #[cfg(feature = "dev-data")]
    pub fn dev_db(&self) -> Result<Arc<Db>> {
        self.state.lock().db.clone().ok_or_else(|| session::Error::NotAuthenticated.into())
    }
}

impl<'a> Cx<'a> {
    pub fn core(&self) -> &'a Core {
        self.core
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The open database (someone is signed in on this PC).
    pub fn db(&self) -> Result<&Arc<Db>> {
        self.db.as_ref().ok_or_else(|| session::Error::NotAuthenticated.into())
    }

    /// The database if it is open, for public commands that show less without it.
    pub fn db_if_open(&self) -> Option<&Arc<Db>> {
        self.db.as_ref()
    }

    pub fn session(&self) -> Result<&Session> {
        self.session.as_ref().ok_or_else(|| session::Error::NotAuthenticated.into())
    }

    /// The signed-in person as the audit trail names them.
    pub fn actor(&self) -> Result<Actor> {
        Ok(self.session()?.actor())
    }

    pub fn staff_id(&self) -> Result<&str> {
        Ok(&self.session()?.staff.id)
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
}
