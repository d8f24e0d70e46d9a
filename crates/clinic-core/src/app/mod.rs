//! `Core`: the API that the window, the tests and the benchmarks all call.
//!
//! One `Core` serves one data folder. It holds the open database (only while someone
//! is signed in: the key leaves memory at logout), the session, and a sign-in that
//! waits for its second factor. Every public method is a command: it names its
//! `Command`, and `guard` checks the session and the permission table before anything
//! else happens.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::audit::{self, Actor, AuditFilter, AuditPage, ChainStatus};
use crate::auth;
use crate::db::{Db, DbKey, DB_FILE};
use crate::error::{Error, Field, Reason, Result};
use crate::ids::{self, Clock};
use crate::keyslots::KeySlots;
use crate::perm::{allowed, screens_for, Command, Permission, Role, Screen};
use crate::settings::{self, ClinicProfile, Language, SecurityPolicy, Settings};
use crate::staff::{self, NewStaff, Staff, StaffUpdate};

mod reception;
pub use reception::*;

/// How long a password-checked sign-in waits for its second factor.
const PENDING_LOGIN_MINUTES: i64 = 5;

pub struct Core {
    dir: PathBuf,
    clock: Clock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    db: Option<Db>,
    key: Option<DbKey>,
    session: Option<Session>,
    pending: Option<Pending>,
}

struct Session {
    staff: Staff,
    policy: SecurityPolicy,
    /// The clinic's time zone, for local days and working hours.
    tz: chrono_tz::Tz,
    last_active: DateTime<Utc>,
    locked: bool,
}

impl Session {
    fn actor(&self) -> Actor {
        Actor { id: self.staff.id.clone(), name: self.staff.full_name.clone() }
    }
}

struct Pending {
    staff_id: String,
    /// Set when the person is enrolling: the secret shown as a QR code.
    enrol_secret: Option<String>,
    started: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------
// Types crossing the boundary.

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct AppInfo {
    pub version: String,
    pub data_dir: String,
    pub initialized: bool,
    /// Currencies the books can be kept in (ISO 4217), with their minor-unit digits.
    pub currencies: Vec<Currency>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Currency {
    pub code: String,
    /// Digits of the minor unit: 2 for THB (12345 = 123.45), 0 for JPY.
    pub digits: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SetupInput {
    pub clinic: ClinicProfile,
    pub admin_username: String,
    pub admin_full_name: String,
    pub admin_email: String,
    pub admin_phone: String,
    pub admin_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SetupResult {
    /// Shown once; opens the database if every password is lost.
    pub recovery_key: String,
    pub device_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SessionInfo {
    pub staff_id: String,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<Role>,
    pub language: Language,
    pub must_change_password: bool,
    pub locked: bool,
    pub totp_enrolled: bool,
    pub screens: Vec<Screen>,
    pub permissions: Vec<Permission>,
    pub idle_lock_minutes: u32,
    pub clinic: ClinicProfile,
    pub device_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
#[serde(tag = "step", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // sent once over IPC, never stored
pub enum LoginStep {
    /// Signed in.
    Done { session: SessionInfo },
    /// Enter the code from the authenticator app (or a recovery code).
    Totp,
    /// The policy asks for a second factor and none is set up: scan, then enter a code.
    EnrolTotp { secret_base32: String, otpauth_url: String, qr_png_base64: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct LoginDone {
    pub session: SessionInfo,
    /// Only right after enrolment: the ten one-time codes, shown once.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SetActive {
    pub id: String,
    pub active: bool,
    /// Required to re-enable: re-enabling creates a new key slot.
    pub initial_password: Option<String>,
}

fn io_ok(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    Ok(())
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

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn initialized(&self) -> bool {
        self.dir.join(DB_FILE).exists() || KeySlots::exists(&self.dir)
    }

    /// Checks the session and `cmd`'s permission; marks activity. Returns the open
    /// database and the session.
    fn guard<'s>(&self, st: &'s mut State, cmd: Command) -> Result<(&'s mut Db, &'s mut Session)> {
        let perm = cmd.permission();
        debug_assert!(perm != Permission::Public, "public commands don't need a session");
        let now = self.now();
        let (Some(db), Some(session)) = (st.db.as_mut(), st.session.as_mut()) else {
            return Err(Error::NotAuthenticated);
        };
        let idle = Duration::minutes(session.policy.idle_lock_minutes as i64);
        if now - session.last_active > idle {
            session.locked = true;
        }
        let lock_exempt = matches!(cmd, Command::unlock | Command::logout | Command::session_info);
        if session.locked && !lock_exempt {
            return Err(Error::SessionLocked);
        }
        let pw_exempt = matches!(
            cmd,
            Command::change_password | Command::logout | Command::session_info | Command::session_touch | Command::lock
        );
        if session.staff.must_change_password && !pw_exempt && perm != Permission::Authenticated {
            return Err(Error::PasswordChangeRequired);
        }
        if !allowed(&session.staff.roles, perm) {
            return Err(Error::Forbidden(perm));
        }
        if !session.locked {
            session.last_active = now;
        }
        Ok((db, session))
    }

    fn session_info(db: &Db, s: &Session) -> Result<SessionInfo> {
        let roles = s.staff.roles.clone();
        let clinic = settings::clinic(db.conn())?;
        let mut permissions: Vec<Permission> =
            roles.iter().flat_map(|r| r.grants().iter().copied()).collect::<Vec<_>>();
        permissions.sort();
        permissions.dedup();
        Ok(SessionInfo {
            staff_id: s.staff.id.clone(),
            username: s.staff.username.clone(),
            full_name: s.staff.full_name.clone(),
            screens: screens_for(&roles),
            roles,
            language: s.staff.language,
            must_change_password: s.staff.must_change_password,
            locked: s.locked,
            totp_enrolled: s.staff.totp_enrolled,
            permissions,
            idle_lock_minutes: s.policy.idle_lock_minutes,
            clinic,
            device_code: db.device().code.clone(),
        })
    }

    /// For commands that live in the window layer (opening a window): checks the session
    /// and the permission exactly as a core command would.
    pub fn authorize(&self, cmd: Command) -> Result<()> {
        let mut st = self.state.lock();
        self.guard(&mut st, cmd).map(drop)
    }

    // -----------------------------------------------------------------------------
    // Before sign-in.

    pub fn app_info(&self) -> Result<AppInfo> {
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            data_dir: self.dir.display().to_string(),
            initialized: self.initialized(),
            currencies: settings::CURRENCIES.iter().map(|(c, d)| Currency { code: c.to_string(), digits: *d }).collect(),
        })
    }

    pub fn setup_status(&self) -> Result<bool> {
        Ok(self.initialized())
    }

    /// First run: creates the database, the clinic, the first admin, and the recovery
    /// key. All or nothing: on any failure the half-made files are removed.
    pub fn setup_create(&self, input: SetupInput) -> Result<SetupResult> {
        let _st = self.state.lock();
        if self.initialized() {
            return Err(Error::AlreadyInitialized);
        }
        let mut clinic = input.clinic.clone();
        clinic.validate()?;
        let username = crate::validate::username(&input.admin_username)?;
        auth::check_password_policy(&input.admin_password, &username)?;
        io_ok(&self.dir)?;
        let result = self.setup_files(clinic, &input, &username);
        if result.is_err() {
            for f in [DB_FILE, "clinic.db-wal", "clinic.db-shm", crate::keyslots::SLOT_FILE] {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
        }
        result
    }

    fn setup_files(&self, clinic: ClinicProfile, input: &SetupInput, username: &str) -> Result<SetupResult> {
        let key: DbKey = zeroize::Zeroizing::new(ids::random_bytes());
        let device_code = ids::device_code();
        let mut db = Db::create(&self.dir, &key, &device_code, self.clock.clone())?;
        let database_id = db.device().id.clone();
        let mut slots = KeySlots::create(&self.dir, &database_id)?;
        let recovery_key = ids::random_code(32);
        db.write(&Actor::setup(), |w| {
            let lang = clinic.default_language;
            settings::save_clinic(w, clinic)?;
            settings::save_security(w, SecurityPolicy::default())?;
            let admin = staff::create(
                w,
                &NewStaff {
                    username: username.to_string(),
                    full_name: input.admin_full_name.clone(),
                    email: input.admin_email.clone(),
                    phone: input.admin_phone.clone(),
                    roles: vec![Role::Admin],
                    language: Some(lang),
                    initial_password: input.admin_password.clone(),
                },
                lang,
                false,
            )?;
            slots.set_staff(&admin.id, &admin.username, &input.admin_password, &key)?;
            slots.set_recovery(&recovery_key, &key)?;
            slots.save()
        })?;
        Ok(SetupResult { recovery_key: ids::group(&recovery_key, 4), device_code })
    }

    /// The printable recovery sheet. Only a recovery key that opens this clinic's
    /// database is printed, so a typo can't end up in the safe.
    pub fn recovery_sheet_pdf(&self, recovery_key: &str) -> Result<Vec<u8>> {
        let _st = self.state.lock();
        let slots = self.load_slots()?;
        let normalized = ids::normalize_code(recovery_key);
        let key = slots.open_with_recovery_key(&normalized)?;
        let db = Db::open(&self.dir, &key, self.clock.clone())?;
        let clinic = settings::clinic(db.conn())?;
        crate::print::recovery_sheet(&clinic, &ids::group(&normalized, 4), db.device(), self.now())
    }

    fn load_slots(&self) -> Result<KeySlots> {
        if !self.initialized() {
            return Err(Error::NotInitialized);
        }
        KeySlots::load(&self.dir)
    }

    /// Checks the password and opens the database. Then either signs in, or waits for
    /// a TOTP code (or for enrolment when the policy requires one and none exists).
    pub fn login(&self, username: &str, password: &str) -> Result<LoginStep> {
        let mut st = self.state.lock();
        let now = self.now();
        let mut slots = self.load_slots()?;
        let (staff_id, key) = slots.open_with_password(username.trim(), password, now)?;
        // A new sign-in replaces whatever was there.
        *st = State::default();
        let db = Db::open(&self.dir, &key, self.clock.clone())?;
        let person = staff::get(db.conn(), &staff_id)?;
        if !person.active {
            return Err(Error::AccountDisabled);
        }
        let policy = settings::security(db.conn())?;
        let totp = staff::totp_state(db.conn(), &staff_id)?;
        st.db = Some(db);
        st.key = Some(key);
        if totp.secret.is_some() {
            st.pending = Some(Pending { staff_id, enrol_secret: None, started: now });
            return Ok(LoginStep::Totp);
        }
        if policy.requires_totp(&person.roles) {
            let secret = auth::new_totp_secret();
            let clinic = settings::clinic(st.db.as_ref().expect("just opened").conn())?;
            let e = auth::enrolment(&secret, &format!("ClinicDesk {}", clinic.name), &person.username)?;
            st.pending = Some(Pending { staff_id, enrol_secret: Some(secret), started: now });
            return Ok(LoginStep::EnrolTotp {
                secret_base32: e.secret_base32,
                otpauth_url: e.otpauth_url,
                qr_png_base64: e.qr_png_base64,
            });
        }
        let session = self.finish_login(&mut st, &mut slots, person, policy)?;
        Ok(LoginStep::Done { session })
    }

    /// The second step: a TOTP code, or one of the recovery codes.
    pub fn login_totp(&self, code: &str) -> Result<LoginDone> {
        let mut st = self.state.lock();
        let now = self.now();
        let Some(pending) = st.pending.take() else { return Err(Error::NoPendingLogin) };
        if now - pending.started > Duration::minutes(PENDING_LOGIN_MINUTES) {
            *st = State::default();
            return Err(Error::NoPendingLogin);
        }
        let mut slots = self.load_slots()?;
        let db = st.db.as_mut().ok_or(Error::NoPendingLogin)?;
        let unix = now.timestamp().max(0) as u64;
        let mut recovery_codes = vec![];
        let accepted = match &pending.enrol_secret {
            Some(secret) => match auth::totp_matching_step(secret, code, unix)? {
                Some(step) => {
                    recovery_codes = auth::new_recovery_codes();
                    let hashes: Vec<String> = recovery_codes.iter().map(|c| auth::hash_recovery_code(c)).collect();
                    let actor = Actor { id: pending.staff_id.clone(), name: String::new() };
                    db.write(&actor_named(db.conn(), actor), |w| {
                        staff::set_totp(w, &pending.staff_id, Some(secret), &hashes, Some(step as i64))
                    })?;
                    true
                }
                None => false,
            },
            None => {
                let t = staff::totp_state(db.conn(), &pending.staff_id)?;
                let secret = t.secret.clone().unwrap_or_default();
                let actor = actor_named(db.conn(), Actor { id: pending.staff_id.clone(), name: String::new() });
                if auth::looks_like_recovery_code(code) {
                    let h = auth::hash_recovery_code(code);
                    if t.recovery_hashes.contains(&h) {
                        let rest: Vec<String> = t.recovery_hashes.into_iter().filter(|x| *x != h).collect();
                        db.write(&actor, |w| {
                            staff::totp_used(w, &pending.staff_id, None, &rest)?;
                            w.record_event("recovery_code_used", "staff", &pending.staff_id, None)
                        })?;
                        true
                    } else {
                        false
                    }
                } else {
                    match auth::totp_matching_step(&secret, code, unix)? {
                        Some(step) if t.last_step.is_none_or(|last| step as i64 > last) => {
                            db.write(&actor, |w| staff::totp_used(w, &pending.staff_id, Some(step as i64), &t.recovery_hashes))?;
                            true
                        }
                        _ => false,
                    }
                }
            }
        };
        if !accepted {
            let err = slots.record_failure(&pending.staff_id, now)?;
            if matches!(err, Error::TooManyAttempts { .. }) {
                *st = State::default();
                return Err(err);
            }
            st.pending = Some(pending);
            return Err(Error::BadTotp);
        }
        let db = st.db.as_ref().expect("checked above");
        let person = staff::get(db.conn(), &pending.staff_id)?;
        let policy = settings::security(db.conn())?;
        let session = self.finish_login(&mut st, &mut slots, person, policy)?;
        Ok(LoginDone { session, recovery_codes })
    }

    fn finish_login(&self, st: &mut State, slots: &mut KeySlots, person: Staff, policy: SecurityPolicy) -> Result<SessionInfo> {
        slots.reset_failures(&person.id)?;
        let db = st.db.as_mut().ok_or(Error::NotAuthenticated)?;
        let tz = settings::clinic(db.conn())?.tz();
        let session = Session { staff: person, policy, tz, last_active: self.now(), locked: false };
        db.write(&session.actor(), |w| w.record_event("login", "staff", &session.staff.id, None))?;
        let info = Self::session_info(db, &session)?;
        st.session = Some(session);
        st.pending = None;
        Ok(info)
    }

    /// Resets an administrator's password (and second factor) with the recovery key.
    pub fn recover_account(&self, recovery_key: &str, username: &str, new_password: &str) -> Result<()> {
        let mut st = self.state.lock();
        let mut slots = self.load_slots()?;
        let key = slots.open_with_recovery_key(&ids::normalize_code(recovery_key))?;
        let mut db = Db::open(&self.dir, &key, self.clock.clone())?;
        let username = crate::validate::username(username)?;
        let person = staff::list(db.conn())?
            .into_iter()
            .find(|s| s.username == username && s.active && s.roles.contains(&Role::Admin))
            .ok_or(Error::NotFound { entity: "staff" })?;
        auth::check_password_policy(new_password, &person.username)?;
        db.write(&Actor::recovery_key(), |w| {
            staff::password_changed(w, &person.id, false)?;
            staff::set_totp(w, &person.id, None, &[], None)?;
            w.record_event("recover_account", "staff", &person.id, None)?;
            slots.set_staff(&person.id, &person.username, new_password, &key)?;
            slots.save()
        })?;
        *st = State::default();
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // Own session.

    pub fn session_info_cmd(&self) -> Result<SessionInfo> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::session_info)?;
        Self::session_info(db, s)
    }

    /// Called by the UI on user activity; refuses once the idle time has passed.
    pub fn session_touch(&self) -> Result<()> {
        let mut st = self.state.lock();
        self.guard(&mut st, Command::session_touch).map(drop)
    }

    pub fn lock(&self) -> Result<()> {
        let mut st = self.state.lock();
        let (_, s) = self.guard(&mut st, Command::lock)?;
        s.locked = true;
        Ok(())
    }

    /// Resumes a locked session with the same person's password.
    pub fn unlock(&self, password: &str) -> Result<SessionInfo> {
        let mut st = self.state.lock();
        let now = self.now();
        let staff_id = {
            let (_, s) = self.guard(&mut st, Command::unlock)?;
            s.staff.id.clone()
        };
        let mut slots = self.load_slots()?;
        let key = slots.check_password(&staff_id, password, now)?;
        if st.key.as_deref() != Some(&*key) {
            return Err(Error::BadCredentials);
        }
        slots.reset_failures(&staff_id)?;
        let (db, s) = self.guard(&mut st, Command::unlock)?;
        s.locked = false;
        s.last_active = now;
        Self::session_info(db, s)
    }

    pub fn logout(&self) -> Result<()> {
        let mut st = self.state.lock();
        if let Ok((db, s)) = self.guard(&mut st, Command::logout) {
            let actor = s.actor();
            let id = s.staff.id.clone();
            db.write(&actor, |w| w.record_event("logout", "staff", &id, None))?;
        }
        *st = State::default();
        Ok(())
    }

    pub fn change_password(&self, old_password: &str, new_password: &str) -> Result<SessionInfo> {
        let mut st = self.state.lock();
        let now = self.now();
        let (db, s) = self.guard(&mut st, Command::change_password)?;
        let mut slots = self.load_slots()?;
        let key = slots.check_password(&s.staff.id, old_password, now)?;
        auth::check_password_policy(new_password, &s.staff.username)?;
        if old_password == new_password {
            return Err(Error::invalid(Field::NewPassword, Reason::Mismatch));
        }
        let actor = s.actor();
        let id = s.staff.id.clone();
        let username = s.staff.username.clone();
        db.write(&actor, |w| {
            staff::password_changed(w, &id, false)?;
            // Inside the transaction: if the slot can't be saved, the database change rolls back.
            slots.set_staff(&id, &username, new_password, &key)?;
            slots.save()
        })?;
        s.staff = staff::get(db.conn(), &id)?;
        Self::session_info(db, s)
    }

    pub fn set_language(&self, language: Language) -> Result<SessionInfo> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::set_language)?;
        let id = s.staff.id.clone();
        db.write(&s.actor(), |w| staff::set_language(w, &id, language))?;
        s.staff.language = language;
        Self::session_info(db, s)
    }

    // -----------------------------------------------------------------------------
    // Staff accounts.

    pub fn staff_list(&self) -> Result<Vec<Staff>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::staff_list)?;
        staff::list(db.conn())
    }

    pub fn staff_get(&self, id: &str) -> Result<Staff> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::staff_get)?;
        staff::get(db.conn(), id)
    }

    pub fn staff_create(&self, input: NewStaff) -> Result<Staff> {
        let mut st = self.state.lock();
        let key = st.key.clone();
        let (db, s) = self.guard(&mut st, Command::staff_create)?;
        let key = key.ok_or(Error::NotAuthenticated)?;
        let mut slots = self.load_slots()?;
        let lang = settings::clinic(db.conn())?.default_language;
        db.write(&s.actor(), |w| {
            let created = staff::create(w, &input, lang, true)?;
            slots.set_staff(&created.id, &created.username, &input.initial_password, &key)?;
            slots.save()?;
            Ok(created)
        })
    }

    pub fn staff_update(&self, input: StaffUpdate) -> Result<Staff> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::staff_update)?;
        let before = staff::get(db.conn(), &input.id)?;
        let keeps_admin = input.roles.contains(&Role::Admin);
        if before.roles.contains(&Role::Admin) && !keeps_admin && before.active {
            if before.id == s.staff.id {
                return Err(Error::SelfAction);
            }
            if staff::count_active_admins(db.conn())? <= 1 {
                return Err(Error::LastAdmin);
            }
        }
        let updated = db.write(&s.actor(), |w| staff::update(w, &input))?;
        if updated.id == s.staff.id {
            s.staff = updated.clone();
        }
        Ok(updated)
    }

    /// Disabling removes the account's key slot: the password no longer opens anything.
    pub fn staff_set_active(&self, input: SetActive) -> Result<Staff> {
        let mut st = self.state.lock();
        let key = st.key.clone();
        let (db, s) = self.guard(&mut st, Command::staff_set_active)?;
        let key = key.ok_or(Error::NotAuthenticated)?;
        if input.id == s.staff.id {
            return Err(Error::SelfAction);
        }
        let person = staff::get(db.conn(), &input.id)?;
        let mut slots = self.load_slots()?;
        db.write(&s.actor(), |w| {
            staff::set_active(w, &person.id, input.active)?;
            if input.active {
                let pw = input.initial_password.as_deref().unwrap_or("");
                auth::check_password_policy(pw, &person.username)?;
                staff::password_changed(w, &person.id, true)?;
                slots.set_staff(&person.id, &person.username, pw, &key)?;
            } else {
                slots.remove_staff(&person.id);
            }
            slots.save()?;
            staff::get(w.conn(), &person.id)
        })
    }

    pub fn staff_reset_password(&self, id: &str, new_password: &str) -> Result<Staff> {
        let mut st = self.state.lock();
        let key = st.key.clone();
        let (db, s) = self.guard(&mut st, Command::staff_reset_password)?;
        let key = key.ok_or(Error::NotAuthenticated)?;
        let person = staff::get(db.conn(), id)?;
        if !person.active {
            return Err(Error::AccountDisabled);
        }
        auth::check_password_policy(new_password, &person.username)?;
        let mut slots = self.load_slots()?;
        db.write(&s.actor(), |w| {
            staff::password_changed(w, &person.id, true)?;
            slots.set_staff(&person.id, &person.username, new_password, &key)?;
            slots.save()?;
            staff::get(w.conn(), &person.id)
        })
    }

    pub fn staff_reset_totp(&self, id: &str) -> Result<Staff> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::staff_reset_totp)?;
        db.write(&s.actor(), |w| {
            staff::set_totp(w, id, None, &[], None)?;
            staff::get(w.conn(), id)
        })
    }

    // -----------------------------------------------------------------------------
    // Settings and audit.

    pub fn settings_get(&self) -> Result<Settings> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::settings_get)?;
        settings::load(db.conn(), &db.device().code.clone())
    }

    pub fn settings_update(&self, input: Settings) -> Result<Settings> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::settings_update)?;
        let (clinic, policy) = db.write(&s.actor(), |w| {
            Ok((settings::save_clinic(w, input.clinic)?, settings::save_security(w, input.security)?))
        })?;
        s.policy = policy;
        s.tz = clinic.tz();
        settings::load(db.conn(), &db.device().code.clone())
    }

    pub fn audit_list(&self, filter: AuditFilter) -> Result<AuditPage> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::audit_list)?;
        audit::list(db.conn(), &filter)
    }

    pub fn audit_verify(&self) -> Result<ChainStatus> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::audit_verify)?;
        audit::verify(db.conn())
    }

    /// For tests and tools inside the crate family: run `f` on the open database.
    #[doc(hidden)]
    pub fn with_db<T>(&self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let mut st = self.state.lock();
        let db = st.db.as_mut().ok_or(Error::NotAuthenticated)?;
        f(db)
    }
}

fn actor_named(conn: &rusqlite::Connection, mut a: Actor) -> Actor {
    if let Ok(s) = staff::get(conn, &a.id) {
        a.name = s.full_name;
    }
    a
}
