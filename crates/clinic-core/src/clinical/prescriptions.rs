//! Prescriptions: items from the formulary (or free text), the checks run before signing
//! (allergy, interaction, duplicate therapy), overrides with a reason, signing and renewal.
//!
//! The checks read each drug's ingredients, classes and tags (`drugs`, seeded by V9) and the
//! interaction table `assets/formulary/interactions.tsv`, embedded and read once.

use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::patients::{Allergy, Severity as AllergySeverity};
use crate::store::{Table as _, Write};
use crate::text;
use crate::Error as CrateError;

const INTERACTIONS_TSV: &str = include_str!("../../../../assets/formulary/interactions.tsv");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Drug {
    pub id: String,
    pub name: String,
    pub form: String,
    pub strength: String,
    pub route: String,
    pub ingredients: Vec<String>,
    pub classes: Vec<String>,
    pub tags: Vec<String>,
}

const DRUG: &str = "id, name, form, strength, route, ingredients, classes, tags";

fn drug_row(r: &Row<'_>) -> rusqlite::Result<Drug> {
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    };
    Ok(Drug {
        id: r.get(0)?,
        name: r.get(1)?,
        form: r.get(2)?,
        strength: r.get(3)?,
        route: r.get(4)?,
        ingredients: list(5)?,
        classes: list(6)?,
        tags: list(7)?,
    })
}

pub fn drug(conn: &Connection, id: &str) -> Result<Drug> {
    conn.prepare_cached(&format!("SELECT {DRUG} FROM drugs WHERE id = ?1"))?
        .query_row([id], drug_row)
        .optional()?
        .ok_or(Table::Drugs.not_found())
}

fn all_drugs(conn: &Connection) -> Result<Vec<Drug>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DRUG} FROM drugs WHERE active = 1 ORDER BY name, strength"
    ))?;
    let rows = st.query_map([], drug_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Formulary drugs whose name (or an ingredient, or a class) has a word starting with each
/// typed word.
pub fn drug_search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<Drug>> {
    let words = text::words(query);
    let mut out = vec![];
    for d in all_drugs(conn)? {
        let mut hay = text::words(&d.name);
        for k in d.ingredients.iter().chain(&d.classes) {
            hay.extend(text::words(&k.replace('_', " ")));
        }
        if words
            .iter()
            .all(|w| hay.iter().any(|h| h.starts_with(w.as_str())))
        {
            out.push(d);
            if out.len() == limit.clamp(1, 50) {
                break;
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum RxStatus {
    #[default]
    Draft,
    Signed,
    Cancelled,
}

crate::text_column!(RxStatus);

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct ItemInput {
    pub prescription_id: String,
    /// A formulary drug; null for a free-text item named by `name`.
    pub drug_id: Option<String>,
    /// Free text only (a formulary item takes the drug's name).
    pub name: String,
    /// Empty: the drug's strength.
    pub strength: String,
    /// "1 capsule", "5 ml".
    pub dose: String,
    /// Empty: the drug's route.
    pub route: String,
    /// "3 times a day".
    pub frequency: String,
    pub duration_days: u32,
    pub quantity: u32,
    /// "capsules".
    pub unit: String,
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Item {
    pub id: String,
    pub drug_id: Option<String>,
    pub name: String,
    pub strength: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub duration_days: u32,
    pub quantity: u32,
    pub unit: String,
    pub instructions: String,
}

impl Item {
    /// How to take it, as printed: dose, route, frequency and instructions, those given.
    pub fn directions(&self) -> String {
        [
            self.dose.as_str(),
            self.route.as_str(),
            self.frequency.as_str(),
            self.instructions.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Allergy,
    Interaction,
    Duplicate,
}

crate::text_column!(AlertKind);

/// How serious a warning is, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Contraindicated,
    Major,
    Moderate,
}

crate::text_column!(AlertSeverity);

/// What an interaction does, as the doctor is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    SerotoninSyndrome,
    HypertensiveCrisis,
    Myopathy,
    RaisedLevels,
    QtProlongation,
    Hypotension,
    MarrowSuppression,
    Bleeding,
    Hyperkalemia,
    RespiratoryDepression,
    ReducedEffect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Alert {
    /// Stable while the items it is about stay: what an acknowledgement names.
    pub key: String,
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    /// The drugs (or drug and allergy) it is about, as shown: "Warfarin / Ibuprofen".
    pub subject: String,
    /// The class both drugs share (duplicates) or the allergy's substance.
    pub detail: String,
    pub effect: Option<Effect>,
    /// Where the interaction is documented.
    pub source: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct Acknowledgement {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Override {
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    pub subject: String,
    pub reason: String,
    pub by: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Prescription {
    pub id: String,
    pub encounter_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub doctor_id: String,
    pub doctor_name: String,
    pub doctor_licence: String,
    pub status: RxStatus,
    pub created_at: String,
    pub signed_at: Option<String>,
    pub renewed_from: Option<String>,
    pub items: Vec<Item>,
    /// The warnings for the items as they are (a draft), empty once signed.
    pub alerts: Vec<Alert>,
    /// The warnings acknowledged at signing.
    pub overrides: Vec<Override>,
}

struct Interaction {
    a: String,
    b: String,
    severity: AlertSeverity,
    effect: Effect,
    source: String,
}

fn interactions() -> &'static [Interaction] {
    static TABLE: OnceLock<Vec<Interaction>> = OnceLock::new();
    TABLE.get_or_init(|| {
        INTERACTIONS_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let name = |s: &str| serde_json::Value::String(s.into());
                Interaction {
                    a: f[0].into(),
                    b: f[1].into(),
                    severity: serde_json::from_value(name(f[2]))
                        .expect("a severity in interactions.tsv"),
                    effect: serde_json::from_value(name(f[3]))
                        .expect("an effect in interactions.tsv"),
                    source: f[4].into(),
                }
            })
            .collect()
    })
}

/// What the checks know of one drug being prescribed or already taken.
struct Facts {
    label: String,
    /// Folded name, ingredients, classes and tags.
    keys: Vec<String>,
    classes: Vec<String>,
    /// Already taken (from the chart's current medications), not on this prescription.
    current: bool,
}

impl Facts {
    fn of(d: &Drug, label: String, current: bool) -> Facts {
        let mut keys = vec![text::words(&d.name).join(" ")];
        keys.extend(
            d.ingredients
                .iter()
                .chain(&d.classes)
                .chain(&d.tags)
                .cloned(),
        );
        Facts {
            label,
            keys,
            classes: d.classes.clone(),
            current,
        }
    }
    fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// "penicillins" and "penicillin" name the same thing; "sulfa" names "sulfonamides".
fn allergy_matches(substance: &str, f: &Facts) -> bool {
    let s = text::words(substance).join(" ");
    if s.len() < 3 {
        return false;
    }
    let singular = |k: &str| k.strip_suffix('s').unwrap_or(k).to_string();
    f.keys.iter().any(|k| {
        let k = k.replace('_', " ");
        k == s || k.starts_with(&s) || singular(&k) == singular(&s) || s.starts_with(&singular(&k))
    })
}

/// The warnings for `items` given the patient's allergies and current medications.
pub fn check(
    conn: &Connection,
    items: &[Item],
    allergies: &[Allergy],
    current_medications: &str,
) -> Result<Vec<Alert>> {
    let formulary = all_drugs(conn)?;
    let by_name = |name: &str| {
        let n = text::words(name).join(" ");
        formulary
            .iter()
            .find(|d| text::words(&d.name).join(" ") == n)
    };
    let mut facts: Vec<Facts> = vec![];
    for it in items {
        let drug = match &it.drug_id {
            Some(id) => formulary.iter().find(|d| &d.id == id),
            None => by_name(&it.name),
        };
        facts.push(match drug {
            Some(d) => Facts::of(d, it.name.clone(), false),
            None => Facts {
                label: it.name.clone(),
                keys: vec![text::words(&it.name).join(" ")],
                classes: vec![],
                current: false,
            },
        });
    }
    // Drugs named in the chart's current medications.
    let taken = text::words(current_medications).join(" ");
    for d in &formulary {
        let name = text::words(&d.name).join(" ");
        let named = format!(" {taken} ").contains(&format!(" {name} "));
        if named && !facts.iter().any(|f| f.keys[0] == name) {
            facts.push(Facts::of(d, d.name.clone(), true));
        }
    }
    let mut alerts: Vec<Alert> = vec![];
    let pair = |a: String, b: String| {
        let mut names = [a, b];
        names.sort();
        names.join(" / ")
    };
    let current_mark = |f: &Facts| {
        if f.current {
            format!("{} (current)", f.label)
        } else {
            f.label.clone()
        }
    };
    for f in facts.iter().filter(|f| !f.current) {
        for a in allergies {
            if allergy_matches(&a.substance, f) {
                alerts.push(Alert {
                    key: format!(
                        "allergy:{}:{}",
                        f.keys[0],
                        text::words(&a.substance).join(" ")
                    ),
                    kind: AlertKind::Allergy,
                    severity: if a.severity == AllergySeverity::Severe {
                        AlertSeverity::Contraindicated
                    } else {
                        AlertSeverity::Major
                    },
                    subject: format!("{} / {}", f.label, a.substance),
                    detail: a.substance.clone(),
                    effect: None,
                    source: String::new(),
                });
            }
        }
    }
    for (i, x) in facts.iter().enumerate() {
        for y in &facts[i + 1..] {
            if x.current && y.current {
                continue;
            }
            let mut keys = [x.keys[0].clone(), y.keys[0].clone()];
            keys.sort();
            for row in interactions() {
                if (x.has(&row.a) && y.has(&row.b)) || (x.has(&row.b) && y.has(&row.a)) {
                    alerts.push(Alert {
                        key: format!("interaction:{}:{}:{}:{}", keys[0], keys[1], row.a, row.b),
                        kind: AlertKind::Interaction,
                        severity: row.severity,
                        subject: pair(current_mark(x), current_mark(y)),
                        detail: format!("{} + {}", row.a, row.b),
                        effect: Some(row.effect),
                        source: row.source.clone(),
                    });
                }
            }
            if let Some(class) = x.classes.iter().find(|c| y.classes.contains(c)) {
                alerts.push(Alert {
                    key: format!("duplicate:{}:{}:{class}", keys[0], keys[1]),
                    kind: AlertKind::Duplicate,
                    severity: AlertSeverity::Moderate,
                    subject: pair(current_mark(x), current_mark(y)),
                    detail: class.clone(),
                    effect: None,
                    source: String::new(),
                });
            }
        }
    }
    alerts.sort_by(|a, b| (a.severity, a.kind, &a.key).cmp(&(b.severity, b.kind, &b.key)));
    alerts.dedup_by(|a, b| a.key == b.key);
    Ok(alerts)
}

const RX: &str = "r.id, r.encounter_id, r.patient_id, p.given_name || ' ' || p.family_name, r.doctor_id, d.full_name,
                  d.licence_number, r.status, r.created_at, r.signed_at, r.renewed_from";
const RX_FROM: &str =
    "prescriptions r JOIN patients p ON p.id = r.patient_id JOIN doctors d ON d.id = r.doctor_id";

fn items(conn: &Connection, id: &str) -> Result<Vec<Item>> {
    let mut st = conn.prepare_cached(
        "SELECT id, drug_id, name, strength, dose, route, frequency, duration_days, quantity, unit, instructions
         FROM prescription_items WHERE prescription_id = ?1 ORDER BY position, rowid",
    )?;
    let rows = st.query_map([id], |r| {
        Ok(Item {
            id: r.get(0)?,
            drug_id: r.get(1)?,
            name: r.get(2)?,
            strength: r.get(3)?,
            dose: r.get(4)?,
            route: r.get(5)?,
            frequency: r.get(6)?,
            duration_days: r.get(7)?,
            quantity: r.get(8)?,
            unit: r.get(9)?,
            instructions: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn overrides(conn: &Connection, id: &str) -> Result<Vec<Override>> {
    let mut st = conn.prepare_cached(
        "SELECT o.kind, o.severity, o.subject, o.reason, coalesce(s.full_name, o.created_by), o.created_at
         FROM prescription_overrides o LEFT JOIN staff s ON s.id = o.created_by
         WHERE o.prescription_id = ?1 ORDER BY o.rowid",
    )?;
    let rows = st.query_map([id], |r| {
        Ok(Override {
            kind: r.get(0)?,
            severity: r.get(1)?,
            subject: r.get(2)?,
            reason: r.get(3)?,
            by: r.get(4)?,
            at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The prescription, with its warnings recomputed while it is a draft.
pub fn get(conn: &Connection, id: &str) -> Result<Prescription> {
    let mut rx = conn
        .prepare_cached(&format!("SELECT {RX} FROM {RX_FROM} WHERE r.id = ?1"))?
        .query_row([id], |r| {
            Ok(Prescription {
                id: r.get(0)?,
                encounter_id: r.get(1)?,
                patient_id: r.get(2)?,
                patient_name: r.get(3)?,
                doctor_id: r.get(4)?,
                doctor_name: r.get(5)?,
                doctor_licence: r.get(6)?,
                status: r.get(7)?,
                created_at: r.get(8)?,
                signed_at: r.get(9)?,
                renewed_from: r.get(10)?,
                items: vec![],
                alerts: vec![],
                overrides: vec![],
            })
        })
        .optional()?
        .ok_or(Table::Prescriptions.not_found())?;
    rx.items = items(conn, id)?;
    rx.overrides = overrides(conn, id)?;
    if rx.status == RxStatus::Draft {
        let p = crate::patients::get(conn, &rx.patient_id)?;
        rx.alerts = check(
            conn,
            &rx.items,
            &p.allergies,
            p.current_medications.as_deref().unwrap_or(""),
        )?;
    }
    Ok(rx)
}

/// The encounter's draft prescription, started if there is none.
pub fn open(w: &mut Write<'_>, encounter: &super::Encounter) -> Result<Prescription> {
    let existing: Option<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM prescriptions WHERE encounter_id = ?1 AND status = 'draft' ORDER BY rowid LIMIT 1",
        )?
        .query_row([&encounter.id], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return get(w.conn(), &id);
    }
    let id = new_id();
    w.insert_row(
        Table::Prescriptions,
        &id,
        &[
            ("encounter_id", &encounter.id),
            ("patient_id", &encounter.patient_id),
            ("doctor_id", &encounter.doctor_id),
            ("status", &RxStatus::Draft),
        ],
    )?;
    get(w.conn(), &id)
}

/// The draft prescription an item or a signature is for; refused once signed.
pub fn draft(conn: &Connection, id: &str) -> Result<Prescription> {
    let rx = get(conn, id)?;
    if rx.status != RxStatus::Draft {
        return Err(Error::PrescriptionSigned.into());
    }
    Ok(rx)
}

pub fn add_item(w: &mut Write<'_>, input: &ItemInput) -> Result<Prescription> {
    use crate::validate::{optional, required};
    let rx = draft(w.conn(), &input.prescription_id)?;
    let drug = input
        .drug_id
        .as_deref()
        .map(|id| drug(w.conn(), id))
        .transpose()?;
    let name = match &drug {
        Some(d) => d.name.clone(),
        None => required(Field::Drug, &input.name, 200)?,
    };
    let strength = optional(Field::Strength, &input.strength, 100)?
        .or(drug.as_ref().map(|d| d.strength.clone()))
        .unwrap_or_default();
    let route = optional(Field::Route, &input.route, 60)?
        .or(drug.as_ref().map(|d| d.route.clone()))
        .ok_or(CrateError::invalid(Field::Route, Reason::Required))?;
    let dose = required(Field::Dose, &input.dose, 100)?;
    let frequency = required(Field::Frequency, &input.frequency, 100)?;
    if !(1..=3650).contains(&input.duration_days) {
        return Err(CrateError::invalid_limit(
            Field::DurationDays,
            Reason::OutOfRange,
            3650,
        ));
    }
    if !(1..=100_000).contains(&input.quantity) {
        return Err(CrateError::invalid_limit(
            Field::Quantity,
            Reason::OutOfRange,
            100_000,
        ));
    }
    let unit = required(Field::Unit, &input.unit, 40)?;
    let instructions = optional(Field::Instructions, &input.instructions, 500)?.unwrap_or_default();
    if rx.items.len() >= 30 {
        return Err(CrateError::invalid_limit(Field::Drug, Reason::TooLong, 30));
    }
    w.insert_row(
        Table::PrescriptionItems,
        &new_id(),
        &[
            ("prescription_id", &rx.id),
            ("drug_id", &input.drug_id),
            ("name", &name),
            ("strength", &strength),
            ("dose", &dose),
            ("route", &route),
            ("frequency", &frequency),
            ("duration_days", &input.duration_days),
            ("quantity", &input.quantity),
            ("unit", &unit),
            ("instructions", &instructions),
            ("position", &(rx.items.len() as i64)),
        ],
    )?;
    get(w.conn(), &rx.id)
}

/// The prescription an item is on.
pub fn of_item(conn: &Connection, item_id: &str) -> Result<String> {
    conn.prepare_cached("SELECT prescription_id FROM prescription_items WHERE id = ?1")?
        .query_row([item_id], |r| r.get(0))
        .optional()?
        .ok_or(Table::PrescriptionItems.not_found())
}

pub fn remove_item(w: &mut Write<'_>, item_id: &str) -> Result<Prescription> {
    let rx = draft(w.conn(), &of_item(w.conn(), item_id)?)?;
    w.delete(Table::PrescriptionItems, item_id)?;
    get(w.conn(), &rx.id)
}

/// Signs the draft. Every warning must be acknowledged with a reason; each acknowledgement
/// is kept (and audited) with the prescription.
pub fn sign(w: &mut Write<'_>, id: &str, acks: &[Acknowledgement]) -> Result<Prescription> {
    let rx = draft(w.conn(), id)?;
    if rx.items.is_empty() {
        return Err(Error::PrescriptionEmpty.into());
    }
    let reason_of = |key: &str| {
        acks.iter()
            .find(|a| a.key == key)
            .map(|a| a.reason.trim())
            .filter(|r| r.chars().count() >= 3)
    };
    let missing = rx
        .alerts
        .iter()
        .filter(|a| reason_of(&a.key).is_none())
        .count();
    if missing > 0 {
        return Err(Error::UnacknowledgedWarnings {
            count: missing as u32,
        }
        .into());
    }
    for a in &rx.alerts {
        let reason =
            crate::validate::required(Field::OverrideReason, reason_of(&a.key).unwrap_or(""), 500)?;
        w.insert_row(
            Table::PrescriptionOverrides,
            &new_id(),
            &[
                ("prescription_id", &rx.id),
                ("kind", &a.kind),
                ("severity", &a.severity),
                ("subject", &a.subject),
                ("reason", &reason),
            ],
        )?;
    }
    w.update_row(
        Table::Prescriptions,
        &rx.id,
        &[("status", &RxStatus::Signed), ("signed_at", &w.now_ts())],
    )?;
    get(w.conn(), &rx.id)
}

/// A new draft in `encounter` with the items of a signed prescription.
pub fn renew(w: &mut Write<'_>, id: &str, encounter: &super::Encounter) -> Result<Prescription> {
    let old = get(w.conn(), id)?;
    if old.status != RxStatus::Signed {
        return Err(CrateError::BadTransition {
            from: crate::names::name_of(&old.status),
            to: "renewed",
        });
    }
    if old.patient_id != encounter.patient_id {
        return Err(CrateError::invalid(Field::Encounter, Reason::Mismatch));
    }
    let new = new_id();
    w.insert_row(
        Table::Prescriptions,
        &new,
        &[
            ("encounter_id", &encounter.id),
            ("patient_id", &encounter.patient_id),
            ("doctor_id", &encounter.doctor_id),
            ("status", &RxStatus::Draft),
            ("renewed_from", &old.id),
        ],
    )?;
    for (i, it) in old.items.iter().enumerate() {
        w.insert_row(
            Table::PrescriptionItems,
            &new_id(),
            &[
                ("prescription_id", &new),
                ("drug_id", &it.drug_id),
                ("name", &it.name),
                ("strength", &it.strength),
                ("dose", &it.dose),
                ("route", &it.route),
                ("frequency", &it.frequency),
                ("duration_days", &it.duration_days),
                ("quantity", &it.quantity),
                ("unit", &it.unit),
                ("instructions", &it.instructions),
                ("position", &(i as i64)),
            ],
        )?;
    }
    get(w.conn(), &new)
}

pub fn for_patient(conn: &Connection, patient_id: &str) -> Result<Vec<Prescription>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM prescriptions WHERE patient_id = ?1 AND status <> 'cancelled' ORDER BY created_at DESC",
        )?
        .query_map([patient_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| get(conn, id)).collect()
}

pub fn for_encounter(conn: &Connection, encounter_id: &str) -> Result<Vec<Prescription>> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM prescriptions WHERE encounter_id = ?1 ORDER BY rowid")?
        .query_map([encounter_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| get(conn, id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interaction_table_parses_and_names_a_source_on_every_row() {
        let t = interactions();
        assert!(t.len() >= 25);
        assert!(t.iter().all(|r| r.source.len() > 20));
        assert!(t.iter().any(|r| r.a == "maois" && r.b == "ssris"));
    }

    #[test]
    fn allergies_match_a_drug_by_name_ingredient_or_class() {
        let amox = Drug {
            id: "x".into(),
            name: "Amoxicillin".into(),
            form: "capsule".into(),
            strength: "500 mg".into(),
            route: "oral".into(),
            ingredients: vec!["amoxicillin".into()],
            classes: vec!["penicillins".into(), "beta_lactams".into()],
            tags: vec![],
        };
        let f = Facts::of(&amox, "Amoxicillin".into(), false);
        for s in [
            "Penicillin",
            "penicillins",
            "AMOXICILLIN",
            "beta-lactam",
            "Beta lactams",
        ] {
            assert!(allergy_matches(s, &f), "{s}");
        }
        for s in ["peanuts", "latex", "ce", "sulfa"] {
            assert!(!allergy_matches(s, &f), "{s}");
        }
    }
}
