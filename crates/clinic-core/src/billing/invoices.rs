//! Invoices: a visit's invoice fills itself (the consultation, its lab tests, what the
//! pharmacy dispensed for it), lines are added by hand, discounted with a reason, and the
//! invoice is issued with the next number of its PC and year. Draft → issued → partly paid →
//! paid, or void (with a reason, by an administrator). Nothing is deleted.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::money::{self, LineAmounts};
use super::payments::{self, Payment};
use super::{BillingSettings, Error, Field, LineKind, Policy, PriceKind, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Issued,
    PartlyPaid,
    Paid,
    Void,
}
crate::text_column!(InvoiceStatus);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Line {
    pub id: String,
    pub kind: LineKind,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub discount_reason: String,
    pub tax_rate_bp: i64,
    pub net: i64,
    pub tax: i64,
    pub total: i64,
    pub source_table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Invoice {
    pub id: String,
    /// None while a draft.
    pub number: Option<String>,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub encounter_id: Option<String>,
    pub status: InvoiceStatus,
    pub currency: String,
    pub issued_on: Option<String>,
    pub issued_at: Option<String>,
    pub lines: Vec<Line>,
    /// Sums over the lines: before tax, the tax, and with tax.
    pub net: i64,
    pub tax: i64,
    pub lines_total: i64,
    /// Off the whole invoice, after tax.
    pub discount: i64,
    pub discount_reason: String,
    /// What is charged: lines_total − discount.
    pub total: i64,
    pub paid: i64,
    /// total − paid.
    pub balance: i64,
    pub policy: Option<Policy>,
    pub insurer_part: i64,
    pub patient_part: i64,
    pub claim: Option<super::claims::Claim>,
    pub payments: Vec<Payment>,
    pub void_reason: String,
    pub created_at: String,
}

const LINE: &str = "id, kind, description, quantity, unit_price, discount, discount_reason,
    tax_rate_bp, net, tax, total, source_table";

fn line_row(r: &Row<'_>) -> rusqlite::Result<Line> {
    Ok(Line {
        id: r.get(0)?,
        kind: r.get(1)?,
        description: r.get(2)?,
        quantity: r.get(3)?,
        unit_price: r.get(4)?,
        discount: r.get(5)?,
        discount_reason: r.get(6)?,
        tax_rate_bp: r.get(7)?,
        net: r.get(8)?,
        tax: r.get(9)?,
        total: r.get(10)?,
        source_table: r.get(11)?,
    })
}

fn lines(conn: &Connection, invoice_id: &str) -> Result<Vec<Line>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {LINE} FROM invoice_lines WHERE invoice_id = ?1 ORDER BY position, rowid"
    ))?;
    let rows = st.query_map([invoice_id], line_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Invoice> {
    let mut inv = conn
        .prepare_cached(
            "SELECT i.id, i.number, i.patient_id, p.given_name || ' ' || p.family_name, p.mrn,
                    i.encounter_id, i.status, i.currency, i.issued_on, i.issued_at, i.discount,
                    i.discount_reason, i.paid, i.policy_id, i.insurer_part, i.void_reason,
                    i.created_at
             FROM invoices i JOIN patients p ON p.id = i.patient_id WHERE i.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                Invoice {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    patient_id: r.get(2)?,
                    patient_name: r.get(3)?,
                    mrn: r.get(4)?,
                    encounter_id: r.get(5)?,
                    status: r.get(6)?,
                    currency: r.get(7)?,
                    issued_on: r.get(8)?,
                    issued_at: r.get(9)?,
                    lines: vec![],
                    net: 0,
                    tax: 0,
                    lines_total: 0,
                    discount: r.get(10)?,
                    discount_reason: r.get(11)?,
                    total: 0,
                    paid: r.get(12)?,
                    balance: 0,
                    policy: None,
                    insurer_part: r.get(14)?,
                    patient_part: 0,
                    claim: None,
                    payments: vec![],
                    void_reason: r.get(15)?,
                    created_at: r.get(16)?,
                },
                r.get::<_, Option<String>>(13)?,
            ))
        })
        .optional()?
        .ok_or(Table::Invoices.not_found())
        .map(|(mut inv, policy_id)| {
            inv.policy = policy_id.map(|p| Policy {
                id: p,
                ..Default::default()
            });
            inv
        })?;
    inv.lines = lines(conn, id)?;
    inv.net = inv.lines.iter().map(|l| l.net).sum();
    inv.tax = inv.lines.iter().map(|l| l.tax).sum();
    inv.lines_total = inv.lines.iter().map(|l| l.total).sum();
    inv.total = inv.lines_total - inv.discount;
    inv.balance = inv.total - inv.paid;
    inv.patient_part = inv.total - inv.insurer_part;
    if let Some(p) = &inv.policy {
        inv.policy = Some(super::policy(conn, &p.id)?);
    }
    inv.claim = super::claims::for_invoice(conn, id)?;
    inv.payments = payments::for_invoice(conn, id)?;
    Ok(inv)
}

fn draft(conn: &Connection, id: &str) -> Result<Invoice> {
    let inv = get(conn, id)?;
    if inv.status != InvoiceStatus::Draft {
        return Err(Error::InvoiceNotDraft {
            status: crate::names::name_of(&inv.status).to_string(),
        }
        .into());
    }
    Ok(inv)
}

/// A new draft for a patient (lines added by hand).
pub fn create(w: &mut Write<'_>, patient_id: &str, encounter_id: Option<&str>) -> Result<Invoice> {
    crate::patients::get(w.conn(), patient_id)?;
    let currency = crate::settings::clinic(w.conn())?.currency;
    let id = new_id();
    w.insert_row(
        Table::Invoices,
        &id,
        &[
            ("patient_id", &patient_id),
            ("encounter_id", &encounter_id),
            ("status", &InvoiceStatus::Draft),
            ("currency", &currency),
        ],
    )?;
    get(w.conn(), &id)
}

/// Lines an invoice may have: with `validate::MAX_AMOUNT` and a million per line, its sums
/// stay inside `i64`.
const MAX_LINES: i64 = 500;

struct NewLine<'a> {
    kind: LineKind,
    description: String,
    quantity: i64,
    unit_price: i64,
    source: Option<(&'a str, &'a str)>,
}

fn amounts(
    s: &BillingSettings,
    kind: LineKind,
    qty: i64,
    price: i64,
    discount: i64,
) -> LineAmounts {
    money::line(
        qty,
        price,
        discount,
        s.tax_bp.of(kind) as i64,
        s.prices_include_tax,
        s.rounding,
    )
}

fn insert_line(
    w: &mut Write<'_>,
    invoice_id: &str,
    s: &BillingSettings,
    l: NewLine<'_>,
) -> Result<()> {
    let a = amounts(s, l.kind, l.quantity, l.unit_price, 0);
    let position: i64 = w
        .conn()
        .prepare_cached(
            "SELECT coalesce(max(position), 0) + 1 FROM invoice_lines WHERE invoice_id = ?1",
        )?
        .query_row([invoice_id], |r| r.get(0))?;
    // Positions only grow, so this also caps the lines an invoice has had.
    if position > MAX_LINES {
        return Err(CrateError::invalid_limit(
            Field::Line,
            Reason::TooLong,
            MAX_LINES,
        ));
    }
    let (source_table, source_id) = match l.source {
        Some((t, id)) => (Some(t), Some(id)),
        None => (None, None),
    };
    w.insert_row(
        Table::InvoiceLines,
        &new_id(),
        &[
            ("invoice_id", &invoice_id),
            ("kind", &l.kind),
            ("description", &l.description),
            ("quantity", &l.quantity),
            ("unit_price", &l.unit_price),
            ("tax_rate_bp", &(s.tax_bp.of(l.kind) as i64)),
            ("net", &a.net),
            ("tax", &a.tax),
            ("total", &a.total),
            ("source_table", &source_table),
            ("source_id", &source_id),
            ("position", &position),
        ],
    )?;
    Ok(())
}

fn billed(conn: &Connection, table: &str, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
             WHERE l.source_table = ?1 AND l.source_id = ?2 AND i.status <> 'void'",
        )?
        .query_row([table, id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The invoice of a visit: its draft brought up to date (the consultation at the doctor's
/// price on the visit's day, each lab test ordered, each item the pharmacy dispensed for it
/// and not yet billed), or the issued one. A visit whose invoice was voided gets a new one.
pub fn for_visit(w: &mut Write<'_>, encounter_id: &str, tz: chrono_tz::Tz) -> Result<Invoice> {
    let e = crate::clinical::encounter(w.conn(), encounter_id)?;
    let found: Option<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM invoices WHERE encounter_id = ?1 AND status <> 'void'
             ORDER BY created_at DESC LIMIT 1",
        )?
        .query_row([encounter_id], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => create(w, &e.patient_id, Some(encounter_id))?.id,
    };
    let inv = get(w.conn(), &id)?;
    if inv.status != InvoiceStatus::Draft {
        return Ok(inv);
    }
    let s = super::settings(w.conn())?;
    let visit_day = crate::ids::parse_ts(&e.opened_at)
        .map(|t| t.with_timezone(&tz).date_naive())
        .ok_or_else(|| CrateError::internal("a visit's opening time is not a time"))?;
    // The consultation: the price list's price for the doctor on the visit's day, or the
    // doctor's own fee.
    if !billed(w.conn(), "encounters", encounter_id)? {
        let doctor = crate::scheduling::doctors::doctor(w.conn(), &e.doctor_id)?;
        let price = super::price_on(w.conn(), PriceKind::Consultation, &doctor.id, visit_day)?
            .map(|p| p.amount)
            .unwrap_or(doctor.fee_minor);
        insert_line(
            w,
            &id,
            &s,
            NewLine {
                kind: LineKind::Consultation,
                description: doctor.full_name.clone(),
                quantity: 1,
                unit_price: price,
                source: Some(("encounters", encounter_id)),
            },
        )?;
    }
    // Lab tests ordered in the visit.
    let orders: Vec<(String, String, String)> = w
        .conn()
        .prepare_cached(
            "SELECT o.id, t.id, t.name FROM lab_orders o JOIN lab_tests t ON t.id = o.test_id
             WHERE o.encounter_id = ?1 AND o.status <> 'cancelled' ORDER BY o.rowid",
        )?
        .query_map([encounter_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (order, test, name) in orders {
        if billed(w.conn(), "lab_orders", &order)? {
            continue;
        }
        let price = super::price_on(w.conn(), PriceKind::LabTest, &test, visit_day)?;
        insert_line(
            w,
            &id,
            &s,
            NewLine {
                kind: LineKind::LabTest,
                description: price.as_ref().map(|p| p.name.clone()).unwrap_or(name),
                quantity: 1,
                unit_price: price.map(|p| p.amount).unwrap_or(0),
                source: Some(("lab_orders", &order)),
            },
        )?;
    }
    // What the pharmacy dispensed for the visit, at the price it was dispensed at.
    let pending: Vec<(String, String, i64, i64)> = w
        .conn()
        .prepare_cached(
            "SELECT id, description, quantity, unit_price FROM billable_items
             WHERE encounter_id = ?1 AND status = 'pending' ORDER BY created_at, rowid",
        )?
        .query_map([encounter_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (bid, description, quantity, unit_price) in pending {
        insert_line(
            w,
            &id,
            &s,
            NewLine {
                kind: LineKind::Pharmacy,
                description,
                quantity,
                unit_price,
                source: Some(("billable_items", &bid)),
            },
        )?;
        w.update_row(
            crate::pharmacy::Table::BillableItems,
            &bid,
            &[("status", &"invoiced")],
        )?;
    }
    get(w.conn(), &id)
}

/// A line added by hand: from the price list (its current price), or typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct LineInput {
    pub invoice_id: String,
    /// A price list entry; none for a typed line.
    pub price_id: Option<String>,
    pub kind: LineKind,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
}

/// The most an invoice's lines may come to before discount and tax (ten trillion in major
/// units): with tax at most doubling it, every sum stays far inside `i64`.
pub const MAX_INVOICE_GROSS: i64 = 1_000_000_000_000_000;

pub fn add_line(w: &mut Write<'_>, input: &LineInput, today: NaiveDate) -> Result<Invoice> {
    let inv = draft(w.conn(), &input.invoice_id)?;
    if !(1..=1_000_000).contains(&input.quantity) {
        return Err(CrateError::invalid(Field::Quantity, Reason::OutOfRange));
    }
    let (kind, description, unit_price) = match input.price_id.as_deref().filter(|s| !s.is_empty())
    {
        Some(pid) => {
            let p: super::Price = w
                .conn()
                .prepare_cached("SELECT kind, code FROM price_list WHERE id = ?1")?
                .query_row([pid], |r| {
                    Ok((r.get::<_, PriceKind>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?
                .ok_or(CrateError::invalid(Field::Code, Reason::Unknown))
                .and_then(|(kind, code)| {
                    super::price_on(w.conn(), kind, &code, today)?.ok_or_else(|| {
                        Error::NoPrice {
                            code,
                            day: today.to_string(),
                        }
                        .into()
                    })
                })?;
            (p.kind.line(), p.name, p.amount)
        }
        None => {
            let d = crate::validate::required(Field::Description, &input.description, 300)?;
            if !(0..=crate::validate::MAX_AMOUNT).contains(&input.unit_price) {
                return Err(CrateError::invalid(Field::UnitPrice, Reason::OutOfRange));
            }
            (input.kind, d, input.unit_price)
        }
    };
    let gross = inv
        .lines
        .iter()
        .map(|l| l.quantity as i128 * l.unit_price as i128)
        .sum::<i128>()
        + input.quantity as i128 * unit_price as i128;
    if gross > MAX_INVOICE_GROSS as i128 {
        return Err(CrateError::invalid_limit(
            Field::UnitPrice,
            Reason::OutOfRange,
            MAX_INVOICE_GROSS,
        ));
    }
    let s = super::settings(w.conn())?;
    insert_line(
        w,
        &input.invoice_id,
        &s,
        NewLine {
            kind,
            description,
            quantity: input.quantity,
            unit_price,
            source: None,
        },
    )?;
    get(w.conn(), &input.invoice_id)
}

fn line_invoice(
    conn: &Connection,
    line_id: &str,
) -> Result<(String, Option<String>, Option<String>)> {
    conn.prepare_cached(
        "SELECT invoice_id, source_table, source_id FROM invoice_lines WHERE id = ?1",
    )?
    .query_row([line_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()?
    .ok_or(Table::InvoiceLines.not_found())
}

/// Removes a draft's line; what it billed (a dispensed item) waits to be billed again.
/// Removes a line. One the visit brought (its consultation, lab tests, dispensed items) only for
/// those who may discount beyond the cashier's limit (`may_exceed`): removing it is a discount
/// of all of it.
pub fn remove_line(w: &mut Write<'_>, line_id: &str, may_exceed: bool) -> Result<Invoice> {
    let (invoice_id, table, source) = line_invoice(w.conn(), line_id)?;
    draft(w.conn(), &invoice_id)?;
    if table.is_some() && !may_exceed {
        return Err(Error::LineFromVisit.into());
    }
    w.delete(Table::InvoiceLines, line_id)?;
    // The discounts given must still hold for the lines left (a discount sized on a line
    // that is then removed is not a way past the limit).
    discounts_hold(w.conn(), &get(w.conn(), &invoice_id)?, may_exceed)?;
    if let (Some("billable_items"), Some(b)) = (table.as_deref(), source) {
        w.update_row(
            crate::pharmacy::Table::BillableItems,
            &b,
            &[("status", &"pending")],
        )?;
    }
    get(w.conn(), &invoice_id)
}

/// What a cashier may discount an invoice by, all discounts together: `limit_bp` of its lines
/// before discount and tax.
fn cashier_limit(inv: &Invoice, limit_bp: u32) -> i64 {
    let gross: i64 = inv.lines.iter().map(|l| l.quantity * l.unit_price).sum();
    money::share(gross, limit_bp as i64, money::Rounding::HalfUp)
}

/// Whether an invoice's discounts together are within its lines (the invoice's own discount
/// at most what the lines come to) and, for those who may not exceed it, the cashier's limit.
fn discounts_hold(conn: &Connection, inv: &Invoice, may_exceed: bool) -> Result<()> {
    if inv.discount > inv.lines_total {
        return Err(CrateError::invalid_limit(
            Field::Discount,
            Reason::OutOfRange,
            inv.lines_total,
        ));
    }
    let limit = cashier_limit(inv, super::settings(conn)?.cashier_discount_limit_bp);
    let given = inv.discount + inv.lines.iter().map(|l| l.discount).sum::<i64>();
    if given > limit && !may_exceed {
        return Err(Error::DiscountOverLimit { limit }.into());
    }
    Ok(())
}

/// Checks a discount of `amount` (at most `max`) and its reason. `others` is what the invoice
/// is already discounted by elsewhere (its other lines, or the invoice itself): the cashier's
/// limit holds for all discounts together, as a share of the lines before discount, so
/// splitting one discount into several doesn't get past it.
fn check_discount(
    inv: &Invoice,
    amount: i64,
    max: i64,
    others: i64,
    reason: &str,
    limit_bp: u32,
    may_exceed: bool,
) -> Result<String> {
    if amount < 0 || amount > max {
        return Err(CrateError::invalid_limit(
            Field::Discount,
            Reason::OutOfRange,
            max,
        ));
    }
    let reason = crate::validate::optional(Field::DiscountReason, reason, 300)?.unwrap_or_default();
    if amount > 0 && reason.chars().count() < 3 {
        return Err(CrateError::invalid(Field::DiscountReason, Reason::Required));
    }
    let limit = cashier_limit(inv, limit_bp);
    if others + amount > limit && !may_exceed {
        return Err(Error::DiscountOverLimit {
            limit: (limit - others).max(0),
        }
        .into());
    }
    Ok(reason)
}

/// A discount off one line (before its tax), with a reason; over the cashier's limit only
/// for those who may (`may_exceed`).
pub fn discount_line(
    w: &mut Write<'_>,
    line_id: &str,
    amount: i64,
    reason: &str,
    may_exceed: bool,
) -> Result<Invoice> {
    let (invoice_id, _, _) = line_invoice(w.conn(), line_id)?;
    let inv = draft(w.conn(), &invoice_id)?;
    let l = inv
        .lines
        .iter()
        .find(|l| l.id == line_id)
        .ok_or(Table::InvoiceLines.not_found())?;
    let s = super::settings(w.conn())?;
    let others = inv.discount
        + inv
            .lines
            .iter()
            .filter(|o| o.id != l.id)
            .map(|o| o.discount)
            .sum::<i64>();
    let reason = check_discount(
        &inv,
        amount,
        l.quantity * l.unit_price,
        others,
        reason,
        s.cashier_discount_limit_bp,
        may_exceed,
    )?;
    let a = amounts(&s, l.kind, l.quantity, l.unit_price, amount);
    w.update_row(
        Table::InvoiceLines,
        line_id,
        &[
            ("discount", &amount),
            ("discount_reason", &reason),
            ("net", &a.net),
            ("tax", &a.tax),
            ("total", &a.total),
        ],
    )?;
    get(w.conn(), &invoice_id)
}

/// A discount off the whole invoice (after tax), with a reason.
pub fn discount_invoice(
    w: &mut Write<'_>,
    invoice_id: &str,
    amount: i64,
    reason: &str,
    may_exceed: bool,
) -> Result<Invoice> {
    let inv = draft(w.conn(), invoice_id)?;
    let s = super::settings(w.conn())?;
    let others = inv.lines.iter().map(|l| l.discount).sum();
    let reason = check_discount(
        &inv,
        amount,
        inv.lines_total,
        others,
        reason,
        s.cashier_discount_limit_bp,
        may_exceed,
    )?;
    w.update_row(
        Table::Invoices,
        invoice_id,
        &[("discount", &amount), ("discount_reason", &reason)],
    )?;
    get(w.conn(), invoice_id)
}

/// Issues a draft: the next number of this PC and year (`{device}-{year}-{n:06}`, no gaps:
/// the counter moves in this transaction), the totals kept, the insurer's part from the
/// patient's coverage on the day.
pub fn issue(w: &mut Write<'_>, id: &str, device_code: &str, today: NaiveDate) -> Result<Invoice> {
    use chrono::Datelike;
    let inv = draft(w.conn(), id)?;
    if inv.lines.is_empty() {
        return Err(Error::InvoiceEmpty.into());
    }
    // Never a total below nothing (the invoice's discount sized before a line's own).
    discounts_hold(w.conn(), &inv, true)?;
    let s = super::settings(w.conn())?;
    let year = today.year();
    let n = w.next_number("invoice", &year.to_string())?;
    let number = format!("{device_code}-{year}-{n:06}");
    let policy = super::policy_on(w.conn(), &inv.patient_id, today)?;
    let insurer = policy
        .as_ref()
        .map(|p| super::insurer_part(p, inv.total, s.rounding))
        .unwrap_or(0);
    let status = if inv.total <= 0 {
        InvoiceStatus::Paid
    } else {
        InvoiceStatus::Issued
    };
    w.update_row(
        Table::Invoices,
        id,
        &[
            ("number", &number),
            ("status", &status),
            ("issued_on", &today.to_string()),
            ("issued_at", &w.now_ts()),
            ("total", &inv.total),
            ("tax", &inv.tax),
            ("policy_id", &policy.map(|p| p.id)),
            ("insurer_part", &insurer),
        ],
    )?;
    get(w.conn(), id)
}

/// Voids an invoice with a reason (administrators). One with money paid on it is refunded
/// first. What it billed can be billed again.
pub fn void(w: &mut Write<'_>, id: &str, reason: &str) -> Result<Invoice> {
    let inv = get(w.conn(), id)?;
    if inv.status == InvoiceStatus::Void {
        return Err(Error::InvoiceNotDraft {
            status: "void".into(),
        }
        .into());
    }
    if inv.paid != 0 {
        return Err(Error::HasPayments { paid: inv.paid }.into());
    }
    let reason = crate::validate::required(Field::Reason, reason, 300)?;
    if reason.chars().count() < 3 {
        return Err(CrateError::invalid(Field::Reason, Reason::TooShort));
    }
    if inv
        .claim
        .as_ref()
        .is_some_and(|c| c.status != super::claims::ClaimStatus::Rejected)
    {
        return Err(Error::InvoiceNotPayable {
            status: "claimed".into(),
        }
        .into());
    }
    // A draft that is voided keeps no number: give it none, and keep it as void.
    let number: Option<String> = match inv.number {
        Some(n) => Some(n),
        None => Some(format!("VOID-{}", inv.id)),
    };
    w.update_row(
        Table::Invoices,
        id,
        &[
            ("status", &InvoiceStatus::Void),
            ("void_reason", &reason),
            ("number", &number),
        ],
    )?;
    let sources: Vec<String> = w
        .conn()
        .prepare_cached(
            "SELECT source_id FROM invoice_lines WHERE invoice_id = ?1 AND source_table = 'billable_items'",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for b in sources {
        w.update_row(
            crate::pharmacy::Table::BillableItems,
            &b,
            &[("status", &"pending")],
        )?;
    }
    get(w.conn(), id)
}

/// Records what was paid on an invoice and moves its status (payments call this).
pub(crate) fn set_paid(w: &mut Write<'_>, id: &str, paid: i64, total: i64) -> Result<()> {
    let status = if paid >= total {
        InvoiceStatus::Paid
    } else if paid > 0 {
        InvoiceStatus::PartlyPaid
    } else {
        InvoiceStatus::Issued
    };
    w.update_row(Table::Invoices, id, &[("paid", &paid), ("status", &status)])?;
    Ok(())
}

/// A visit the cashier may bill: no invoice yet, or a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VisitToBill {
    pub encounter_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub doctor_name: String,
    pub opened_at: String,
    pub invoice_id: Option<String>,
}

/// Visits of the last `days` days not yet invoiced (or only in draft), newest first.
pub fn visits_to_bill(conn: &Connection, since: &str) -> Result<Vec<VisitToBill>> {
    let mut st = conn.prepare_cached(
        "SELECT e.id, e.patient_id, p.given_name || ' ' || p.family_name, p.mrn, d.full_name,
                e.opened_at,
                (SELECT id FROM invoices i WHERE i.encounter_id = e.id AND i.status = 'draft')
         FROM encounters e JOIN patients p ON p.id = e.patient_id JOIN doctors d ON d.id = e.doctor_id
         WHERE e.opened_at >= ?1
           AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.encounter_id = e.id
                           AND i.status NOT IN ('draft', 'void'))
         ORDER BY e.opened_at DESC LIMIT 200",
    )?;
    let rows = st.query_map([since], |r| {
        Ok(VisitToBill {
            encounter_id: r.get(0)?,
            patient_id: r.get(1)?,
            patient_name: r.get(2)?,
            mrn: r.get(3)?,
            doctor_name: r.get(4)?,
            opened_at: r.get(5)?,
            invoice_id: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An invoice in a list: who, how much, how much is still due, how old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct InvoiceRow {
    pub id: String,
    pub number: Option<String>,
    pub patient_id: String,
    pub patient_name: String,
    pub status: InvoiceStatus,
    pub issued_on: Option<String>,
    pub total: i64,
    pub paid: i64,
    pub balance: i64,
    pub age_days: i64,
}

/// What is owed, by age of the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct Ageing {
    pub days_0_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub over_90: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Outstanding {
    pub invoices: Vec<InvoiceRow>,
    pub ageing: Ageing,
    pub total: i64,
    pub count: u32,
}

/// Issued and partly paid invoices, oldest first, with the ageing of what they owe. The
/// list holds the oldest 500; the ageing and totals cover all of them.
pub fn outstanding(
    conn: &Connection,
    today: NaiveDate,
    patient_id: Option<&str>,
) -> Result<Outstanding> {
    // Ages as day boundaries (issued on or after `d30` is 0–30 days old), compared as text.
    let back = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let (d30, d60, d90) = (back(30), back(60), back(90));
    let (a, b, c, d, total, count): (i64, i64, i64, i64, i64, u32) = conn
        .prepare_cached(
            "SELECT coalesce(sum(CASE WHEN issued_on >= ?1 THEN total - paid END), 0),
                    coalesce(sum(CASE WHEN issued_on < ?1 AND issued_on >= ?2 THEN total - paid END), 0),
                    coalesce(sum(CASE WHEN issued_on < ?2 AND issued_on >= ?3 THEN total - paid END), 0),
                    coalesce(sum(CASE WHEN issued_on < ?3 THEN total - paid END), 0),
                    coalesce(sum(total - paid), 0), count(*)
             FROM invoices WHERE status IN ('issued', 'partly_paid') AND (?4 IS NULL OR patient_id = ?4)",
        )?
        .query_row(rusqlite::params![d30, d60, d90, patient_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
    let mut st = conn.prepare_cached(
        "SELECT i.id, i.number, i.patient_id, p.given_name || ' ' || p.family_name, i.status,
                i.issued_on, i.total, i.paid
         FROM invoices i JOIN patients p ON p.id = i.patient_id
         WHERE i.status IN ('issued', 'partly_paid') AND (?1 IS NULL OR i.patient_id = ?1)
         ORDER BY i.issued_on LIMIT 500",
    )?;
    let invoices = st
        .query_map(rusqlite::params![patient_id], |r| {
            let (total, paid): (i64, i64) = (r.get(6)?, r.get(7)?);
            let issued_on: Option<String> = r.get(5)?;
            let age_days = issued_on
                .as_deref()
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .map(|d| (today - d).num_days())
                .unwrap_or(0);
            Ok(InvoiceRow {
                id: r.get(0)?,
                number: r.get(1)?,
                patient_id: r.get(2)?,
                patient_name: r.get(3)?,
                status: r.get(4)?,
                issued_on,
                total,
                paid,
                balance: total - paid,
                age_days,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Outstanding {
        invoices,
        ageing: Ageing {
            days_0_30: a,
            days_31_60: b,
            days_61_90: c,
            over_90: d,
        },
        total,
        count,
    })
}

/// A patient's invoices, newest first.
pub fn for_patient(conn: &Connection, patient_id: &str) -> Result<Vec<InvoiceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT i.id, i.number, i.patient_id, p.given_name || ' ' || p.family_name, i.status,
                i.issued_on, i.total, i.paid
         FROM invoices i JOIN patients p ON p.id = i.patient_id
         WHERE i.patient_id = ?1 ORDER BY i.created_at DESC LIMIT 200",
    )?;
    let rows = st.query_map([patient_id], |r| {
        let (total, paid): (i64, i64) = (r.get(6)?, r.get(7)?);
        Ok(InvoiceRow {
            id: r.get(0)?,
            number: r.get(1)?,
            patient_id: r.get(2)?,
            patient_name: r.get(3)?,
            status: r.get(4)?,
            issued_on: r.get(5)?,
            total,
            paid,
            balance: total - paid,
            age_days: 0,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
