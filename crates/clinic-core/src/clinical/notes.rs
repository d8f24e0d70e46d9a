//! SOAP notes. While the doctor types, the window saves the draft about once a second
//! (`save_draft`, a durable write: a crash, a power cut or the idle lock loses at most the
//! last couple of seconds). The draft is a working copy, not audited. Signing writes the
//! audited, read-only note and removes the draft; later corrections are signed, dated
//! addenda.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::Write;
use crate::Error as CrateError;

/// The longest a part of a note may be, in characters.
pub const MAX_PART: usize = 20_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Soap {
    pub subjective: String,
    pub objective: String,
    pub assessment: String,
    pub plan: String,
}

impl Soap {
    fn parts(&self) -> [&String; 4] {
        [
            &self.subjective,
            &self.objective,
            &self.assessment,
            &self.plan,
        ]
    }
    fn is_empty(&self) -> bool {
        self.parts().iter().all(|p| p.trim().is_empty())
    }
    fn check(&self) -> Result<()> {
        if self.parts().iter().any(|p| p.chars().count() > MAX_PART) {
            return Err(CrateError::invalid_limit(
                Field::Note,
                Reason::TooLong,
                MAX_PART as i64,
            ));
        }
        Ok(())
    }
}

/// What the window sends as the doctor types. `revision` counts up from 1 in the window; a
/// save that arrives after a newer one (out of order) changes nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct DraftInput {
    pub encounter_id: String,
    pub revision: u32,
    pub soap: Soap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Draft {
    pub encounter_id: String,
    pub revision: u32,
    pub soap: Soap,
    pub saved_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Addendum {
    pub id: String,
    pub note_id: String,
    pub author_name: String,
    pub text: String,
    pub signed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Note {
    pub id: String,
    pub encounter_id: String,
    pub patient_id: String,
    pub author_name: String,
    pub soap: Soap,
    pub signed_at: String,
    pub addenda: Vec<Addendum>,
}

/// Saves the draft of `author_id` in the encounter (the caller checked it is theirs and open).
pub fn save_draft(w: &mut Write<'_>, author_id: &str, input: &DraftInput) -> Result<Draft> {
    input.soap.check()?;
    let s = &input.soap;
    w.keep_draft(
        Table::NoteDrafts,
        "INSERT INTO note_drafts (id, encounter_id, author_id, subjective, objective, assessment, plan, revision,
                                  created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?3, ?9, ?3)
         ON CONFLICT (encounter_id, author_id) DO UPDATE SET
             subjective = excluded.subjective, objective = excluded.objective,
             assessment = excluded.assessment, plan = excluded.plan, revision = excluded.revision,
             updated_at = excluded.updated_at
         WHERE excluded.revision > note_drafts.revision",
        rusqlite::params![
            new_id(),
            input.encounter_id,
            author_id,
            s.subjective,
            s.objective,
            s.assessment,
            s.plan,
            input.revision,
            w.now_ts()
        ],
    )?;
    draft(w.conn(), &input.encounter_id, author_id)?
        .ok_or(CrateError::Internal("the draft vanished".into()))
}

pub fn draft(conn: &Connection, encounter_id: &str, author_id: &str) -> Result<Option<Draft>> {
    Ok(conn
        .prepare_cached(
            "SELECT encounter_id, revision, subjective, objective, assessment, plan, updated_at
             FROM note_drafts WHERE encounter_id = ?1 AND author_id = ?2",
        )?
        .query_row([encounter_id, author_id], |r| {
            Ok(Draft {
                encounter_id: r.get(0)?,
                revision: r.get(1)?,
                soap: Soap {
                    subjective: r.get(2)?,
                    objective: r.get(3)?,
                    assessment: r.get(4)?,
                    plan: r.get(5)?,
                },
                saved_at: r.get(6)?,
            })
        })
        .optional()?)
}

/// Whether the encounter has a draft with something in it that nobody signed.
pub fn has_unsigned_draft(conn: &Connection, encounter_id: &str) -> Result<bool> {
    let mut st = conn.prepare_cached(
        "SELECT subjective || objective || assessment || plan FROM note_drafts WHERE encounter_id = ?1",
    )?;
    let texts = st.query_map([encounter_id], |r| r.get::<_, String>(0))?;
    for t in texts {
        if !t?.trim().is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Drops the author's draft (they chose to discard it).
pub fn discard_draft(w: &mut Write<'_>, encounter_id: &str, author_id: &str) -> Result<()> {
    w.keep_draft(
        Table::NoteDrafts,
        "DELETE FROM note_drafts WHERE encounter_id = ?1 AND author_id = ?2",
        [encounter_id, author_id],
    )?;
    Ok(())
}

/// Signs the author's draft: the note becomes read-only and is audited; the draft is gone.
pub fn sign(
    w: &mut Write<'_>,
    encounter_id: &str,
    patient_id: &str,
    author_id: &str,
    author_name: &str,
) -> Result<Note> {
    let signed: Option<i64> = w
        .conn()
        .prepare_cached("SELECT 1 FROM notes WHERE encounter_id = ?1 AND author_id = ?2")?
        .query_row([encounter_id, author_id], |r| r.get(0))
        .optional()?;
    if signed.is_some() {
        return Err(Error::NoteSigned.into());
    }
    let d = draft(w.conn(), encounter_id, author_id)?.ok_or(Error::NoteEmpty)?;
    if d.soap.is_empty() {
        return Err(Error::NoteEmpty.into());
    }
    let id = new_id();
    let s = &d.soap;
    w.insert_row(
        Table::Notes,
        &id,
        &[
            ("encounter_id", &encounter_id),
            ("patient_id", &patient_id),
            ("author_id", &author_id),
            ("author_name", &author_name),
            ("subjective", &s.subjective.trim()),
            ("objective", &s.objective.trim()),
            ("assessment", &s.assessment.trim()),
            ("plan", &s.plan.trim()),
            ("signed_at", &w.now_ts()),
        ],
    )?;
    discard_draft(w, encounter_id, author_id)?;
    get(w.conn(), &id)
}

/// A signed, dated correction to a signed note.
pub fn add_addendum(
    w: &mut Write<'_>,
    note_id: &str,
    author_id: &str,
    author_name: &str,
    text: &str,
) -> Result<Addendum> {
    get(w.conn(), note_id)?;
    let text = crate::validate::required(Field::Addendum, text, MAX_PART)?;
    let id = new_id();
    w.insert_row(
        Table::NoteAddenda,
        &id,
        &[
            ("note_id", &note_id),
            ("author_id", &author_id),
            ("author_name", &author_name),
            ("text", &text),
            ("signed_at", &w.now_ts()),
        ],
    )?;
    addenda(w.conn(), note_id)?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| crate::Error::internal("a row just written is gone"))
}

fn addenda(conn: &Connection, note_id: &str) -> Result<Vec<Addendum>> {
    let mut st = conn.prepare_cached(
        "SELECT id, note_id, author_name, text, signed_at FROM note_addenda WHERE note_id = ?1
         ORDER BY signed_at, rowid",
    )?;
    let rows = st.query_map([note_id], |r| {
        Ok(Addendum {
            id: r.get(0)?,
            note_id: r.get(1)?,
            author_name: r.get(2)?,
            text: r.get(3)?,
            signed_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const NOTE: &str =
    "id, encounter_id, patient_id, author_name, subjective, objective, assessment, plan, signed_at";

fn note_row(r: &Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: r.get(0)?,
        encounter_id: r.get(1)?,
        patient_id: r.get(2)?,
        author_name: r.get(3)?,
        soap: Soap {
            subjective: r.get(4)?,
            objective: r.get(5)?,
            assessment: r.get(6)?,
            plan: r.get(7)?,
        },
        signed_at: r.get(8)?,
        addenda: vec![],
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Note> {
    use crate::store::Table as _;
    let mut n = conn
        .prepare_cached(&format!("SELECT {NOTE} FROM notes WHERE id = ?1"))?
        .query_row([id], note_row)
        .optional()?
        .ok_or(Table::Notes.not_found())?;
    n.addenda = addenda(conn, id)?;
    Ok(n)
}

pub fn for_encounter(conn: &Connection, encounter_id: &str) -> Result<Option<Note>> {
    let id: Option<String> = conn
        .prepare_cached("SELECT id FROM notes WHERE encounter_id = ?1 ORDER BY signed_at LIMIT 1")?
        .query_row([encounter_id], |r| r.get(0))
        .optional()?;
    id.map(|id| get(conn, &id)).transpose()
}
