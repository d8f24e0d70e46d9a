//! First run, signing in and out, the second factor, locking, and one's own account.

use std::sync::Arc;

use chrono::Duration;

use super::auth;
use super::grants::RECOVERY;
use super::keys::{self, crash_point, load_slots, open_with_keys};
use super::keyslots::{FailedSignin, KeySlots};
use super::{
    AppInfo, Currency, Error, LoginDone, LoginStep, Pending, Session, SessionInfo, SetupInput,
    SetupResult, State,
};
use super::{Cx, Host};
use crate::error::{Reason, Result};
use crate::ids;
use crate::perm::Role;
use crate::settings::{self, ClinicProfile, Language, SecurityPolicy};
use crate::staff::{self, NewStaff, Staff};
use crate::store::{Actor, Db, DbKey, Table as _};

/// How long a password-checked sign-in waits for its second factor.
pub(crate) const PENDING_LOGIN_MINUTES: i64 = 5;

pub fn app_info(cx: &Cx) -> Result<AppInfo> {
    let dir = cx.host().data_dir();
    keys::clean_half_made_setup(dir)?;
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: dir.display().to_string(),
        initialized: keys::initialized(dir),
        currencies: settings::CURRENCIES
            .iter()
            .map(|(c, d)| Currency {
                code: c.to_string(),
                digits: *d,
            })
            .collect(),
    })
}

pub fn setup_status(cx: &Cx) -> Result<bool> {
    let dir = cx.host().data_dir();
    keys::clean_half_made_setup(dir)?;
    Ok(keys::initialized(dir))
}

/// First run: creates the database, the clinic, the first admin, and the recovery key.
/// All or nothing: a marker file stands in the folder until the last step, and a folder with
/// the marker (set-up died, or was killed, half way) is cleared and offered set-up again.
pub fn setup_create(cx: &Cx, input: SetupInput) -> Result<SetupResult> {
    let host = cx.host();
    // Held throughout: two set-ups at once must not both create files.
    let _st = host.state();
    let dir = host.data_dir();
    keys::clean_half_made_setup(dir)?;
    if keys::initialized(dir) {
        return Err(Error::AlreadyInitialized.into());
    }
    let mut clinic = input.clinic.clone();
    clinic.validate()?;
    let username = crate::validate::username(&input.admin_username, staff::Field::Username)?;
    auth::check_password_policy(&input.admin_password, &username)?;
    keys::begin_setup(dir)?;
    let result = setup_files(host, clinic, &input);
    match result {
        Ok(done) => {
            keys::finish_setup(dir)?;
            Ok(done)
        }
        Err(e) => {
            keys::clean_half_made_setup(dir)?;
            Err(e)
        }
    }
}

fn setup_files(host: &Host, clinic: ClinicProfile, input: &SetupInput) -> Result<SetupResult> {
    let key: DbKey = zeroize::Zeroizing::new(ids::random_bytes());
    let device_code = ids::device_code();
    let db = Db::create(host.data_dir(), &key, &device_code, host.clock().clone())?;
    crash_point("setup_db_created");
    let mut slots = KeySlots::create(host.data_dir(), &db.device().id);
    let recovery_key = ids::random_code(32);
    db.write_durable(&Actor::setup(), |w| {
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
        let id = ids::new_id();
        let admin_public = slots
            .set_staff(
                &id,
                &admin.username.trim().to_lowercase(),
                &admin.initial_password,
                &key,
                &admin.roles,
                None,
            )?
            .0;
        staff::create(w, &id, &admin_public, &admin, lang, false)?;
        let recovery_public = slots.set_recovery(&recovery_key, &key)?;
        Db::set_recovery_public_key(w, &db.device().id, &recovery_public)?;
        slots.save_new()
    })?;
    crash_point("setup_slots_saved");
    Ok(SetupResult {
        recovery_key: ids::group(&recovery_key, 4),
        device_code,
    })
}

/// The printable recovery sheet. Only a recovery key that opens this clinic's database is
/// printed, so a typo can't end up in the safe.
/// Making it is audited (as the recovery key, with where it went), though not whether the
/// dialog was then cancelled.
pub fn recovery_sheet(cx: &Cx, out: crate::print::Output, recovery_key: &str) -> Result<Vec<u8>> {
    let host = cx.host();
    let normalized = ids::normalize_code(recovery_key);
    let (db, clinic, header) = {
        let _st = host.state();
        load_slots(host.data_dir())?;
        let keys = KeySlots::modify(host.data_dir(), |s| {
            s.open_with_recovery_key(&normalized, cx.now())
        })?;
        let db = open_with_keys(host, &keys.keys)?;
        let (clinic, header) =
            db.read(|c| Ok((settings::clinic(c)?, crate::print::clinic_header(c)?)))?;
        let device = db.device().id.clone();
        db.write(&Actor::recovery_key(), |w| {
            w.record_event(
                "recovery_sheet",
                crate::store::StoreTable::Device,
                &device,
                Some(serde_json::json!({ "output": crate::names::name_of(&out) })),
            )
        })?;
        (db, clinic, header)
    };
    // Laid out without holding the session lock: other windows' commands go on meanwhile.
    crate::print::recovery_sheet(
        &clinic,
        header,
        &ids::group(&normalized, 4),
        db.device(),
        cx.now(),
    )
}

/// Checks the password and opens the database. Then either signs in, or waits for a TOTP
/// code (or for enrolment when the policy requires one and none exists). Until then nothing
/// reads the database: commands need a session, and the board needs one too.
pub fn login(cx: &Cx, username: &str, password: &str) -> Result<LoginStep> {
    let host = cx.host();
    let now = cx.now();
    let mut st = host.state();
    load_slots(host.data_dir())?;
    let opened = KeySlots::modify(host.data_dir(), |s| {
        s.open_with_password(username.trim(), password, now)
    })?;
    // A new sign-in replaces whatever was there.
    *st = State::default();
    let db = Arc::new(open_with_keys(host, &opened.keys)?);
    let staff_id = opened.staff_id;
    let read = db.read(|c| {
        Ok((
            staff::get(c, &staff_id)?,
            settings::security(c)?,
            staff::totp_state(c, &staff_id)?,
            settings::clinic(c)?,
        ))
    });
    // A slot whose account row is missing (a crash between the two, see `accounts`) opens
    // nothing: it answers as a wrong password would.
    let (person, policy, totp, clinic) = match read {
        Err(crate::Error::NotFound { .. }) => return Err(Error::BadCredentials.into()),
        other => other?,
    };
    let slots = KeySlots::load(host.data_dir())?;
    let person = super::accounts::as_granted(&slots, person);
    if !person.active || slots.is_disabling(&staff_id) {
        return Err(Error::AccountDisabled.into());
    }
    st.signer = opened.signer;
    if opened.legacy {
        // A slot from before key pairs: re-made now that the password is at hand (its public
        // key is recorded when the sign-in completes). Its grant is its own: other PCs take
        // it only once an administrator signs one.
        let (_, own) = KeySlots::modify(host.data_dir(), |s| {
            s.set_staff(
                &person.id,
                &person.username,
                password,
                &db.key(),
                &person.roles,
                None,
            )
        })?;
        st.signer = Some(own);
    }
    st.db = Some(db);
    if totp.secret.is_some() {
        st.pending = Some(Pending {
            staff_id,
            enrol_secret: None,
            started: now,
        });
        return Ok(LoginStep::Totp);
    }
    if policy.requires_totp(&person.roles) {
        let secret = auth::new_totp_secret();
        let e = auth::enrolment(&secret, &person.username, &clinic.name)?;
        st.pending = Some(Pending {
            staff_id,
            enrol_secret: Some(secret),
            started: now,
        });
        return Ok(LoginStep::EnrolTotp {
            secret_base32: e.secret_base32,
            otpauth_url: e.otpauth_url,
            qr_png_base64: e.qr_png_base64,
        });
    }
    let session = finish_login(cx, &mut st, person, policy)?;
    Ok(LoginStep::Done { session })
}

/// The second step: a TOTP code, or one of the recovery codes.
pub fn login_totp(cx: &Cx, code: &str) -> Result<LoginDone> {
    let host = cx.host();
    let now = cx.now();
    let mut st = host.state();
    let Some(pending) = st.pending.take() else {
        return Err(Error::NoPendingLogin.into());
    };
    if now - pending.started > Duration::minutes(PENDING_LOGIN_MINUTES) {
        *st = State::default();
        return Err(Error::NoPendingLogin.into());
    }
    let db = st.db.clone().ok_or(Error::NoPendingLogin)?;
    let unix = now.timestamp().max(0) as u64;
    let mut recovery_codes = vec![];
    let person = db.read(|c| staff::get(c, &pending.staff_id))?;
    let actor = Actor {
        id: person.id.clone(),
        name: person.full_name.clone(),
    };
    let accepted = match &pending.enrol_secret {
        Some(secret) => match auth::totp_matching_step(secret, code, unix)? {
            Some(step) => {
                recovery_codes = auth::new_recovery_codes();
                let hashes: Vec<String> = recovery_codes
                    .iter()
                    .map(|c| auth::hash_recovery_code(c))
                    .collect();
                db.write(&actor, |w| {
                    staff::set_totp(
                        w,
                        &pending.staff_id,
                        Some(secret),
                        &hashes,
                        Some(step as i64),
                    )
                })?;
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
                    let rest: Vec<String> =
                        t.recovery_hashes.into_iter().filter(|x| *x != h).collect();
                    db.write(&actor, |w| {
                        staff::totp_used(w, &pending.staff_id, None, &rest)?;
                        w.record_event(
                            "recovery_code_used",
                            staff::Table::Staff,
                            &pending.staff_id,
                            None,
                        )
                    })?;
                    true
                } else {
                    false
                }
            } else {
                match auth::totp_matching_step(&secret, code, unix)? {
                    Some(step) if t.last_step.is_none_or(|last| step as i64 > last) => {
                        db.write(&actor, |w| {
                            staff::totp_used(
                                w,
                                &pending.staff_id,
                                Some(step as i64),
                                &t.recovery_hashes,
                            )
                        })?;
                        true
                    }
                    _ => false,
                }
            }
        }
    };
    if !accepted {
        let err = KeySlots::modify(host.data_dir(), |s| {
            s.note_failure(&person.username, "second_factor", now);
            Ok(s.record_failure(&pending.staff_id, now))
        })?;
        if matches!(err, Error::TooManyAttempts { .. }) {
            *st = State::default();
            return Err(err.into());
        }
        st.pending = Some(pending);
        return Err(Error::BadTotp.into());
    }
    let policy = db.read(settings::security)?;
    let session = finish_login(cx, &mut st, person, policy)?;
    Ok(LoginDone {
        session,
        recovery_codes,
    })
}

fn finish_login(
    cx: &Cx,
    st: &mut State,
    person: Staff,
    policy: SecurityPolicy,
) -> Result<SessionInfo> {
    let dir = cx.host().data_dir();
    let db = st.db.clone().ok_or(Error::NotAuthenticated)?;
    let tz = db.read(settings::clinic)?.tz();
    let slots = KeySlots::load(dir)?;
    let session = Session {
        staff: super::accounts::as_granted(&slots, person),
        policy,
        tz,
        last_active: cx.now(),
        locked: false,
    };
    let (failures, more, slot_public) = (
        slots.failed_signins().to_vec(),
        slots.more_failed_signins(),
        slots.public_key_of(&session.staff.id),
    );
    let recorded = db.read(|c| staff::slot_key(c, &session.staff.id))?;
    // The failed sign-ins since the last one are audited; the key pair that just opened the
    // database is recorded on the account (accounts from before, or a slot written just
    // before a crash), so a re-key reaches it.
    db.write_durable(&session.actor(), |w| {
        for f in &failures {
            audit_failure(w, f)?;
        }
        if more > 0 {
            w.record_event(
                "login_failed",
                staff::Table::Staff,
                "",
                Some(serde_json::json!({ "more": more })),
            )?;
        }
        if let Some(pk) = slot_public
            .as_deref()
            .filter(|pk| recorded.as_deref() != Some(*pk))
        {
            staff::set_slot_key(w, &session.staff.id, pk)?;
        }
        w.record_event("login", staff::Table::Staff, &session.staff.id, None)
    })?;
    // What a crash left half done (see `session::accounts`): a slot for an account that never
    // came to be goes; a disabling noted but not yet taken is taken (an administrator signed
    // it). Read under the slot lock, so an account another window makes meanwhile keeps its
    // slot. A row another PC sent removes nothing: anyone with a PC's folder can write one,
    // and a disabling made elsewhere comes as a signed grant (`sync::slots`).
    KeySlots::modify(dir, |s| {
        let ids = s.staff_ids();
        let orphans: Vec<String> = db.read(|c| {
            let mut out = vec![];
            for id in ids {
                if super::accounts::never_made(c, &id)? {
                    out.push(id);
                }
            }
            Ok(out)
        })?;
        s.drop_failures(&failures, more);
        s.reset_failures(&session.staff.id);
        for id in &orphans {
            s.remove_staff(id);
        }
        s.finish_disablings();
        Ok(())
    })?;
    let info = session.info(&db)?;
    st.session = Some(session);
    st.pending = None;
    Ok(info)
}

fn audit_failure(w: &mut crate::store::Write<'_>, f: &FailedSignin) -> Result<()> {
    let details =
        serde_json::json!({ "username": f.username, "step": f.step, "at": ids::ts(f.at) });
    w.record_event("login_failed", staff::Table::Staff, "", Some(details))
}

/// Resets an administrator's password (and second factor) with the recovery key.
pub fn recover_account(
    cx: &Cx,
    recovery_key: &str,
    username: &str,
    new_password: &str,
) -> Result<()> {
    let host = cx.host();
    let mut st = host.state();
    let dir = host.data_dir();
    load_slots(dir)?;
    let opened = KeySlots::modify(dir, |s| {
        s.open_with_recovery_key(&ids::normalize_code(recovery_key), cx.now())
    })?;
    let db = open_with_keys(host, &opened.keys)?;
    let username = crate::validate::username(username, super::Field::Username)?;
    // The account is found by its slot and is an administrator by its grant: the row's
    // username and roles may be another PC's forgery.
    let slots = KeySlots::load(dir)?;
    let person = match slots.staff_id_for_username(&username) {
        Some(id) => db.read(|c| staff::get(c, &id)).ok(),
        None => None,
    }
    .map(|p| super::accounts::as_granted(&slots, p))
    .filter(|p| p.active && p.roles.contains(&Role::Admin))
    .ok_or_else(|| staff::Table::Staff.not_found())?;
    auth::check_password_policy(new_password, &person.username)?;
    let key = db.key();
    // Slot first, then the account row (see `session::accounts`).
    let public = KeySlots::modify(dir, |s| {
        s.set_staff(
            &person.id,
            &person.username,
            new_password,
            &key,
            &person.roles,
            opened.signer.as_ref(),
        )
    })?
    .0;
    db.write_durable(&Actor::recovery_key(), |w| {
        // Enabled by its grant: a row another PC sent saying otherwise is set right.
        staff::set_active(w, &person.id, true, RECOVERY, &|p| p)?;
        staff::password_changed(w, &person.id, false)?;
        staff::set_slot_key(w, &person.id, &public)?;
        staff::set_totp(w, &person.id, None, &[], None)?;
        w.record_event("recover_account", staff::Table::Staff, &person.id, None)
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

/// After a change to the signed-in person's own account: the session carries it (with the
/// roles of the account's grant).
pub fn refresh_staff(cx: &Cx, updated: &Staff) -> Result<()> {
    if cx.staff_id()? == updated.id {
        let updated =
            super::accounts::as_granted(&KeySlots::load(cx.host().data_dir())?, updated.clone());
        with_session(cx, |s| s.staff = updated)?;
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

/// Called by the window on a person's input; the guard counted it as activity.
pub fn session_touch(_cx: &Cx) -> Result<()> {
    Ok(())
}

pub fn lock(cx: &Cx) -> Result<()> {
    with_session(cx, |s| s.locked = true)
}

/// Resumes a locked session with the same person's password.
pub fn unlock(cx: &Cx, password: &str) -> Result<SessionInfo> {
    let staff_id = cx.staff_id()?.to_string();
    let now = cx.now();
    let dir = cx.host().data_dir();
    let keys = KeySlots::modify(dir, |s| s.check_password(&staff_id, password, now))?.keys;
    if !keys.iter().any(|k| cx.db().is_ok_and(|db| db.has_key(k))) {
        return Err(Error::BadCredentials.into());
    }
    KeySlots::modify(dir, |s| {
        s.reset_failures(&staff_id);
        Ok(())
    })?;
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
        match db.write(&s.actor(), |w| {
            w.record_event("logout", staff::Table::Staff, &s.staff.id, None)
        }) {
            // Re-keyed from another window meanwhile: this one's key is the old one. The
            // session ends all the same.
            Err(crate::Error::DatabaseUnreadable) => {}
            other => other?,
        }
    }
    Ok(())
}

/// A new password gets a new key pair (`KeySlots::set_staff`): the old password reaches no
/// key given after this.
pub fn change_password(cx: &Cx, old_password: &str, new_password: &str) -> Result<SessionInfo> {
    let s = cx.session()?;
    let dir = cx.host().data_dir();
    let now = cx.now();
    let (id, username) = (s.staff.id.clone(), s.staff.username.clone());
    let old = KeySlots::modify(dir, |slots| slots.check_password(&id, old_password, now))?;
    auth::check_password_policy(new_password, &username)?;
    if old_password == new_password {
        return Err(crate::Error::invalid(
            super::Field::NewPassword,
            Reason::Mismatch,
        ));
    }
    // Slot first, then the account row (see `session::accounts`).
    // The grant is signed with the old slot: other PCs take a new password only from the
    // password they trust (`grants`), with the roles they trust.
    let roles = s.staff.roles.clone();
    let (public, own) = keys::write_slot(cx, |slots, key| {
        slots.set_staff(
            &id,
            &username,
            new_password,
            key,
            &roles,
            old.signer.as_ref(),
        )
    })?;
    // What this person signs from now on is signed with the new slot.
    cx.host().state().signer = Some(own);
    crash_point("password_slot_saved");
    let updated = cx.write_durable(|w| {
        staff::password_changed(w, &id, false)?;
        staff::set_slot_key(w, &id, &public)?;
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
