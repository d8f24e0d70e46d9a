//! Dispensing signed prescriptions: the pharmacist's queue, a plan per item that picks
//! batches first-expiry-first-out (expired ones skipped, short-dated ones flagged), and the
//! dispensing itself: ledger rows, what was given against which prescribed item, and the
//! billable items the visit's invoice takes.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::ledger::{self, MoveKind};
use super::{Batch, Error, Field, Shelf, StockItem, Table};
use crate::clinical::prescriptions::{self, Item, Prescription, RxStatus};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::patients::Allergy;
use crate::store::Write;
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum FillStatus {
    /// Nothing dispensed yet.
    New,
    Partial,
    Done,
}
crate::text_column!(FillStatus);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct QueueEntry {
    pub prescription_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub doctor_name: String,
    pub signed_at: String,
    pub status: FillStatus,
    pub allergies: Vec<Allergy>,
    pub current_medications: Option<String>,
    /// "Amoxicillin 500 mg × 21", one per item.
    pub items: Vec<String>,
}

/// Signed prescriptions not yet dispensed in full, oldest first.
pub fn queue(conn: &Connection) -> Result<Vec<QueueEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT r.id, r.patient_id, coalesce(f.status, 'new') FROM prescriptions r
         LEFT JOIN prescription_fills f ON f.prescription_id = r.id
         WHERE r.status = 'signed' AND coalesce(f.status, 'new') <> 'done'
         ORDER BY r.signed_at, r.rowid LIMIT 300",
    )?;
    let rows: Vec<(String, String, FillStatus)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (rx_id, patient_id, status) in rows {
        let rx = prescriptions::get(conn, &rx_id)?;
        let p = crate::patients::get(conn, &patient_id)?;
        out.push(QueueEntry {
            prescription_id: rx.id,
            patient_id,
            patient_name: rx.patient_name,
            mrn: p.mrn,
            doctor_name: rx.doctor_name,
            signed_at: rx.signed_at.unwrap_or_default(),
            status,
            allergies: p.allergies,
            current_medications: p.current_medications,
            items: rx
                .items
                .iter()
                .map(|i| format!("{} {} × {}", i.name, i.strength, i.quantity))
                .collect(),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// An expired batch is on the shelf: it was skipped.
    ExpiredSkipped,
    /// The batch expires before the course ends.
    ExpiresBeforeCourseEnd,
    /// Less on hand than is still to be dispensed.
    ShortOfStock,
    /// A free-text item, or a drug the pharmacy doesn't stock: pick an item for it.
    NotStocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Warning {
    pub kind: WarningKind,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    /// ShortOfStock: what is on hand.
    pub on_hand: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Pick {
    pub batch_id: String,
    pub lot: String,
    pub expiry: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PlanLine {
    pub item: Item,
    pub dispensed: i64,
    pub remaining: i64,
    /// The last day of the course if it starts today (YYYY-MM-DD).
    pub course_ends: String,
    /// The stock item the prescribed drug is (none for free text or an unstocked drug).
    pub stock_item: Option<StockItem>,
    /// Its batches with stock, first to expire first (expired ones included, marked).
    pub batches: Vec<Batch>,
    /// What first-expiry-first-out would give for the remaining quantity.
    pub picks: Vec<Pick>,
    /// Stocked items with the same ingredients: what may be given instead.
    pub equivalents: Vec<StockItem>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Dispensing {
    pub id: String,
    pub prescription_id: String,
    pub prescription_item_id: String,
    pub item_id: String,
    pub item_name: String,
    pub strength: String,
    pub batch_id: String,
    pub lot: String,
    pub expiry: String,
    pub quantity: i64,
    pub substituted: bool,
    pub batch_overridden: bool,
    pub reason: String,
    pub at: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Plan {
    pub prescription: Prescription,
    pub status: FillStatus,
    pub allergies: Vec<Allergy>,
    pub current_medications: Option<String>,
    pub lines: Vec<PlanLine>,
    pub dispensed: Vec<Dispensing>,
}

const DISPENSING: &str = "d.id, d.prescription_id, d.prescription_item_id, d.item_id, i.name,
    i.strength, d.batch_id, b.lot, b.expiry, d.quantity, d.substituted, d.batch_overridden,
    d.reason, d.created_at, coalesce(s.full_name, d.created_by)";
const DISPENSING_FROM: &str = "dispensings d JOIN stock_items i ON i.id = d.item_id
    JOIN batches b ON b.id = d.batch_id LEFT JOIN staff s ON s.id = d.created_by";

fn dispensing_row(r: &Row<'_>) -> rusqlite::Result<Dispensing> {
    Ok(Dispensing {
        id: r.get(0)?,
        prescription_id: r.get(1)?,
        prescription_item_id: r.get(2)?,
        item_id: r.get(3)?,
        item_name: r.get(4)?,
        strength: r.get(5)?,
        batch_id: r.get(6)?,
        lot: r.get(7)?,
        expiry: r.get(8)?,
        quantity: r.get(9)?,
        substituted: r.get(10)?,
        batch_overridden: r.get(11)?,
        reason: r.get(12)?,
        at: r.get(13)?,
        by: r.get(14)?,
    })
}

pub fn dispensing(conn: &Connection, id: &str) -> Result<Dispensing> {
    conn.prepare_cached(&format!(
        "SELECT {DISPENSING} FROM {DISPENSING_FROM} WHERE d.id = ?1"
    ))?
    .query_row([id], dispensing_row)
    .optional()?
    .ok_or(crate::store::Table::not_found(Table::Dispensings))
}

pub fn dispensings(conn: &Connection, prescription_id: &str) -> Result<Vec<Dispensing>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DISPENSING} FROM {DISPENSING_FROM} WHERE d.prescription_id = ?1
         ORDER BY d.created_at, d.rowid"
    ))?;
    let rows = st.query_map([prescription_id], dispensing_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn fill_status(conn: &Connection, rx: &Prescription) -> Result<FillStatus> {
    Ok(conn
        .prepare_cached("SELECT status FROM prescription_fills WHERE prescription_id = ?1")?
        .query_row([&rx.id], |r| r.get(0))
        .optional()?
        .unwrap_or(FillStatus::New))
}

fn dispensed_of(conn: &Connection, prescription_item_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(quantity), 0) FROM dispensings WHERE prescription_item_id = ?1",
        )?
        .query_row([prescription_item_id], |r| r.get(0))?)
}

fn course_end(today: NaiveDate, item: &Item) -> NaiveDate {
    today + chrono::Duration::days(item.duration_days.max(1) as i64 - 1)
}

/// First expiry, first out: `quantity` from `batches` (first to expire first), skipping
/// expired ones. Gives the picks, or how much could be had when that is less.
fn fefo(batches: &[Batch], quantity: i64) -> std::result::Result<Vec<Pick>, i64> {
    let mut left = quantity;
    let mut picks = Vec::new();
    for b in batches
        .iter()
        .filter(|b| b.shelf != Shelf::Expired && b.on_hand > 0)
    {
        if left == 0 {
            break;
        }
        let take = left.min(b.on_hand);
        picks.push(Pick {
            batch_id: b.id.clone(),
            lot: b.lot.clone(),
            expiry: b.expiry.clone(),
            quantity: take,
        });
        left -= take;
    }
    if left > 0 {
        Err(quantity - left)
    } else {
        Ok(picks)
    }
}

fn warnings_for(batches: &[Batch], picks: &[Pick], ends: NaiveDate) -> Vec<Warning> {
    let ends = ends.to_string();
    let mut out: Vec<Warning> = batches
        .iter()
        .filter(|b| b.shelf == Shelf::Expired)
        .map(|b| Warning {
            kind: WarningKind::ExpiredSkipped,
            lot: Some(b.lot.clone()),
            expiry: Some(b.expiry.clone()),
            on_hand: None,
        })
        .collect();
    out.extend(picks.iter().filter(|p| p.expiry < ends).map(|p| Warning {
        kind: WarningKind::ExpiresBeforeCourseEnd,
        lot: Some(p.lot.clone()),
        expiry: Some(p.expiry.clone()),
        on_hand: None,
    }));
    out
}

fn ingredient_set(item: &StockItem) -> Vec<String> {
    let mut v = item.ingredients.clone();
    v.sort();
    v
}

/// Stocked, active medications that may be given for `of`: the same ingredients, strength
/// and form (not `of` itself).
fn equivalents(conn: &Connection, of: &StockItem) -> Result<Vec<StockItem>> {
    let want = ingredient_set(of);
    if want.is_empty() {
        return Ok(vec![]);
    }
    let mut st = conn.prepare_cached(
        "SELECT i.id, d.ingredients FROM stock_items i JOIN drugs d ON d.id = i.drug_id
         WHERE i.active = 1 AND i.id <> ?1 AND i.strength = ?2 AND i.form = ?3",
    )?;
    let candidates: Vec<(String, String)> = st
        .query_map(rusqlite::params![of.id, of.strength, of.form], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (id, ingredients) in candidates {
        let mut set: Vec<String> = serde_json::from_str(&ingredients).unwrap_or_default();
        set.sort();
        if set == want {
            out.push(super::item(conn, &id)?);
        }
    }
    Ok(out)
}

fn prescribed_item(conn: &Connection, item: &Item) -> Result<Option<StockItem>> {
    match &item.drug_id {
        Some(d) => super::item_of_drug(conn, d),
        None => Ok(None),
    }
}

pub fn plan(conn: &Connection, prescription_id: &str, today: NaiveDate) -> Result<Plan> {
    let rx = prescriptions::get(conn, prescription_id)?;
    if rx.status != RxStatus::Signed {
        return Err(Error::NotSigned.into());
    }
    let p = crate::patients::get(conn, &rx.patient_id)?;
    let mut lines = Vec::new();
    for item in &rx.items {
        let dispensed = dispensed_of(conn, &item.id)?;
        let remaining = (item.quantity as i64 - dispensed).max(0);
        let ends = course_end(today, item);
        let stock_item = prescribed_item(conn, item)?;
        let (batches, picks, equivalents, mut warnings) = match &stock_item {
            Some(si) => {
                let batches = super::batches(conn, &si.id, false, today)?;
                let picks = match fefo(&batches, remaining) {
                    Ok(p) => p,
                    // Propose what there is.
                    Err(have) => fefo(&batches, have).unwrap_or_default(),
                };
                let w = warnings_for(&batches, &picks, ends);
                (batches, picks, equivalents(conn, si)?, w)
            }
            None => (
                vec![],
                vec![],
                vec![],
                vec![Warning {
                    kind: WarningKind::NotStocked,
                    lot: None,
                    expiry: None,
                    on_hand: None,
                }],
            ),
        };
        let usable: i64 = batches
            .iter()
            .filter(|b| b.shelf != Shelf::Expired)
            .map(|b| b.on_hand)
            .sum();
        if stock_item.is_some() && remaining > usable {
            warnings.push(Warning {
                kind: WarningKind::ShortOfStock,
                lot: None,
                expiry: None,
                on_hand: Some(usable),
            });
        }
        lines.push(PlanLine {
            item: item.clone(),
            dispensed,
            remaining,
            course_ends: ends.to_string(),
            stock_item,
            batches,
            picks,
            equivalents,
            warnings,
        });
    }
    Ok(Plan {
        status: fill_status(conn, &rx)?,
        dispensed: dispensings(conn, &rx.id)?,
        prescription: rx,
        allergies: p.allergies,
        current_medications: p.current_medications,
        lines,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct DispenseLine {
    pub prescription_item_id: String,
    /// Another item given instead (an equivalent generic); none: the prescribed drug.
    pub item_id: Option<String>,
    /// A batch chosen by hand; none: first expiry, first out (over several batches if need be).
    pub batch_id: Option<String>,
    pub quantity: i64,
    /// Why: needed for a substitution or a batch other than the first to expire.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct DispenseInput {
    pub prescription_id: String,
    pub lines: Vec<DispenseLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct DispenseOutcome {
    pub status: FillStatus,
    pub dispensings: Vec<Dispensing>,
    /// Short-dated batches handed over (the course outlasts them).
    pub warnings: Vec<Warning>,
}

/// Dispenses the lines of `input`, all or nothing.
pub fn dispense(
    w: &mut Write<'_>,
    input: &DispenseInput,
    today: NaiveDate,
) -> Result<DispenseOutcome> {
    let rx = prescriptions::get(w.conn(), &input.prescription_id)?;
    if rx.status != RxStatus::Signed {
        return Err(Error::NotSigned.into());
    }
    if input.lines.is_empty() || input.lines.len() > 100 {
        return Err(CrateError::invalid(Field::Lines, Reason::Required));
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for line in &input.lines {
        let item = rx
            .items
            .iter()
            .find(|i| i.id == line.prescription_item_id)
            .ok_or(CrateError::invalid(
                Field::PrescriptionItem,
                Reason::Unknown,
            ))?;
        let remaining = item.quantity as i64 - dispensed_of(w.conn(), &item.id)?;
        if !(1..=10_000_000).contains(&line.quantity) {
            return Err(CrateError::invalid(Field::Quantity, Reason::OutOfRange));
        }
        if line.quantity > remaining {
            return Err(Error::OverDispense {
                remaining: remaining.max(0),
            }
            .into());
        }
        let reason =
            crate::validate::optional(Field::Reason, &line.reason, 500)?.unwrap_or_default();
        let prescribed = prescribed_item(w.conn(), item)?;
        let given = match line.item_id.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => super::item(w.conn(), id)?,
            None => prescribed
                .clone()
                .ok_or(CrateError::invalid(Field::Item, Reason::Required))?,
        };
        let substituted = prescribed.as_ref().map(|p| p.id.as_str()) != Some(given.id.as_str());
        if substituted {
            if given.category != super::Category::Medication {
                return Err(CrateError::invalid(Field::Item, Reason::NotAllowed));
            }
            if let Some(p) = &prescribed {
                if ingredient_set(p).is_empty() || ingredient_set(p) != ingredient_set(&given) {
                    return Err(Error::NotEquivalent {
                        prescribed: p.name.clone(),
                        given: given.name.clone(),
                    }
                    .into());
                }
                if p.strength != given.strength || p.form != given.form {
                    return Err(Error::NotSameStrength {
                        prescribed: format!("{} {}", p.name, p.strength),
                        given: format!("{} {}", given.name, given.strength),
                    }
                    .into());
                }
            }
            // What is given instead goes through the allergy check the prescription had: an
            // allergy the prescribed drug didn't raise (the doctor never saw it) is refused.
            let patient = crate::patients::get(w.conn(), &rx.patient_id)?;
            let as_given = Item {
                drug_id: given.drug_id.clone(),
                name: given.name.clone(),
                ..item.clone()
            };
            let allergy = prescriptions::AlertKind::Allergy;
            let seen =
                prescriptions::check(w.conn(), std::slice::from_ref(item), &patient.allergies, "")?;
            let alerts = prescriptions::check(w.conn(), &[as_given], &patient.allergies, "")?;
            if let Some(a) = alerts.iter().find(|a| {
                a.kind == allergy
                    && !seen
                        .iter()
                        .any(|s| s.kind == allergy && s.detail == a.detail)
            }) {
                return Err(Error::AllergyOnGiven {
                    subject: a.subject.clone(),
                }
                .into());
            }
        }
        // A substitute is billed at no less than what was prescribed.
        let unit_price = match (&prescribed, substituted) {
            (Some(p), true) => given.price.max(p.price),
            _ => given.price,
        };
        let batches = super::batches(w.conn(), &given.id, false, today)?;
        let ends = course_end(today, item);
        let (picks, overridden) = match line.batch_id.as_deref().filter(|s| !s.is_empty()) {
            Some(b) => {
                let chosen = super::batch(w.conn(), b, today)?;
                if chosen.item_id != given.id {
                    return Err(CrateError::invalid(Field::Batch, Reason::Mismatch));
                }
                if chosen.shelf == Shelf::Expired {
                    return Err(Error::BatchExpired {
                        lot: chosen.lot,
                        expiry: chosen.expiry,
                    }
                    .into());
                }
                let first = fefo(&batches, 1).ok().and_then(|p| p.into_iter().next());
                let overridden = first.is_some_and(|f| f.batch_id != chosen.id);
                (
                    vec![Pick {
                        batch_id: chosen.id,
                        lot: chosen.lot,
                        expiry: chosen.expiry,
                        quantity: line.quantity,
                    }],
                    overridden,
                )
            }
            None => match fefo(&batches, line.quantity) {
                Ok(p) => (p, false),
                Err(have) => {
                    let b = batches.iter().find(|b| b.shelf != Shelf::Expired);
                    return Err(Error::InsufficientStock {
                        item: given.name.clone(),
                        lot: b.map(|b| b.lot.clone()).unwrap_or_default(),
                        on_hand: have,
                        wanted: line.quantity,
                    }
                    .into());
                }
            },
        };
        if (substituted || overridden) && reason.chars().count() < 3 {
            return Err(CrateError::invalid(Field::Reason, Reason::Required));
        }
        for warning in warnings_for(&[], &picks, ends) {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        for pick in picks {
            let id = new_id();
            w.insert_row(
                Table::Dispensings,
                &id,
                &[
                    ("prescription_id", &rx.id),
                    ("prescription_item_id", &item.id),
                    ("item_id", &given.id),
                    ("batch_id", &pick.batch_id),
                    ("quantity", &pick.quantity),
                    ("substituted", &substituted),
                    ("batch_overridden", &overridden),
                    ("reason", &reason),
                ],
            )?;
            ledger::post(
                w,
                &pick.batch_id,
                MoveKind::Dispensed,
                -pick.quantity,
                "",
                Some((Table::Dispensings, &id)),
            )?;
            let description = format!("{} {}", given.name, given.strength)
                .trim()
                .to_string();
            w.insert_row(
                Table::BillableItems,
                &new_id(),
                &[
                    ("patient_id", &rx.patient_id),
                    ("encounter_id", &rx.encounter_id),
                    ("source_table", &"dispensings"),
                    ("source_id", &id),
                    ("description", &description),
                    ("quantity", &pick.quantity),
                    ("unit_price", &unit_price),
                    ("currency", &given.currency),
                    ("status", &"pending"),
                ],
            )?;
            out.push(dispensing(w.conn(), &id)?);
        }
    }
    let (status, _) = settle_fill(w, &rx)?;
    Ok(DispenseOutcome {
        status,
        dispensings: out,
        warnings,
    })
}

/// Where a prescription stands from what was dispensed on it (done once every item has all it
/// was prescribed), written to its fill row when that differs. The row's id is the
/// prescription's, so PCs that dispense one prescription while apart write one row, and sync
/// settles it again after a pull. Returns the status and the units given beyond the
/// prescription (two PCs apart filling the same one).
pub(crate) fn settle_fill(w: &mut Write<'_>, rx: &Prescription) -> Result<(FillStatus, i64)> {
    let (mut done, mut any, mut over) = (true, false, 0);
    for item in &rx.items {
        let given = dispensed_of(w.conn(), &item.id)?;
        done &= given >= item.quantity as i64;
        any |= given > 0;
        over += (given - item.quantity as i64).max(0);
    }
    let status = if done {
        FillStatus::Done
    } else {
        FillStatus::Partial
    };
    let fill: Option<(String, FillStatus)> = w
        .conn()
        .prepare_cached("SELECT id, status FROM prescription_fills WHERE prescription_id = ?1")?
        .query_row([&rx.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match fill {
        Some((_, held)) if held == status => {}
        Some((id, _)) => {
            w.update_row(Table::PrescriptionFills, &id, &[("status", &status)])?;
        }
        None if any => {
            w.insert_row(
                Table::PrescriptionFills,
                &rx.id,
                &[("prescription_id", &rx.id), ("status", &status)],
            )?;
        }
        None => {}
    }
    Ok((status, over))
}

/// A charge waiting for billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Billable {
    pub id: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub currency: Option<String>,
}

pub fn pending_billables(conn: &Connection, patient_id: &str) -> Result<Vec<Billable>> {
    let mut st = conn.prepare_cached(
        "SELECT id, patient_id, encounter_id, description, quantity, unit_price, currency
         FROM billable_items WHERE patient_id = ?1 AND status = 'pending' ORDER BY created_at, rowid",
    )?;
    let rows = st.query_map([patient_id], |r| {
        Ok(Billable {
            id: r.get(0)?,
            patient_id: r.get(1)?,
            encounter_id: r.get(2)?,
            description: r.get(3)?,
            quantity: r.get(4)?,
            unit_price: r.get(5)?,
            currency: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
