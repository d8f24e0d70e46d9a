//! Staff accounts: the rows in `staff` and the rules on them (nobody disables or demotes
//! themselves; the last active administrator stays). Passwords are not here: they exist
//! only as key slots (`session::keyslots`). The TOTP secret and hashed recovery codes are.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::names::json_column;
use crate::perm::Role;
use crate::settings::Language;
use crate::store::{Table as _, Write};
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "StaffTable")]
pub enum Table {
    Staff,
}

impl crate::store::Table for Table {
    fn redacted(self) -> &'static [&'static str] {
        &["totp_secret", "totp_recovery"]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "StaffField")]
pub enum Field {
    Username,
    FullName,
    Email,
    Phone,
    Roles,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "StaffError"
)]
pub enum Error {
    #[error("you cannot do this to your own account")]
    SelfAction,
    #[error("at least one active administrator must remain")]
    LastAdmin,
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::domain(e)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Staff {
    pub id: String,
    pub username: String,
    pub full_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<Role>,
    pub language: Language,
    pub active: bool,
    pub must_change_password: bool,
    pub totp_enrolled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A colleague as pickers show them: name and roles, nothing about their account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct StaffPick {
    pub id: String,
    pub full_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
}

impl From<Staff> for StaffPick {
    fn from(s: Staff) -> Self {
        StaffPick {
            id: s.id,
            full_name: s.full_name,
            roles: s.roles,
            active: s.active,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct NewStaff {
    pub username: String,
    pub full_name: String,
    pub email: String,
    pub phone: String,
    pub roles: Vec<Role>,
    pub language: Option<Language>,
    /// Set by the admin; the person must change it at first sign-in.
    pub initial_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct StaffUpdate {
    pub id: String,
    pub full_name: String,
    pub email: String,
    pub phone: String,
    pub roles: Vec<Role>,
    pub language: Language,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct SetActive {
    pub id: String,
    pub active: bool,
    /// Required to re-enable: re-enabling creates a new key slot.
    pub initial_password: Option<String>,
}

/// The secrets kept for second-factor checks; never sent to the UI.
pub struct TotpState {
    pub secret: Option<String>,
    pub last_step: Option<i64>,
    pub recovery_hashes: Vec<String>,
}

const COLUMNS: &str =
    "id, username, full_name, email, phone, roles, language, active, must_change_password,
                       totp_secret IS NOT NULL, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Staff> {
    Ok(Staff {
        id: r.get(0)?,
        username: r.get(1)?,
        full_name: r.get(2)?,
        email: r.get(3)?,
        phone: r.get(4)?,
        roles: json_column(r, 5, "roles")?,
        language: r.get(6)?,
        active: r.get(7)?,
        must_change_password: r.get(8)?,
        totp_enrolled: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Staff> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM staff WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or(Table::Staff.not_found())
}

pub fn list(conn: &Connection) -> Result<Vec<Staff>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM staff ORDER BY active DESC, full_name"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn totp_state(conn: &Connection, id: &str) -> Result<TotpState> {
    conn.prepare_cached(
        "SELECT totp_secret, totp_last_step, totp_recovery FROM staff WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(TotpState {
            secret: r.get(0)?,
            last_step: r.get(1)?,
            recovery_hashes: json_column(r, 2, "recovery codes")?,
        })
    })
    .optional()?
    .ok_or(Table::Staff.not_found())
}

fn clean_roles(mut roles: Vec<Role>) -> Result<String> {
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(crate::Error::invalid(Field::Roles, Reason::Required));
    }
    Ok(serde_json::to_string(&roles)?)
}

/// A new account row with the id and public key of the key slot written for it. The password
/// policy and the slot are the caller's (`session::accounts`): the row holds no password.
pub fn create(
    w: &mut Write<'_>,
    id: &str,
    slot_public_key: &str,
    input: &NewStaff,
    default_language: Language,
    must_change: bool,
) -> Result<Staff> {
    let username = validate::username(&input.username, Field::Username)?;
    let full_name = validate::required(Field::FullName, &input.full_name, 200)?;
    let email = validate::email(Field::Email, &input.email)?;
    let phone = validate::phone(Field::Phone, &input.phone)?;
    let roles = clean_roles(input.roles.clone())?;
    let taken: bool = w
        .conn()
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM staff WHERE username = ?1)")?
        .query_row([&username], |r| r.get(0))?;
    if taken {
        return Err(crate::Error::duplicate(Field::Username));
    }
    let lang = input.language.unwrap_or(default_language);
    w.insert(
        Table::Staff,
        id,
        "INSERT INTO staff (id, username, full_name, email, phone, roles, language, active, must_change_password,
                            password_changed_at, slot_public_key, created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?11, ?9, ?10, ?9, ?10)",
        rusqlite::params![id, username, full_name, email, phone, roles, lang, must_change, w.now_ts(), w.actor_id(), slot_public_key],
    )?;
    get(w.conn(), id)
}

/// Refuses taking the admin role (or activity) away from the last active administrator,
/// and from oneself. Checked inside the write, on the rows as they are now: another admin
/// may have changed them since the acting person signed in.
/// The accounts as their grants say (`session::accounts::as_granted`): who is an enabled
/// administrator is read through it, not from rows another PC may have forged.
pub type Granted<'a> = &'a dyn Fn(Staff) -> Staff;

fn keep_an_admin(
    c: &Connection,
    before: &Staff,
    still_admin: bool,
    acting_id: &str,
    granted: Granted<'_>,
) -> Result<()> {
    let is_admin = |p: &Staff| p.active && p.roles.contains(&Role::Admin);
    if !is_admin(&granted(before.clone())) || still_admin {
        return Ok(());
    }
    if before.id == acting_id {
        return Err(Error::SelfAction.into());
    }
    let admins = list(c)?.into_iter().map(granted).filter(is_admin).count();
    if admins <= 1 {
        return Err(Error::LastAdmin.into());
    }
    Ok(())
}

pub fn update(
    w: &mut Write<'_>,
    input: &StaffUpdate,
    acting_id: &str,
    granted: Granted<'_>,
) -> Result<Staff> {
    let before = get(w.conn(), &input.id)?;
    keep_an_admin(
        w.conn(),
        &before,
        input.roles.contains(&Role::Admin),
        acting_id,
        granted,
    )?;
    let full_name = validate::required(Field::FullName, &input.full_name, 200)?;
    let email = validate::email(Field::Email, &input.email)?;
    let phone = validate::phone(Field::Phone, &input.phone)?;
    let roles = clean_roles(input.roles.clone())?;
    w.update(
        Table::Staff,
        &input.id,
        "UPDATE staff SET full_name = ?2, email = ?3, phone = ?4, roles = ?5, language = ?6,
                          updated_at = ?7, updated_by = ?8
         WHERE id = ?1",
        rusqlite::params![
            input.id,
            full_name,
            email,
            phone,
            roles,
            input.language,
            w.now_ts(),
            w.actor_id()
        ],
    )?;
    get(w.conn(), &input.id)
}

/// Enables or disables an account (never one's own, never the last admin).
/// Whether `acting_id` may disable `id`: not themselves, and not the last administrator.
pub fn check_disable(
    c: &Connection,
    id: &str,
    acting_id: &str,
    granted: Granted<'_>,
) -> Result<()> {
    if id == acting_id {
        return Err(Error::SelfAction.into());
    }
    keep_an_admin(c, &get(c, id)?, false, acting_id, granted)
}

pub fn set_active(
    w: &mut Write<'_>,
    id: &str,
    active: bool,
    acting_id: &str,
    granted: Granted<'_>,
) -> Result<Staff> {
    if active {
        if id == acting_id {
            return Err(Error::SelfAction.into());
        }
    } else {
        check_disable(w.conn(), id, acting_id, granted)?;
    }
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET active = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
        rusqlite::params![id, active, w.now_ts(), w.actor_id()],
    )?;
    get(w.conn(), id)
}

pub fn set_language(w: &mut Write<'_>, id: &str, lang: Language) -> Result<()> {
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET language = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
        rusqlite::params![id, lang, w.now_ts(), w.actor_id()],
    )?;
    Ok(())
}

/// Records the public key of the account's key slot: a re-key seals the new database key to
/// this key and no other (see `session::keyslots`).
pub fn set_slot_key(w: &mut Write<'_>, id: &str, public_key: &str) -> Result<()> {
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET slot_public_key = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
        rusqlite::params![id, public_key, w.now_ts(), w.actor_id()],
    )?;
    Ok(())
}

/// The recipients of a re-key: each active account with the public key recorded for it.
pub fn slot_keys(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, slot_public_key FROM staff WHERE active = 1 AND slot_public_key IS NOT NULL",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The public key recorded for an account's slot.
pub fn slot_key(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT slot_public_key FROM staff WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// After a password change (`must_change` false) or an admin reset (true).
pub fn password_changed(w: &mut Write<'_>, id: &str, must_change: bool) -> Result<()> {
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET must_change_password = ?2, password_changed_at = ?3, updated_at = ?3, updated_by = ?4
         WHERE id = ?1",
        rusqlite::params![id, must_change, w.now_ts(), w.actor_id()],
    )?;
    Ok(())
}

/// Enrols (secret and recovery hashes) or resets (`None`) the second factor.
pub fn set_totp(
    w: &mut Write<'_>,
    id: &str,
    secret: Option<&str>,
    recovery_hashes: &[String],
    step: Option<i64>,
) -> Result<()> {
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET totp_secret = ?2, totp_recovery = ?3, totp_last_step = ?4, updated_at = ?5, updated_by = ?6
         WHERE id = ?1",
        rusqlite::params![id, secret, serde_json::to_string(recovery_hashes)?, step, w.now_ts(), w.actor_id()],
    )?;
    Ok(())
}

/// Records a used TOTP step or a consumed recovery code.
pub fn totp_used(
    w: &mut Write<'_>,
    id: &str,
    step: Option<i64>,
    recovery_hashes: &[String],
) -> Result<()> {
    w.update(
        Table::Staff,
        id,
        "UPDATE staff SET totp_last_step = coalesce(?2, totp_last_step), totp_recovery = ?3 WHERE id = ?1",
        rusqlite::params![id, step, serde_json::to_string(recovery_hashes)?],
    )?;
    Ok(())
}
