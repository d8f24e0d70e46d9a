//! `Core`: the API that the window, the tests and the command line all call.
//!
//! One `Core` serves one data folder. Its methods are generated from the command table
//! (`commands.rs`): each runs `Core::run`, which checks the session and the command's
//! permission (deny by default) and then calls the command's handler in `api/` with a `Cx`.
//! The session lock is held only for that check, never while SQL runs: reads go to the
//! database's reader pool and writes queue on its one writer, so background work reading
//! the database never waits for the window.

use std::path::{Path, PathBuf};
#[cfg(feature = "dev-data")]
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::ids::{self, Clock};
use crate::perm::{allowed, Command, Permission};
pub use crate::print::Output;
use crate::session::{self, Cx, Host};
#[cfg(feature = "dev-data")]
use crate::store::Db;

pub struct Core {
    host: Host,
}

impl Core {
    pub fn new(dir: impl Into<PathBuf>) -> Core {
        Core::with_clock(dir, ids::system_clock())
    }

    pub fn with_clock(dir: impl Into<PathBuf>, clock: Clock) -> Core {
        Core {
            host: Host::new(dir.into(), clock),
        }
    }

    /// `CLINICDESK_DATA_DIR`, else the platform's application-data folder.
    pub fn default_data_dir() -> PathBuf {
        std::env::var_os("CLINICDESK_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::data_dir().map(|d| d.join("ClinicDesk")))
            .unwrap_or_else(|| PathBuf::from("clinicdesk-data"))
    }

    pub fn data_dir(&self) -> &Path {
        self.host.data_dir()
    }

    fn now(&self) -> DateTime<Utc> {
        self.host.now()
    }

    /// Checks `cmd` against the session and the permission table, then runs `f`. Every
    /// generated command method goes through here.
    pub(crate) fn run<T>(&self, cmd: Command, f: impl FnOnce(&Cx) -> Result<T>) -> Result<T> {
        let cx = self.guard(cmd)?;
        f(&cx)
    }

    fn guard(&self, cmd: Command) -> Result<Cx<'_>> {
        let now = self.now();
        let mut st = self.host.state();
        // A password checked but no second factor within the time: the database closes.
        if st.pending.as_ref().is_some_and(|p| {
            now - p.started > chrono::Duration::minutes(session::signin::PENDING_LOGIN_MINUTES)
        }) {
            *st = session::State::default();
        }
        let perm = cmd.permission();
        if perm == Permission::Public {
            return Ok(Cx::new(&self.host, now, st.db.clone(), st.session.clone()));
        }
        let db = st.db.clone();
        let (Some(db), Some(s)) = (db, st.session.as_mut()) else {
            return Err(session::Error::NotAuthenticated.into());
        };
        s.check(cmd, now)?;
        if !allowed(&s.staff.roles, perm) {
            return Err(Error::Forbidden { permission: perm });
        }
        s.note_activity(cmd, now);
        Ok(Cx::new(&self.host, now, Some(db), Some(s.clone())))
    }

    /// One round of sync in the background (the window's timer calls it): nothing without a
    /// server, or while nobody has opened the database on this PC; a cut-off download
    /// resumes first; none either while a command's round runs (`Host::sync_round`). Errors
    /// are kept in the sync state for the header, and returned.
    pub fn sync_background(&self) -> Option<Result<crate::sync::Report>> {
        let _round = self.host.try_sync_round()?;
        let db = self.host.open_db()?;
        let link = match db.read(crate::sync::link) {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        if !link.ready {
            if let Err(e) = crate::sync::apply::download(&db, &|_, _| true) {
                return Some(Err(e));
            }
        }
        Some(crate::sync::sync_once(&db))
    }

    /// For commands that live in the window layer (opening a window): checks the session
    /// and the permission exactly as a core command would.
    pub fn authorize(&self, cmd: Command) -> Result<()> {
        self.guard(cmd).map(drop)
    }

    /// The core half of `recovery_sheet_save` and `_print` (src-tauri shows the dialog).
    pub fn recovery_sheet_pdf(&self, out: Output, recovery_key: &str) -> Result<Vec<u8>> {
        let cmd = match out {
            Output::Save => Command::recovery_sheet_save,
            Output::Print => Command::recovery_sheet_print,
        };
        self.run(cmd, |cx| {
            session::signin::recovery_sheet(cx, out, recovery_key)
        })
    }

    /// The core half of `test_page_save` and `_print`.
    pub fn test_page_pdf(&self, out: Output) -> Result<Vec<u8>> {
        let cmd = match out {
            Output::Save => Command::test_page_save,
            Output::Print => Command::test_page_print,
        };
        self.run(cmd, |cx| {
            let device = cx.db()?.device().clone();
            let now = cx.now();
            cx.read(|c| crate::print::test_page::test_page(c, &device, now))
        })
    }

    /// The core half of `prescription_save` and `_print`.
    pub fn prescription_pdf(
        &self,
        out: Output,
        id: &str,
        language: Option<crate::settings::Language>,
    ) -> Result<Vec<u8>> {
        let cmd = match out {
            Output::Save => Command::prescription_save,
            Output::Print => Command::prescription_print,
        };
        self.run(cmd, |cx| {
            let now = cx.now();
            cx.read(|c| crate::clinical::rx_paper::pdf(c, id, language, now))
        })
    }

    /// The core half of `stock_report_save` (a CSV file) and `stock_report_print` (a PDF):
    /// the file's name and bytes.
    pub fn stock_report_file(
        &self,
        out: Output,
        query: &crate::pharmacy::reports::ReportQuery,
        language: Option<crate::settings::Language>,
    ) -> Result<(String, Vec<u8>)> {
        use crate::pharmacy::reports;
        let cmd = match out {
            Output::Save => Command::stock_report_save,
            Output::Print => Command::stock_report_print,
        };
        self.run(cmd, |cx| {
            let (now, today) = (cx.now(), cx.today()?);
            cx.read(|c| match out {
                Output::Save => {
                    let lang = match language {
                        Some(l) => l,
                        None => crate::settings::clinic(c)?.default_language,
                    };
                    let report = reports::build(c, query, today)?;
                    Ok((
                        reports::file_name(query.kind, "csv"),
                        reports::csv(&report, lang),
                    ))
                }
                Output::Print => Ok((
                    reports::file_name(query.kind, "pdf"),
                    reports::pdf(c, query, language, today, now)?,
                )),
            })
        })
    }

    /// The core half of `dispense_label_save` / `dispense_label_print`.
    pub fn dispense_label_pdf(
        &self,
        out: Output,
        ids: &[String],
        language: Option<crate::settings::Language>,
    ) -> Result<Vec<u8>> {
        let cmd = match out {
            Output::Save => Command::dispense_label_save,
            Output::Print => Command::dispense_label_print,
        };
        self.run(cmd, |cx| {
            let now = cx.now();
            cx.read(|c| crate::pharmacy::label::pdf(c, ids, language, now))
        })
    }

    /// The core half of the cashier's papers: an invoice, a payment's receipt, a daily close.
    pub fn billing_pdf(
        &self,
        cmd: Command,
        id: &str,
        language: Option<crate::settings::Language>,
    ) -> Result<Vec<u8>> {
        use crate::billing::papers;
        self.run(cmd, |cx| {
            let now = cx.now();
            cx.read(|c| match cmd {
                Command::invoice_save | Command::invoice_print => {
                    papers::invoice_pdf(c, id, language, now)
                }
                Command::receipt_save | Command::receipt_print => {
                    papers::receipt_pdf(c, id, language, now)
                }
                Command::daily_close_save | Command::daily_close_print => {
                    papers::close_pdf(c, id, language, now)
                }
                _ => Err(crate::Error::internal("not a billing paper")),
            })
        })
    }

    /// The core half of `attachment_save`: the file's name and bytes; saving out is audited.
    pub fn attachment_export(&self, id: &str) -> Result<(String, Vec<u8>)> {
        self.run(Command::attachment_save, |cx| {
            let (info, bytes) = crate::api::clinical::open_attachment(cx, id, "export")?;
            Ok((info.file_name, bytes))
        })
    }

    /// What the matrix test calls for a window command: the Rust half the window calls (a
    /// paper's PDF, made under the command's own permission), else the window's check.
    #[cfg(feature = "dev-data")]
    pub fn window_core_half(&self, cmd: Command) -> Result<()> {
        match cmd {
            Command::test_page_save => self.test_page_pdf(Output::Save).map(drop),
            Command::test_page_print => self.test_page_pdf(Output::Print).map(drop),
            Command::prescription_save => self.prescription_pdf(Output::Save, "", None).map(drop),
            Command::prescription_print => self.prescription_pdf(Output::Print, "", None).map(drop),
            Command::attachment_save => self.attachment_export("").map(drop),
            Command::stock_report_save => self
                .stock_report_file(Output::Save, &Default::default(), None)
                .map(drop),
            Command::stock_report_print => self
                .stock_report_file(Output::Print, &Default::default(), None)
                .map(drop),
            Command::invoice_save
            | Command::invoice_print
            | Command::receipt_save
            | Command::receipt_print
            | Command::daily_close_save
            | Command::daily_close_print => self.billing_pdf(cmd, "", None).map(drop),
            Command::dispense_label_save => self
                .dispense_label_pdf(Output::Save, &["".into()], None)
                .map(drop),
            Command::dispense_label_print => self
                .dispense_label_pdf(Output::Print, &["".into()], None)
                .map(drop),
            // The recovery sheet's half needs the recovery key; a wrong one counts as a
            // failed attempt, so it is checked in its own tests.
            _ => self.authorize(cmd),
        }
    }

    /// The open database, for the data generator and tests that inspect the file itself.
    /// Not in the shipped app: only with the `dev-data` feature.
    #[cfg(feature = "dev-data")]
    pub fn dev_db(&self) -> Result<Arc<Db>> {
        self.host
            .state()
            .db
            .clone()
            .ok_or_else(|| session::Error::NotAuthenticated.into())
    }

    /// Holds the round's lock as a command's round does, for tests. Only with `dev-data`.
    #[cfg(feature = "dev-data")]
    pub fn dev_sync_round(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.host.sync_round()
    }
}
