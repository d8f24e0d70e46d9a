//! The pharmacy: stock items and batches, the ledger, purchase orders, dispensing, alerts
//! and reports.

use crate::error::Result;
use crate::pharmacy::dispense::{self, Billable, DispenseInput, DispenseOutcome, Plan, QueueEntry};
use crate::pharmacy::ledger::{self, CountInput, Move, MoveKind, StockCount};
use crate::pharmacy::orders::{self, OrderInput, PurchaseOrder};
use crate::pharmacy::reports::{self, Report, ReportQuery};
use crate::pharmacy::scan::{self, Scanned};
use crate::pharmacy::{
    self, AlertCounts, Alerts, Batch, Category, PharmacySettings, ReceiveInput, StockItem,
    StockItemInput, Supplier,
};
use crate::session::Cx;

pub fn stock_items(cx: &Cx, text: String, category: Option<Category>) -> Result<Vec<StockItem>> {
    cx.read(|c| pharmacy::items(c, &text, category))
}

pub fn stock_item_get(cx: &Cx, id: String) -> Result<StockItem> {
    cx.read(|c| pharmacy::item(c, &id))
}

pub fn stock_item_save(cx: &Cx, input: StockItemInput) -> Result<StockItem> {
    cx.write(|w| pharmacy::save_item(w, &input))
}

pub fn stock_item_price_set(cx: &Cx, id: String, cost: i64, price: i64) -> Result<StockItem> {
    cx.write(|w| pharmacy::set_price(w, &id, cost, price))
}

pub fn stock_batches(cx: &Cx, item_id: String, all: bool) -> Result<Vec<Batch>> {
    let today = cx.today()?;
    cx.read(|c| pharmacy::batches(c, &item_id, all, today))
}

pub fn stock_scan(cx: &Cx, code: String) -> Result<Scanned> {
    let today = cx.today()?;
    cx.read(|c| scan::scan(c, &code, today))
}

pub fn stock_receive(cx: &Cx, input: ReceiveInput) -> Result<Batch> {
    let today = cx.today()?;
    cx.write(|w| pharmacy::receive(w, &input, today))
}

/// Moves other than receiving and dispensing (those have their own commands): adjustments,
/// expired or destroyed stock, returns.
pub fn stock_move(
    cx: &Cx,
    batch_id: String,
    kind: MoveKind,
    quantity: i64,
    reason: String,
) -> Result<Move> {
    if matches!(kind, MoveKind::Received | MoveKind::Dispensed) {
        return Err(crate::Error::invalid(
            pharmacy::Field::Reason,
            crate::error::Reason::NotAllowed,
        ));
    }
    let today = cx.today()?;
    cx.write(|w| {
        // Written off as expired only once it has.
        if kind == MoveKind::Expired {
            let b = pharmacy::batch(w.conn(), &batch_id, today)?;
            if b.shelf != pharmacy::Shelf::Expired {
                return Err(pharmacy::Error::NotExpired {
                    lot: b.lot,
                    expiry: b.expiry,
                }
                .into());
            }
        }
        ledger::post(w, &batch_id, kind, quantity, &reason, None)
    })
}

pub fn stock_count(cx: &Cx, input: CountInput) -> Result<StockCount> {
    let today = cx.today()?;
    cx.write(|w| ledger::count(w, &input, today))
}

pub fn stock_history(
    cx: &Cx,
    item_id: Option<String>,
    batch_id: Option<String>,
) -> Result<Vec<Move>> {
    cx.read(|c| ledger::history(c, item_id.as_deref(), batch_id.as_deref(), 500))
}

pub fn stock_alerts(cx: &Cx) -> Result<Alerts> {
    let today = cx.today()?;
    cx.read(|c| pharmacy::alerts(c, today))
}

pub fn stock_alert_counts(cx: &Cx) -> Result<AlertCounts> {
    let today = cx.today()?;
    cx.read(|c| pharmacy::alert_counts(c, today))
}

pub fn pharmacy_settings_get(cx: &Cx) -> Result<PharmacySettings> {
    cx.read(pharmacy::settings)
}

pub fn pharmacy_settings_set(cx: &Cx, input: PharmacySettings) -> Result<PharmacySettings> {
    cx.write(|w| pharmacy::save_settings(w, input))
}

pub fn suppliers(cx: &Cx) -> Result<Vec<Supplier>> {
    cx.read(pharmacy::suppliers)
}

pub fn supplier_save(cx: &Cx, input: Supplier) -> Result<Supplier> {
    cx.write(|w| pharmacy::save_supplier(w, &input))
}

pub fn purchase_orders(cx: &Cx, open_only: bool) -> Result<Vec<PurchaseOrder>> {
    cx.read(|c| orders::list(c, open_only))
}

pub fn purchase_order_create(cx: &Cx, input: OrderInput) -> Result<PurchaseOrder> {
    let (device, today) = (cx.db()?.device().code.clone(), cx.today()?);
    cx.write(|w| orders::create(w, &input, &device, today))
}

pub fn purchase_order_cancel(cx: &Cx, id: String) -> Result<PurchaseOrder> {
    cx.write(|w| orders::cancel(w, &id))
}

pub fn dispense_queue(cx: &Cx) -> Result<Vec<QueueEntry>> {
    cx.read(dispense::queue)
}

pub fn dispense_plan(cx: &Cx, prescription_id: String) -> Result<Plan> {
    let today = cx.today()?;
    cx.read(|c| dispense::plan(c, &prescription_id, today))
}

pub fn dispense(cx: &Cx, input: DispenseInput) -> Result<DispenseOutcome> {
    let today = cx.today()?;
    cx.write(|w| dispense::dispense(w, &input, today))
}

pub fn billables_pending(cx: &Cx, patient_id: String) -> Result<Vec<Billable>> {
    cx.read(|c| dispense::pending_billables(c, &patient_id))
}

pub fn stock_report(cx: &Cx, query: ReportQuery) -> Result<Report> {
    let today = cx.today()?;
    cx.read(|c| reports::build(c, &query, today))
}
