//! Sign-in and the session: first-run set-up, signing in with a password and a second
//! factor, the key slots that open the database, locking, and the rules a session puts on
//! every command (idle lock, forced password change).
//!
//! The database key exists in memory only while someone is signed in: `State` holds the
//! open database (which holds the key) and the session; signing out drops both.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Result};
use crate::perm::{screens_for, Command, Permission, Role, Screen};
use crate::settings::{self, ClinicProfile, Language, SecurityPolicy};
use crate::staff::Staff;
use crate::store::{Actor, Db};

pub mod accounts;
pub mod auth;
mod cx;
pub mod keys;
pub mod grants;
pub mod keyslots;
pub mod signin;

pub use cx::{Cx, Host, TaskState};
pub use keys::{RecoveryKey, RekeyProgress, RekeyReport};

/// The set-up wizard creates the device row (the store's table).
pub use crate::store::StoreTable as Table;

/// The sign-in and set-up forms' fields, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SessionField")]
pub enum Field {
    Username,
    Password,
    NewPassword,
    RecoveryKey,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "SessionError"
)]
pub enum Error {
    #[error("ClinicDesk is not set up on this computer yet")]
    NotInitialized,
    #[error("ClinicDesk is already set up in this data folder")]
    AlreadyInitialized,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed attempts: wait {seconds} seconds and try again")]
    TooManyAttempts { seconds: u64 },
    #[error("this account is disabled; ask an administrator")]
    AccountDisabled,
    #[error("sign in first")]
    NotAuthenticated,
    #[error("the session is locked: enter your password to continue")]
    SessionLocked,
    #[error("change your password before doing anything else")]
    PasswordChangeRequired,
    #[error("wrong or expired code")]
    BadTotp,
    #[error("no sign-in step is waiting for a code; start again")]
    NoPendingLogin,
    #[error("the key slot file {path} is missing: restore it from a backup")]
    KeyslotMissing { path: String },
    #[error("the key slot file is damaged ({detail}): restore it from a backup")]
    KeyslotCorrupt { detail: String },
    #[error(
        "the recovery key is not one this database knows: make a new recovery key, then re-key"
    )]
    RecoveryKeyOutdated,
    #[error(
        "this window's key is no longer the database's (it was re-keyed elsewhere): sign in again"
    )]
    KeyOutdated,
    #[error("your password was changed on another PC since you signed in here: sign in again")]
    SignerOutdated,
    #[error("this PC syncs with a clinic server: every PC shares the database key, so it can't be changed on one PC alone")]
    RekeyWhileSynced,
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::domain(e)
    }
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

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
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
    EnrolTotp {
        secret_base32: String,
        otpauth_url: String,
        qr_png_base64: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct LoginDone {
    pub session: SessionInfo,
    /// Only right after enrolment: the ten one-time codes, shown once.
    pub recovery_codes: Vec<String>,
}

// ---------------------------------------------------------------------------------
// The state behind `Core`.

/// What `Core` holds between commands.
#[derive(Default)]
pub struct State {
    pub(crate) db: Option<std::sync::Arc<Db>>,
    pub(crate) session: Option<Session>,
    pub(crate) pending: Option<Pending>,
    /// The slot signer of the person signing in or signed in (`grants`).
    pub(crate) signer: Option<grants::Signer>,
}

/// A signed-in person. Commands get a copy as they start (`Cx::session`).
#[derive(Debug, Clone)]
pub struct Session {
    pub staff: Staff,
    pub policy: SecurityPolicy,
    /// The clinic's time zone, for local days and working hours.
    pub tz: chrono_tz::Tz,
    pub last_active: DateTime<Utc>,
    pub locked: bool,
}

/// A password-checked sign-in waiting for its second factor.
pub(crate) struct Pending {
    pub staff_id: String,
    /// Set when the person is enrolling: the secret shown as a QR code.
    pub enrol_secret: Option<String>,
    pub started: DateTime<Utc>,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.staff.id.clone(),
            name: self.staff.full_name.clone(),
        }
    }

    /// The rules a session puts on a command before its permission is checked: the idle
    /// lock, and a password that must be changed first.
    pub(crate) fn check(&mut self, cmd: Command, now: DateTime<Utc>) -> Result<()> {
        let idle = Duration::minutes(self.policy.idle_lock_minutes as i64);
        if now - self.last_active > idle {
            self.locked = true;
        }
        let allowed_while_locked = matches!(cmd, Command::unlock | Command::session_info);
        if self.locked && !allowed_while_locked {
            return Err(Error::SessionLocked.into());
        }
        let allowed_before_change = cmd.permission() == Permission::Authenticated;
        if self.staff.must_change_password && !allowed_before_change {
            return Err(Error::PasswordChangeRequired.into());
        }
        Ok(())
    }

    /// Counts a command as a person's activity only when it is one: `session_touch`, which
    /// the window sends on keyboard, mouse and touch input. Screens that poll (the queue, the
    /// day list, the board) are background reads and never keep a session awake, so the idle
    /// lock fires here on its own, whatever the window does.
    pub(crate) fn note_activity(&mut self, cmd: Command, now: DateTime<Utc>) {
        if cmd == Command::session_touch && !self.locked {
            self.last_active = now;
        }
    }

    /// What the window shows of the session.
    pub fn info(&self, db: &Db) -> Result<SessionInfo> {
        let roles = self.staff.roles.clone();
        let clinic = db.read(settings::clinic)?;
        let mut permissions: Vec<Permission> = roles
            .iter()
            .flat_map(|r| r.grants().iter().copied())
            .collect();
        permissions.sort();
        permissions.dedup();
        Ok(SessionInfo {
            staff_id: self.staff.id.clone(),
            username: self.staff.username.clone(),
            full_name: self.staff.full_name.clone(),
            screens: screens_for(&roles),
            roles,
            language: self.staff.language,
            must_change_password: self.staff.must_change_password,
            locked: self.locked,
            totp_enrolled: self.staff.totp_enrolled,
            permissions,
            idle_lock_minutes: self.policy.idle_lock_minutes,
            clinic,
            device_code: db.device().code.clone(),
        })
    }
}
