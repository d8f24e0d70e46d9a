//! The patient's medical history: records a doctor adds (imaging, surgery, vaccination, a
//! note, an outside result), their attachments (PDF or images up to 20 MB, kept inside the
//! encrypted database and handed to the window in memory, never through a file), and the
//! timeline that merges them with what visits wrote (notes, diagnoses, prescriptions, lab
//! results). An attachment's row names its file by hash and size; the bytes are kept apart
//! (`store::blobs`) and travel between PCs on their own, so a PC may hold the row before the
//! file has arrived (`Error::FileNotHere`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Field, Table};
use crate::error::{Reason, Result};
use crate::ids::new_id;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

/// The largest attachment, in bytes (a blob can be no larger).
pub const MAX_ATTACHMENT: usize = 20 * 1024 * 1024;
const _: () = assert!(MAX_ATTACHMENT as u64 <= clinic_sync_proto::MAX_BLOB_BYTES);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Diagnosis,
    Prescription,
    LabResult,
    Imaging,
    Surgery,
    Vaccination,
    #[default]
    Note,
}

crate::text_column!(RecordKind);

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct RecordInput {
    pub patient_id: String,
    /// The visit it belongs to, if any.
    pub encounter_id: Option<String>,
    pub kind: RecordKind,
    pub title: String,
    pub description: String,
    /// YYYY-MM-DD: when it happened (today or before).
    pub recorded_on: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AttachmentInfo {
    pub id: String,
    pub file_name: String,
    pub mime: String,
    pub size: u32,
}

/// One line of the history, whatever wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct TimelineEntry {
    /// The record's id, or the visit row's (note, diagnosis, prescription, lab order).
    pub id: String,
    pub kind: RecordKind,
    /// YYYY-MM-DD in the clinic's zone.
    pub on: String,
    pub title: String,
    pub description: String,
    pub author: String,
    pub encounter_id: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct TimelineQuery {
    pub patient_id: String,
    /// Empty: every kind.
    pub kinds: Vec<RecordKind>,
    /// YYYY-MM-DD bounds, inclusive; empty for none.
    pub from: String,
    pub to: String,
}

fn day(field: Field, s: &str) -> Result<NaiveDate> {
    s.trim()
        .parse()
        .map_err(|_| CrateError::invalid(field, Reason::InvalidFormat))
}

pub fn add(
    w: &mut Write<'_>,
    input: &RecordInput,
    author_name: &str,
    today: NaiveDate,
) -> Result<TimelineEntry> {
    crate::patients::get(w.conn(), &input.patient_id)?;
    if let Some(e) = &input.encounter_id {
        if super::encounter(w.conn(), e)?.patient_id != input.patient_id {
            return Err(CrateError::invalid(Field::Encounter, Reason::Mismatch));
        }
    }
    let title = crate::validate::required(Field::Title, &input.title, 200)?;
    let description = crate::validate::optional(Field::Description, &input.description, 20_000)?
        .unwrap_or_default();
    let on = day(Field::RecordedOn, &input.recorded_on)?;
    if on > today {
        return Err(CrateError::invalid(Field::RecordedOn, Reason::InFuture));
    }
    let id = new_id();
    w.insert_row(
        Table::Records,
        &id,
        &[
            ("patient_id", &input.patient_id),
            ("encounter_id", &input.encounter_id),
            ("kind", &input.kind),
            ("title", &title),
            ("description", &description),
            ("recorded_on", &on.to_string()),
            ("author_id", &w.actor_id()),
            ("author_name", &author_name),
        ],
    )?;
    Ok(TimelineEntry {
        id,
        kind: input.kind,
        on: on.to_string(),
        title,
        description,
        author: author_name.to_string(),
        encounter_id: input.encounter_id.clone(),
        attachments: vec![],
    })
}

/// What a file is, from its first bytes (not from its name).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// The decoded attachment, checked before the write begins.
pub struct Upload {
    file_name: String,
    mime: &'static str,
    bytes: Vec<u8>,
}

pub fn decode(file_name: &str, base64: &str) -> Result<Upload> {
    let text = base64.trim();
    if text.len() > MAX_ATTACHMENT.div_ceil(3) * 4 {
        return Err(CrateError::invalid_limit(
            Field::Attachment,
            Reason::TooLong,
            MAX_ATTACHMENT as i64,
        ));
    }
    let bytes = B64
        .decode(text)
        .map_err(|_| CrateError::invalid(Field::Attachment, Reason::InvalidFormat))?;
    if bytes.is_empty() || bytes.len() > MAX_ATTACHMENT {
        return Err(CrateError::invalid_limit(
            Field::Attachment,
            Reason::TooLong,
            MAX_ATTACHMENT as i64,
        ));
    }
    let mime = sniff(&bytes).ok_or(CrateError::invalid(
        Field::Attachment,
        Reason::InvalidFormat,
    ))?;
    let file_name = safe_name(file_name, mime)
        .ok_or(CrateError::invalid(Field::Attachment, Reason::Required))?;
    Ok(Upload {
        file_name,
        mime,
        bytes,
    })
}

/// The extension a file of this kind is saved with.
fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "image/png" => "png",
        _ => "jpg",
    }
}

/// A file name fit to keep and to suggest to a Save dialog, whoever wrote it: only its last
/// part (nothing a file system reads as a path), no control or bidirectional-override
/// characters, no leading dots, at most 200 characters, ending in its kind's extension. None
/// when nothing is left.
pub fn safe_name(name: &str, mime: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !clinic_sync_proto::is_invisible(*c)
                && !matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|')
        })
        .collect();
    let mut clean = clean.trim().trim_start_matches('.').trim().to_string();
    if clean.is_empty() {
        return None;
    }
    // Names Windows keeps for devices (`CON.pdf` opens the console) get a mark in front.
    let stem = clean
        .split('.')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        clean.insert(0, '_');
    }
    let ext = extension(mime);
    let has_ext = clean.rsplit_once('.').is_some_and(|(_, e)| {
        e.eq_ignore_ascii_case(ext) || (ext == "jpg" && e.eq_ignore_ascii_case("jpeg"))
    });
    let stem: String = clean.chars().take(200 - ext.len() - 1).collect();
    Some(if has_ext && clean.chars().count() <= 200 {
        clean
    } else {
        format!("{}.{ext}", stem.trim_end_matches('.'))
    })
}

/// An attachment row from another PC: checked as the upload's would be (its name, kind, size
/// and hash), so nothing a server or a forged row says reaches a Save dialog unchecked.
pub fn check_remote_attachment(cols: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let text = |k: &str| cols.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let bad = || CrateError::invalid(Field::Attachment, Reason::InvalidFormat);
    let mime = text("mime");
    if !matches!(mime, "application/pdf" | "image/png" | "image/jpeg") {
        return Err(bad());
    }
    if safe_name(text("file_name"), mime).as_deref() != Some(text("file_name")) {
        return Err(bad());
    }
    let size = cols.get("size").and_then(|v| v.as_i64()).unwrap_or(0);
    if !(1..=MAX_ATTACHMENT as i64).contains(&size) {
        return Err(bad());
    }
    let sha = text("sha256");
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    Ok(())
}

/// Attaches a file to a record; only the record's author adds to it.
pub fn attach(
    w: &mut Write<'_>,
    record_id: &str,
    staff_id: &str,
    upload: Upload,
) -> Result<AttachmentInfo> {
    record_patient(w.conn(), record_id)?;
    let (author_id, author): (String, String) = w
        .conn()
        .prepare_cached(
            "SELECT r.created_by, coalesce(s.full_name, r.created_by) FROM records r
             LEFT JOIN staff s ON s.id = r.created_by WHERE r.id = ?1",
        )?
        .query_row([record_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if author_id != staff_id {
        return Err(super::Error::NotYourRecord { author }.into());
    }
    let id = new_id();
    // The bytes first (kept by hash, sent apart), then the row that names them.
    let sha = crate::store::blobs::put(w, &upload.bytes)?;
    let size = upload.bytes.len() as i64;
    w.insert_row(
        Table::Attachments,
        &id,
        &[
            ("record_id", &record_id),
            ("file_name", &upload.file_name),
            ("mime", &upload.mime),
            ("size", &size),
            ("sha256", &sha),
        ],
    )?;
    Ok(AttachmentInfo {
        id,
        file_name: upload.file_name,
        mime: upload.mime.into(),
        size: size as u32,
    })
}

pub fn record_patient(conn: &Connection, record_id: &str) -> Result<String> {
    conn.prepare_cached("SELECT patient_id FROM records WHERE id = ?1")?
        .query_row([record_id], |r| r.get(0))
        .optional()?
        .ok_or(Table::Records.not_found())
}

/// An attachment's bytes and what they are. Opening one is audited, and so is saving it out
/// (`action`: "view" or "export"). `Error::FileNotHere` while its bytes are on their way
/// from another PC; the name is the checked one (`safe_name`), whoever wrote the row.
pub fn open(w: &mut Write<'_>, id: &str, action: &str) -> Result<(AttachmentInfo, Vec<u8>)> {
    let (info, sha) = attachment(w.conn(), id)?;
    let bytes =
        crate::store::blobs::get(w.conn(), &sha)?.ok_or_else(|| super::Error::FileNotHere {
            file_name: info.file_name.clone(),
        })?;
    w.record_event(action, Table::Attachments, id, None)?;
    Ok((info, bytes))
}

/// An attachment's description and the hash of its file.
pub fn attachment(conn: &Connection, id: &str) -> Result<(AttachmentInfo, String)> {
    let (mut info, sha): (AttachmentInfo, String) = conn
        .prepare_cached("SELECT file_name, mime, size, sha256 FROM attachments WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                AttachmentInfo {
                    id: id.to_string(),
                    file_name: r.get(0)?,
                    mime: r.get(1)?,
                    size: r.get(2)?,
                },
                r.get(3)?,
            ))
        })
        .optional()?
        .ok_or(Table::Attachments.not_found())?;
    info.file_name = safe_name(&info.file_name, &info.mime)
        .unwrap_or_else(|| format!("attachment.{}", extension(&info.mime)));
    Ok((info, sha))
}

/// The attachment as a `data:` URL for the window to show.
pub fn data_url(info: &AttachmentInfo, bytes: &[u8]) -> String {
    format!("data:{};base64,{}", info.mime, B64.encode(bytes))
}

fn attachments_of(conn: &Connection, record_id: &str) -> Result<Vec<AttachmentInfo>> {
    let mut st = conn.prepare_cached(
        "SELECT id, file_name, mime, size FROM attachments WHERE record_id = ?1 ORDER BY rowid",
    )?;
    let rows = st.query_map([record_id], |r| {
        Ok(AttachmentInfo {
            id: r.get(0)?,
            file_name: r.get(1)?,
            mime: r.get(2)?,
            size: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The patient's history, newest first, filtered by kind and date. `local_day` turns a
/// stored instant into the clinic's day.
pub fn timeline(
    conn: &Connection,
    q: &TimelineQuery,
    local_day: impl Fn(&str) -> String,
) -> Result<Vec<TimelineEntry>> {
    let want = |k: RecordKind| q.kinds.is_empty() || q.kinds.contains(&k);
    let from = if q.from.trim().is_empty() {
        None
    } else {
        Some(day(Field::From, &q.from)?.to_string())
    };
    let to = if q.to.trim().is_empty() {
        None
    } else {
        Some(day(Field::To, &q.to)?.to_string())
    };
    let mut out: Vec<TimelineEntry> = vec![];
    {
        let mut st = conn.prepare_cached(
            "SELECT id, kind, recorded_on, title, description, author_name, encounter_id FROM records
             WHERE patient_id = ?1",
        )?;
        let rows = st.query_map([&q.patient_id], |r| {
            Ok(TimelineEntry {
                id: r.get(0)?,
                kind: r.get(1)?,
                on: r.get(2)?,
                title: r.get(3)?,
                description: r.get(4)?,
                author: r.get(5)?,
                encounter_id: r.get(6)?,
                attachments: vec![],
            })
        })?;
        for e in rows {
            let mut e = e?;
            if want(e.kind) {
                e.attachments = attachments_of(conn, &e.id)?;
                out.push(e);
            }
        }
    }
    // What visits wrote: (kind, SQL giving id, instant, title, description, author, visit).
    let sources: [(RecordKind, &str); 4] = [
        (
            RecordKind::Note,
            "SELECT id, signed_at, 'SOAP', assessment, author_name, encounter_id FROM notes WHERE patient_id = ?1",
        ),
        (
            RecordKind::Diagnosis,
            "SELECT d.id, d.created_at, d.code || ' ' || d.description, d.rank, coalesce(s.full_name, ''), d.encounter_id
             FROM diagnoses d LEFT JOIN staff s ON s.id = d.created_by WHERE d.patient_id = ?1",
        ),
        (
            RecordKind::Prescription,
            "SELECT r.id, r.signed_at, (SELECT group_concat(name, ', ') FROM prescription_items i WHERE i.prescription_id = r.id),
                    '', doc.full_name, r.encounter_id
             FROM prescriptions r JOIN doctors doc ON doc.id = r.doctor_id WHERE r.patient_id = ?1 AND r.status = 'signed'",
        ),
        (
            RecordKind::LabResult,
            "SELECT o.id, o.resulted_at, t.name, printf('%g %s', o.value, o.unit) || CASE WHEN o.flag IN ('low', 'high') THEN ' (' || o.flag || ')' ELSE '' END,
                    coalesce(s.full_name, ''), o.encounter_id
             FROM lab_orders o JOIN lab_tests t ON t.id = o.test_id LEFT JOIN staff s ON s.id = o.resulted_by
             WHERE o.patient_id = ?1 AND o.status = 'resulted'",
        ),
    ];
    for (kind, sql) in sources {
        if !want(kind) {
            continue;
        }
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([&q.patient_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        for row in rows {
            let (id, at, title, description, author, encounter_id) = row?;
            out.push(TimelineEntry {
                id,
                kind,
                on: local_day(&at),
                title,
                description,
                author,
                encounter_id,
                attachments: vec![],
            });
        }
    }
    out.retain(|e| {
        from.as_deref().is_none_or(|f| e.on.as_str() >= f)
            && to.as_deref().is_none_or(|t| e.on.as_str() <= t)
    });
    out.sort_by(|a, b| {
        b.on.cmp(&a.on)
            .then(a.kind.cmp_key().cmp(&b.kind.cmp_key()))
    });
    Ok(out)
}

impl RecordKind {
    fn cmp_key(self) -> u8 {
        self as u8
    }
}
