//! Diagnoses by ICD-10-CM code, the patient's problem list, and the clinic's own names for
//! codes. Search looks in the clinic's names first (in the language asked for), then in the
//! code list (`icd10`).

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::icd10::{self, IcdCode};
use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::settings::Language;
use crate::store::{Table as _, Write};
use crate::text;
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisRank {
    Primary,
    Secondary,
}

crate::text_column!(DiagnosisRank);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProblemStatus {
    #[default]
    Active,
    Resolved,
}

crate::text_column!(ProblemStatus);

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct DiagnosisInput {
    pub encounter_id: String,
    pub code: String,
    /// Null: primary if the visit has none yet, else secondary.
    pub rank: Option<DiagnosisRank>,
    /// Also put it on the patient's problem list (active).
    pub add_to_problems: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Diagnosis {
    pub id: String,
    pub encounter_id: String,
    pub code: String,
    pub description: String,
    pub local_name: Option<String>,
    pub rank: DiagnosisRank,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Problem {
    pub id: String,
    pub patient_id: String,
    pub code: String,
    pub description: String,
    pub local_name: Option<String>,
    pub status: ProblemStatus,
    /// YYYY-MM-DD.
    pub noted_on: String,
    pub resolved_on: Option<String>,
}

/// The clinic's name for `code` in `lang`, if it gave one.
pub fn local_name(conn: &Connection, code: &str, lang: Language) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM icd_local_names WHERE code = ?1 AND language = ?2")?
        .query_row(rusqlite::params![code, lang], |r| r.get(0))
        .optional()?)
}

/// Codes for `query`: the clinic's own names in `lang` that contain every typed word (Thai
/// and Russian names are matched inside words, Thai having no spaces), then the code list.
pub fn search(
    conn: &Connection,
    query: &str,
    lang: Language,
    limit: usize,
) -> Result<Vec<IcdCode>> {
    let limit = limit.clamp(1, 50);
    let words = text::words(query);
    let ix = icd10::Index::get();
    let mut out: Vec<IcdCode> = vec![];
    if !words.is_empty() {
        let mut st = conn.prepare_cached(
            "SELECT code, name, folded FROM icd_local_names WHERE language = ?1 ORDER BY code",
        )?;
        let rows = st.query_map([lang], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (code, name, folded) = row?;
            if out.len() < limit && words.iter().all(|w| folded.contains(w.as_str())) {
                if let Some(mut c) = ix.lookup(&code) {
                    c.local_name = Some(name);
                    out.push(c);
                }
            }
        }
    }
    for mut c in ix.search(query, limit) {
        if out.len() == limit {
            break;
        }
        if !out.iter().any(|o| o.code == c.code) {
            c.local_name = local_name(conn, &c.code, lang)?;
            out.push(c);
        }
    }
    Ok(out)
}

/// Sets (or with an empty name, removes) the clinic's name for a code in a language.
pub fn set_local_name(w: &mut Write<'_>, code: &str, lang: Language, name: &str) -> Result<()> {
    let c = icd10::Index::get()
        .lookup(code)
        .ok_or_else(|| Error::UnknownCode {
            code: code.trim().to_string(),
        })?;
    let existing: Option<String> = w
        .conn()
        .prepare_cached("SELECT id FROM icd_local_names WHERE code = ?1 AND language = ?2")?
        .query_row(rusqlite::params![c.code, lang], |r| r.get(0))
        .optional()?;
    let name = crate::validate::optional(Field::LocalName, name, 300)?;
    match (existing, name) {
        (Some(id), None) => w.delete(Table::IcdLocalNames, &id),
        (None, None) => Ok(()),
        (Some(id), Some(n)) => w
            .update_row(
                Table::IcdLocalNames,
                &id,
                &[("name", &n), ("folded", &text::words(&n).join(" "))],
            )
            .map(drop),
        (None, Some(n)) => w
            .insert_row(
                Table::IcdLocalNames,
                &new_id(),
                &[
                    ("code", &c.code),
                    ("language", &lang),
                    ("name", &n),
                    ("folded", &text::words(&n).join(" ")),
                ],
            )
            .map(drop),
    }
}

const DIAGNOSIS: &str = "id, encounter_id, code, description, rank, created_at";

fn diagnosis_row(r: &Row<'_>) -> rusqlite::Result<Diagnosis> {
    Ok(Diagnosis {
        id: r.get(0)?,
        encounter_id: r.get(1)?,
        code: r.get(2)?,
        description: r.get(3)?,
        local_name: None,
        rank: r.get(4)?,
        recorded_at: r.get(5)?,
    })
}

fn with_local_names<T>(
    conn: &Connection,
    items: Vec<T>,
    lang: Language,
    code: impl Fn(&mut T) -> (&str, &mut Option<String>),
) -> Result<Vec<T>> {
    let mut items = items;
    for it in items.iter_mut() {
        let (c, slot) = code(it);
        let c = c.to_string();
        *slot = local_name(conn, &c, lang)?;
    }
    Ok(items)
}

pub fn for_encounter(
    conn: &Connection,
    encounter_id: &str,
    lang: Language,
) -> Result<Vec<Diagnosis>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DIAGNOSIS} FROM diagnoses WHERE encounter_id = ?1 ORDER BY rank = 'secondary', rowid"
    ))?;
    let rows = st
        .query_map([encounter_id], diagnosis_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_local_names(conn, rows, lang, |d| (&d.code, &mut d.local_name))
}

/// Adds a diagnosis to an open visit (the caller checked it is the doctor's own).
pub fn add(
    w: &mut Write<'_>,
    patient_id: &str,
    input: &DiagnosisInput,
    today: &str,
    lang: Language,
) -> Result<Diagnosis> {
    if input.code.trim().is_empty() {
        return Err(CrateError::invalid(Field::Code, Reason::Required));
    }
    let c = icd10::Index::get()
        .lookup(&input.code)
        .ok_or_else(|| Error::UnknownCode {
            code: input.code.trim().to_string(),
        })?;
    let current = for_encounter(w.conn(), &input.encounter_id, lang)?;
    if current.iter().any(|d| d.code == c.code) {
        return Err(CrateError::duplicate(Field::Code));
    }
    let primary = current.iter().find(|d| d.rank == DiagnosisRank::Primary);
    let rank = match (input.rank, primary) {
        (Some(DiagnosisRank::Primary), Some(p)) => {
            return Err(Error::PrimaryTaken {
                code: p.code.clone(),
            }
            .into())
        }
        (Some(r), _) => r,
        (None, Some(_)) => DiagnosisRank::Secondary,
        (None, None) => DiagnosisRank::Primary,
    };
    let id = new_id();
    w.insert_row(
        Table::Diagnoses,
        &id,
        &[
            ("encounter_id", &input.encounter_id),
            ("patient_id", &patient_id),
            ("code", &c.code),
            ("description", &c.description),
            ("rank", &rank),
        ],
    )?;
    if input.add_to_problems {
        add_problem(w, patient_id, &c, Some(&input.encounter_id), today)?;
    }
    for_encounter(w.conn(), &input.encounter_id, lang)?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| crate::Error::internal("a row just written is gone"))
}

/// Removes a diagnosis from an open visit (a slip; the audit trail keeps it).
pub fn remove(w: &mut Write<'_>, id: &str) -> Result<()> {
    w.delete(Table::Diagnoses, id)
}

pub fn encounter_of(conn: &Connection, diagnosis_id: &str) -> Result<String> {
    conn.prepare_cached("SELECT encounter_id FROM diagnoses WHERE id = ?1")?
        .query_row([diagnosis_id], |r| r.get(0))
        .optional()?
        .ok_or(Table::Diagnoses.not_found())
}

fn add_problem(
    w: &mut Write<'_>,
    patient_id: &str,
    c: &IcdCode,
    encounter_id: Option<&str>,
    today: &str,
) -> Result<()> {
    let existing: Option<(String, ProblemStatus)> = w
        .conn()
        .prepare_cached("SELECT id, status FROM problems WHERE patient_id = ?1 AND code = ?2")?
        .query_row([patient_id, &c.code], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match existing {
        Some((_, ProblemStatus::Active)) => Ok(()),
        Some((id, ProblemStatus::Resolved)) => {
            set_problem_status(w, &id, ProblemStatus::Active, today)
        }
        None => w
            .insert_row(
                Table::Problems,
                &new_id(),
                &[
                    ("patient_id", &patient_id),
                    ("code", &c.code),
                    ("description", &c.description),
                    ("status", &ProblemStatus::Active),
                    ("noted_on", &today),
                    ("encounter_id", &encounter_id),
                ],
            )
            .map(drop),
    }
}

pub fn set_problem_status(
    w: &mut Write<'_>,
    id: &str,
    status: ProblemStatus,
    today: &str,
) -> Result<()> {
    let resolved_on = (status == ProblemStatus::Resolved).then_some(today);
    w.update_row(
        Table::Problems,
        id,
        &[("status", &status), ("resolved_on", &resolved_on)],
    )
    .map(drop)
}

pub fn problems(conn: &Connection, patient_id: &str, lang: Language) -> Result<Vec<Problem>> {
    let mut st = conn.prepare_cached(
        "SELECT id, patient_id, code, description, status, noted_on, resolved_on FROM problems
         WHERE patient_id = ?1 ORDER BY status = 'resolved', noted_on DESC, code",
    )?;
    let rows = st
        .query_map([patient_id], |r| {
            Ok(Problem {
                id: r.get(0)?,
                patient_id: r.get(1)?,
                code: r.get(2)?,
                description: r.get(3)?,
                local_name: None,
                status: r.get(4)?,
                noted_on: r.get(5)?,
                resolved_on: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_local_names(conn, rows, lang, |p| (&p.code, &mut p.local_name))
}

pub fn problem_patient(conn: &Connection, id: &str) -> Result<String> {
    conn.prepare_cached("SELECT patient_id FROM problems WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(Table::Problems.not_found())
}
