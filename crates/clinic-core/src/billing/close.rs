//! The cashier's daily close on one PC: the day's payments by method, the cash expected
//! against the cash counted (by denomination), the difference with a note, and the audit
//! trail's head at that moment. After it, the day's payments are kept as they are and the
//! till takes no more for that day; corrections go into the next day.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::payments::Method;
use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct Denomination {
    /// A note's or coin's value in minor units.
    pub value: i64,
    pub count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct MethodTotal {
    pub method: Method,
    pub count: u32,
    pub amount: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct DayCloseInput {
    pub counted: Vec<Denomination>,
    /// Needed when counted and expected cash differ.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct DailyClose {
    /// Empty for a preview (not closed yet).
    pub id: String,
    pub day: String,
    pub by_method: Vec<MethodTotal>,
    pub payments: u32,
    pub expected_cash: i64,
    pub counted: Vec<Denomination>,
    pub counted_cash: i64,
    /// counted − expected.
    pub difference: i64,
    pub note: String,
    /// The audit trail's last entry when the day was closed.
    pub audit_seq: i64,
    pub audit_hash: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
}

fn totals(conn: &Connection, device_id: &str, day: &str) -> Result<(Vec<MethodTotal>, u32, i64)> {
    let mut by = Vec::new();
    let (mut n, mut cash) = (0u32, 0i64);
    let mut st = conn.prepare_cached(
        "SELECT method, count(*), coalesce(sum(amount), 0) FROM payments
         WHERE device_id = ?1 AND day = ?2 GROUP BY method",
    )?;
    let rows: Vec<(Method, u32, i64)> = st
        .query_map([device_id, day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for m in Method::ALL {
        let (count, amount) = rows
            .iter()
            .find(|(k, _, _)| *k == m)
            .map(|(_, c, a)| (*c, *a))
            .unwrap_or((0, 0));
        n += count;
        if m == Method::Cash {
            cash = amount;
        }
        by.push(MethodTotal {
            method: m,
            count,
            amount,
        });
    }
    Ok((by, n, cash))
}

fn counted_cash(counted: &[Denomination]) -> Result<i64> {
    if counted.len() > 50 {
        return Err(CrateError::invalid_limit(
            Field::Counted,
            Reason::TooLong,
            50,
        ));
    }
    let mut sum = 0i64;
    for d in counted {
        if !(1..=100_000_000).contains(&d.value) || !(0..=1_000_000).contains(&d.count) {
            return Err(CrateError::invalid(Field::Counted, Reason::OutOfRange));
        }
        sum += d.value * d.count;
    }
    Ok(sum)
}

fn audit_head(conn: &Connection) -> Result<(i64, String)> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, String::new())))
}

/// What a close of `day` would show now (nothing written).
pub fn preview(
    conn: &Connection,
    device_id: &str,
    day: NaiveDate,
    counted: &[Denomination],
) -> Result<DailyClose> {
    let d = day.to_string();
    let (by_method, payments, expected) = totals(conn, device_id, &d)?;
    let counted_cash = counted_cash(counted)?;
    let (seq, hash) = audit_head(conn)?;
    Ok(DailyClose {
        id: String::new(),
        day: d,
        by_method,
        payments,
        expected_cash: expected,
        counted: counted.to_vec(),
        counted_cash,
        difference: counted_cash - expected,
        note: String::new(),
        audit_seq: seq,
        audit_hash: hash,
        closed_at: None,
        closed_by: None,
    })
}

/// Closes `day` on this PC. A difference needs a note.
pub fn close(
    w: &mut Write<'_>,
    device_id: &str,
    day: NaiveDate,
    input: &DayCloseInput,
) -> Result<DailyClose> {
    if super::payments::day_closed(w.conn(), device_id, day)? {
        return Err(Error::DayClosed {
            day: day.to_string(),
        }
        .into());
    }
    let c = preview(w.conn(), device_id, day, &input.counted)?;
    let note = crate::validate::optional(Field::Note, &input.note, 1000)?.unwrap_or_default();
    if c.difference != 0 && note.chars().count() < 3 {
        return Err(CrateError::invalid(Field::Note, Reason::Required));
    }
    let id = new_id();
    // The head as it was before this close's own entries: what the printed paper anchors.
    w.insert_row(
        Table::DailyCloses,
        &id,
        &[
            ("day", &c.day),
            ("device_id", &device_id),
            ("by_method", &serde_json::to_string(&c.by_method)?),
            ("expected_cash", &c.expected_cash),
            ("counted", &serde_json::to_string(&c.counted)?),
            ("counted_cash", &c.counted_cash),
            ("difference", &c.difference),
            ("note", &note),
            ("payments", &c.payments),
            ("audit_seq", &c.audit_seq),
            ("audit_hash", &c.audit_hash),
        ],
    )?;
    let ids: Vec<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM payments WHERE device_id = ?1 AND day = ?2 AND close_id IS NULL",
        )?
        .query_map([device_id, &c.day], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for p in ids {
        w.update_row(Table::Payments, &p, &[("close_id", &id)])?;
    }
    get(w.conn(), &id)
}

fn close_row(r: &Row<'_>) -> rusqlite::Result<DailyClose> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(DailyClose {
        id: r.get(0)?,
        day: r.get(1)?,
        by_method: serde_json::from_str(&json(2)?).unwrap_or_default(),
        expected_cash: r.get(3)?,
        counted: serde_json::from_str(&json(4)?).unwrap_or_default(),
        counted_cash: r.get(5)?,
        difference: r.get(6)?,
        note: r.get(7)?,
        payments: r.get(8)?,
        audit_seq: r.get(9)?,
        audit_hash: r.get(10)?,
        closed_at: r.get(11)?,
        closed_by: r.get(12)?,
    })
}

const CLOSE: &str = "c.id, c.day, c.by_method, c.expected_cash, c.counted, c.counted_cash,
    c.difference, c.note, c.payments, c.audit_seq, c.audit_hash, c.created_at,
    coalesce(s.full_name, c.created_by)";
const CLOSE_FROM: &str = "daily_closes c LEFT JOIN staff s ON s.id = c.created_by";

pub fn get(conn: &Connection, id: &str) -> Result<DailyClose> {
    conn.prepare_cached(&format!("SELECT {CLOSE} FROM {CLOSE_FROM} WHERE c.id = ?1"))?
        .query_row([id], close_row)
        .optional()?
        .ok_or(Table::DailyCloses.not_found())
}

/// This PC's closes, newest first.
pub fn list(conn: &Connection, device_id: &str) -> Result<Vec<DailyClose>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {CLOSE} FROM {CLOSE_FROM} WHERE c.device_id = ?1 ORDER BY c.day DESC LIMIT 60"
    ))?;
    let rows = st.query_map([device_id], close_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
