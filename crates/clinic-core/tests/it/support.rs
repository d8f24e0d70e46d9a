//! Shared set-up: a fresh clinic in a temp folder, a clock tests can move, sign-in helpers.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use clinic_core::perm::Role;
use clinic_core::session::{auth, LoginStep, SetupInput};
use clinic_core::settings::{ClinicProfile, Language};
use clinic_core::staff::NewStaff;
use clinic_core::store::{Db, Device};
use clinic_core::Core;
use parking_lot::Mutex;

pub const ADMIN: &str = "admin";
pub const ADMIN_PW: &str = "violet-tram-Kettle";

#[derive(Clone)]
pub struct TestClock(pub Arc<Mutex<DateTime<Utc>>>);

/// Where every test clock starts unless `CLINICDESK_TEST_NOW` pins another instant: a
/// Tuesday, 10:00 in Bangkok. Tests never start from `Utc::now()`, so the hour, day and zone
/// they run in change nothing; `make test-core-pinned` reruns the suite from instants that
/// once broke tests (late evening UTC, a DST change, 29 February, New Year's Eve).
pub const DEFAULT_START: &str = "2026-03-10T03:00:00Z";

impl TestClock {
    pub fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(start_instant())))
    }
    pub fn advance(&self, d: Duration) {
        *self.0.lock() += d;
    }
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
    pub fn clock(&self) -> clinic_core::ids::Clock {
        let c = self.0.clone();
        Arc::new(move || *c.lock())
    }
}

/// The instant test clocks start at: `CLINICDESK_TEST_NOW` (RFC 3339) or `DEFAULT_START`.
pub fn start_instant() -> DateTime<Utc> {
    let text = std::env::var("CLINICDESK_TEST_NOW").unwrap_or_else(|_| DEFAULT_START.into());
    clinic_core::ids::parse_ts(&text)
        .unwrap_or_else(|| panic!("CLINICDESK_TEST_NOW={text:?} is not RFC 3339"))
}

/// The test clinic's zone (`clinic_profile`), for computing its local dates.
pub fn clinic_tz() -> chrono_tz::Tz {
    clinic_profile("x").time_zone.parse().unwrap()
}

/// The clinic's local date `days` after the clock's, as YYYY-MM-DD.
pub fn clinic_date(c: &Clinic, days: i64) -> String {
    (c.clock.now().with_timezone(&clinic_tz()).date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

pub struct Clinic {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub recovery_key: String,
    /// The admin's TOTP secret once enrolled.
    pub admin_totp: String,
}

impl Clinic {
    pub fn core(&self) -> Core {
        Core::with_clock(self.dir.path(), self.clock.clock())
    }
}

pub fn clinic_profile(name: &str) -> ClinicProfile {
    ClinicProfile {
        name: name.into(),
        address: "12 Sukhumvit Rd, Bangkok".into(),
        phone: "+66 2 123 4567".into(),
        currency: "THB".into(),
        time_zone: "Asia/Bangkok".into(),
        default_language: Language::En,
        paper: Default::default(),
    }
}

/// A set-up clinic whose admin has enrolled TOTP (the default policy requires it).
pub fn new_clinic() -> Clinic {
    new_clinic_named("Riverside Family Clinic")
}

pub fn new_clinic_named(name: &str) -> Clinic {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let core = Core::with_clock(dir.path(), clock.clock());
    let out = core
        .setup_create(SetupInput {
            clinic: clinic_profile(name),
            admin_username: ADMIN.into(),
            admin_full_name: "Anna Admin".into(),
            admin_email: "anna@clinic.example".into(),
            admin_phone: "+66 81 234 5678".into(),
            admin_password: ADMIN_PW.into(),
        })
        .expect("setup");
    let mut clinic = Clinic {
        dir,
        clock,
        recovery_key: out.recovery_key,
        admin_totp: String::new(),
    };
    let secret = match core.login(ADMIN.into(), ADMIN_PW.into()).unwrap() {
        LoginStep::EnrolTotp { secret_base32, .. } => secret_base32,
        other => panic!("admin must enrol TOTP first, got {other:?}"),
    };
    let done = core
        .login_totp((&code(&clinic, &secret)).into())
        .expect("enrolment code accepted");
    assert_eq!(done.recovery_codes.len(), 10);
    core.logout().unwrap();
    clinic.admin_totp = secret;
    // The code just used can't be used again: step past it.
    clinic.clock.advance(Duration::seconds(30));
    clinic
}

pub fn code(c: &Clinic, secret: &str) -> String {
    auth::totp_code(secret, c.clock.now().timestamp() as u64).unwrap()
}

pub fn admin_core(c: &Clinic) -> Core {
    let core = c.core();
    login_with_totp(c, &core, ADMIN, ADMIN_PW, &c.admin_totp);
    core
}

pub fn login_with_totp(c: &Clinic, core: &Core, user: &str, pw: &str, secret: &str) {
    match core.login(user.into(), pw.into()).unwrap() {
        LoginStep::Totp => {}
        other => panic!("expected a TOTP step, got {other:?}"),
    }
    core.login_totp((&code(c, secret)).into())
        .expect("TOTP accepted");
    c.clock.advance(Duration::seconds(30));
}

/// Signs `user` in, enrolling TOTP if asked, and returns the secret (empty if none).
pub fn login_any(c: &Clinic, core: &Core, user: &str, pw: &str) -> String {
    match core.login(user.into(), pw.into()).unwrap() {
        LoginStep::Done { .. } => String::new(),
        LoginStep::EnrolTotp { secret_base32, .. } => {
            core.login_totp((&code(c, &secret_base32)).into()).unwrap();
            c.clock.advance(Duration::seconds(30));
            secret_base32
        }
        LoginStep::Totp => panic!("{user} has TOTP already; use login_with_totp"),
    }
}

pub fn new_staff(username: &str, roles: Vec<Role>, pw: &str) -> NewStaff {
    NewStaff {
        username: username.into(),
        full_name: format!("{username} Person"),
        email: String::new(),
        phone: String::new(),
        roles,
        language: None,
        initial_password: pw.into(),
    }
}

/// The open database of a signed-in core as the file is, outside the write path: for
/// tests that look at it (or tamper with it) directly.
pub struct RawDb<'a> {
    conn: &'a rusqlite::Connection,
    db: &'a Db,
}

impl RawDb<'_> {
    pub fn conn(&self) -> &rusqlite::Connection {
        self.conn
    }
    pub fn device(&self) -> &Device {
        self.db.device()
    }
}

pub fn with_db<T>(
    core: &Core,
    f: impl FnOnce(&RawDb) -> clinic_core::Result<T>,
) -> clinic_core::Result<T> {
    let db = core.dev_db()?;
    db.raw_writer(|conn| f(&RawDb { conn, db: &db }))
}

/// Every `.rs` file below `dir`, for the tests that read the sources.
pub fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
