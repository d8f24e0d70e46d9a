//! What a barcode scanner typed: an item's barcode, a lot number, or a GS1 element string
//! (a medicine pack's DataMatrix: GTIN, expiry, lot), matched to an item and a batch.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Batch, Error, StockItem};
use crate::error::Result;

/// The parts of a GS1 element string a pharmacy uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Gs1 {
    pub gtin: Option<String>,
    /// YYYY-MM-DD (a day of 00 is the month's last day).
    pub expiry: Option<String>,
    pub lot: Option<String>,
    pub serial: Option<String>,
}

const GS: char = '\u{1d}';

/// Reads "(01)…(17)…(10)…" or the raw form "01…17…10…" with GS between variable fields.
/// `None` when the text is not one.
pub fn parse_gs1(code: &str) -> Option<Gs1> {
    let plain: String = code
        .trim()
        .trim_start_matches("]d2")
        .trim_start_matches("]C1")
        .chars()
        .map(|c| if c == '(' { GS } else { c })
        .filter(|c| *c != ')')
        .collect();
    let mut s = plain.trim_start_matches(GS);
    let mut out = Gs1::default();
    let mut any = false;
    while !s.is_empty() {
        let ai = s.get(..2)?;
        let rest = &s[2..];
        let (value, tail) = match ai {
            "01" | "02" => (rest.get(..14)?, &rest[14..]),
            "11" | "15" | "17" => (rest.get(..6)?, &rest[6..]),
            "10" | "21" => {
                let end = rest.find(GS).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
            _ => return None,
        };
        match ai {
            "01" | "02" if value.chars().all(|c| c.is_ascii_digit()) => {
                out.gtin = Some(value.to_string())
            }
            "17" => out.expiry = Some(gs1_date(value)?),
            "10" if !value.is_empty() => out.lot = Some(value.to_string()),
            "21" => out.serial = Some(value.to_string()),
            "11" | "15" => {}
            _ => return None,
        }
        any = true;
        s = tail.trim_start_matches(GS);
    }
    (any && out.gtin.is_some()).then_some(out)
}

fn gs1_date(v: &str) -> Option<String> {
    let (yy, mm, dd): (i32, u32, u32) = (
        v.get(0..2)?.parse().ok()?,
        v.get(2..4)?.parse().ok()?,
        v.get(4..6)?.parse().ok()?,
    );
    let year = 2000 + yy;
    if !(1..=12).contains(&mm) {
        return None;
    }
    let day = if dd == 0 {
        let next = if mm == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, mm + 1, 1)?
        };
        next.pred_opt()?
    } else {
        NaiveDate::from_ymd_opt(year, mm, dd)?
    };
    Some(day.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Scanned {
    pub code: String,
    pub gs1: Option<Gs1>,
    pub item: Option<StockItem>,
    /// The batch of that item with the scanned lot, when there is one.
    pub batch: Option<Batch>,
}

/// Finds what `code` names. A GTIN matches an item's barcode with or without its leading
/// zero (EAN-13 inside GTIN-14); a bare lot number finds its batch (the fullest, if two
/// items share a lot).
pub fn scan(conn: &Connection, code: &str, today: NaiveDate) -> Result<Scanned> {
    let code = code.trim().to_string();
    let gs1 = parse_gs1(&code);
    let by_barcode = |c: &str| -> Result<Option<String>> {
        Ok(conn
            .prepare_cached("SELECT id FROM stock_items WHERE barcode = ?1")?
            .query_row([c], |r| r.get(0))
            .optional()?)
    };
    let mut item_id = None;
    let mut lot = None;
    if let Some(g) = &gs1 {
        let gtin = g.gtin.clone().unwrap_or_default();
        item_id = by_barcode(&gtin)?;
        // A GTIN-14 holds an EAN-13 behind one leading zero.
        if item_id.is_none() {
            if let Some(ean) = gtin.strip_prefix('0') {
                item_id = by_barcode(ean)?;
            }
        }
        lot = g.lot.clone();
    } else if !code.is_empty() {
        item_id = by_barcode(&code)?;
        if item_id.is_none() {
            let found: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT item_id, lot FROM batches WHERE lot = ?1 ORDER BY on_hand DESC LIMIT 1",
                )?
                .query_row([&code], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((i, l)) = found {
                item_id = Some(i);
                lot = Some(l);
            }
        }
    }
    let item = item_id.map(|i| super::item(conn, &i)).transpose()?;
    let batch = match (&item, &lot) {
        (Some(it), Some(l)) => {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM batches WHERE item_id = ?1 AND lot = ?2")?
                .query_row([&it.id, l], |r| r.get(0))
                .optional()?;
            id.map(|id| super::batch(conn, &id, today)).transpose()?
        }
        _ => None,
    };
    if item.is_none() && gs1.is_none() {
        return Err(Error::NothingScanned { code }.into());
    }
    Ok(Scanned {
        code,
        gs1,
        item,
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_element_strings_give_gtin_expiry_and_lot() {
        let g = parse_gs1("(01)08850123456789(17)270531(10)AB12C").unwrap();
        assert_eq!(g.gtin.as_deref(), Some("08850123456789"));
        assert_eq!(g.expiry.as_deref(), Some("2027-05-31"));
        assert_eq!(g.lot.as_deref(), Some("AB12C"));
        // Raw, with GS after the variable-length lot, and a day of 00.
        let g = parse_gs1("010885012345678910LOT7\u{1d}17280200").unwrap();
        assert_eq!(g.lot.as_deref(), Some("LOT7"));
        assert_eq!(g.expiry.as_deref(), Some("2028-02-29"));
        assert_eq!(parse_gs1("8850123456789"), None);
        assert_eq!(parse_gs1("LOT-2024-7"), None);
        assert_eq!(parse_gs1("(17)271301"), None);
        assert_eq!(parse_gs1("(01)08850123456789(17)270000"), None);
    }
}
