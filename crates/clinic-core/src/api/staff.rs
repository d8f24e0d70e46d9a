//! Staff accounts. Changes that touch a key slot go through `session::accounts`.

use crate::error::Result;
use crate::session::keyslots::KeySlots;
use crate::session::Cx;
use crate::session::{accounts, signin};
use crate::staff::{self, NewStaff, SetActive, Staff, StaffPick, StaffUpdate};

/// Colleagues for pickers: names and roles only.
pub fn staff_list(cx: &Cx) -> Result<Vec<StaffPick>> {
    Ok(staff_accounts(cx)?
        .into_iter()
        .map(StaffPick::from)
        .collect())
}

/// The accounts with their details, for the administrator's staff screen, with the roles
/// their grants give (`session::grants`): what signing in gives them, and what an edit keeps.
pub fn staff_accounts(cx: &Cx) -> Result<Vec<Staff>> {
    let slots = KeySlots::load(cx.host().data_dir())?;
    Ok(cx
        .read(staff::list)?
        .into_iter()
        .map(|p| accounts::as_granted(&slots, p))
        .collect())
}

pub fn staff_get(cx: &Cx, id: String) -> Result<Staff> {
    let slots = KeySlots::load(cx.host().data_dir())?;
    Ok(accounts::as_granted(
        &slots,
        cx.read(|c| staff::get(c, &id))?,
    ))
}

pub fn staff_create(cx: &Cx, input: NewStaff) -> Result<Staff> {
    accounts::create(cx, &input)
}

pub fn staff_update(cx: &Cx, input: StaffUpdate) -> Result<Staff> {
    let acting = cx.staff_id()?.to_string();
    let slots = KeySlots::load(cx.host().data_dir())?;
    let updated =
        cx.write(|w| staff::update(w, &input, &acting, &|p| accounts::as_granted(&slots, p)))?;
    accounts::regrant(cx, &updated)?;
    signin::refresh_staff(cx, &updated)?;
    Ok(updated)
}

pub fn staff_set_active(cx: &Cx, input: SetActive) -> Result<Staff> {
    accounts::set_active(cx, &input)
}

pub fn staff_reset_password(cx: &Cx, id: String, new_password: String) -> Result<Staff> {
    accounts::reset_password(cx, &id, &new_password)
}

pub fn staff_reset_totp(cx: &Cx, id: String) -> Result<Staff> {
    cx.write(|w| {
        staff::set_totp(w, &id, None, &[], None)?;
        staff::get(w.conn(), &id)
    })
}
