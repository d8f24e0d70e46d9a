//! Purchase orders: a supplier, items, quantities and costs; received in part, batch by batch
//! (`pharmacy::receive` names the line it delivers).

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Partial,
    Received,
    Cancelled,
}
crate::text_column!(OrderStatus);

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct OrderLineInput {
    pub item_id: String,
    pub quantity: i64,
    /// Per unit, in minor units of the clinic's currency.
    pub cost: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct OrderInput {
    pub supplier_id: String,
    pub note: String,
    pub lines: Vec<OrderLineInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct OrderLine {
    pub id: String,
    pub item_id: String,
    pub item_name: String,
    pub quantity: i64,
    pub received: i64,
    pub cost: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PurchaseOrder {
    pub id: String,
    pub number: String,
    pub supplier_id: String,
    pub supplier_name: String,
    pub status: OrderStatus,
    pub ordered_on: String,
    pub note: String,
    pub currency: Option<String>,
    pub lines: Vec<OrderLine>,
    /// Sum of quantity × cost over the lines.
    pub total: i64,
}

fn lines(conn: &Connection, order_id: &str) -> Result<Vec<OrderLine>> {
    let mut st = conn.prepare_cached(
        "SELECT l.id, l.item_id, i.name, l.quantity, l.received, l.cost
         FROM purchase_order_lines l JOIN stock_items i ON i.id = l.item_id
         WHERE l.order_id = ?1 ORDER BY l.rowid",
    )?;
    let rows = st.query_map([order_id], |r| {
        Ok(OrderLine {
            id: r.get(0)?,
            item_id: r.get(1)?,
            item_name: r.get(2)?,
            quantity: r.get(3)?,
            received: r.get(4)?,
            cost: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<PurchaseOrder> {
    let mut o = conn
        .prepare_cached(
            "SELECT o.id, o.number, o.supplier_id, s.name, o.status, o.ordered_on, o.note,
                    (SELECT currency FROM purchase_order_lines WHERE order_id = o.id LIMIT 1)
             FROM purchase_orders o JOIN suppliers s ON s.id = o.supplier_id WHERE o.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(PurchaseOrder {
                id: r.get(0)?,
                number: r.get(1)?,
                supplier_id: r.get(2)?,
                supplier_name: r.get(3)?,
                status: r.get(4)?,
                ordered_on: r.get(5)?,
                note: r.get(6)?,
                currency: r.get(7)?,
                lines: vec![],
                total: 0,
            })
        })
        .optional()?
        .ok_or(Table::PurchaseOrders.not_found())?;
    o.lines = lines(conn, id)?;
    o.total = o.lines.iter().fold(0i64, |t, l| {
        t.saturating_add(l.quantity.saturating_mul(l.cost))
    });
    Ok(o)
}

/// Orders not yet received in full (open and partial) first, then the rest; newest first.
pub fn list(conn: &Connection, open_only: bool) -> Result<Vec<PurchaseOrder>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM purchase_orders
             WHERE NOT ?1 OR status IN ('open', 'partial')
             ORDER BY status IN ('open', 'partial') DESC, ordered_on DESC, rowid DESC LIMIT 200",
        )?
        .query_map([open_only], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| get(conn, id)).collect()
}

pub fn create(
    w: &mut Write<'_>,
    input: &OrderInput,
    device_code: &str,
    today: chrono::NaiveDate,
) -> Result<PurchaseOrder> {
    w.conn()
        .prepare_cached("SELECT 1 FROM suppliers WHERE id = ?1 AND active = 1")?
        .query_row([&input.supplier_id], |_| Ok(()))
        .optional()?
        .ok_or(CrateError::invalid(Field::Supplier, Reason::Unknown))?;
    if input.lines.is_empty() || input.lines.len() > 500 {
        return Err(CrateError::invalid(Field::Lines, Reason::Required));
    }
    let note = crate::validate::optional(Field::Note, &input.note, 1000)?.unwrap_or_default();
    let currency = crate::settings::clinic(w.conn())?.currency;
    let id = new_id();
    let n = w.next_number("purchase_order", "")?;
    let number = format!("PO-{device_code}-{n:05}");
    w.insert_row(
        Table::PurchaseOrders,
        &id,
        &[
            ("number", &number),
            ("supplier_id", &input.supplier_id),
            ("status", &OrderStatus::Open),
            ("ordered_on", &today.to_string()),
            ("note", &note),
        ],
    )?;
    for l in &input.lines {
        super::item(w.conn(), &l.item_id)?;
        if !(1..=10_000_000).contains(&l.quantity) {
            return Err(CrateError::invalid(Field::Quantity, Reason::OutOfRange));
        }
        if !(0..=crate::validate::MAX_AMOUNT).contains(&l.cost) {
            return Err(CrateError::invalid(Field::Cost, Reason::OutOfRange));
        }
        w.insert_row(
            Table::PurchaseOrderLines,
            &new_id(),
            &[
                ("order_id", &id),
                ("item_id", &l.item_id),
                ("quantity", &l.quantity),
                ("cost", &l.cost),
                ("currency", &currency),
            ],
        )?;
    }
    get(w.conn(), &id)
}

pub fn cancel(w: &mut Write<'_>, id: &str) -> Result<PurchaseOrder> {
    let o = get(w.conn(), id)?;
    if o.status != OrderStatus::Open {
        // A delivered part stays on the books: a partial order is closed by receiving it.
        return Err(Error::OrderClosed {
            status: crate::names::name_of(&o.status).to_string(),
        }
        .into());
    }
    w.update_row(
        Table::PurchaseOrders,
        id,
        &[("status", &OrderStatus::Cancelled)],
    )?;
    get(w.conn(), id)
}

/// Checks that `quantity` of `item_id` may be received on line `line_id`; gives the line and
/// its order.
pub(super) fn line_for_receipt(
    conn: &Connection,
    line_id: &str,
    item_id: &str,
    quantity: i64,
) -> Result<(OrderLine, PurchaseOrder)> {
    let order_id: String = conn
        .prepare_cached("SELECT order_id FROM purchase_order_lines WHERE id = ?1")?
        .query_row([line_id], |r| r.get(0))
        .optional()?
        .ok_or(CrateError::invalid(Field::OrderLine, Reason::Unknown))?;
    let order = get(conn, &order_id)?;
    if !matches!(order.status, OrderStatus::Open | OrderStatus::Partial) {
        return Err(Error::OrderClosed {
            status: crate::names::name_of(&order.status).to_string(),
        }
        .into());
    }
    let line = order
        .lines
        .iter()
        .find(|l| l.id == line_id)
        .cloned()
        .ok_or(CrateError::invalid(Field::OrderLine, Reason::Unknown))?;
    if line.item_id != item_id {
        return Err(CrateError::invalid(Field::Item, Reason::Mismatch));
    }
    if line.received + quantity > line.quantity {
        return Err(Error::OverReceipt {
            remaining: line.quantity - line.received,
        }
        .into());
    }
    Ok((line, order))
}

/// Adds a delivery to its line; the order becomes partial, or received once every line is.
pub(super) fn record_receipt(w: &mut Write<'_>, line: &OrderLine, quantity: i64) -> Result<()> {
    w.update_row(
        Table::PurchaseOrderLines,
        &line.id,
        &[("received", &(line.received + quantity))],
    )?;
    let (order_id, outstanding): (String, i64) = w
        .conn()
        .prepare_cached(
            "SELECT order_id, (SELECT sum(quantity - received) FROM purchase_order_lines
                               WHERE order_id = l.order_id)
             FROM purchase_order_lines l WHERE id = ?1",
        )?
        .query_row([&line.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let status = if outstanding == 0 {
        OrderStatus::Received
    } else {
        OrderStatus::Partial
    };
    w.update_row(Table::PurchaseOrders, &order_id, &[("status", &status)])?;
    Ok(())
}
