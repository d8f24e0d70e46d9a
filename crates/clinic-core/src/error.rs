//! The crate's one error type, and the `{code, message, params}` shape it takes at the
//! IPC boundary. A code exists because the UI branches on it or translates it; the UI
//! never parses `message` (that is the English fallback and what goes into logs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use specta::Type;

use crate::perm::Permission;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a field was refused. The UI shows `validation.<reason>` with the field's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Required,
    TooShort,
    TooLong,
    TooCommon,
    InvalidFormat,
    InFuture,
    OutOfRange,
    Mismatch,
    Unknown,
    Overlap,
    InPast,
    NotAllowed,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Required => "required",
            Reason::TooShort => "too short",
            Reason::TooLong => "too long",
            Reason::TooCommon => "too common",
            Reason::InvalidFormat => "invalid format",
            Reason::InFuture => "in the future",
            Reason::OutOfRange => "out of range",
            Reason::Mismatch => "does not match",
            Reason::Unknown => "unknown value",
            Reason::Overlap => "overlaps another",
            Reason::InPast => "in the past",
            Reason::NotAllowed => "not allowed here",
        }
    }
}

/// The form fields a validation error can name. The UI labels them `field.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
#[serde(rename = "FieldName")]
pub enum Field {
    ClinicName,
    ClinicAddress,
    ClinicPhone,
    Currency,
    TimeZone,
    Username,
    FullName,
    Email,
    Phone,
    Password,
    NewPassword,
    Roles,
    IdleLockMinutes,
    GivenName,
    FamilyName,
    BirthDate,
    Phones,
    Address,
    NationalId,
    BloodGroup,
    AllergySubstance,
    InsuranceProvider,
    InsuranceValidUntil,
    EmergencyName,
    EmergencyPhone,
    Notes,
    Photo,
    Name,
    QueueCode,
    LicenceNumber,
    Specialization,
    YearsExperience,
    Fee,
    Weekday,
    StartMinute,
    EndMinute,
    SlotMinutes,
    StartsAt,
    EndsAt,
    Duration,
    OverrideReason,
    Reason,
    Doctor,
    Patient,
}

/// Whose other appointment a booking clashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Clash {
    Doctor,
    Patient,
}

impl Clash {
    pub fn as_str(self) -> &'static str {
        match self {
            Clash::Doctor => "doctor",
            Clash::Patient => "patient",
        }
    }
}

impl Field {
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ClinicDesk is not set up on this computer yet")]
    NotInitialized,
    #[error("ClinicDesk is already set up in this data folder")]
    AlreadyInitialized,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed attempts: wait {retry_after_secs} seconds and try again")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("this account is disabled; ask an administrator")]
    AccountDisabled,
    #[error("sign in first")]
    NotAuthenticated,
    #[error("the session is locked: enter your password to continue")]
    SessionLocked,
    #[error("you need the {0:?} permission for this")]
    Forbidden(Permission),
    #[error("change your password before doing anything else")]
    PasswordChangeRequired,
    #[error("wrong or expired code")]
    BadTotp,
    #[error("no sign-in step is waiting for a code; start again")]
    NoPendingLogin,
    #[error("{field}: {}", reason.as_str())]
    Invalid { field: Field, reason: Reason, limit: Option<i64> },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{field} is already taken")]
    Duplicate { field: Field },
    #[error("you cannot do this to your own account")]
    SelfAction,
    #[error("at least one active administrator must remain")]
    LastAdmin,
    #[error("the {} already has an appointment then ({appointment_id} at {starts_at})", clash.as_str())]
    SlotTaken { appointment_id: String, clash: Clash, starts_at: String },
    #[error("outside the doctor's working hours, or during leave, a holiday or blocked time")]
    OutsideHours,
    #[error("cannot go from {from} to {to}")]
    BadTransition { from: &'static str, to: &'static str },
    #[error("this doctor is not taking appointments")]
    DoctorUnavailable,
    #[error("already in today's queue as {number}")]
    AlreadyQueued { number: String },
    #[error("nobody is waiting")]
    QueueEmpty,
    #[error("no free time in that period")]
    NoFreeSlot,
    #[error("the key slot file {0} is missing: restore it from a backup")]
    KeyslotMissing(String),
    #[error("the key slot file is damaged ({0}): restore it from a backup")]
    KeyslotCorrupt(String),
    #[error("the database cannot be read with this key, or the file is damaged")]
    DatabaseUnreadable,
    #[error("the database is busy; try again")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: Field, reason: Reason) -> Self {
        Error::Invalid { field, reason, limit: None }
    }

    pub fn invalid_limit(field: Field, reason: Reason, limit: i64) -> Self {
        Error::Invalid { field, reason, limit: Some(limit) }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            Error::NotInitialized => C::NotInitialized,
            Error::AlreadyInitialized => C::AlreadyInitialized,
            Error::BadCredentials => C::BadCredentials,
            Error::TooManyAttempts { .. } => C::TooManyAttempts,
            Error::AccountDisabled => C::AccountDisabled,
            Error::NotAuthenticated => C::NotAuthenticated,
            Error::SessionLocked => C::SessionLocked,
            Error::Forbidden(_) => C::Forbidden,
            Error::PasswordChangeRequired => C::PasswordChangeRequired,
            Error::BadTotp => C::BadTotp,
            Error::NoPendingLogin => C::NoPendingLogin,
            Error::Invalid { .. } => C::Validation,
            Error::NotFound { .. } => C::NotFound,
            Error::Duplicate { .. } => C::Duplicate,
            Error::SelfAction => C::SelfAction,
            Error::LastAdmin => C::LastAdmin,
            Error::SlotTaken { .. } => C::SlotTaken,
            Error::OutsideHours => C::OutsideHours,
            Error::BadTransition { .. } => C::BadTransition,
            Error::DoctorUnavailable => C::DoctorUnavailable,
            Error::AlreadyQueued { .. } => C::AlreadyQueued,
            Error::QueueEmpty => C::QueueEmpty,
            Error::NoFreeSlot => C::NoFreeSlot,
            Error::KeyslotMissing(_) => C::KeyslotMissing,
            Error::KeyslotCorrupt(_) => C::KeyslotCorrupt,
            Error::DatabaseUnreadable => C::DatabaseUnreadable,
            Error::Busy => C::Busy,
            Error::Internal(_) => C::Internal,
        }
    }

    /// Values the UI interpolates into the translated message.
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        match self {
            Error::TooManyAttempts { retry_after_secs } => {
                p.insert("seconds".into(), retry_after_secs.to_string());
            }
            Error::Forbidden(perm) => {
                p.insert("permission".into(), perm.as_str().into());
            }
            Error::Invalid { field, reason, limit } => {
                p.insert("field".into(), field.as_str());
                p.insert(
                    "reason".into(),
                    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                );
                if let Some(l) = limit {
                    p.insert("limit".into(), l.to_string());
                }
            }
            Error::NotFound { entity } => {
                p.insert("entity".into(), (*entity).into());
            }
            Error::Duplicate { field } => {
                p.insert("field".into(), field.as_str());
            }
            Error::SlotTaken { appointment_id, clash, starts_at } => {
                p.insert("appointment_id".into(), appointment_id.clone());
                p.insert("clash".into(), clash.as_str().into());
                p.insert("starts_at".into(), starts_at.clone());
            }
            Error::BadTransition { from, to } => {
                p.insert("from".into(), (*from).into());
                p.insert("to".into(), (*to).into());
            }
            Error::AlreadyQueued { number } => {
                p.insert("number".into(), number.clone());
            }
            _ => {}
        }
        p
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as S;
        match e.sqlite_error_code() {
            Some(S::DatabaseBusy) | Some(S::DatabaseLocked) => Error::Busy,
            Some(S::NotADatabase) => Error::DatabaseUnreadable,
            _ => Error::Internal(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("file error: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON error: {e}"))
    }
}

/// Stable error codes. Renaming one is a breaking change for the UI's translations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotInitialized,
    AlreadyInitialized,
    BadCredentials,
    TooManyAttempts,
    AccountDisabled,
    NotAuthenticated,
    SessionLocked,
    Forbidden,
    PasswordChangeRequired,
    BadTotp,
    NoPendingLogin,
    Validation,
    NotFound,
    Duplicate,
    SelfAction,
    LastAdmin,
    SlotTaken,
    OutsideHours,
    BadTransition,
    DoctorUnavailable,
    AlreadyQueued,
    QueueEmpty,
    NoFreeSlot,
    KeyslotMissing,
    KeyslotCorrupt,
    DatabaseUnreadable,
    Busy,
    Internal,
}

/// What a failed command returns over IPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ApiError {
    pub code: ErrorCode,
    /// English, for logs and as the fallback when a translation is missing.
    pub message: String,
    pub params: BTreeMap<String, String>,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError { code: e.code(), message: e.to_string(), params: e.params() }
    }
}

impl ApiError {
    /// For a panic caught at the boundary: the UI gets a normal error, never a crash.
    pub fn from_panic(what: &str) -> Self {
        ApiError {
            code: ErrorCode::Internal,
            message: format!("internal error: {what}"),
            params: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ui_receives_code_message_and_params() {
        let json = serde_json::to_value(ApiError::from(Error::TooManyAttempts { retry_after_secs: 30 })).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "too_many_attempts",
                "message": "too many failed attempts: wait 30 seconds and try again",
                "params": {"seconds": "30"}
            })
        );
        let json = serde_json::to_value(ApiError::from(Error::invalid_limit(Field::Password, Reason::TooShort, 10))).unwrap();
        assert_eq!(json["code"], "validation");
        assert_eq!(json["params"]["reason"], "too_short");
        assert_eq!(json["params"]["limit"], "10");
    }
}
