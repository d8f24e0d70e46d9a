//! Accounts and their key slots, changed together: an account that can sign in has a slot
//! holding the database key under its password; a disabled account has none.

use super::auth;
use super::keyslots::KeySlots;
use super::Error;
use super::Cx;
use crate::error::Result;
use crate::settings::{self, Language};
use crate::staff::{self, NewStaff, SetActive, Staff};
use crate::store::{DbKey, Write};

/// Creates the account row and its slot in `w`'s transaction; the slot file is saved by
/// the caller inside the same transaction.
pub(crate) fn create_in(
    w: &mut Write<'_>,
    slots: &mut KeySlots,
    key: &DbKey,
    input: &NewStaff,
    default_language: Language,
    must_change: bool,
) -> Result<Staff> {
    let username = crate::validate::username(&input.username, staff::Field::Username)?;
    auth::check_password_policy(&input.initial_password, &username)?;
    let created = staff::create(w, input, default_language, must_change)?;
    slots.set_staff(&created.id, &created.username, &input.initial_password, key)?;
    Ok(created)
}

fn slots_and_key(cx: &Cx) -> Result<(KeySlots, DbKey)> {
    let db = cx.db()?;
    let slots = KeySlots::load(cx.host().data_dir())?;
    Ok((slots, db.key().clone()))
}

/// A new account that must change its password at first sign-in.
pub fn create(cx: &Cx, input: &NewStaff) -> Result<Staff> {
    let (mut slots, key) = slots_and_key(cx)?;
    let lang = cx.read(settings::clinic)?.default_language;
    cx.write(|w| {
        let created = create_in(w, &mut slots, &key, input, lang, true)?;
        slots.save()?;
        Ok(created)
    })
}

/// Disabling removes the account's key slot: the password no longer opens anything.
/// Re-enabling needs a new initial password (a new slot).
pub fn set_active(cx: &Cx, input: &SetActive) -> Result<Staff> {
    let acting = cx.staff_id()?.to_string();
    let (mut slots, key) = slots_and_key(cx)?;
    cx.write(|w| {
        let person = staff::set_active(w, &input.id, input.active, &acting)?;
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

/// An administrator sets a new password; the person must change it at next sign-in.
pub fn reset_password(cx: &Cx, id: &str, new_password: &str) -> Result<Staff> {
    let (mut slots, key) = slots_and_key(cx)?;
    cx.write(|w| {
        let person = staff::get(w.conn(), id)?;
        if !person.active {
            return Err(Error::AccountDisabled.into());
        }
        auth::check_password_policy(new_password, &person.username)?;
        staff::password_changed(w, &person.id, true)?;
        slots.set_staff(&person.id, &person.username, new_password, &key)?;
        slots.save()?;
        staff::get(w.conn(), &person.id)
    })
}
