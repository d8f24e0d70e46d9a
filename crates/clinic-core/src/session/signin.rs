//! First run, signing in and out, the second factor, locking, and one's own account.

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;

use super::accounts;
use super::auth;
use super::keyslots::{KeySlots, SLOT_FILE};
use super::{AppInfo, Currency, Error, LoginDone, LoginStep, Pending, Session, SessionInfo, SetupInput, SetupResult, State};
use super::{Cx, Host};
use crate::error::{Reason, Result};
use crate::ids;
use crate::perm::Role;
use crate::settings::{self, ClinicProfile, Language, SecurityPolicy};
use crate::staff::{self, NewStaff, Staff};
use crate::store::{Actor, Db, DbKey, DB_FILE};

/// How long a password-checked sign-in waits for its second factor.
const PENDING_LOGIN_MINUTES: i64 = 5;

fn initialized(dir: &Path) -> bool {
    dir.join(DB_FILE).exists() || KeySlots::exists(dir)
}

fn load_slots(dir: &Path) -> Result<KeySlots> {
    if !initialized(dir) {
        return Err(Error::NotInitialized.into());
    }
    KeySlots::load(dir)
}

fn open_db(core: &Host, key: &DbKey) -> Result<Db> {
    if !core.data_dir().join(DB_FILE).exists() {
        return Err(Error::NotInitialized.into());
    }
    Db::open(core.data_dir(), key, core.clock().clone())
}

pub fn app_info(cx: &Cx) -> Result<AppInfo> {
    let dir = cx.host().data_dir();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: dir.display().to_string(),
        initialized: initialized(dir),
        currencies: settings::CURRENCIES.iter().map(|(c, d)| Currency { code: c.to_string(), digits: *d }).collect(),
    })
}

pub fn setup_status(cx: &Cx) -> Result<bool> {
    Ok(initialized(cx.host().data_dir()))
}

/// First run: creates the database, the clinic, the first admin, and the recovery key.
/// All or nothing: on any failure the half-made files are removed.
pub fn setup_create(cx: &Cx, input: SetupInput) -> Result<SetupResult> {
    let core = cx.host();
    // Held throughout: two set-ups at once must not both create files.
    let _st = core.state();
    let dir = core.data_dir();
    if initialized(dir) {
        return Err(Error::AlreadyInitialized.into());
    }
    let mut clinic = input.clinic.clone();
    clinic.validate()?;
    let username = crate::validate::username(&input.admin_username, staff::Field::Username)?;
    auth::check_password_policy(&input.admin_password, &username)?;
    std::fs::create_dir_all(dir)?;
    let result = setup_files(core, clinic, &input);
    if result.is_err() {
        for f in [DB_FILE, "clinic.db-wal", "clinic.db-shm", SLOT_FILE] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    result
}

fn setup_files(core: &Host, clinic: ClinicProfile, input: &SetupInput) -> Result<SetupResult> {
    let key: DbKey = zeroize::Zeroizing::new(ids::random_bytes());
    let device_code = ids::device_code();
    let db = Db::create(core.data_dir(), &key, &device_code, core.clock().clone())?;
    let database_id = db.device().id.clone();
    let mut slots = KeySlots::create(core.data_dir(), &database_id)?;
    let recovery_key = ids::random_code(32);
    db.write(&Actor::setup(), |w| {
        let lang = clinic.default_language;
        settings::save_clinic(w, clinic)?;
        settings::save_security(w, SecurityPolicy::default())?;
        let admin = NewStaff {
            username: input.admin_username.clone(),
            full_name: input.admin_full_name.clone(),
            email: input.admin_email.clone(),
            phone: input.admin_phone.clone(),
            roles: vec![Role::Admin],
            language: Some(lang),
            initial_password: input.admin_password.clone(),
        };
        accounts::create_in(w, &mut slots, &key, &admin, lang, false)?;
        slots.set_recovery(&recovery_key, &key)?;
        slots.save()
    })?;
    Ok(SetupResult { recovery_key: ids::group(&recovery_key, 4), device_code })
}

/// The printable recovery sheet. Only a recovery key that opens this clinic's database is
/// printed, so a typo can't end up in the safe.
pub fn recovery_sheet(cx: &Cx, recovery_key: &str) -> Result<Vec<u8>> {
    let core = cx.host();
    let _st = core.state();
    let slots = load_slots(core.data_dir())?;
    let normalized = ids::normalize_code(recovery_key);
    let key = slots.open_with_recovery_key(&normalized)?;
    let db = open_db(core, &key)?;
    let clinic = db.read(settings::clinic)?;
    crate::print::recovery_sheet(&clinic, &ids::group(&normalized, 4), db.device(), cx.now())
}

/// Checks the password and opens the database. Then either signs in, or waits for a TOTP
/// code (or for enrolment when the policy requires one and none exists).
pub fn login(cx: &Cx, username: &str, password: &str) -> Result<LoginStep> {
    let core = cx.host();
    let now = cx.now();
    let mut st = core.state();
    let mut slots = load_slots(core.data_dir())?;
    let (staff_id, key) = slots.open_with_password(username.trim(), password, now)?;
    // A new sign-in replaces whatever was there.
    *st = State::default();
    let db = Arc::new(open_db(core, &key)?);
    let (person, policy, totp, clinic) = db.read(|c| {
        Ok((staff::get(c, &staff_id)?, settings::security(c)?, staff::totp_state(c, &staff_id)?, settings::clinic(c)?))
    })?;
    if !person.active {
        return Err(Error::AccountDisabled.into());
    }
    st.db = Some(db);
    if totp.secret.is_some() {
        st.pending = Some(Pending { staff_id, enrol_secret: None, started: now });
        return Ok(LoginStep::Totp);
    }
    if policy.requires_totp(&person.roles) {
        let secret = auth::new_totp_secret();
        let e = auth::enrolment(&secret, &format!("ClinicDesk {}", clinic.name), &person.username)?;
        st.pending = Some(Pending { staff_id, enrol_secret: Some(secret), started: now });
        return Ok(LoginStep::EnrolTotp { secret_base32: e.secret_base32, otpauth_url: e.otpauth_url, qr_png_base64: e.qr_png_base64 });
    }
    let session = finish_login(cx, &mut st, &mut slots, person, policy)?;
    Ok(LoginStep::Done { session })
}

/// The second step: a TOTP code, or one of the recovery codes.
pub fn login_totp(cx: &Cx, code: &str) -> Result<LoginDone> {
    let core = cx.host();
    let now = cx.now();
    let mut st = core.state();
    let Some(pending) = st.pending.take() else { return Err(Error::NoPendingLogin.into()) };
    if now - pending.started > Duration::minutes(PENDING_LOGIN_MINUTES) {
        *st = State::default();
        return Err(Error::NoPendingLogin.into());
    }
    let mut slots = load_slots(core.data_dir())?;
    let db = st.db.clone().ok_or(Error::NoPendingLogin)?;
    let unix = now.timestamp().max(0) as u64;
    let mut recovery_codes = vec![];
    let name = db.read(|c| staff::get(c, &pending.staff_id))?.full_name;
    let actor = Actor { id: pending.staff_id.clone(), name };
    let accepted = match &pending.enrol_secret {
        Some(secret) => match auth::totp_matching_step(secret, code, unix)? {
            Some(step) => {
                recovery_codes = auth::new_recovery_codes();
                let hashes: Vec<String> = recovery_codes.iter().map(|c| auth::hash_recovery_code(c)).collect();
                db.write(&actor, |w| staff::set_totp(w, &pending.staff_id, Some(secret), &hashes, Some(step as i64)))?;
                true
            }
            None => false,
        },
        None => {
            let t = db.read(|c| staff::totp_state(c, &pending.staff_id))?;
            let secret = t.secret.clone().unwrap_or_default();
            if auth::looks_like_recovery_code(code) {
                let h = auth::hash_recovery_code(code);
                if t.recovery_hashes.contains(&h) {
                    let rest: Vec<String> = t.recovery_hashes.into_iter().filter(|x| *x != h).collect();
                    db.write(&actor, |w| {
                        staff::totp_used(w, &pending.staff_id, None, &rest)?;
                        w.record_event("recovery_code_used", staff::Table::Staff, &pending.staff_id, None)
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
            return Err(err.into());
        }
        st.pending = Some(pending);
        return Err(Error::BadTotp.into());
    }
    let (person, policy) = db.read(|c| Ok((staff::get(c, &pending.staff_id)?, settings::security(c)?)))?;
    let session = finish_login(cx, &mut st, &mut slots, person, policy)?;
    Ok(LoginDone { session, recovery_codes })
}

fn finish_login(cx: &Cx, st: &mut State, slots: &mut KeySlots, person: Staff, policy: SecurityPolicy) -> Result<SessionInfo> {
    slots.reset_failures(&person.id)?;
    let db = st.db.clone().ok_or(Error::NotAuthenticated)?;
    let tz = db.read(settings::clinic)?.tz();
    let session = Session { staff: person, policy, tz, last_active: cx.now(), locked: false };
    db.write(&session.actor(), |w| w.record_event("login", staff::Table::Staff, &session.staff.id, None))?;
    let info = session.info(&db)?;
    st.session = Some(session);
    st.pending = None;
    Ok(info)
}

/// Resets an administrator's password (and second factor) with the recovery key.
pub fn recover_account(cx: &Cx, recovery_key: &str, username: &str, new_password: &str) -> Result<()> {
    let core = cx.host();
    let mut st = core.state();
    let mut slots = load_slots(core.data_dir())?;
    let key = slots.open_with_recovery_key(&ids::normalize_code(recovery_key))?;
    let db = open_db(core, &key)?;
    let username = crate::validate::username(username, super::Field::Username)?;
    let person = db
        .read(staff::list)?
        .into_iter()
        .find(|s| s.username == username && s.active && s.roles.contains(&Role::Admin))
        .ok_or(crate::Error::NotFound { entity: "staff" })?;
    auth::check_password_policy(new_password, &person.username)?;
    db.write(&Actor::recovery_key(), |w| {
        staff::password_changed(w, &person.id, false)?;
        staff::set_totp(w, &person.id, None, &[], None)?;
        w.record_event("recover_account", staff::Table::Staff, &person.id, None)?;
        slots.set_staff(&person.id, &person.username, new_password, &key)?;
        slots.save()
    })?;
    *st = State::default();
    Ok(())
}

// ---------------------------------------------------------------------------------
// Own session.

/// Runs `f` on the live session if it is still the one the command started with.
fn with_session<T>(cx: &Cx, f: impl FnOnce(&mut Session) -> T) -> Result<T> {
    let id = cx.staff_id()?;
    let mut st = cx.host().state();
    match st.session.as_mut() {
        Some(s) if s.staff.id == id => Ok(f(s)),
        _ => Err(Error::NotAuthenticated.into()),
    }
}

/// After a change to the signed-in person's own account: the session carries it.
pub fn refresh_staff(cx: &Cx, updated: &Staff) -> Result<()> {
    if cx.staff_id()? == updated.id {
        with_session(cx, |s| s.staff = updated.clone())?;
    }
    Ok(())
}

/// After a settings change: the session's policy and zone follow.
pub fn refresh_settings(cx: &Cx, policy: SecurityPolicy, tz: chrono_tz::Tz) -> Result<()> {
    let mut st = cx.host().state();
    if let Some(s) = st.session.as_mut() {
        s.policy = policy;
        s.tz = tz;
    }
    Ok(())
}

pub fn session_info(cx: &Cx) -> Result<SessionInfo> {
    let s = with_session(cx, |s| s.clone())?;
    s.info(cx.db()?)
}

/// Called by the UI on user activity; the guard has already counted it.
pub fn session_touch(_cx: &Cx) -> Result<()> {
    Ok(())
}

pub fn lock(cx: &Cx) -> Result<()> {
    with_session(cx, |s| s.locked = true)
}

/// Resumes a locked session with the same person's password.
pub fn unlock(cx: &Cx, password: &str) -> Result<SessionInfo> {
    let staff_id = cx.staff_id()?.to_string();
    let mut slots = load_slots(cx.host().data_dir())?;
    let key = slots.check_password(&staff_id, password, cx.now())?;
    if !cx.db()?.has_key(&key) {
        return Err(Error::BadCredentials.into());
    }
    slots.reset_failures(&staff_id)?;
    let now = cx.now();
    let s = with_session(cx, |s| {
        s.locked = false;
        s.last_active = now;
        s.clone()
    })?;
    s.info(cx.db()?)
}

/// Ends the session (a harmless no-op without one). The key leaves memory with the
/// database handle.
pub fn logout(cx: &Cx) -> Result<()> {
    let old = std::mem::take(&mut *cx.host().state());
    if let (Some(db), Some(s)) = (old.db, old.session) {
        db.write(&s.actor(), |w| w.record_event("logout", staff::Table::Staff, &s.staff.id, None))?;
    }
    Ok(())
}

pub fn change_password(cx: &Cx, old_password: &str, new_password: &str) -> Result<SessionInfo> {
    let s = cx.session()?;
    let mut slots = load_slots(cx.host().data_dir())?;
    let key = slots.check_password(&s.staff.id, old_password, cx.now())?;
    auth::check_password_policy(new_password, &s.staff.username)?;
    if old_password == new_password {
        return Err(crate::Error::invalid(super::Field::NewPassword, Reason::Mismatch));
    }
    let (id, username) = (s.staff.id.clone(), s.staff.username.clone());
    let updated = cx.write(|w| {
        staff::password_changed(w, &id, false)?;
        // Inside the transaction: if the slot can't be saved, the database change rolls back.
        slots.set_staff(&id, &username, new_password, &key)?;
        slots.save()?;
        staff::get(w.conn(), &id)
    })?;
    refresh_staff(cx, &updated)?;
    session_info(cx)
}

pub fn set_language(cx: &Cx, language: Language) -> Result<SessionInfo> {
    let id = cx.staff_id()?.to_string();
    let updated = cx.write(|w| {
        staff::set_language(w, &id, language)?;
        staff::get(w.conn(), &id)
    })?;
    refresh_staff(cx, &updated)?;
    session_info(cx)
}
