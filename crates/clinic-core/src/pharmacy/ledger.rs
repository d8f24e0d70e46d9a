//! The stock ledger: every move of stock, appended and never changed (triggers refuse UPDATE
//! and DELETE). `post` is the one way stock moves; stock counts end here as adjustments.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    Received,
    Dispensed,
    /// A correction, with its reason (stock counts end as these).
    #[default]
    Adjusted,
    Expired,
    Destroyed,
    ReturnedToSupplier,
    ReturnedByPatient,
}
crate::text_column!(MoveKind);

impl MoveKind {
    /// Whether the move brings stock in (`true`), takes it out (`false`), or either (`None`).
    fn inward(self) -> Option<bool> {
        match self {
            MoveKind::Received | MoveKind::ReturnedByPatient => Some(true),
            MoveKind::Adjusted => None,
            _ => Some(false),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Move {
    pub id: String,
    pub batch_id: String,
    pub item_id: String,
    pub item_name: String,
    pub lot: String,
    pub kind: MoveKind,
    /// Signed: in is positive.
    pub quantity: i64,
    /// The batch's on-hand after the move.
    pub balance: i64,
    pub reason: String,
    pub ref_table: Option<String>,
    pub ref_id: Option<String>,
    pub at: String,
    pub by: String,
}

/// Moves `quantity` (signed) of batch `batch_id`: appends the ledger row and keeps the
/// batch's on-hand equal to its rows' sum. A move that would leave less than nothing is
/// refused, naming what is there.
pub fn post(
    w: &mut Write<'_>,
    batch_id: &str,
    kind: MoveKind,
    quantity: i64,
    reason: &str,
    reference: Option<(Table, &str)>,
) -> Result<Move> {
    if quantity == 0
        || quantity.abs() > 10_000_000
        || kind.inward().is_some_and(|inward| inward != (quantity > 0))
    {
        return Err(CrateError::invalid(Field::Quantity, Reason::OutOfRange));
    }
    let reason = crate::validate::optional(Field::Reason, reason, 500)?.unwrap_or_default();
    // Stock that comes or goes other than by a delivery or a dispensing says why.
    if !matches!(kind, MoveKind::Received | MoveKind::Dispensed) && reason.chars().count() < 3 {
        return Err(CrateError::invalid(Field::Reason, Reason::Required));
    }
    let (item_id, item_name, lot, on_hand): (String, String, String, i64) = w
        .conn()
        .prepare_cached(
            "SELECT b.item_id, i.name, b.lot, b.on_hand FROM batches b
             JOIN stock_items i ON i.id = b.item_id WHERE b.id = ?1",
        )?
        .query_row([batch_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or(Table::Batches.not_found())?;
    let balance = on_hand + quantity;
    if balance < 0 {
        return Err(Error::InsufficientStock {
            item: item_name,
            lot,
            on_hand,
            wanted: -quantity,
        }
        .into());
    }
    w.update_row(Table::Batches, batch_id, &[("on_hand", &balance)])?;
    let id = new_id();
    let (ref_table, ref_id) = match reference {
        Some((t, id)) => (Some(t.name()), Some(id.to_string())),
        None => (None, None),
    };
    w.insert_row(
        Table::StockMoves,
        &id,
        &[
            ("batch_id", &batch_id),
            ("item_id", &item_id),
            ("kind", &kind),
            ("quantity", &quantity),
            ("balance", &balance),
            ("reason", &reason),
            ("ref_table", &ref_table),
            ("ref_id", &ref_id),
        ],
    )?;
    Ok(Move {
        id,
        batch_id: batch_id.to_string(),
        item_id,
        item_name,
        lot,
        kind,
        quantity,
        balance,
        reason,
        ref_table: ref_table.map(String::from),
        ref_id,
        at: w.now_ts(),
        by: w.actor().name.clone(),
    })
}

const MOVE: &str = "m.id, m.batch_id, m.item_id, i.name, b.lot, m.kind, m.quantity, m.balance,
    m.reason, m.ref_table, m.ref_id, m.created_at, coalesce(s.full_name, m.created_by)";
const MOVE_FROM: &str = "stock_moves m JOIN batches b ON b.id = m.batch_id
    JOIN stock_items i ON i.id = m.item_id LEFT JOIN staff s ON s.id = m.created_by";

fn move_row(r: &Row<'_>) -> rusqlite::Result<Move> {
    Ok(Move {
        id: r.get(0)?,
        batch_id: r.get(1)?,
        item_id: r.get(2)?,
        item_name: r.get(3)?,
        lot: r.get(4)?,
        kind: r.get(5)?,
        quantity: r.get(6)?,
        balance: r.get(7)?,
        reason: r.get(8)?,
        ref_table: r.get(9)?,
        ref_id: r.get(10)?,
        at: r.get(11)?,
        by: r.get(12)?,
    })
}

/// The movement history of an item or of one batch, newest first.
pub fn history(
    conn: &Connection,
    item_id: Option<&str>,
    batch_id: Option<&str>,
    limit: u32,
) -> Result<Vec<Move>> {
    if item_id.is_none() && batch_id.is_none() {
        return Err(CrateError::invalid(Field::Item, Reason::Required));
    }
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MOVE} FROM {MOVE_FROM}
         WHERE (?1 IS NULL OR m.item_id = ?1) AND (?2 IS NULL OR m.batch_id = ?2)
         ORDER BY m.created_at DESC, m.rowid DESC LIMIT ?3"
    ))?;
    let rows = st.query_map(
        rusqlite::params![item_id, batch_id, limit.clamp(1, 10_000)],
        move_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Batches whose on-hand is not the sum of their ledger rows (none, always: tests check).
pub fn out_of_balance(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT b.id FROM batches b
         LEFT JOIN (SELECT batch_id, sum(quantity) AS total FROM stock_moves GROUP BY batch_id) m
           ON m.batch_id = b.id
         WHERE b.on_hand <> coalesce(m.total, 0) OR b.on_hand < 0",
    )?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a batch's on-hand to its ledger's sum, after moves made on other PCs arrived (two
/// PCs dispensing from one batch while apart each wrote the balance they saw). Returns the
/// shortfall when the moves together took more than there was: on-hand then stays at 0 and
/// the batch shows in `out_of_balance` until a stock count settles it.
pub fn rebalance(w: &mut Write<'_>, batch_id: &str) -> Result<Option<i64>> {
    let (on_hand, sum): (i64, i64) = match w
        .conn()
        .prepare_cached(
            "SELECT b.on_hand, coalesce((SELECT sum(quantity) FROM stock_moves WHERE batch_id = b.id), 0)
             FROM batches b WHERE b.id = ?1",
        )?
        .query_row([batch_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
    {
        Some(v) => v,
        None => return Ok(None),
    };
    let target = sum.max(0);
    if on_hand != target {
        w.update_row(Table::Batches, batch_id, &[("on_hand", &target)])?;
    }
    Ok((sum < 0).then_some(sum))
}

/// A counted batch in a stock count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct CountLine {
    pub batch_id: String,
    pub counted: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct CountInput {
    pub note: String,
    pub lines: Vec<CountLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct CountedLine {
    pub batch_id: String,
    pub item_name: String,
    pub lot: String,
    pub expected: i64,
    pub counted: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct StockCount {
    pub id: String,
    pub note: String,
    pub lines: Vec<CountedLine>,
    /// The adjustments the differences became.
    pub adjustments: Vec<Move>,
}

/// Records a stock count: each batch counted against what the ledger expects; each
/// difference becomes an `adjusted` move naming the count.
pub fn count(w: &mut Write<'_>, input: &CountInput, _today: NaiveDate) -> Result<StockCount> {
    let note = crate::validate::required(Field::Note, &input.note, 500)?;
    if input.lines.is_empty() || input.lines.len() > 20_000 {
        return Err(CrateError::invalid(Field::Lines, Reason::Required));
    }
    let id = new_id();
    w.insert_row(Table::StockCounts, &id, &[("note", &note)])?;
    let mut lines = Vec::new();
    let mut adjustments = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in &input.lines {
        if !seen.insert(l.batch_id.as_str()) {
            return Err(CrateError::invalid(Field::Batch, Reason::Overlap));
        }
        if !(0..=10_000_000).contains(&l.counted) {
            return Err(CrateError::invalid(Field::Counted, Reason::OutOfRange));
        }
        let (item_name, lot, expected): (String, String, i64) = w
            .conn()
            .prepare_cached(
                "SELECT i.name, b.lot, b.on_hand FROM batches b
                 JOIN stock_items i ON i.id = b.item_id WHERE b.id = ?1",
            )?
            .query_row([&l.batch_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .ok_or(Table::Batches.not_found())?;
        w.insert_row(
            Table::StockCountLines,
            &new_id(),
            &[
                ("count_id", &id),
                ("batch_id", &l.batch_id),
                ("expected", &expected),
                ("counted", &l.counted),
            ],
        )?;
        if l.counted != expected {
            adjustments.push(post(
                w,
                &l.batch_id,
                MoveKind::Adjusted,
                l.counted - expected,
                &format!("stock count: {note}"),
                Some((Table::StockCounts, &id)),
            )?);
        }
        lines.push(CountedLine {
            batch_id: l.batch_id.clone(),
            item_name,
            lot,
            expected,
            counted: l.counted,
        });
    }
    Ok(StockCount {
        id,
        note,
        lines,
        adjustments,
    })
}
