//! The pharmacy: stock items (medications are the formulary's drugs), batches with expiry,
//! the append-only stock ledger (`ledger`), suppliers and purchase orders (`orders`), stock
//! counts, dispensing of signed prescriptions first-expiry-first-out (`dispense`), the
//! dispensing label (`label`), alerts and reports (`reports`).
//!
//! Stock moves only through `ledger::post`, which keeps each batch's `on_hand` equal to the
//! sum of its ledger rows and refuses a move that would make it negative.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

pub mod dispense;
pub mod label;
pub mod ledger;
pub mod orders;
pub mod reports;
pub mod scan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "PharmacyTable")]
pub enum Table {
    StockItems,
    Suppliers,
    Batches,
    StockMoves,
    PurchaseOrders,
    PurchaseOrderLines,
    StockCounts,
    StockCountLines,
    Dispensings,
    PrescriptionFills,
    BillableItems,
}
impl crate::store::Table for Table {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "PharmacyField")]
pub enum Field {
    Item,
    Name,
    GenericName,
    Form,
    Strength,
    Unit,
    Route,
    Barcode,
    ReorderLevel,
    Ingredients,
    Classes,
    Cost,
    Price,
    Batch,
    Lot,
    Expiry,
    Quantity,
    Counted,
    Reason,
    Supplier,
    Phone,
    Email,
    Order,
    OrderLine,
    Note,
    Prescription,
    PrescriptionItem,
    ExpiryWarningDays,
    Code,
    Lines,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "PharmacyError"
)]
pub enum Error {
    #[error("only {on_hand} of {item} (lot {lot}) on hand; {wanted} asked for")]
    InsufficientStock {
        item: String,
        lot: String,
        on_hand: i64,
        wanted: i64,
    },
    #[error("lot {lot} expired on {expiry}")]
    BatchExpired { lot: String, expiry: String },
    #[error("lot {lot} is already recorded with expiry {expiry}")]
    LotExpiryMismatch { lot: String, expiry: String },
    #[error("only {remaining} more can be received on this order line")]
    OverReceipt { remaining: i64 },
    #[error("the order is {status}")]
    OrderClosed { status: String },
    #[error("the prescription is not signed")]
    NotSigned,
    #[error("only {remaining} more of this item can be dispensed")]
    OverDispense { remaining: i64 },
    #[error("{given} is not an equivalent of {prescribed}")]
    NotEquivalent { prescribed: String, given: String },
    #[error("the barcode is already on {item}")]
    BarcodeTaken { item: String },
    #[error("nothing matches the code {code}")]
    NothingScanned { code: String },
    #[error("the formulary already has {name}")]
    DrugExists { name: String },
    #[error("{given} is not the same strength and form as {prescribed}")]
    NotSameStrength { prescribed: String, given: String },
    #[error("the patient is allergic: {subject}")]
    AllergyOnGiven { subject: String },
    #[error("lot {lot} has not expired (it expires on {expiry})")]
    NotExpired { lot: String, expiry: String },
}

impl From<Error> for CrateError {
    fn from(e: Error) -> Self {
        CrateError::domain(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    #[default]
    Medication,
    Consumable,
    Equipment,
}
crate::text_column!(Category);

/// A stocked item with its on-hand stock (the sum over its batches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct StockItem {
    pub id: String,
    /// The formulary drug a medication is (its ingredients and classes drive the checks).
    pub drug_id: Option<String>,
    pub category: Category,
    pub name: String,
    pub generic_name: String,
    pub form: String,
    pub strength: String,
    pub unit: String,
    pub barcode: Option<String>,
    pub reorder_level: i64,
    /// Standard cost and selling price per unit, in minor units of `currency`.
    pub cost: i64,
    pub price: i64,
    pub currency: Option<String>,
    pub active: bool,
    pub on_hand: i64,
    pub ingredients: Vec<String>,
    pub classes: Vec<String>,
}

/// A new item or changes to one (prices are set apart, by `price_set`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct StockItemInput {
    /// Empty for a new item.
    pub id: String,
    pub category: Category,
    pub name: String,
    pub generic_name: String,
    pub form: String,
    pub strength: String,
    pub unit: String,
    /// Medications: how it is given ("oral").
    pub route: String,
    pub barcode: String,
    pub reorder_level: i64,
    /// Medications: snake_case keys the allergy and interaction checks read.
    pub ingredients: Vec<String>,
    pub classes: Vec<String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub active: bool,
}

/// How a batch stands against the expiry setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Shelf {
    Good,
    Expiring,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Batch {
    pub id: String,
    pub item_id: String,
    pub item_name: String,
    pub lot: String,
    /// YYYY-MM-DD, usable through this day.
    pub expiry: String,
    pub cost: i64,
    pub currency: Option<String>,
    pub supplier_id: Option<String>,
    pub supplier_name: Option<String>,
    pub received_on: String,
    pub on_hand: i64,
    pub shelf: Shelf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PharmacySettings {
    /// Batches expiring within this many days are flagged (1..=730).
    pub expiry_warning_days: u32,
}

impl Default for PharmacySettings {
    fn default() -> Self {
        PharmacySettings {
            expiry_warning_days: 90,
        }
    }
}

const SETTINGS_KEY: &str = "pharmacy";

pub fn settings(conn: &Connection) -> Result<PharmacySettings> {
    Ok(crate::settings::get_value(conn, SETTINGS_KEY)?.unwrap_or_default())
}

pub fn save_settings(w: &mut Write<'_>, s: PharmacySettings) -> Result<PharmacySettings> {
    if !(1..=730).contains(&s.expiry_warning_days) {
        return Err(CrateError::invalid_limit(
            Field::ExpiryWarningDays,
            Reason::OutOfRange,
            730,
        ));
    }
    crate::settings::put_value(w, SETTINGS_KEY, &s)?;
    Ok(s)
}

/// The day before which a batch counts as expiring (today + the setting).
pub fn warn_before(conn: &Connection, today: NaiveDate) -> Result<NaiveDate> {
    Ok(today + chrono::Duration::days(settings(conn)?.expiry_warning_days as i64))
}

fn json_list(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    let s: Option<String> = r.get(i)?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

const ITEM: &str =
    "i.id, i.drug_id, i.category, i.name, i.generic_name, i.form, i.strength, i.unit,
    i.barcode, i.reorder_level, i.cost, i.price, i.currency, i.active,
    (SELECT coalesce(sum(b.on_hand), 0) FROM batches b WHERE b.item_id = i.id),
    d.ingredients, d.classes";
const ITEM_FROM: &str = "stock_items i LEFT JOIN drugs d ON d.id = i.drug_id";

fn item_row(r: &Row<'_>) -> rusqlite::Result<StockItem> {
    Ok(StockItem {
        id: r.get(0)?,
        drug_id: r.get(1)?,
        category: r.get(2)?,
        name: r.get(3)?,
        generic_name: r.get(4)?,
        form: r.get(5)?,
        strength: r.get(6)?,
        unit: r.get(7)?,
        barcode: r.get(8)?,
        reorder_level: r.get(9)?,
        cost: r.get(10)?,
        price: r.get(11)?,
        currency: r.get(12)?,
        active: r.get(13)?,
        on_hand: r.get(14)?,
        ingredients: json_list(r, 15)?,
        classes: json_list(r, 16)?,
    })
}

pub fn item(conn: &Connection, id: &str) -> Result<StockItem> {
    conn.prepare_cached(&format!("SELECT {ITEM} FROM {ITEM_FROM} WHERE i.id = ?1"))?
        .query_row([id], item_row)
        .optional()?
        .ok_or(Table::StockItems.not_found())
}

/// The stock item a formulary drug is, if it is stocked.
pub fn item_of_drug(conn: &Connection, drug_id: &str) -> Result<Option<StockItem>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ITEM} FROM {ITEM_FROM} WHERE i.drug_id = ?1"
        ))?
        .query_row([drug_id], item_row)
        .optional()?)
}

/// Items whose name, generic name or barcode contains `text` (all of them when empty),
/// by name, each with its on-hand stock.
pub fn items(conn: &Connection, text: &str, category: Option<Category>) -> Result<Vec<StockItem>> {
    let like = format!("%{}%", text.trim().replace(['%', '_'], ""));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ITEM} FROM {ITEM_FROM}
         WHERE (?1 = '%%' OR i.name LIKE ?1 OR i.generic_name LIKE ?1 OR i.barcode = ?2)
           AND (?3 IS NULL OR i.category = ?3)
         ORDER BY i.name COLLATE NOCASE, i.id"
    ))?;
    let rows = st.query_map(rusqlite::params![like, text.trim(), category], item_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn key_list(field: Field, keys: &[String]) -> Result<String> {
    if keys.len() > 30 {
        return Err(CrateError::invalid_limit(field, Reason::TooLong, 30));
    }
    let mut out = Vec::new();
    for k in keys {
        let k = crate::text::fold(k).replace(' ', "_");
        if k.is_empty() {
            continue;
        }
        if k.len() > 60
            || !k
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(CrateError::invalid(field, Reason::InvalidFormat));
        }
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.len() > 30 {
        return Err(CrateError::invalid_limit(field, Reason::TooLong, 30));
    }
    Ok(serde_json::to_string(&out)?)
}

/// Creates or changes an item. A new medication also becomes a formulary drug, so doctors
/// can prescribe it and the checks know its ingredients and classes.
pub fn save_item(w: &mut Write<'_>, input: &StockItemInput) -> Result<StockItem> {
    let name = crate::validate::required(Field::Name, &input.name, 200)?;
    let generic = crate::validate::optional(Field::GenericName, &input.generic_name, 200)?
        .unwrap_or_else(|| name.clone());
    let form = crate::validate::required(Field::Form, &input.form, 60)?;
    let strength =
        crate::validate::optional(Field::Strength, &input.strength, 60)?.unwrap_or_default();
    let unit = crate::validate::required(Field::Unit, &input.unit, 40)?;
    let route =
        crate::validate::optional(Field::Route, &input.route, 40)?.unwrap_or_else(|| "oral".into());
    let barcode = crate::validate::optional(Field::Barcode, &input.barcode, 64)?;
    if !(0..=10_000_000).contains(&input.reorder_level) {
        return Err(CrateError::invalid(Field::ReorderLevel, Reason::OutOfRange));
    }
    if let Some(code) = &barcode {
        let holder: Option<(String, String)> = w
            .conn()
            .prepare_cached("SELECT id, name FROM stock_items WHERE barcode = ?1")?
            .query_row([code], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, item)) = holder {
            if id != input.id {
                return Err(Error::BarcodeTaken { item }.into());
            }
        }
    }
    let ingredients = key_list(Field::Ingredients, &input.ingredients)?;
    let classes = key_list(Field::Classes, &input.classes)?;
    let medication = input.category == Category::Medication;
    if medication && ingredients == "[]" {
        return Err(CrateError::invalid(Field::Ingredients, Reason::Required));
    }
    let existing = if input.id.is_empty() {
        None
    } else {
        Some(item(w.conn(), &input.id)?)
    };
    if let Some(old) = &existing {
        if old.category != input.category && (old.category == Category::Medication || medication) {
            // A medication stays the formulary drug it is; other items can't become one.
            return Err(CrateError::invalid(Field::Item, Reason::NotAllowed));
        }
    }
    let drug_id = match (medication, existing.as_ref()) {
        (false, _) => None,
        (true, Some(old)) if old.drug_id.is_some() => {
            let d = old.drug_id.clone().unwrap_or_default();
            // What the prescribing checks read (the generic name, ingredients and classes) is
            // fixed once a drug exists: signed prescriptions were checked against it. A wrong
            // one is retired (inactive) and the item made anew.
            let same = |a: &[String], b: &str| {
                let mut a = a.to_vec();
                let mut b: Vec<String> = serde_json::from_str(b).unwrap_or_default();
                a.sort();
                b.sort();
                a == b
            };
            if !same(&old.ingredients, &ingredients) {
                return Err(CrateError::invalid(Field::Ingredients, Reason::NotAllowed));
            }
            if !same(&old.classes, &classes) {
                return Err(CrateError::invalid(Field::Classes, Reason::NotAllowed));
            }
            if old.generic_name != generic {
                return Err(CrateError::invalid(Field::GenericName, Reason::NotAllowed));
            }
            w.update_row(
                crate::clinical::Table::Drugs,
                &d,
                // Not `active`: retiring a stock item doesn't take its drug out of the
                // prescribing checks (patients may still take it).
                &[("form", &form), ("strength", &strength), ("route", &route)],
            )?;
            Some(d)
        }
        (true, _) => {
            // A new drug is named as the item (a brand), so it never shadows a formulary
            // generic of the same name, and it takes on the classes of every drug with the same
            // ingredients, so the allergy and duplicate checks still catch it.
            let taken: Option<String> = w
                .conn()
                .prepare_cached("SELECT name FROM drugs WHERE name = ?1 COLLATE NOCASE")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            if let Some(existing) = taken {
                return Err(Error::DrugExists { name: existing }.into());
            }
            let classes = {
                let mut all: Vec<String> = serde_json::from_str(&classes)?;
                let set = |json: &str| {
                    let mut v: Vec<String> = serde_json::from_str(json).unwrap_or_default();
                    v.sort();
                    v
                };
                let mine = set(&ingredients);
                let drugs: Vec<(String, String)> = w
                    .conn()
                    .prepare_cached("SELECT ingredients, classes FROM drugs")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (ingr, cls) in drugs {
                    if set(&ingr) == mine {
                        for k in set(&cls) {
                            if !all.contains(&k) {
                                all.push(k);
                            }
                        }
                    }
                }
                serde_json::to_string(&all)?
            };
            let d = new_id();
            w.insert_row(
                crate::clinical::Table::Drugs,
                &d,
                &[
                    ("name", &name),
                    ("form", &form),
                    ("strength", &strength),
                    ("route", &route),
                    ("ingredients", &ingredients),
                    ("classes", &classes),
                    ("tags", &"[]"),
                    ("active", &input.active),
                ],
            )?;
            Some(d)
        }
    };
    let cols: [(&str, &dyn rusqlite::ToSql); 10] = [
        ("drug_id", &drug_id),
        ("category", &input.category),
        ("name", &name),
        ("generic_name", &generic),
        ("form", &form),
        ("strength", &strength),
        ("unit", &unit),
        ("barcode", &barcode),
        ("reorder_level", &input.reorder_level),
        ("active", &input.active),
    ];
    let id = match existing {
        Some(old) => {
            w.update_row(Table::StockItems, &old.id, &cols)?;
            old.id
        }
        None => {
            let id = new_id();
            w.insert_row(Table::StockItems, &id, &cols)?;
            id
        }
    };
    item(w.conn(), &id)
}

/// Sets an item's standard cost and selling price, in minor units of the clinic's currency
/// (a permission of its own: pharmacists don't change prices).
pub fn set_price(w: &mut Write<'_>, item_id: &str, cost: i64, price: i64) -> Result<StockItem> {
    item(w.conn(), item_id)?;
    for (field, v) in [(Field::Cost, cost), (Field::Price, price)] {
        if !(0..=crate::validate::MAX_AMOUNT).contains(&v) {
            return Err(CrateError::invalid(field, Reason::OutOfRange));
        }
    }
    let currency = crate::settings::clinic(w.conn())?.currency;
    w.update_row(
        Table::StockItems,
        item_id,
        &[("cost", &cost), ("price", &price), ("currency", &currency)],
    )?;
    item(w.conn(), item_id)
}

pub fn suppliers(conn: &Connection) -> Result<Vec<Supplier>> {
    let mut st = conn.prepare_cached(
        "SELECT id, name, phone, email, active FROM suppliers ORDER BY name COLLATE NOCASE",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Supplier {
            id: r.get(0)?,
            name: r.get(1)?,
            phone: r.get(2)?,
            email: r.get(3)?,
            active: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn save_supplier(w: &mut Write<'_>, s: &Supplier) -> Result<Supplier> {
    let name = crate::validate::required(Field::Supplier, &s.name, 200)?;
    let phone = crate::validate::phone(Field::Phone, &s.phone)?.unwrap_or_default();
    let email = crate::validate::email(Field::Email, &s.email)?.unwrap_or_default();
    let taken: Option<String> = w
        .conn()
        .prepare_cached("SELECT id FROM suppliers WHERE name = ?1 COLLATE NOCASE")?
        .query_row([&name], |r| r.get(0))
        .optional()?;
    if taken.is_some_and(|t| t != s.id) {
        return Err(CrateError::invalid(Field::Supplier, Reason::Overlap));
    }
    let cols: [(&str, &dyn rusqlite::ToSql); 4] = [
        ("name", &name),
        ("phone", &phone),
        ("email", &email),
        ("active", &s.active),
    ];
    let id = if s.id.is_empty() {
        let id = new_id();
        w.insert_row(Table::Suppliers, &id, &cols)?;
        id
    } else {
        w.update_row(Table::Suppliers, &s.id, &cols)?;
        s.id.clone()
    };
    Ok(Supplier {
        id,
        name,
        phone,
        email,
        active: s.active,
    })
}

const BATCH: &str = "b.id, b.item_id, i.name, b.lot, b.expiry, b.cost, b.currency, b.supplier_id,
    s.name, b.received_on, b.on_hand";
const BATCH_FROM: &str = "batches b JOIN stock_items i ON i.id = b.item_id
    LEFT JOIN suppliers s ON s.id = b.supplier_id";

/// Reads batch rows; `today` and `warn_before` (YYYY-MM-DD) place each on the shelf.
pub(crate) fn batch_reader(
    today: NaiveDate,
    warn_before: NaiveDate,
) -> impl Fn(&Row<'_>) -> rusqlite::Result<Batch> {
    let (today, warn) = (today.to_string(), warn_before.to_string());
    move |r| {
        let expiry: String = r.get(4)?;
        let shelf = if expiry < today {
            Shelf::Expired
        } else if expiry < warn {
            Shelf::Expiring
        } else {
            Shelf::Good
        };
        Ok(Batch {
            id: r.get(0)?,
            item_id: r.get(1)?,
            item_name: r.get(2)?,
            lot: r.get(3)?,
            expiry,
            cost: r.get(5)?,
            currency: r.get(6)?,
            supplier_id: r.get(7)?,
            supplier_name: r.get(8)?,
            received_on: r.get(9)?,
            on_hand: r.get(10)?,
            shelf,
        })
    }
}

pub fn batch(conn: &Connection, id: &str, today: NaiveDate) -> Result<Batch> {
    let warn = warn_before(conn, today)?;
    conn.prepare_cached(&format!("SELECT {BATCH} FROM {BATCH_FROM} WHERE b.id = ?1"))?
        .query_row([id], batch_reader(today, warn))
        .optional()?
        .ok_or(Table::Batches.not_found())
}

/// An item's batches, first to expire first; emptied ones only when `all`.
pub fn batches(
    conn: &Connection,
    item_id: &str,
    all: bool,
    today: NaiveDate,
) -> Result<Vec<Batch>> {
    let warn = warn_before(conn, today)?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {BATCH} FROM {BATCH_FROM} WHERE b.item_id = ?1 AND (?2 OR b.on_hand > 0)
         ORDER BY b.expiry, b.received_on, b.id"
    ))?;
    let rows = st.query_map(rusqlite::params![item_id, all], batch_reader(today, warn))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A delivery: a batch (new, or more of a lot already here with the same expiry) and its
/// `received` ledger row, against a purchase order line when one is named.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct ReceiveInput {
    pub item_id: String,
    /// The purchase order line delivered (its item and supplier then apply).
    pub order_line_id: Option<String>,
    pub supplier_id: Option<String>,
    pub lot: String,
    /// YYYY-MM-DD.
    pub expiry: String,
    pub quantity: i64,
    /// Per unit, in minor units of the clinic's currency.
    pub cost: i64,
}

pub fn receive(w: &mut Write<'_>, input: &ReceiveInput, today: NaiveDate) -> Result<Batch> {
    let it = item(w.conn(), &input.item_id)?;
    let lot = crate::validate::required(Field::Lot, &input.lot, 60)?;
    let expiry = NaiveDate::parse_from_str(input.expiry.trim(), "%Y-%m-%d")
        .map_err(|_| CrateError::invalid(Field::Expiry, Reason::InvalidFormat))?;
    if expiry < today {
        return Err(CrateError::invalid(Field::Expiry, Reason::InPast));
    }
    if !(1..=10_000_000).contains(&input.quantity) {
        return Err(CrateError::invalid(Field::Quantity, Reason::OutOfRange));
    }
    if !(0..=crate::validate::MAX_AMOUNT).contains(&input.cost) {
        return Err(CrateError::invalid(Field::Cost, Reason::OutOfRange));
    }
    let mut supplier = input.supplier_id.clone().filter(|s| !s.is_empty());
    let line = match &input.order_line_id {
        Some(line_id) => {
            let (line, order) =
                orders::line_for_receipt(w.conn(), line_id, &it.id, input.quantity)?;
            supplier = Some(order.supplier_id.clone());
            Some(line)
        }
        None => None,
    };
    if let Some(s) = &supplier {
        w.conn()
            .prepare_cached("SELECT 1 FROM suppliers WHERE id = ?1")?
            .query_row([s], |_| Ok(()))
            .optional()?
            .ok_or(CrateError::invalid(Field::Supplier, Reason::Unknown))?;
    }
    let currency = crate::settings::clinic(w.conn())?.currency;
    let found: Option<(String, String)> = w
        .conn()
        .prepare_cached("SELECT id, expiry FROM batches WHERE item_id = ?1 AND lot = ?2")?
        .query_row([&it.id, &lot], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let expiry = expiry.to_string();
    let batch_id = match found {
        Some((id, stored)) if stored == expiry => id,
        Some((_, stored)) => {
            return Err(Error::LotExpiryMismatch {
                lot,
                expiry: stored,
            }
            .into())
        }
        None => {
            let id = new_id();
            w.insert_row(
                Table::Batches,
                &id,
                &[
                    ("item_id", &it.id),
                    ("lot", &lot),
                    ("expiry", &expiry),
                    ("cost", &input.cost),
                    ("currency", &currency),
                    ("supplier_id", &supplier),
                    ("received_on", &today.to_string()),
                    ("on_hand", &0i64),
                ],
            )?;
            id
        }
    };
    let reference = line
        .as_ref()
        .map(|l| (Table::PurchaseOrderLines, l.id.as_str()));
    ledger::post(
        w,
        &batch_id,
        ledger::MoveKind::Received,
        input.quantity,
        "",
        reference,
    )?;
    if let Some(l) = &line {
        orders::record_receipt(w, l, input.quantity)?;
    }
    batch(w.conn(), &batch_id, today)
}

/// Low stock, expiring and expired batches still on the shelf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
pub struct AlertCounts {
    pub low_stock: u32,
    pub expiring: u32,
    pub expired: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Alerts {
    pub counts: AlertCounts,
    pub expiry_warning_days: u32,
    /// Active items at or below their reorder level (those with a reorder level).
    pub low_stock: Vec<StockItem>,
    pub expiring: Vec<Batch>,
    pub expired: Vec<Batch>,
}

const LOW_STOCK: &str = "FROM stock_items i
    WHERE i.active = 1 AND i.reorder_level > 0
      AND (SELECT coalesce(sum(b.on_hand), 0) FROM batches b WHERE b.item_id = i.id) <= i.reorder_level";

pub fn alert_counts(conn: &Connection, today: NaiveDate) -> Result<AlertCounts> {
    let warn = warn_before(conn, today)?.to_string();
    let today = today.to_string();
    let low: u32 = conn
        .prepare_cached(&format!("SELECT count(*) {LOW_STOCK}"))?
        .query_row([], |r| r.get(0))?;
    let (expired, expiring): (u32, u32) = conn
        .prepare_cached(
            "SELECT coalesce(sum(expiry < ?1), 0), coalesce(sum(expiry >= ?1), 0)
             FROM batches WHERE on_hand > 0 AND expiry < ?2",
        )?
        .query_row([&today, &warn], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(AlertCounts {
        low_stock: low,
        expiring,
        expired,
    })
}

pub fn alerts(conn: &Connection, today: NaiveDate) -> Result<Alerts> {
    let counts = alert_counts(conn, today)?;
    let warn = warn_before(conn, today)?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ITEM} FROM {ITEM_FROM} WHERE i.id IN (SELECT i.id {LOW_STOCK})
         ORDER BY i.name COLLATE NOCASE LIMIT 500"
    ))?;
    let low_stock = st
        .query_map([], item_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare_cached(&format!(
        "SELECT {BATCH} FROM {BATCH_FROM} WHERE b.on_hand > 0 AND b.expiry < ?1
         ORDER BY b.expiry, i.name LIMIT 1000"
    ))?;
    let (mut expiring, mut expired) = (Vec::new(), Vec::new());
    for b in st.query_map([warn.to_string()], batch_reader(today, warn))? {
        let b = b?;
        match b.shelf {
            Shelf::Expired => expired.push(b),
            _ => expiring.push(b),
        }
    }
    Ok(Alerts {
        counts,
        expiry_warning_days: settings(conn)?.expiry_warning_days,
        low_stock,
        expiring,
        expired,
    })
}
