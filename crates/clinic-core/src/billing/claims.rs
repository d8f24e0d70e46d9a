//! Insurance claims: made from an issued invoice for the insurer's part, then submitted →
//! approved, partly approved or rejected → paid. The insurer's payment goes on the invoice
//! as an `insurance` payment; claimed against paid shows on the invoice.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::invoices::{self, InvoiceStatus};
use super::payments::{self, Method, PaymentInput, Till};
use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    #[default]
    Submitted,
    Approved,
    PartlyApproved,
    Rejected,
    Paid,
}
crate::text_column!(ClaimStatus);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Claim {
    pub id: String,
    pub invoice_id: String,
    pub invoice_number: Option<String>,
    pub patient_name: String,
    pub provider: String,
    pub policy_number: String,
    pub status: ClaimStatus,
    pub claimed: i64,
    pub approved: Option<i64>,
    pub paid: Option<i64>,
    pub note: String,
    pub created_at: String,
}

const CLAIM: &str =
    "c.id, c.invoice_id, i.number, p.given_name || ' ' || p.family_name, pol.provider,
    pol.policy_number, c.status, c.claimed, c.approved, c.paid, c.note, c.created_at";
const CLAIM_FROM: &str = "claims c JOIN invoices i ON i.id = c.invoice_id
    JOIN patients p ON p.id = i.patient_id JOIN insurance_policies pol ON pol.id = c.policy_id";

fn claim_row(r: &Row<'_>) -> rusqlite::Result<Claim> {
    Ok(Claim {
        id: r.get(0)?,
        invoice_id: r.get(1)?,
        invoice_number: r.get(2)?,
        patient_name: r.get(3)?,
        provider: r.get(4)?,
        policy_number: r.get(5)?,
        status: r.get(6)?,
        claimed: r.get(7)?,
        approved: r.get(8)?,
        paid: r.get(9)?,
        note: r.get(10)?,
        created_at: r.get(11)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Claim> {
    conn.prepare_cached(&format!("SELECT {CLAIM} FROM {CLAIM_FROM} WHERE c.id = ?1"))?
        .query_row([id], claim_row)
        .optional()?
        .ok_or(Table::Claims.not_found())
}

pub fn for_invoice(conn: &Connection, invoice_id: &str) -> Result<Option<Claim>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CLAIM} FROM {CLAIM_FROM} WHERE c.invoice_id = ?1"
        ))?
        .query_row([invoice_id], claim_row)
        .optional()?)
}

pub fn list(conn: &Connection, status: Option<ClaimStatus>) -> Result<Vec<Claim>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {CLAIM} FROM {CLAIM_FROM} WHERE ?1 IS NULL OR c.status = ?1
         ORDER BY c.created_at DESC LIMIT 500"
    ))?;
    let rows = st.query_map([status], claim_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A claim for the insurer's part of an issued invoice.
pub fn create(w: &mut Write<'_>, invoice_id: &str) -> Result<Claim> {
    let inv = invoices::get(w.conn(), invoice_id)?;
    if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
        return Err(Error::InvoiceNotPayable {
            status: crate::names::name_of(&inv.status).to_string(),
        }
        .into());
    }
    let Some(policy) = inv.policy.as_ref().filter(|_| inv.insurer_part > 0) else {
        return Err(Error::NothingToClaim.into());
    };
    if let Some(c) = &inv.claim {
        return Ok(c.clone());
    }
    let id = new_id();
    w.insert_row(
        Table::Claims,
        &id,
        &[
            ("invoice_id", &invoice_id),
            ("policy_id", &policy.id),
            ("status", &ClaimStatus::Submitted),
            ("claimed", &inv.insurer_part),
        ],
    )?;
    get(w.conn(), &id)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct ClaimUpdate {
    pub id: String,
    pub status: ClaimStatus,
    /// Approved: the amount approved (partly approved: less than claimed). Paid: the amount
    /// the insurer paid.
    pub amount: Option<i64>,
    pub note: String,
}

/// Moves a claim on. Paid puts the insurer's payment on the invoice.
pub fn update(w: &mut Write<'_>, input: &ClaimUpdate, till: &Till<'_>) -> Result<Claim> {
    use ClaimStatus::*;
    let c = get(w.conn(), &input.id)?;
    let step_ok = matches!(
        (c.status, input.status),
        (Submitted, Approved | PartlyApproved | Rejected) | (Approved | PartlyApproved, Paid)
    );
    if !step_ok {
        return Err(Error::ClaimStep {
            from: crate::names::name_of(&c.status).to_string(),
            to: crate::names::name_of(&input.status).to_string(),
        }
        .into());
    }
    let note = crate::validate::optional(Field::Note, &input.note, 500)?.unwrap_or_default();
    let amount = input.amount.unwrap_or(match input.status {
        Approved => c.claimed,
        Paid => c.approved.unwrap_or(c.claimed),
        _ => 0,
    });
    let limit = match input.status {
        Paid => c.approved.unwrap_or(c.claimed),
        _ => c.claimed,
    };
    if !(0..=limit).contains(&amount)
        || (input.status == PartlyApproved && amount >= c.claimed)
        || (matches!(input.status, Approved | PartlyApproved | Paid) && amount == 0)
    {
        return Err(CrateError::invalid_limit(
            Field::Amount,
            Reason::OutOfRange,
            limit,
        ));
    }
    let (col, value): (&str, Option<i64>) = match input.status {
        Approved | PartlyApproved => ("approved", Some(amount)),
        Paid => ("paid", Some(amount)),
        _ => ("approved", Some(0)),
    };
    w.update_row(
        Table::Claims,
        &c.id,
        &[("status", &input.status), (col, &value), ("note", &note)],
    )?;
    if input.status == Paid {
        payments::take(
            w,
            &PaymentInput {
                invoice_id: c.invoice_id.clone(),
                method: Method::Insurance,
                amount,
                tendered: None,
                reason: format!("claim {}", c.provider),
            },
            till,
        )?;
    }
    get(w.conn(), &c.id)
}
