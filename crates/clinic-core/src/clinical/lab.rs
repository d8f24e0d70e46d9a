//! Lab tests: the catalogue (LOINC code, unit, reference range), orders made in a visit, and
//! results entered against them, flagged low or high against the range copied at entry.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::vitals::Flag;
use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct LabTest {
    pub id: String,
    pub loinc: String,
    pub name: String,
    pub unit: String,
    pub ref_low: Option<f64>,
    pub ref_high: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabStatus {
    #[default]
    Ordered,
    Resulted,
    Cancelled,
}

crate::text_column!(LabStatus);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct LabOrder {
    pub id: String,
    pub encounter_id: String,
    pub patient_id: String,
    pub test: LabTest,
    pub status: LabStatus,
    pub ordered_at: String,
    pub value: Option<f64>,
    pub flag: Option<Flag>,
    pub comment: String,
    pub resulted_at: Option<String>,
}

pub fn tests(conn: &Connection) -> Result<Vec<LabTest>> {
    let mut st = conn.prepare_cached(
        "SELECT id, loinc, name, unit, ref_low, ref_high FROM lab_tests WHERE active = 1 ORDER BY name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(LabTest {
            id: r.get(0)?,
            loinc: r.get(1)?,
            name: r.get(2)?,
            unit: r.get(3)?,
            ref_low: r.get(4)?,
            ref_high: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// A result shows the unit and range it was entered with; an order not yet resulted, the
// catalogue's.
const ORDER: &str =
    "o.id, o.encounter_id, o.patient_id, t.id, t.loinc, t.name, coalesce(o.unit, t.unit),
                     CASE WHEN o.status = 'resulted' THEN o.ref_low ELSE t.ref_low END,
                     CASE WHEN o.status = 'resulted' THEN o.ref_high ELSE t.ref_high END,
                     o.status, o.ordered_at, o.value, o.flag, o.comment, o.resulted_at";
const ORDER_FROM: &str = "lab_orders o JOIN lab_tests t ON t.id = o.test_id";

fn order_row(r: &Row<'_>) -> rusqlite::Result<LabOrder> {
    Ok(LabOrder {
        id: r.get(0)?,
        encounter_id: r.get(1)?,
        patient_id: r.get(2)?,
        test: LabTest {
            id: r.get(3)?,
            loinc: r.get(4)?,
            name: r.get(5)?,
            unit: r.get(6)?,
            ref_low: r.get(7)?,
            ref_high: r.get(8)?,
        },
        status: r.get(9)?,
        ordered_at: r.get(10)?,
        value: r.get(11)?,
        flag: r.get(12)?,
        comment: r.get(13)?,
        resulted_at: r.get(14)?,
    })
}

pub fn order(conn: &Connection, id: &str) -> Result<LabOrder> {
    conn.prepare_cached(&format!("SELECT {ORDER} FROM {ORDER_FROM} WHERE o.id = ?1"))?
        .query_row([id], order_row)
        .optional()?
        .ok_or(Table::LabOrders.not_found())
}

/// Orders `test_id` in an open visit (the caller checked it is the doctor's own).
pub fn place(w: &mut Write<'_>, encounter: &super::Encounter, test_id: &str) -> Result<LabOrder> {
    let exists: Option<String> = w
        .conn()
        .prepare_cached("SELECT id FROM lab_tests WHERE id = ?1 AND active = 1")?
        .query_row([test_id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(CrateError::invalid(Field::LabTest, Reason::Unknown));
    }
    let id = new_id();
    w.insert_row(
        Table::LabOrders,
        &id,
        &[
            ("encounter_id", &encounter.id),
            ("patient_id", &encounter.patient_id),
            ("test_id", &test_id),
            ("status", &LabStatus::Ordered),
            ("ordered_at", &w.now_ts()),
        ],
    )?;
    order(w.conn(), &id)
}

/// Enters the result of an order: flagged against the catalogue's range, which is kept with
/// it. A result already entered is not overwritten.
pub fn enter_result(w: &mut Write<'_>, id: &str, value: f64, comment: &str) -> Result<LabOrder> {
    let o = order(w.conn(), id)?;
    if o.status != LabStatus::Ordered {
        return Err(Error::LabResulted.into());
    }
    if !value.is_finite() || !(0.0..=1_000_000.0).contains(&value) {
        return Err(CrateError::invalid(Field::LabValue, Reason::OutOfRange));
    }
    let comment = crate::validate::optional(Field::LabComment, comment, 1000)?.unwrap_or_default();
    let t = &o.test;
    let flag = match (t.ref_low, t.ref_high) {
        (Some(lo), _) if value < lo => Flag::Low,
        (_, Some(hi)) if value > hi => Flag::High,
        _ => Flag::Normal,
    };
    w.update_row(
        Table::LabOrders,
        id,
        &[
            ("status", &LabStatus::Resulted),
            ("value", &value),
            ("unit", &t.unit),
            ("ref_low", &t.ref_low),
            ("ref_high", &t.ref_high),
            ("flag", &flag),
            ("comment", &comment),
            ("resulted_at", &w.now_ts()),
            ("resulted_by", &w.actor_id()),
        ],
    )?;
    order(w.conn(), id)
}

pub fn for_encounter(conn: &Connection, encounter_id: &str) -> Result<Vec<LabOrder>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ORDER} FROM {ORDER_FROM} WHERE o.encounter_id = ?1 ORDER BY o.rowid"
    ))?;
    let rows = st.query_map([encounter_id], order_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A patient's results, oldest first (for the trend charts), of one test or all.
pub fn results(
    conn: &Connection,
    patient_id: &str,
    test_id: Option<&str>,
) -> Result<Vec<LabOrder>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ORDER} FROM {ORDER_FROM}
         WHERE o.patient_id = ?1 AND o.status = 'resulted' AND (?2 IS NULL OR o.test_id = ?2)
         ORDER BY o.resulted_at, o.rowid"
    ))?;
    let rows = st.query_map(rusqlite::params![patient_id, test_id], order_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
