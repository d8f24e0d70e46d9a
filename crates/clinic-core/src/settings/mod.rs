//! Clinic-wide settings: the clinic's profile and the security policy. (The settings
//! screen's other half, the audit trail, is read in `store::audit`.)

use rusqlite::{Connection, OptionalExtension};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::new_id;
use crate::perm::Role;
use crate::store::Write;
use crate::validate;

pub mod logo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SettingsTable")]
pub enum Table {
    Settings,
    ClinicLogo,
}
impl crate::store::Table for Table {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SettingsField")]
pub enum Field {
    ClinicName,
    ClinicAddress,
    ClinicPhone,
    Currency,
    TimeZone,
    IdleLockMinutes,
    Logo,
}
impl FieldEnum for Field {}

/// Settings refuse only fields (`Error::Invalid`); the domain has no refusals of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "SettingsError"
)]
pub enum Error {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    En,
    Ru,
    Th,
}

crate::text_column!(Language);

/// Paper the clinic prints on (a clinic setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Paper {
    #[default]
    A4,
    Letter,
    /// An 80 mm receipt roll: one page as long as the document.
    Roll80,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Default)]
pub struct ClinicProfile {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// ISO 4217 code; amounts are integer minor units of it.
    pub currency: String,
    /// IANA zone, e.g. "Asia/Bangkok". Times are stored in UTC and shown in this zone.
    pub time_zone: String,
    pub default_language: Language,
    /// What the clinic's printer takes: A4, Letter or an 80 mm receipt roll.
    #[serde(default)]
    pub paper: Paper,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct SecurityPolicy {
    /// People holding any of these roles must use a second factor.
    pub totp_required_roles: Vec<Role>,
    /// Lock the session after this many idle minutes (1..=240).
    pub idle_lock_minutes: u32,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            totp_required_roles: vec![Role::Admin, Role::Doctor],
            idle_lock_minutes: 10,
        }
    }
}

impl SecurityPolicy {
    pub fn requires_totp(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.totp_required_roles.contains(r))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Default)]
pub struct Settings {
    pub clinic: ClinicProfile,
    pub security: SecurityPolicy,
    /// This PC's prefix for human-readable numbers.
    pub device_code: String,
}

const CLINIC: &str = "clinic";
const SECURITY: &str = "security";

/// Currencies the clinic can keep its books in, with the number of minor-unit digits.
pub const CURRENCIES: &[(&str, u8)] = &[
    ("THB", 2),
    ("RUB", 2),
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("KZT", 2),
    ("UZS", 2),
    ("KGS", 2),
    ("BYN", 2),
    ("UAH", 2),
    ("AMD", 2),
    ("GEL", 2),
    ("AZN", 2),
    ("TJS", 2),
    ("MNT", 2),
    ("CNY", 2),
    ("INR", 2),
    ("MYR", 2),
    ("SGD", 2),
    ("IDR", 2),
    ("PHP", 2),
    ("LAK", 2),
    ("MMK", 2),
    ("KHR", 2),
    ("VND", 0),
    ("JPY", 0),
    ("KRW", 0),
    ("AED", 2),
    ("TRY", 2),
    ("CHF", 2),
    ("AUD", 2),
    ("CAD", 2),
];

pub fn minor_digits(currency: &str) -> Option<u8> {
    CURRENCIES
        .iter()
        .find(|(c, _)| *c == currency)
        .map(|(_, d)| *d)
}

impl ClinicProfile {
    pub fn validate(&mut self) -> Result<()> {
        self.name = validate::required(Field::ClinicName, &self.name, 200)?;
        self.address =
            validate::optional(Field::ClinicAddress, &self.address, 500)?.unwrap_or_default();
        self.phone = validate::phone(Field::ClinicPhone, &self.phone)?.unwrap_or_default();
        self.currency = self.currency.trim().to_uppercase();
        if minor_digits(&self.currency).is_none() {
            return Err(crate::Error::invalid(Field::Currency, Reason::Unknown));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(crate::Error::invalid(Field::TimeZone, Reason::Unknown));
        }
        Ok(())
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

impl SecurityPolicy {
    pub fn validate(&mut self) -> Result<()> {
        if !(1..=240).contains(&self.idle_lock_minutes) {
            return Err(crate::Error::invalid_limit(
                Field::IdleLockMinutes,
                Reason::OutOfRange,
                240,
            ));
        }
        self.totp_required_roles.sort();
        self.totp_required_roles.dedup();
        Ok(())
    }
}

/// A setting stored as JSON under `key` (domains keep their own settings here too).
pub fn get_value<T: DeserializeOwned>(conn: &Connection, key: &str) -> Result<Option<T>> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    v.map(|v| serde_json::from_str(&v).map_err(crate::Error::from))
        .transpose()
}

pub fn put_value<T: Serialize>(w: &mut Write<'_>, key: &str, value: &T) -> Result<()> {
    let json = serde_json::to_string(value)?;
    let existing: Option<String> = w
        .conn()
        .prepare_cached("SELECT id FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match existing {
        Some(id) => {
            w.update(
                Table::Settings,
                &id,
                "UPDATE settings SET value = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
                (&id, &json, w.now_ts(), w.actor_id()),
            )?;
        }
        None => {
            let id = new_id();
            w.insert(
                Table::Settings,
                &id,
                "INSERT INTO settings (id, key, value, created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
                (&id, key, &json, w.now_ts(), w.actor_id()),
            )?;
        }
    }
    Ok(())
}

pub fn clinic(conn: &Connection) -> Result<ClinicProfile> {
    get_value(conn, CLINIC)?
        .ok_or_else(|| crate::Error::internal("the clinic profile is missing from the database"))
}

pub fn security(conn: &Connection) -> Result<SecurityPolicy> {
    Ok(get_value(conn, SECURITY)?.unwrap_or_default())
}

pub fn load(conn: &Connection, device_code: &str) -> Result<Settings> {
    Ok(Settings {
        clinic: clinic(conn)?,
        security: security(conn)?,
        device_code: device_code.to_string(),
    })
}

pub fn save_clinic(w: &mut Write<'_>, mut profile: ClinicProfile) -> Result<ClinicProfile> {
    profile.validate()?;
    put_value(w, CLINIC, &profile)?;
    Ok(profile)
}

pub fn save_security(w: &mut Write<'_>, mut policy: SecurityPolicy) -> Result<SecurityPolicy> {
    policy.validate()?;
    put_value(w, SECURITY, &policy)?;
    Ok(policy)
}
