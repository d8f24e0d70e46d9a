//! Payments against an invoice, whole or in part, by cash (the change due worked out), card,
//! mobile or QR, bank transfer or insurance; a refund is a negative payment with a reason.
//! Each has a receipt number. A day closed on this PC takes no more payments.

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::invoices::{self, Invoice, InvoiceStatus};
use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Cash,
    Card,
    /// Mobile money or a QR payment.
    Mobile,
    BankTransfer,
    Insurance,
}
crate::text_column!(Method);

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Cash,
        Method::Card,
        Method::Mobile,
        Method::BankTransfer,
        Method::Insurance,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Payment {
    pub id: String,
    pub invoice_id: String,
    pub receipt_no: String,
    pub method: Method,
    /// Negative for a refund.
    pub amount: i64,
    /// Cash: what was handed over, and the change given back.
    pub tendered: Option<i64>,
    pub change_due: Option<i64>,
    pub reason: String,
    /// The clinic-local day of the till it went into.
    pub day: String,
    pub at: String,
    pub by: String,
    pub closed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct PaymentInput {
    pub invoice_id: String,
    pub method: Method,
    /// Positive to pay; negative to refund (with a reason).
    pub amount: i64,
    /// Cash: what the patient handed over (none: exactly the amount).
    pub tendered: Option<i64>,
    pub reason: String,
}

const PAYMENT: &str =
    "p.id, p.invoice_id, p.receipt_no, p.method, p.amount, p.tendered, p.change_due,
    p.reason, p.day, p.created_at, coalesce(s.full_name, p.created_by), p.close_id IS NOT NULL";
const PAYMENT_FROM: &str = "payments p LEFT JOIN staff s ON s.id = p.created_by";

fn payment_row(r: &Row<'_>) -> rusqlite::Result<Payment> {
    Ok(Payment {
        id: r.get(0)?,
        invoice_id: r.get(1)?,
        receipt_no: r.get(2)?,
        method: r.get(3)?,
        amount: r.get(4)?,
        tendered: r.get(5)?,
        change_due: r.get(6)?,
        reason: r.get(7)?,
        day: r.get(8)?,
        at: r.get(9)?,
        by: r.get(10)?,
        closed: r.get(11)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Payment> {
    conn.prepare_cached(&format!(
        "SELECT {PAYMENT} FROM {PAYMENT_FROM} WHERE p.id = ?1"
    ))?
    .query_row([id], payment_row)
    .optional()?
    .ok_or(Table::Payments.not_found())
}

pub fn for_invoice(conn: &Connection, invoice_id: &str) -> Result<Vec<Payment>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PAYMENT} FROM {PAYMENT_FROM} WHERE p.invoice_id = ?1 ORDER BY p.created_at, p.rowid"
    ))?;
    let rows = st.query_map([invoice_id], payment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn day_closed(conn: &Connection, device_id: &str, day: NaiveDate) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM daily_closes WHERE device_id = ?1 AND day = ?2")?
        .query_row([device_id, &day.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Where a payment goes: this PC's till, on the clinic's day.
pub struct Till<'a> {
    pub device_id: &'a str,
    pub device_code: &'a str,
    pub today: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PaymentOutcome {
    pub payment: Payment,
    pub invoice: Invoice,
}

/// Takes a payment (or a refund) on an issued invoice: no more than is due, no more refunded
/// than was paid; cash works out the change.
pub fn take(w: &mut Write<'_>, input: &PaymentInput, till: &Till<'_>) -> Result<PaymentOutcome> {
    let inv = invoices::get(w.conn(), &input.invoice_id)?;
    if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
        return Err(Error::InvoiceNotPayable {
            status: crate::names::name_of(&inv.status).to_string(),
        }
        .into());
    }
    if day_closed(w.conn(), till.device_id, till.today)? {
        return Err(Error::DayClosed {
            day: till.today.to_string(),
        }
        .into());
    }
    if input.amount == 0 || input.amount.abs() > crate::validate::MAX_AMOUNT {
        return Err(CrateError::invalid(Field::Amount, Reason::OutOfRange));
    }
    let reason = crate::validate::optional(Field::Reason, &input.reason, 300)?.unwrap_or_default();
    if input.amount > 0 && input.amount > inv.balance {
        return Err(Error::Overpayment {
            balance: inv.balance,
        }
        .into());
    }
    if input.amount < 0 {
        // Back the way it came: no more than was paid by this method.
        let by_method: i64 = inv
            .payments
            .iter()
            .filter(|p| p.method == input.method)
            .map(|p| p.amount)
            .sum();
        let refundable = by_method.min(inv.paid);
        if -input.amount > refundable {
            return Err(Error::OverRefund { paid: refundable }.into());
        }
        if reason.chars().count() < 3 {
            return Err(CrateError::invalid(Field::Reason, Reason::Required));
        }
    }
    let (tendered, change) = match (input.method, input.tendered) {
        (Method::Cash, Some(t)) if input.amount > 0 => {
            if t < input.amount || t > crate::validate::MAX_AMOUNT {
                return Err(Error::TenderedTooLittle.into());
            }
            (Some(t), Some(t - input.amount))
        }
        (Method::Cash, _) if input.amount > 0 => (Some(input.amount), Some(0)),
        _ => (None, None),
    };
    let year = till.today.year();
    let n = w.next_number("receipt", &year.to_string())?;
    let receipt_no = format!("{}-R{year}-{n:06}", till.device_code);
    let id = new_id();
    w.insert_row(
        Table::Payments,
        &id,
        &[
            ("invoice_id", &inv.id),
            ("receipt_no", &receipt_no),
            ("method", &input.method),
            ("amount", &input.amount),
            ("tendered", &tendered),
            ("change_due", &change),
            ("reason", &reason),
            ("day", &till.today.to_string()),
            ("device_id", &till.device_id),
        ],
    )?;
    invoices::set_paid(w, &inv.id, inv.paid + input.amount, inv.total)?;
    Ok(PaymentOutcome {
        payment: get(w.conn(), &id)?,
        invoice: invoices::get(w.conn(), &inv.id)?,
    })
}

/// Sets an issued invoice's paid amount and status from its payments, after payments made on
/// other PCs arrived (each PC wrote the total it saw). Returns how much was paid beyond the
/// total, if any. Drafts and voided invoices are left as they are.
pub fn rebalance(w: &mut Write<'_>, invoice_id: &str) -> Result<Option<i64>> {
    let row: Option<(String, i64, i64, i64)> = w
        .conn()
        .prepare_cached(
            "SELECT i.status, i.total, i.paid,
                    coalesce((SELECT sum(amount) FROM payments p WHERE p.invoice_id = i.id), 0)
             FROM invoices i WHERE i.id = ?1",
        )?
        .query_row([invoice_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((status, total, paid, sum)) = row else {
        return Ok(None);
    };
    if status == "draft" || status == "void" {
        return Ok(None);
    }
    if paid != sum {
        invoices::set_paid(w, invoice_id, sum, total)?;
    }
    Ok((sum > total).then_some(sum - total))
}
