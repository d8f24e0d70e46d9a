//! The crate's one error type, and the `{code, message, params}` shape it takes at the IPC
//! boundary. A code exists because the UI branches on it or translates it; the UI never
//! parses `message` (that is the English fallback and what goes into logs).
//!
//! The variants here are the ones every domain shares (a refused field, a missing row, a
//! busy database). A domain's own refusals are its own `Error` enum in its folder
//! (`scheduling::Error::SlotTaken`, …), carried here as `Error::Domain`. A domain error
//! derives `Serialize` with `#[serde(tag = "code", content = "params", rename_all =
//! "snake_case")]`: the serde names are its codes, its fields its params, and the generated
//! bindings list them for the translations, so no list of codes is kept by hand.

use std::any::Any;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use specta::Type;

use crate::names::{name_of, UnknownValue};
use crate::perm::Permission;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a field was refused. The UI shows `validation.<reason>` with the field's label
/// (exported as `Validation`, hence the key prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "Validation")]
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

/// A form field an error names, by its serde name (`given_name`). Each domain lists its
/// fields as its own `Field` enum (exported to the UI, which labels them `field.<name>`)
/// and marks it with `FieldEnum`; anything that names a field takes `impl Into<FieldName>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldName(pub &'static str);

/// A domain's `Field` enum: field-less, serde names in snake_case.
pub trait FieldEnum: Serialize + Copy {}

impl<F: FieldEnum> From<F> for FieldName {
    fn from(f: F) -> Self {
        FieldName(name_of(&f))
    }
}

impl std::fmt::Display for FieldName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A domain's own error enum, as `Error::Domain` carries it. Implemented for every
/// `thiserror` enum that derives `Serialize` (tagged by `code`, content `params`).
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// `{"code": "...", "params": {...}}`.
    fn to_json(&self) -> serde_json::Value;
    fn as_any(&self) -> &dyn Any;
}

impl<T: std::error::Error + Serialize + Send + Sync + 'static> DomainError for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(
            |e| serde_json::json!({ "code": "internal", "params": { "detail": e.to_string() } }),
        )
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {}", name_of(reason).replace('_', " "))]
    Invalid {
        field: FieldName,
        reason: Reason,
        limit: Option<i64>,
    },
    /// `entity` is the table's name (`patients`): the UI labels it `entity.<name>`.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{field} is already taken")]
    Duplicate { field: FieldName },
    #[error("you need the {} permission for this", name_of(permission))]
    Forbidden { permission: Permission },
    #[error("cannot go from {from} to {to}")]
    BadTransition {
        from: &'static str,
        to: &'static str,
    },
    #[error("a record holds {value:?}, which this version does not know as a {kind}: update ClinicDesk on this computer")]
    UnknownValue { kind: &'static str, value: String },
    #[error("the database cannot be read with this key, or the file is damaged")]
    DatabaseUnreadable,
    #[error("the database is busy; try again")]
    Busy,
    /// The sync clock has no stamp left (this PC's clock is set near the year 2286).
    #[error("this PC's clock is set so far ahead that no change can be stamped: set the date and time right")]
    ClockExhausted,
    /// A row that syncs would not fit in one push to the server (`store::MAX_ROW_BYTES`).
    #[error(
        "this record is too large to share with the clinic's other PCs (at most {limit} bytes)"
    )]
    RowTooLarge { limit: i64 },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    Domain(Box<dyn DomainError>),
}

/// The codes of the shared variants. Domain codes come from the domains' error enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Validation,
    NotFound,
    Duplicate,
    Forbidden,
    BadTransition,
    UnknownValue,
    DatabaseUnreadable,
    Busy,
    ClockExhausted,
    RowTooLarge,
    Internal,
}

impl Error {
    pub fn invalid(field: impl Into<FieldName>, reason: Reason) -> Self {
        Error::Invalid {
            field: field.into(),
            reason,
            limit: None,
        }
    }

    pub fn invalid_limit(field: impl Into<FieldName>, reason: Reason, limit: i64) -> Self {
        Error::Invalid {
            field: field.into(),
            reason,
            limit: Some(limit),
        }
    }

    pub fn duplicate(field: impl Into<FieldName>) -> Self {
        Error::Duplicate {
            field: field.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// Wraps a domain's error (each domain's `impl From<Error> for crate::Error` calls this).
    pub fn domain(e: impl DomainError) -> Self {
        Error::Domain(Box::new(e))
    }

    /// The domain error inside, if it is an `E`.
    pub fn as_domain<E: DomainError>(&self) -> Option<&E> {
        match self {
            Error::Domain(d) => d.as_any().downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The stable code the UI receives.
    pub fn code(&self) -> String {
        let shared = match self {
            Error::Invalid { .. } => ErrorCode::Validation,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Duplicate { .. } => ErrorCode::Duplicate,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::BadTransition { .. } => ErrorCode::BadTransition,
            Error::UnknownValue { .. } => ErrorCode::UnknownValue,
            Error::DatabaseUnreadable => ErrorCode::DatabaseUnreadable,
            Error::Busy => ErrorCode::Busy,
            Error::ClockExhausted => ErrorCode::ClockExhausted,
            Error::RowTooLarge { .. } => ErrorCode::RowTooLarge,
            Error::Internal(_) => ErrorCode::Internal,
            Error::Domain(d) => {
                return d.to_json()["code"]
                    .as_str()
                    .unwrap_or("internal")
                    .to_string()
            }
        };
        name_of(&shared).to_string()
    }

    /// Values the UI interpolates into the translated message.
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            p.insert(k.to_string(), v.to_string());
        };
        match self {
            Error::Invalid {
                field,
                reason,
                limit,
            } => {
                put("field", field.0);
                put("reason", name_of(reason));
                if let Some(l) = limit {
                    put("limit", &l.to_string());
                }
            }
            Error::NotFound { entity } => put("entity", entity),
            Error::Duplicate { field } => put("field", field.0),
            Error::Forbidden { permission } => put("permission", name_of(permission)),
            Error::BadTransition { from, to } => {
                put("from", from);
                put("to", to);
            }
            Error::UnknownValue { kind, value } => {
                put("kind", kind);
                put("value", value);
            }
            Error::Domain(d) => {
                if let Some(obj) = d.to_json().get("params").and_then(|v| v.as_object()) {
                    for (k, v) in obj {
                        match v {
                            serde_json::Value::Null => {}
                            serde_json::Value::String(s) => put(k, s),
                            other => put(k, &other.to_string()),
                        }
                    }
                }
            }
            Error::RowTooLarge { limit } => put("limit", &limit.to_string()),
            Error::DatabaseUnreadable
            | Error::Busy
            | Error::ClockExhausted
            | Error::Internal(_) => {}
        }
        p
    }
}

/// `assert_eq!(err, scheduling::Error::OutsideHours)` in tests and `if err == …` in code.
impl<E: DomainError + PartialEq> PartialEq<E> for Error {
    fn eq(&self, other: &E) -> bool {
        self.as_domain::<E>() == Some(other)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as S;
        if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &e {
            if let Some(u) = inner.downcast_ref::<UnknownValue>() {
                return Error::UnknownValue {
                    kind: u.kind,
                    value: u.value.clone(),
                };
            }
        }
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

/// What a failed command returns over IPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ApiError {
    /// One of `ErrorCode` or a domain error's code (`slot_taken`); the UI translates
    /// `error.<code>`.
    pub code: String,
    /// English, for logs and as the fallback when a translation is missing.
    pub message: String,
    pub params: BTreeMap<String, String>,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError {
            code: e.code(),
            message: e.to_string(),
            params: e.params(),
        }
    }
}

impl ApiError {
    /// For a panic caught at the boundary: the UI gets a normal error, never a crash.
    pub fn from_panic(what: &str) -> Self {
        ApiError {
            code: name_of(&ErrorCode::Internal).into(),
            message: format!("internal error: {what}"),
            params: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, thiserror::Error, Serialize)]
    #[serde(tag = "code", content = "params", rename_all = "snake_case")]
    enum Sample {
        #[error("wait {retry_after_secs} seconds")]
        TooManyAttempts { retry_after_secs: u64 },
        #[error("nobody is waiting")]
        QueueEmpty,
    }

    #[derive(Debug, Clone, Copy, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Field {
        NewPassword,
    }
    impl FieldEnum for Field {}

    #[test]
    fn the_ui_receives_code_message_and_params() {
        let json = serde_json::to_value(ApiError::from(Error::domain(Sample::TooManyAttempts {
            retry_after_secs: 30,
        })))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "code": "too_many_attempts", "message": "wait 30 seconds", "params": {"retry_after_secs": "30"} })
        );
        let json = serde_json::to_value(ApiError::from(Error::domain(Sample::QueueEmpty))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "code": "queue_empty", "message": "nobody is waiting", "params": {} })
        );
        let json = serde_json::to_value(ApiError::from(Error::invalid_limit(
            Field::NewPassword,
            Reason::TooShort,
            10,
        )))
        .unwrap();
        assert_eq!(json["code"], "validation");
        assert_eq!(json["message"], "new_password: too short");
        assert_eq!(
            json["params"],
            serde_json::json!({"field": "new_password", "reason": "too_short", "limit": "10"})
        );
    }

    #[test]
    fn domain_errors_compare_and_downcast() {
        let e = Error::domain(Sample::QueueEmpty);
        assert_eq!(e, Sample::QueueEmpty);
        assert_ne!(
            e,
            Sample::TooManyAttempts {
                retry_after_secs: 1
            }
        );
        assert!(Error::Busy != Sample::QueueEmpty);
    }
}
