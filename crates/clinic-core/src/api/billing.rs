//! Billing: the price list and settings, invoices, payments and refunds, insurance, claims,
//! the daily close.

use crate::billing::claims::{self, Claim, ClaimStatus, ClaimUpdate};
use crate::billing::close::{self, DailyClose, DayCloseInput, Denomination};
use crate::billing::invoices::{self, Invoice, InvoiceRow, LineInput, Outstanding, VisitToBill};
use crate::billing::payments::{self, PaymentInput, PaymentOutcome, Till};
use crate::billing::{self, BillingSettings, Policy, Price, PriceInput};
use crate::error::Result;
use crate::perm::{allowed, Permission};
use crate::session::Cx;

/// This PC's till today: payments and closes are per PC and clinic day.
fn with_till<T>(cx: &Cx, f: impl FnOnce(&Till<'_>) -> Result<T>) -> Result<T> {
    let db = cx.db()?;
    let (id, code) = (db.device().id.clone(), db.device().code.clone());
    f(&Till {
        device_id: &id,
        device_code: &code,
        today: cx.today()?,
    })
}

/// Whether the person may discount beyond the cashier's limit.
fn may_exceed(cx: &Cx) -> Result<bool> {
    Ok(allowed(cx.roles()?, Permission::DiscountOverLimit))
}

pub fn billing_settings_get(cx: &Cx) -> Result<BillingSettings> {
    cx.read(billing::settings)
}

pub fn billing_settings_set(cx: &Cx, input: BillingSettings) -> Result<BillingSettings> {
    cx.write(|w| billing::save_settings(w, input))
}

pub fn price_list(cx: &Cx, all: bool) -> Result<Vec<Price>> {
    let today = cx.today()?;
    cx.read(|c| billing::price_list(c, today, all))
}

pub fn price_save(cx: &Cx, input: PriceInput) -> Result<Price> {
    let today = cx.today()?;
    cx.write(|w| billing::save_price(w, &input, today))
}

pub fn visits_to_bill(cx: &Cx) -> Result<Vec<VisitToBill>> {
    let since = crate::ids::ts(cx.now() - chrono::Duration::days(14));
    cx.read(|c| invoices::visits_to_bill(c, &since))
}

pub fn invoice_for_visit(cx: &Cx, encounter_id: String) -> Result<Invoice> {
    let tz = cx.tz()?;
    cx.write(|w| invoices::for_visit(w, &encounter_id, tz))
}

pub fn invoice_new(cx: &Cx, patient_id: String) -> Result<Invoice> {
    cx.write(|w| invoices::create(w, &patient_id, None))
}

pub fn invoice_get(cx: &Cx, id: String) -> Result<Invoice> {
    cx.read(|c| invoices::get(c, &id))
}

pub fn invoices_for_patient(cx: &Cx, patient_id: String) -> Result<Vec<InvoiceRow>> {
    cx.read(|c| invoices::for_patient(c, &patient_id))
}

pub fn invoice_line_add(cx: &Cx, input: LineInput) -> Result<Invoice> {
    let today = cx.today()?;
    cx.write(|w| invoices::add_line(w, &input, today))
}

pub fn invoice_line_remove(cx: &Cx, line_id: String) -> Result<Invoice> {
    let exceed = may_exceed(cx)?;
    cx.write(|w| invoices::remove_line(w, &line_id, exceed))
}

pub fn invoice_line_discount(
    cx: &Cx,
    line_id: String,
    amount: i64,
    reason: String,
) -> Result<Invoice> {
    let exceed = may_exceed(cx)?;
    cx.write(|w| invoices::discount_line(w, &line_id, amount, &reason, exceed))
}

pub fn invoice_discount(
    cx: &Cx,
    invoice_id: String,
    amount: i64,
    reason: String,
) -> Result<Invoice> {
    let exceed = may_exceed(cx)?;
    cx.write(|w| invoices::discount_invoice(w, &invoice_id, amount, &reason, exceed))
}

pub fn invoice_issue(cx: &Cx, id: String) -> Result<Invoice> {
    let (code, today) = (cx.db()?.device().code.clone(), cx.today()?);
    cx.write(|w| invoices::issue(w, &id, &code, today))
}

pub fn invoice_void(cx: &Cx, id: String, reason: String) -> Result<Invoice> {
    cx.write(|w| invoices::void(w, &id, &reason))
}

pub fn payment_take(cx: &Cx, input: PaymentInput) -> Result<PaymentOutcome> {
    with_till(cx, |till| cx.write(|w| payments::take(w, &input, till)))
}

pub fn outstanding_invoices(cx: &Cx, patient_id: Option<String>) -> Result<Outstanding> {
    let today = cx.today()?;
    cx.read(|c| invoices::outstanding(c, today, patient_id.as_deref()))
}

pub fn policies(cx: &Cx, patient_id: String) -> Result<Vec<Policy>> {
    cx.read(|c| billing::policies(c, &patient_id))
}

pub fn policy_save(cx: &Cx, input: Policy) -> Result<Policy> {
    cx.write(|w| billing::save_policy(w, &input))
}

pub fn claims(cx: &Cx, status: Option<ClaimStatus>) -> Result<Vec<Claim>> {
    cx.read(|c| claims::list(c, status))
}

pub fn claim_create(cx: &Cx, invoice_id: String) -> Result<Claim> {
    cx.write(|w| claims::create(w, &invoice_id))
}

pub fn claim_update(cx: &Cx, input: ClaimUpdate) -> Result<Claim> {
    with_till(cx, |till| cx.write(|w| claims::update(w, &input, till)))
}

pub fn daily_close_preview(cx: &Cx, counted: Vec<Denomination>) -> Result<DailyClose> {
    with_till(cx, |till| {
        cx.read(|c| close::preview(c, till.device_id, till.today, &counted))
    })
}

pub fn daily_close(cx: &Cx, input: DayCloseInput) -> Result<DailyClose> {
    with_till(cx, |till| {
        cx.write_durable(|w| close::close(w, till.device_id, till.today, &input))
    })
}

pub fn daily_closes(cx: &Cx) -> Result<Vec<DailyClose>> {
    let device = cx.db()?.device().id.clone();
    cx.read(|c| close::list(c, &device))
}
