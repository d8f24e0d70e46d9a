//! Stock reports: valuation at cost, the expiry report and the movement history of an item or
//! a batch. Each is a table the screen shows, a CSV file and a printed paper.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{ledger, Field};
use crate::error::{Reason, Result};
use crate::print::{
    clinic_header, money, page_label, printed_at, render, Align, Block, Column, Document,
};
use crate::settings::{self, Language};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    #[default]
    Valuation,
    Expiry,
    Movements,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct ReportQuery {
    pub kind: ReportKind,
    /// Movements: the item or the batch whose history it is.
    pub item_id: Option<String>,
    pub batch_id: Option<String>,
}

/// What a column holds, which names it in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ReportColumn {
    Item,
    Lot,
    Expiry,
    OnHand,
    UnitCost,
    Value,
    DaysLeft,
    Date,
    Move,
    Quantity,
    Balance,
    Reason,
    By,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Report {
    pub kind: ReportKind,
    pub columns: Vec<ReportColumn>,
    /// Cells as shown (amounts formatted in the clinic's currency, dates as YYYY-MM-DD).
    pub rows: Vec<Vec<String>>,
    /// Valuation: the total at cost, in minor units of `currency`.
    pub total: Option<i64>,
    pub currency: String,
}

pub fn build(conn: &Connection, q: &ReportQuery, today: NaiveDate) -> Result<Report> {
    let clinic = settings::clinic(conn)?;
    let digits = settings::minor_digits(&clinic.currency).unwrap_or(2);
    use ReportColumn as C;
    let (columns, rows, total) = match q.kind {
        ReportKind::Valuation => {
            let mut st = conn.prepare_cached(
                "SELECT i.name, b.lot, b.expiry, b.on_hand, b.cost FROM batches b
                 JOIN stock_items i ON i.id = b.item_id WHERE b.on_hand > 0
                 ORDER BY i.name COLLATE NOCASE, b.expiry, b.id",
            )?;
            let mut total = 0i64;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .map(|row| {
                    let (item, lot, expiry, on_hand, cost) = row?;
                    let value = on_hand.saturating_mul(cost);
                    total = total.saturating_add(value);
                    Ok(vec![
                        item,
                        lot,
                        expiry,
                        on_hand.to_string(),
                        money(cost, digits),
                        money(value, digits),
                    ])
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            (
                vec![C::Item, C::Lot, C::Expiry, C::OnHand, C::UnitCost, C::Value],
                rows,
                Some(total),
            )
        }
        ReportKind::Expiry => {
            let warn = super::warn_before(conn, today)?;
            let mut st = conn.prepare_cached(
                "SELECT i.name, b.lot, b.expiry, b.on_hand, b.cost FROM batches b
                 JOIN stock_items i ON i.id = b.item_id
                 WHERE b.on_hand > 0 AND b.expiry < ?1 ORDER BY b.expiry, i.name",
            )?;
            let rows = st
                .query_map([warn.to_string()], |r| {
                    let expiry: String = r.get(2)?;
                    let left = NaiveDate::parse_from_str(&expiry, "%Y-%m-%d")
                        .map(|e| (e - today).num_days())
                        .unwrap_or(0);
                    let (on_hand, cost): (i64, i64) = (r.get(3)?, r.get(4)?);
                    Ok(vec![
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        expiry,
                        left.to_string(),
                        on_hand.to_string(),
                        money(on_hand.saturating_mul(cost), digits),
                    ])
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            (
                vec![C::Item, C::Lot, C::Expiry, C::DaysLeft, C::OnHand, C::Value],
                rows,
                None,
            )
        }
        ReportKind::Movements => {
            let moves = ledger::history(conn, q.item_id.as_deref(), q.batch_id.as_deref(), 10_000)?;
            let rows = moves
                .into_iter()
                .map(|m| {
                    vec![
                        m.at.get(..10).unwrap_or_default().to_string(),
                        m.item_name,
                        m.lot,
                        crate::names::name_of(&m.kind).to_string(),
                        m.quantity.to_string(),
                        m.balance.to_string(),
                        m.reason,
                        m.by,
                    ]
                })
                .collect();
            (
                vec![
                    C::Date,
                    C::Item,
                    C::Lot,
                    C::Move,
                    C::Quantity,
                    C::Balance,
                    C::Reason,
                    C::By,
                ],
                rows,
                None,
            )
        }
    };
    Ok(Report {
        kind: q.kind,
        columns,
        rows,
        total,
        currency: clinic.currency,
    })
}

fn title(kind: ReportKind, lang: Language) -> &'static str {
    use Language::*;
    use ReportKind::*;
    match (kind, lang) {
        (Valuation, En) => "Stock valuation at cost",
        (Valuation, Ru) => "Стоимость запасов по себестоимости",
        (Valuation, Th) => "มูลค่าสต็อกตามราคาทุน",
        (Expiry, En) => "Expiry report",
        (Expiry, Ru) => "Отчёт по срокам годности",
        (Expiry, Th) => "รายงานวันหมดอายุ",
        (Movements, En) => "Stock movements",
        (Movements, Ru) => "Движение запасов",
        (Movements, Th) => "ความเคลื่อนไหวของสต็อก",
    }
}

fn column(c: ReportColumn, lang: Language) -> &'static str {
    use Language::*;
    use ReportColumn::*;
    match (c, lang) {
        (Item, En) => "Item",
        (Item, Ru) => "Наименование",
        (Item, Th) => "รายการ",
        (Lot, En) => "Lot",
        (Lot, Ru) => "Серия",
        (Lot, Th) => "เลขที่ผลิต",
        (Expiry, En) => "Expiry",
        (Expiry, Ru) => "Годен до",
        (Expiry, Th) => "วันหมดอายุ",
        (OnHand, En) => "On hand",
        (OnHand, Ru) => "Остаток",
        (OnHand, Th) => "คงเหลือ",
        (UnitCost, En) => "Unit cost",
        (UnitCost, Ru) => "Цена за ед.",
        (UnitCost, Th) => "ทุนต่อหน่วย",
        (Value, En) => "Value",
        (Value, Ru) => "Стоимость",
        (Value, Th) => "มูลค่า",
        (DaysLeft, En) => "Days left",
        (DaysLeft, Ru) => "Осталось дней",
        (DaysLeft, Th) => "เหลือ (วัน)",
        (Date, En) => "Date",
        (Date, Ru) => "Дата",
        (Date, Th) => "วันที่",
        (Move, En) => "Move",
        (Move, Ru) => "Операция",
        (Move, Th) => "รายการเคลื่อนไหว",
        (Quantity, En) => "Quantity",
        (Quantity, Ru) => "Количество",
        (Quantity, Th) => "จำนวน",
        (Balance, En) => "Balance",
        (Balance, Ru) => "Остаток после",
        (Balance, Th) => "คงเหลือหลังรายการ",
        (Reason, En) => "Reason",
        (Reason, Ru) => "Причина",
        (Reason, Th) => "เหตุผล",
        (By, En) => "By",
        (By, Ru) => "Кто",
        (By, Th) => "โดย",
    }
}

fn total_label(lang: Language) -> &'static str {
    match lang {
        Language::En => "Total at cost",
        Language::Ru => "Итого по себестоимости",
        Language::Th => "รวมตามราคาทุน",
    }
}

fn numeric(c: ReportColumn) -> bool {
    use ReportColumn::*;
    matches!(c, OnHand | UnitCost | Value | DaysLeft | Quantity | Balance)
}

/// RFC 4180 CSV with a header row in `lang`, UTF-8 with a byte order mark (so spreadsheet
/// programs read Thai and Cyrillic right).
pub fn csv(report: &Report, lang: Language) -> Vec<u8> {
    fn cell(s: &str) -> String {
        // A leading =, +, - or @ would be a formula in a spreadsheet: quote it as text.
        let s = if s.starts_with(['=', '+', '@'])
            || (s.starts_with('-') && s.parse::<f64>().is_err())
        {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from("\u{feff}");
    let head: Vec<String> = report
        .columns
        .iter()
        .map(|c| cell(column(*c, lang)))
        .collect();
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for row in &report.rows {
        let r: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&r.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

pub fn pdf(
    conn: &Connection,
    q: &ReportQuery,
    lang: Option<Language>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let report = build(conn, q, today)?;
    if report.rows.len() > 20_000 {
        return Err(crate::Error::invalid(Field::Lines, Reason::TooLong));
    }
    let digits = settings::minor_digits(&clinic.currency).unwrap_or(2);
    let mut blocks = vec![
        clinic_header(conn)?,
        Block::Title(title(q.kind, lang).to_string()),
        Block::Paragraph(printed_at(now, clinic.tz())),
        Block::Table {
            columns: report
                .columns
                .iter()
                .map(|c| {
                    let (w, a) = match (c, numeric(*c)) {
                        (ReportColumn::Item, _) => (3.0, Align::Left),
                        (ReportColumn::Reason, _) => (2.5, Align::Left),
                        (_, true) => (1.3, Align::Right),
                        _ => (1.5, Align::Left),
                    };
                    Column::new(column(*c, lang), w, a)
                })
                .collect(),
            rows: report.rows.clone(),
        },
    ];
    if let Some(total) = report.total {
        blocks.push(Block::Totals(vec![(
            total_label(lang).to_string(),
            format!("{} {}", money(total, digits), clinic.currency),
        )]));
    }
    render(&Document {
        title: title(q.kind, lang).to_string(),
        paper: clinic.paper,
        blocks,
        footer: clinic.name.clone(),
        page_label: page_label(lang).to_string(),
    })
}

/// The file name a saved report gets.
pub fn file_name(kind: ReportKind, extension: &str) -> String {
    format!("{}.{extension}", crate::names::name_of(&kind))
}
