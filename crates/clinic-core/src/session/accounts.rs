//! Accounts and their key slots, changed together, in the order that a crash can't turn
//! into access nobody meant to give or take:
//! - a slot is written *before* the account row that needs it (creating an account,
//!   re-enabling it, a new password), so no active account is ever without its slot;
//! - a slot is removed *after* the row that disables the account is on disk.
//!
//! A crash between the two steps can leave a slot whose account is missing or disabled. Its
//! password opens nothing through the app (sign-in needs an active account), and the next
//! sign-in removes it (`signin::finish_login`).

use super::auth;
use super::keys::{self, crash_point};
use super::keyslots::KeySlots;
use super::{Cx, Error};
use crate::error::Result;
use crate::ids::new_id;
use crate::settings;
use crate::staff::{self, NewStaff, SetActive, Staff};

/// A new account that must change its password at first sign-in.
pub fn create(cx: &Cx, input: &NewStaff) -> Result<Staff> {
    let dir = cx.host().data_dir();
    let username = crate::validate::username(&input.username, staff::Field::Username)?;
    auth::check_password_policy(&input.initial_password, &username)?;
    let lang = cx.read(settings::clinic)?.default_language;
    let id = new_id();
    let signer = cx.signer()?;
    let public = keys::write_slot(cx, |s, key| {
        s.set_staff(
            &id,
            &username,
            &input.initial_password,
            key,
            &input.roles,
            signer.as_ref(),
        )
    })?
    .0;
    crash_point("account_slot_saved");
    let created = cx.write_durable(|w| staff::create(w, &id, &public, input, lang, true));
    if created.is_err() {
        // Refused (a taken username, a bad field): the slot goes again.
        KeySlots::modify(dir, |s| {
            s.remove_staff(&id);
            Ok(())
        })?;
    }
    created
}

/// Disabling removes the account's key slot: the password no longer opens anything.
/// Re-enabling needs a new initial password (a new slot).
pub fn set_active(cx: &Cx, input: &SetActive) -> Result<Staff> {
    let dir = cx.host().data_dir();
    let acting = cx.staff_id()?.to_string();
    let person = cx.read(|c| staff::get(c, &input.id))?;
    let signer = cx.signer()?;
    if input.active {
        let pw = input.initial_password.as_deref().unwrap_or("");
        auth::check_password_policy(pw, &person.username)?;
        let public = keys::write_slot(cx, |s, key| {
            s.set_staff(
                &person.id,
                &person.username,
                pw,
                key,
                &person.roles,
                signer.as_ref(),
            )
        })?
        .0;
        return cx.write_durable(|w| {
            staff::set_active(w, &person.id, true, &acting, &|p| p)?;
            staff::password_changed(w, &person.id, true)?;
            staff::set_slot_key(w, &person.id, &public)?;
            staff::get(w.conn(), &person.id)
        });
    }
    let slots = KeySlots::load(dir)?;
    let granted = |p| as_granted(&slots, p);
    cx.read(|c| staff::check_disable(c, &person.id, &acting, &granted))?;
    // The administrator's disabling grant is noted first: a crash before it is taken leaves
    // an account that can't sign in here, and the next sign-in takes it
    // (`signin::finish_login`).
    if let Some(by) = &signer {
        KeySlots::modify(dir, |s| {
            s.begin_disabling(&person.id, &person.username, &person.roles, by)
        })?;
    }
    let disabled = cx.write_durable(|w| staff::set_active(w, &person.id, false, &acting, &granted));
    let disabled = match disabled {
        Ok(d) => d,
        Err(e) => {
            KeySlots::modify(dir, |s| {
                s.cancel_disabling(&person.id);
                Ok(())
            })?;
            return Err(e);
        }
    };
    crash_point("account_disabled");
    KeySlots::modify(dir, |s| {
        s.finish_disablings();
        // A slot no grant covers (from before grants) just goes.
        s.remove_staff(&person.id);
        Ok(())
    })?;
    Ok(disabled)
}

/// An administrator sets a new password; the person must change it at next sign-in. The
/// new password gets a new key pair: the old one reaches no key given after this.
pub fn reset_password(cx: &Cx, id: &str, new_password: &str) -> Result<Staff> {
    let person = cx.read(|c| staff::get(c, id))?;
    if !person.active {
        return Err(Error::AccountDisabled.into());
    }
    auth::check_password_policy(new_password, &person.username)?;
    let signer = cx.signer()?;
    let public = keys::write_slot(cx, |s, key| {
        s.set_staff(
            &person.id,
            &person.username,
            new_password,
            key,
            &person.roles,
            signer.as_ref(),
        )
    })?
    .0;
    cx.write_durable(|w| {
        staff::password_changed(w, &person.id, true)?;
        staff::set_slot_key(w, &person.id, &public)?;
        staff::get(w.conn(), &person.id)
    })
}

/// After an administrator changes an account's roles: the account's grant says so, so every
/// PC signs the person in with the new roles (`session::grants`); for a disabled account, its
/// disabling does, and re-enabling gives them.
pub fn regrant(cx: &Cx, updated: &Staff) -> Result<()> {
    let Some(signer) = cx.signer()? else {
        return Ok(());
    };
    let roles_now = KeySlots::load(cx.host().data_dir())?
        .grant_of(&updated.id)
        .map(|g| g.same_roles(&updated.roles));
    if roles_now != Some(false) {
        return Ok(());
    }
    keys::write_slot(cx, |s, _| s.grant(&updated.id, &updated.roles, &signer))
}

/// Signs a grant, with the roles their account row has, for every account whose slot has
/// none (made before grants), as the administrator connecting this PC to a server. Called
/// only before the PC's first link (`api::sync::sync_connect`): until then every row was
/// written on this PC, so its roles are the ones an administrator here gave.
pub fn grant_ungranted(cx: &Cx) -> Result<()> {
    let Some(signer) = cx.signer()? else {
        return Ok(());
    };
    let people = cx.read(staff::list)?;
    keys::write_slot(cx, |s, _| {
        for p in people.iter().filter(|p| p.active) {
            if s.public_key_of(&p.id).is_some() && s.grant_of(&p.id).is_none() {
                s.grant(&p.id, &p.roles, &signer)?;
            }
        }
        Ok(())
    })
}

/// A person with the roles, and enabled or not, as their grant says (`grants`), whatever the
/// `staff` row says: a row another PC sent may have been written by anyone with that PC's
/// folder and a password. An account from before grants keeps its row's.
pub(crate) fn as_granted(slots: &KeySlots, mut person: Staff) -> Staff {
    if let Some(g) = slots.grant_of(&person.id) {
        person.roles = g.body.roles.clone();
        person.active = g.body.active;
    }
    person
}

/// Whether an account's slot is one this PC made for an account that never came to be (a
/// crash between the slot and the account row, see above): no row, and no version of one
/// from anywhere.
pub(crate) fn never_made(c: &rusqlite::Connection, staff_id: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM staff WHERE id = ?1)
            AND NOT EXISTS (SELECT 1 FROM sync_versions WHERE entity = 'staff' AND entity_id = ?1)",
        [staff_id],
        |r| r.get(0),
    )?)
}
