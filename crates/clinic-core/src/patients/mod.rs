//! The patient registry: validation, record numbers, the duplicate check, photos, and
//! search (`search.rs`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDate;
use rusqlite::types::{ToSql, Value};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::new_id;
use crate::names::json_column;
use crate::perm::Permission as P;
use crate::store::{Table as _, Write};
use crate::text::{fold, id_token};
use crate::validate;
use crate::Error as CrateError;

mod search;
pub use search::{fts_query, search, search_raw_ids};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "PatientsTable")]
pub enum Table {
    Patients,
    PatientPhotos,
}
impl crate::store::Table for Table {}

/// The registration form's fields, one per column it fills: an error names exactly the
/// field that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "PatientsField")]
pub enum Field {
    GivenName,
    FamilyName,
    BirthDate,
    Phones,
    Email,
    Address,
    NationalId,
    BloodGroup,
    AllergySubstance,
    AllergyReaction,
    ChronicConditions,
    MedicalHistory,
    CurrentMedications,
    InsuranceProvider,
    InsurancePolicy,
    InsuranceValidUntil,
    EmergencyName,
    EmergencyRelation,
    EmergencyPhone,
    Notes,
    Photo,
}
impl FieldEnum for Field {}

/// The registry refuses only fields and duplicates (shared errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "PatientsError"
)]
pub enum Error {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    #[default]
    Unknown,
}
crate::text_column!(Sex);

pub const BLOOD_GROUPS: &[&str] = &["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Mild,
    Moderate,
    Severe,
    LifeThreatening,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Allergy {
    pub substance: String,
    pub reaction: String,
    pub severity: Severity,
}

/// Which parts of a chart a person may see beyond the demographics, from their permissions:
/// reception and admins see allergies; pharmacists allergies and current medications;
/// doctors and nurses everything; cashiers the demographics only. A part one can't see is
/// sent empty, and kept as it is when one saves the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
pub struct Sections {
    /// Allergies and blood group.
    pub allergies: bool,
    /// Current medications.
    pub medications: bool,
    /// Chronic conditions, medical history and notes.
    pub clinical: bool,
}

impl Sections {
    pub fn for_roles(roles: &[crate::perm::Role]) -> Sections {
        use crate::perm::{allowed, Permission as P};
        Sections {
            allergies: allowed(roles, P::PatientAllergyRead),
            medications: allowed(roles, P::PatientMedicationRead),
            clinical: allowed(roles, P::PatientClinicalRead),
        }
    }

    pub const ALL: Sections = Sections {
        allergies: true,
        medications: true,
        clinical: true,
    };

    /// Whether this column of `patients` may be seen (and so written).
    fn column(self, name: &str) -> bool {
        match name {
            "allergies" | "blood_group" => self.allergies,
            "current_medications" => self.medications,
            "chronic_conditions" | "medical_history" | "notes" => self.clinical,
            _ => true,
        }
    }

    /// A row image of `patients` (audit `before`/`after` JSON) with the columns this person
    /// may not see replaced by "[hidden]": the audit screen shows no more than the chart would.
    pub fn mask_image(self, image: &str) -> String {
        let Ok(serde_json::Value::Object(mut row)) =
            serde_json::from_str::<serde_json::Value>(image)
        else {
            return image.to_string();
        };
        for (name, value) in row.iter_mut() {
            if !self.column(name) && !value.is_null() {
                *value = serde_json::Value::String("[hidden]".into());
            }
        }
        serde_json::Value::Object(row).to_string()
    }

    /// Blanks what may not be seen.
    fn mask(self, p: &mut Patient) {
        if !self.allergies {
            p.allergies.clear();
            p.blood_group = None;
        }
        if !self.medications {
            p.current_medications = None;
        }
        if !self.clinical {
            p.chronic_conditions = None;
            p.medical_history = None;
            p.notes = None;
        }
        p.visible = self;
    }
}

/// What the registration form sends. Optional text is "" when empty.
#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct PatientInput {
    pub given_name: String,
    pub family_name: String,
    pub sex: Sex,
    /// YYYY-MM-DD.
    pub birth_date: String,
    pub phones: Vec<String>,
    pub email: String,
    pub address: String,
    /// National ID or passport number.
    pub national_id: String,
    /// One of A+, A-, B+, B-, AB+, AB-, O+, O-, or "".
    pub blood_group: String,
    pub allergies: Vec<Allergy>,
    pub chronic_conditions: String,
    pub medical_history: String,
    pub current_medications: String,
    pub insurance_provider: String,
    pub insurance_policy: String,
    /// YYYY-MM-DD or "".
    pub insurance_valid_until: String,
    pub emergency_name: String,
    pub emergency_relation: String,
    pub emergency_phone: String,
    pub notes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Patient {
    pub id: String,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    pub sex: Sex,
    pub birth_date: String,
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub national_id: Option<String>,
    pub blood_group: Option<String>,
    pub allergies: Vec<Allergy>,
    pub chronic_conditions: Option<String>,
    pub medical_history: Option<String>,
    pub current_medications: Option<String>,
    pub insurance_provider: Option<String>,
    pub insurance_policy: Option<String>,
    pub insurance_valid_until: Option<String>,
    pub emergency_name: Option<String>,
    pub emergency_relation: Option<String>,
    pub emergency_phone: Option<String>,
    pub notes: Option<String>,
    pub has_photo: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The parts shown to the person asking (the rest are empty, not missing).
    pub visible: Sections,
}

/// A search hit or a duplicate candidate: enough to recognise the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct PatientSummary {
    pub id: String,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    pub sex: Sex,
    pub birth_date: String,
    pub phone: Option<String>,
    pub national_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    NameAndBirthDate,
    Phone,
    NationalId,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct DuplicateMatch {
    pub patient: PatientSummary,
    pub reasons: Vec<DuplicateReason>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // sent once over IPC, never stored
pub enum RegisterOutcome {
    Registered {
        patient: Patient,
    },
    /// Nothing was written: someone alike is on file. Open them, or send again with
    /// `allow_duplicates`.
    PossibleDuplicates {
        matches: Vec<DuplicateMatch>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SearchPage {
    pub items: Vec<PatientSummary>,
    /// Offset of the next page; null when this is the last.
    pub next_offset: Option<u32>,
}

/// The form's values, each checked against its own field, as the columns they are stored
/// in: every stored detail is named once, here, and INSERT and UPDATE are built from it.
struct Checked {
    columns: Vec<(&'static str, Value)>,
    /// For the duplicate check and the search keys.
    name_key: String,
    birth_date: String,
    phones: Vec<String>,
    national_id: Option<String>,
}

impl Checked {
    /// The columns with the derived search keys, ready for `insert_row`/`update_row`.
    fn with_keys<'a>(
        &'a self,
        mrn: &str,
        search_keys: &'a mut String,
    ) -> Vec<(&'static str, &'a dyn ToSql)> {
        *search_keys = search::search_keys(mrn, &self.phones, self.national_id.as_deref());
        let mut cols: Vec<(&'static str, &dyn ToSql)> = self
            .columns
            .iter()
            .map(|(c, v)| (*c, v as &dyn ToSql))
            .collect();
        cols.push(("name_key", &self.name_key));
        cols.push(("search_keys", search_keys));
        cols
    }
}

fn date(field: Field, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| CrateError::invalid(field, Reason::InvalidFormat))
}

fn text(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::Text)
}

/// `today` is the clinic's date, which decides what "in the future" is.
fn check(input: &PatientInput, today: NaiveDate) -> Result<Checked> {
    use Field as F;
    let given_name = validate::required(F::GivenName, &input.given_name, 100)?;
    let family_name = validate::required(F::FamilyName, &input.family_name, 100)?;
    let birth = date(F::BirthDate, &input.birth_date)?;
    if birth > today {
        return Err(CrateError::invalid(F::BirthDate, Reason::InFuture));
    }
    if birth < today - chrono::Duration::days(366 * 130) {
        return Err(CrateError::invalid(F::BirthDate, Reason::OutOfRange));
    }
    let mut phones = vec![];
    for p in &input.phones {
        if let Some(p) = validate::phone(F::Phones, p)? {
            if !phones.contains(&p) {
                phones.push(p);
            }
        }
    }
    if phones.len() > 5 {
        return Err(CrateError::invalid_limit(F::Phones, Reason::TooLong, 5));
    }
    let blood_group = match input.blood_group.trim() {
        "" => None,
        b if BLOOD_GROUPS.contains(&b.to_uppercase().as_str()) => Some(b.to_uppercase()),
        _ => return Err(CrateError::invalid(F::BloodGroup, Reason::Unknown)),
    };
    let mut allergies = vec![];
    for a in &input.allergies {
        allergies.push(Allergy {
            substance: validate::required(F::AllergySubstance, &a.substance, 200)?,
            reaction: validate::optional(F::AllergyReaction, &a.reaction, 500)?.unwrap_or_default(),
            severity: a.severity,
        });
    }
    let insurance_valid_until = match input.insurance_valid_until.trim() {
        "" => None,
        s => Some(
            date(F::InsuranceValidUntil, s)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
    };
    let national_id = validate::optional(F::NationalId, &input.national_id, 40)?;
    if let Some(n) = &national_id {
        if id_token(n).len() < 4 {
            return Err(CrateError::invalid(F::NationalId, Reason::TooShort));
        }
    }
    let long = |f: Field, s: &str| validate::optional(f, s, 20_000).map(text);
    let birth_date = birth.format("%Y-%m-%d").to_string();
    let name_key = fold(&format!("{given_name} {family_name}"));
    let columns = vec![
        ("given_name", Value::Text(given_name)),
        ("family_name", Value::Text(family_name)),
        ("sex", Value::Text(input.sex.as_str().into())),
        ("birth_date", Value::Text(birth_date.clone())),
        ("phones", Value::Text(serde_json::to_string(&phones)?)),
        ("email", text(validate::email(F::Email, &input.email)?)),
        (
            "address",
            text(validate::optional(F::Address, &input.address, 500)?),
        ),
        ("national_id", text(national_id.clone())),
        ("blood_group", text(blood_group)),
        ("allergies", Value::Text(serde_json::to_string(&allergies)?)),
        (
            "chronic_conditions",
            long(F::ChronicConditions, &input.chronic_conditions)?,
        ),
        (
            "medical_history",
            long(F::MedicalHistory, &input.medical_history)?,
        ),
        (
            "current_medications",
            long(F::CurrentMedications, &input.current_medications)?,
        ),
        (
            "insurance_provider",
            text(validate::optional(
                F::InsuranceProvider,
                &input.insurance_provider,
                200,
            )?),
        ),
        (
            "insurance_policy",
            text(validate::optional(
                F::InsurancePolicy,
                &input.insurance_policy,
                100,
            )?),
        ),
        ("insurance_valid_until", text(insurance_valid_until)),
        (
            "emergency_name",
            text(validate::optional(
                F::EmergencyName,
                &input.emergency_name,
                200,
            )?),
        ),
        (
            "emergency_relation",
            text(validate::optional(
                F::EmergencyRelation,
                &input.emergency_relation,
                100,
            )?),
        ),
        (
            "emergency_phone",
            text(validate::phone(F::EmergencyPhone, &input.emergency_phone)?),
        ),
        ("notes", long(F::Notes, &input.notes)?),
    ];
    Ok(Checked {
        columns,
        name_key,
        birth_date,
        phones,
        national_id,
    })
}

/// A patient read by column name: the struct's fields are the table's columns.
fn from_row(r: &Row<'_>) -> rusqlite::Result<Patient> {
    fn json<T: serde::de::DeserializeOwned>(
        r: &Row<'_>,
        name: &str,
        kind: &'static str,
    ) -> rusqlite::Result<T> {
        json_column(r, r.as_ref().column_index(name)?, kind)
    }
    Ok(Patient {
        id: r.get("id")?,
        mrn: r.get("mrn")?,
        given_name: r.get("given_name")?,
        family_name: r.get("family_name")?,
        sex: r.get("sex")?,
        birth_date: r.get("birth_date")?,
        phones: json(r, "phones", "phone list")?,
        email: r.get("email")?,
        address: r.get("address")?,
        national_id: r.get("national_id")?,
        blood_group: r.get("blood_group")?,
        allergies: json(r, "allergies", "allergy list")?,
        chronic_conditions: r.get("chronic_conditions")?,
        medical_history: r.get("medical_history")?,
        current_medications: r.get("current_medications")?,
        insurance_provider: r.get("insurance_provider")?,
        insurance_policy: r.get("insurance_policy")?,
        insurance_valid_until: r.get("insurance_valid_until")?,
        emergency_name: r.get("emergency_name")?,
        emergency_relation: r.get("emergency_relation")?,
        emergency_phone: r.get("emergency_phone")?,
        notes: r.get("notes")?,
        has_photo: r.get("has_photo")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        visible: Sections::ALL,
    })
}

const SUMMARY: &str = "p.id, p.mrn, p.given_name, p.family_name, p.sex, p.birth_date,
                       json_extract(p.phones, '$[0]'), p.national_id";

fn summary(r: &Row<'_>) -> rusqlite::Result<PatientSummary> {
    Ok(PatientSummary {
        id: r.get(0)?,
        mrn: r.get(1)?,
        given_name: r.get(2)?,
        family_name: r.get(3)?,
        sex: r.get(4)?,
        birth_date: r.get(5)?,
        phone: r.get(6)?,
        national_id: r.get(7)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Patient> {
    conn.prepare_cached(
        "SELECT p.*, EXISTS (SELECT 1 FROM patient_photos f WHERE f.id = p.id) AS has_photo FROM patients p WHERE p.id = ?1",
    )?
    .query_row([id], from_row)
    .optional()?
    .ok_or(Table::Patients.not_found())
}

pub fn summary_of(conn: &Connection, id: &str) -> Result<PatientSummary> {
    conn.prepare_cached(&format!("SELECT {SUMMARY} FROM patients p WHERE p.id = ?1"))?
        .query_row([id], summary)
        .optional()?
        .ok_or(Table::Patients.not_found())
}

/// Who is already on file with the same name and birth date, the same phone, or the
/// same national ID. `except` leaves out the patient being edited.
fn duplicates(conn: &Connection, c: &Checked, except: Option<&str>) -> Result<Vec<DuplicateMatch>> {
    let mut found: Vec<DuplicateMatch> = vec![];
    let mut add = |p: PatientSummary, reason: DuplicateReason| {
        if Some(p.id.as_str()) == except {
            return;
        }
        match found.iter_mut().find(|m| m.patient.id == p.id) {
            Some(m) if !m.reasons.contains(&reason) => m.reasons.push(reason),
            Some(_) => {}
            None => found.push(DuplicateMatch {
                patient: p,
                reasons: vec![reason],
            }),
        }
    };
    let mut by_name = conn.prepare_cached(&format!(
        "SELECT {SUMMARY} FROM patients p WHERE p.name_key = ?1 AND p.birth_date = ?2 LIMIT 10"
    ))?;
    for p in by_name.query_map((&c.name_key, &c.birth_date), summary)? {
        add(p?, DuplicateReason::NameAndBirthDate);
    }
    let mut by_token = conn.prepare_cached(&format!(
        "SELECT {SUMMARY} FROM patients_fts f JOIN patients p ON p.pk = f.rowid
         WHERE patients_fts MATCH ?1 LIMIT 10"
    ))?;
    for phone in &c.phones {
        let d = crate::text::digits(phone);
        let last9 = if d.len() > 9 {
            &d[d.len() - 9..]
        } else {
            d.as_str()
        };
        for p in by_token.query_map([format!("ids : \"{last9}\"")], summary)? {
            add(p?, DuplicateReason::Phone);
        }
    }
    if let Some(n) = &c.national_id {
        for p in by_token.query_map([format!("ids : \"{}\"", id_token(n))], summary)? {
            add(p?, DuplicateReason::NationalId);
        }
    }
    Ok(found)
}

/// Refuses a form that fills a part the person may not see (the window never sends one).
fn refuse_hidden(input: &PatientInput, seen: Sections) -> Result<()> {
    let filled = |s: &str| !s.trim().is_empty();
    let hidden = (!seen.allergies && (!input.allergies.is_empty() || filled(&input.blood_group)))
        || (!seen.medications && filled(&input.current_medications))
        || (!seen.clinical
            && (filled(&input.chronic_conditions)
                || filled(&input.medical_history)
                || filled(&input.notes)));
    if hidden {
        let missing = if !seen.clinical {
            P::PatientClinicalRead
        } else if !seen.medications {
            P::PatientMedicationRead
        } else {
            P::PatientAllergyRead
        };
        return Err(CrateError::Forbidden {
            permission: missing,
        });
    }
    Ok(())
}

/// Registers a patient; `today` is the clinic's date; `seen` what the person may see.
pub fn register(
    w: &mut Write<'_>,
    input: &PatientInput,
    allow_duplicates: bool,
    device_code: &str,
    today: NaiveDate,
    seen: Sections,
) -> Result<RegisterOutcome> {
    refuse_hidden(input, seen)?;
    let c = check(input, today)?;
    if !allow_duplicates {
        let matches = duplicates(w.conn(), &c, None)?;
        if !matches.is_empty() {
            return Ok(RegisterOutcome::PossibleDuplicates { matches });
        }
    }
    let id = new_id();
    let mrn = format!("{device_code}-{:06}", w.next_number("mrn", "")?);
    let mut keys = String::new();
    let mut cols = c.with_keys(&mrn, &mut keys);
    cols.push(("mrn", &mrn));
    w.insert_row(Table::Patients, &id, &cols)?;
    Ok(RegisterOutcome::Registered {
        patient: get_seen(w.conn(), &id, seen)?,
    })
}

/// Saves the chart; the parts the person may not see are kept as they are.
pub fn update(
    w: &mut Write<'_>,
    id: &str,
    input: &PatientInput,
    today: NaiveDate,
    seen: Sections,
) -> Result<Patient> {
    refuse_hidden(input, seen)?;
    let mut c = check(input, today)?;
    c.columns.retain(|(name, _)| seen.column(name));
    let mrn: String = w
        .conn()
        .prepare_cached("SELECT mrn FROM patients WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(Table::Patients.not_found())?;
    let mut keys = String::new();
    w.update_row(Table::Patients, id, &c.with_keys(&mrn, &mut keys))?;
    get_seen(w.conn(), id, seen)
}

/// A chart as `seen` allows.
pub fn get_seen(conn: &Connection, id: &str, seen: Sections) -> Result<Patient> {
    let mut p = get(conn, id)?;
    seen.mask(&mut p);
    Ok(p)
}

/// Opens a chart: returns what the person may see and records who looked at whose record.
pub fn open_chart(w: &mut Write<'_>, id: &str, seen: Sections) -> Result<Patient> {
    let p = get_seen(w.conn(), id, seen)?;
    w.record_event("view", Table::Patients, id, None)?;
    Ok(p)
}

pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

pub fn set_photo(w: &mut Write<'_>, id: &str, mime: &str, base64: &str) -> Result<()> {
    get(w.conn(), id)?;
    if !["image/jpeg", "image/png", "image/webp"].contains(&mime) {
        return Err(CrateError::invalid(Field::Photo, Reason::InvalidFormat));
    }
    // Measured before decoding: base64 is 4 characters for every 3 bytes.
    let too_big =
        || CrateError::invalid_limit(Field::Photo, Reason::TooLong, MAX_PHOTO_BYTES as i64);
    let text = base64.trim();
    if text.len() > MAX_PHOTO_BYTES.div_ceil(3) * 4 {
        return Err(too_big());
    }
    let bytes = B64
        .decode(text)
        .map_err(|_| CrateError::invalid(Field::Photo, Reason::InvalidFormat))?;
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(too_big());
    }
    let exists: bool = w
        .conn()
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM patient_photos WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?;
    if exists {
        w.update(
            Table::PatientPhotos,
            id,
            "UPDATE patient_photos SET mime = ?2, bytes = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
            rusqlite::params![id, mime, bytes, w.now_ts(), w.actor_id()],
        )?;
    } else {
        w.insert(
            Table::PatientPhotos,
            id,
            "INSERT INTO patient_photos (id, mime, bytes, created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
            rusqlite::params![id, mime, bytes, w.now_ts(), w.actor_id()],
        )?;
    }
    Ok(())
}

/// The photo as a data URL, for an `<img>`; looking at it is a view of the chart, audited.
pub fn photo(w: &mut Write<'_>, id: &str) -> Result<Option<String>> {
    get(w.conn(), id)?;
    w.record_event("view_photo", Table::Patients, id, None)?;
    Ok(w.conn()
        .prepare_cached("SELECT mime, bytes FROM patient_photos WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?
        .map(|(mime, bytes)| format!("data:{mime};base64,{}", B64.encode(bytes))))
}
