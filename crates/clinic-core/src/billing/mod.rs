//! Billing: the price list (versions with an effective date), the billing settings (tax per
//! line kind, prices with or without tax, rounding, the cashier's discount limit), insurance
//! coverage; invoices (`invoices`), payments and refunds (`payments`), claims (`claims`),
//! the daily close (`close`) and the papers (`papers`).
//!
//! Money is integer minor units of the clinic's currency; line arithmetic is in `money`.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::new_id;
use crate::store::Write;
use crate::Error as CrateError;

pub mod claims;
pub mod close;
pub mod invoices;
pub mod money;
pub mod papers;
pub mod payments;

pub use money::Rounding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "BillingTable")]
pub enum Table {
    PriceList,
    Invoices,
    InvoiceLines,
    InsurancePolicies,
    Payments,
    Claims,
    DailyCloses,
}
impl crate::store::Table for Table {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "BillingField")]
pub enum Field {
    Invoice,
    Line,
    Kind,
    Code,
    Description,
    Quantity,
    UnitPrice,
    Amount,
    Discount,
    DiscountReason,
    EffectiveFrom,
    TaxRate,
    DiscountLimit,
    Method,
    Tendered,
    Reason,
    Provider,
    PolicyNumber,
    Coverage,
    ValidUntil,
    Claim,
    Counted,
    Note,
    Encounter,
    Patient,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "BillingError"
)]
pub enum Error {
    #[error("the invoice is {status}: it can't be changed")]
    InvoiceNotDraft { status: String },
    #[error("the invoice has no lines")]
    InvoiceEmpty,
    #[error("the invoice is {status}")]
    InvoiceNotPayable { status: String },
    #[error("only {balance} is due")]
    Overpayment { balance: i64 },
    #[error("only {paid} was paid: no more can be refunded")]
    OverRefund { paid: i64 },
    #[error("less was tendered than paid")]
    TenderedTooLittle,
    #[error("a discount over {limit} needs an administrator")]
    DiscountOverLimit { limit: i64 },
    #[error("{paid} was paid on this invoice: refund it before voiding")]
    HasPayments { paid: i64 },
    #[error("the day {day} is closed on this PC")]
    DayClosed { day: String },
    #[error("the invoice has no insurer's part to claim")]
    NothingToClaim,
    #[error("a claim can't go from {from} to {to}")]
    ClaimStep { from: String, to: String },
    #[error("no price for {code} on {day}")]
    NoPrice { code: String, day: String },
    #[error("a line the visit brought is removed by an administrator")]
    LineFromVisit,
}

impl From<Error> for CrateError {
    fn from(e: Error) -> Self {
        CrateError::domain(e)
    }
}

/// What an invoice line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Consultation,
    #[default]
    Service,
    Procedure,
    LabTest,
    Pharmacy,
}
crate::text_column!(LineKind);

/// Tax per line kind, in basis points (700 = 7 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct TaxRates {
    pub consultation: u32,
    pub service: u32,
    pub procedure: u32,
    pub lab_test: u32,
    pub pharmacy: u32,
}

impl TaxRates {
    pub fn of(&self, kind: LineKind) -> u32 {
        match kind {
            LineKind::Consultation => self.consultation,
            LineKind::Service => self.service,
            LineKind::Procedure => self.procedure,
            LineKind::LabTest => self.lab_test,
            LineKind::Pharmacy => self.pharmacy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct BillingSettings {
    /// Prices include tax (the tax is the part of the price the rate makes up), or tax is
    /// added on top.
    pub prices_include_tax: bool,
    pub rounding: Rounding,
    pub tax_bp: TaxRates,
    /// The largest discount a cashier gives without an administrator, in basis points of
    /// what it discounts.
    pub cashier_discount_limit_bp: u32,
    /// Receipts on the 80 mm roll (otherwise on the clinic's paper).
    pub receipts_on_roll: bool,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            prices_include_tax: true,
            rounding: Rounding::HalfUp,
            tax_bp: TaxRates::default(),
            cashier_discount_limit_bp: 1000,
            receipts_on_roll: true,
        }
    }
}

const SETTINGS_KEY: &str = "billing";

pub fn settings(conn: &Connection) -> Result<BillingSettings> {
    Ok(crate::settings::get_value(conn, SETTINGS_KEY)?.unwrap_or_default())
}

pub fn save_settings(w: &mut Write<'_>, s: BillingSettings) -> Result<BillingSettings> {
    let t = s.tax_bp;
    for rate in [
        t.consultation,
        t.service,
        t.procedure,
        t.lab_test,
        t.pharmacy,
    ] {
        if rate > 10_000 {
            return Err(CrateError::invalid_limit(
                Field::TaxRate,
                Reason::OutOfRange,
                10_000,
            ));
        }
    }
    if s.cashier_discount_limit_bp > 10_000 {
        return Err(CrateError::invalid_limit(
            Field::DiscountLimit,
            Reason::OutOfRange,
            10_000,
        ));
    }
    crate::settings::put_value(w, SETTINGS_KEY, &s)?;
    Ok(s)
}

fn day(field: Field, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| CrateError::invalid(field, Reason::InvalidFormat))
}

/// What the price list prices (pharmacy items are priced by the pharmacy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    Consultation,
    #[default]
    Service,
    Procedure,
    LabTest,
}
crate::text_column!(PriceKind);

impl PriceKind {
    pub fn line(self) -> LineKind {
        match self {
            PriceKind::Consultation => LineKind::Consultation,
            PriceKind::Service => LineKind::Service,
            PriceKind::Procedure => LineKind::Procedure,
            PriceKind::LabTest => LineKind::LabTest,
        }
    }
}

/// One version of a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Price {
    pub id: String,
    pub kind: PriceKind,
    pub code: String,
    /// The doctor (consultation) or the lab test priced.
    pub ref_id: Option<String>,
    pub name: String,
    pub amount: i64,
    pub currency: String,
    pub effective_from: String,
    pub active: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct PriceInput {
    pub kind: PriceKind,
    /// A service's or procedure's code; a doctor's or lab test's id for those kinds.
    pub code: String,
    pub name: String,
    pub amount: i64,
    /// YYYY-MM-DD, today or later.
    pub effective_from: String,
    pub active: bool,
}

const PRICE: &str = "id, kind, code, ref_id, name, amount, currency, effective_from, active";

fn price_row(r: &Row<'_>) -> rusqlite::Result<Price> {
    Ok(Price {
        id: r.get(0)?,
        kind: r.get(1)?,
        code: r.get(2)?,
        ref_id: r.get(3)?,
        name: r.get(4)?,
        amount: r.get(5)?,
        currency: r.get(6)?,
        effective_from: r.get(7)?,
        active: r.get(8)?,
    })
}

/// The price list as it stands on `on`: each code's newest version from that day or before.
/// With `all`, every version, newest first (the price history).
pub fn price_list(conn: &Connection, on: NaiveDate, all: bool) -> Result<Vec<Price>> {
    let sql = if all {
        format!("SELECT {PRICE} FROM price_list ORDER BY kind, name, effective_from DESC")
    } else {
        format!(
            "SELECT {PRICE} FROM price_list p WHERE effective_from = (
                 SELECT max(effective_from) FROM price_list q
                 WHERE q.kind = p.kind AND q.code = p.code AND q.effective_from <= ?1)
             ORDER BY kind, name"
        )
    };
    let mut st = conn.prepare_cached(&sql)?;
    let rows = if all {
        st.query_map([], price_row)?
            .collect::<rusqlite::Result<_>>()?
    } else {
        st.query_map([on.to_string()], price_row)?
            .collect::<rusqlite::Result<_>>()?
    };
    Ok(rows)
}

/// The version of `kind`/`code` in force on `on`, if it is active.
pub fn price_on(
    conn: &Connection,
    kind: PriceKind,
    code: &str,
    on: NaiveDate,
) -> Result<Option<Price>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PRICE} FROM price_list WHERE kind = ?1 AND code = ?2 AND effective_from <= ?3
             ORDER BY effective_from DESC LIMIT 1"
        ))?
        .query_row(rusqlite::params![kind, code, on.to_string()], price_row)
        .optional()?
        .filter(|p| p.active))
}

/// A new version of a price from `effective_from` (today or later); the same day's version
/// is replaced. Invoices already issued keep the amounts they were issued with.
pub fn save_price(w: &mut Write<'_>, input: &PriceInput, today: NaiveDate) -> Result<Price> {
    let code = crate::validate::required(Field::Code, &input.code, 80)?;
    let name = crate::validate::required(Field::Description, &input.name, 200)?;
    if !(0..=crate::validate::MAX_AMOUNT).contains(&input.amount) {
        return Err(CrateError::invalid(Field::Amount, Reason::OutOfRange));
    }
    let from = day(Field::EffectiveFrom, &input.effective_from)?;
    if from < today {
        return Err(CrateError::invalid(Field::EffectiveFrom, Reason::InPast));
    }
    let ref_id = match input.kind {
        PriceKind::Consultation => {
            crate::scheduling::doctors::doctor(w.conn(), &code)?;
            Some(code.clone())
        }
        PriceKind::LabTest => {
            w.conn()
                .prepare_cached("SELECT 1 FROM lab_tests WHERE id = ?1")?
                .query_row([&code], |_| Ok(()))
                .optional()?
                .ok_or(CrateError::invalid(Field::Code, Reason::Unknown))?;
            Some(code.clone())
        }
        _ => None,
    };
    let currency = crate::settings::clinic(w.conn())?.currency;
    let existing: Option<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM price_list WHERE kind = ?1 AND code = ?2 AND effective_from = ?3",
        )?
        .query_row(rusqlite::params![input.kind, code, from.to_string()], |r| {
            r.get(0)
        })
        .optional()?;
    let cols: [(&str, &dyn rusqlite::ToSql); 8] = [
        ("kind", &input.kind),
        ("code", &code),
        ("ref_id", &ref_id),
        ("name", &name),
        ("amount", &input.amount),
        ("currency", &currency),
        ("effective_from", &from.to_string()),
        ("active", &input.active),
    ];
    let id = match existing {
        Some(id) => {
            w.update_row(Table::PriceList, &id, &cols)?;
            id
        }
        None => {
            let id = new_id();
            w.insert_row(Table::PriceList, &id, &cols)?;
            id
        }
    };
    Ok(w.conn()
        .prepare_cached(&format!("SELECT {PRICE} FROM price_list WHERE id = ?1"))?
        .query_row([&id], price_row)?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum CoverageKind {
    /// `value` is basis points of the invoice.
    #[default]
    Percent,
    /// `value` is an amount in minor units, at most the invoice.
    Fixed,
}
crate::text_column!(CoverageKind);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct Policy {
    /// Empty to add.
    pub id: String,
    pub patient_id: String,
    pub provider: String,
    pub policy_number: String,
    pub kind: CoverageKind,
    pub value: i64,
    /// YYYY-MM-DD.
    pub valid_until: String,
    pub active: bool,
}

const POLICY: &str = "id, patient_id, provider, policy_number, kind, value, valid_until, active";

fn policy_row(r: &Row<'_>) -> rusqlite::Result<Policy> {
    Ok(Policy {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        provider: r.get(2)?,
        policy_number: r.get(3)?,
        kind: r.get(4)?,
        value: r.get(5)?,
        valid_until: r.get(6)?,
        active: r.get(7)?,
    })
}

pub fn policies(conn: &Connection, patient_id: &str) -> Result<Vec<Policy>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {POLICY} FROM insurance_policies WHERE patient_id = ?1 ORDER BY valid_until DESC"
    ))?;
    let rows = st.query_map([patient_id], policy_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn policy(conn: &Connection, id: &str) -> Result<Policy> {
    conn.prepare_cached(&format!(
        "SELECT {POLICY} FROM insurance_policies WHERE id = ?1"
    ))?
    .query_row([id], policy_row)
    .optional()?
    .ok_or(crate::store::Table::not_found(Table::InsurancePolicies))
}

/// The policy that covers `patient_id` on `on`: active and valid that day (the latest).
pub fn policy_on(conn: &Connection, patient_id: &str, on: NaiveDate) -> Result<Option<Policy>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {POLICY} FROM insurance_policies
             WHERE patient_id = ?1 AND active = 1 AND valid_until >= ?2
             ORDER BY valid_until DESC LIMIT 1"
        ))?
        .query_row([patient_id, &on.to_string()], policy_row)
        .optional()?)
}

pub fn save_policy(w: &mut Write<'_>, p: &Policy) -> Result<Policy> {
    crate::patients::get(w.conn(), &p.patient_id)?;
    let provider = crate::validate::required(Field::Provider, &p.provider, 200)?;
    let number = crate::validate::required(Field::PolicyNumber, &p.policy_number, 80)?;
    let max = match p.kind {
        CoverageKind::Percent => 10_000,
        CoverageKind::Fixed => crate::validate::MAX_AMOUNT,
    };
    if !(0..=max).contains(&p.value) {
        return Err(CrateError::invalid(Field::Coverage, Reason::OutOfRange));
    }
    let until = day(Field::ValidUntil, &p.valid_until)?.to_string();
    let cols: [(&str, &dyn rusqlite::ToSql); 7] = [
        ("patient_id", &p.patient_id),
        ("provider", &provider),
        ("policy_number", &number),
        ("kind", &p.kind),
        ("value", &p.value),
        ("valid_until", &until),
        ("active", &p.active),
    ];
    let id = if p.id.is_empty() {
        let id = new_id();
        w.insert_row(Table::InsurancePolicies, &id, &cols)?;
        id
    } else {
        let old = policy(w.conn(), &p.id)?;
        if old.patient_id != p.patient_id {
            return Err(CrateError::invalid(Field::Patient, Reason::Mismatch));
        }
        w.update_row(Table::InsurancePolicies, &p.id, &cols)?;
        p.id.clone()
    };
    policy(w.conn(), &id)
}

/// The insurer's part of `total` under `p`.
pub fn insurer_part(p: &Policy, total: i64, mode: Rounding) -> i64 {
    let part = match p.kind {
        CoverageKind::Percent => money::share(total, p.value, mode),
        CoverageKind::Fixed => p.value,
    };
    part.clamp(0, total.max(0))
}
