//! The patient registry: validation, record numbers, the duplicate check and search.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDate;
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::audit::Write;
use crate::error::{Error, Field, Reason, Result};
use crate::ids::new_id;
use crate::text::{fold, id_token, phone_tokens, words};
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
    fn parse(s: &str) -> Sex {
        match s {
            "female" => Sex::Female,
            "male" => Sex::Male,
            "other" => Sex::Other,
            _ => Sex::Unknown,
        }
    }
}

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

/// What the registration form sends. Optional text is "" when empty.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
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
    Registered { patient: Patient },
    /// Nothing was written: someone alike is on file. Open them, or send again with
    /// `allow_duplicates`.
    PossibleDuplicates { matches: Vec<DuplicateMatch> },
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct SearchPage {
    pub items: Vec<PatientSummary>,
    /// Offset of the next page; null when this is the last.
    pub next_offset: Option<u32>,
}

/// Cleaned values ready for SQL, with the derived search keys.
struct Clean {
    given_name: String,
    family_name: String,
    sex: &'static str,
    birth_date: String,
    phones: Vec<String>,
    email: Option<String>,
    address: Option<String>,
    national_id: Option<String>,
    blood_group: Option<String>,
    allergies: String,
    chronic_conditions: Option<String>,
    medical_history: Option<String>,
    current_medications: Option<String>,
    insurance_provider: Option<String>,
    insurance_policy: Option<String>,
    insurance_valid_until: Option<String>,
    emergency_name: Option<String>,
    emergency_relation: Option<String>,
    emergency_phone: Option<String>,
    notes: Option<String>,
    name_key: String,
}

fn date(field: Field, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| Error::invalid(field, Reason::InvalidFormat))
}

fn clean(input: &PatientInput, today: NaiveDate) -> Result<Clean> {
    let given_name = validate::required(Field::GivenName, &input.given_name, 100)?;
    let family_name = validate::required(Field::FamilyName, &input.family_name, 100)?;
    let birth = date(Field::BirthDate, &input.birth_date)?;
    if birth > today {
        return Err(Error::invalid(Field::BirthDate, Reason::InFuture));
    }
    if birth < today - chrono::Duration::days(366 * 130) {
        return Err(Error::invalid(Field::BirthDate, Reason::OutOfRange));
    }
    let mut phones = vec![];
    for p in &input.phones {
        if let Some(p) = validate::phone(Field::Phones, p)? {
            if !phones.contains(&p) {
                phones.push(p);
            }
        }
    }
    if phones.len() > 5 {
        return Err(Error::invalid_limit(Field::Phones, Reason::TooLong, 5));
    }
    let blood_group = match input.blood_group.trim() {
        "" => None,
        b if BLOOD_GROUPS.contains(&b.to_uppercase().as_str()) => Some(b.to_uppercase()),
        _ => return Err(Error::invalid(Field::BloodGroup, Reason::Unknown)),
    };
    let mut allergies = vec![];
    for a in &input.allergies {
        allergies.push(Allergy {
            substance: validate::required(Field::AllergySubstance, &a.substance, 200)?,
            reaction: validate::optional(Field::AllergySubstance, &a.reaction, 500)?.unwrap_or_default(),
            severity: a.severity,
        });
    }
    let insurance_valid_until = match input.insurance_valid_until.trim() {
        "" => None,
        s => Some(date(Field::InsuranceValidUntil, s)?.format("%Y-%m-%d").to_string()),
    };
    let national_id = validate::optional(Field::NationalId, &input.national_id, 40)?;
    if let Some(n) = &national_id {
        if id_token(n).len() < 4 {
            return Err(Error::invalid(Field::NationalId, Reason::TooShort));
        }
    }
    let long = |f: Field, s: &str| validate::optional(f, s, 20_000);
    Ok(Clean {
        name_key: fold(&format!("{given_name} {family_name}")),
        given_name,
        family_name,
        sex: input.sex.as_str(),
        birth_date: birth.format("%Y-%m-%d").to_string(),
        phones,
        email: validate::email(Field::Email, &input.email)?,
        address: validate::optional(Field::Address, &input.address, 500)?,
        national_id,
        blood_group,
        allergies: serde_json::to_string(&allergies)?,
        chronic_conditions: long(Field::Notes, &input.chronic_conditions)?,
        medical_history: long(Field::Notes, &input.medical_history)?,
        current_medications: long(Field::Notes, &input.current_medications)?,
        insurance_provider: validate::optional(Field::InsuranceProvider, &input.insurance_provider, 200)?,
        insurance_policy: validate::optional(Field::InsuranceProvider, &input.insurance_policy, 100)?,
        insurance_valid_until,
        emergency_name: validate::optional(Field::EmergencyName, &input.emergency_name, 200)?,
        emergency_relation: validate::optional(Field::EmergencyName, &input.emergency_relation, 100)?,
        emergency_phone: validate::phone(Field::EmergencyPhone, &input.emergency_phone)?,
        notes: long(Field::Notes, &input.notes)?,
    })
}

impl Clean {
    /// The columns both INSERT and UPDATE set, in this order: given_name … notes, name_key,
    /// search_keys.
    fn values(&self, search_keys: String) -> Result<Vec<rusqlite::types::Value>> {
        use rusqlite::types::Value;
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
        Ok(vec![
            Value::Text(self.given_name.clone()),
            Value::Text(self.family_name.clone()),
            Value::Text(self.sex.into()),
            Value::Text(self.birth_date.clone()),
            Value::Text(serde_json::to_string(&self.phones)?),
            opt(&self.email),
            opt(&self.address),
            opt(&self.national_id),
            opt(&self.blood_group),
            Value::Text(self.allergies.clone()),
            opt(&self.chronic_conditions),
            opt(&self.medical_history),
            opt(&self.current_medications),
            opt(&self.insurance_provider),
            opt(&self.insurance_policy),
            opt(&self.insurance_valid_until),
            opt(&self.emergency_name),
            opt(&self.emergency_relation),
            opt(&self.emergency_phone),
            opt(&self.notes),
            Value::Text(self.name_key.clone()),
            Value::Text(search_keys),
        ])
    }
}

/// The identifier tokens the search index holds for a patient.
fn search_keys(mrn: &str, phones: &[String], national_id: Option<&str>) -> String {
    let mut keys = words(mrn);
    // "K3F-000123" is also found as "123".
    if let Some(n) = keys.last().map(|n| n.trim_start_matches('0').to_string()) {
        if !n.is_empty() {
            keys.push(n);
        }
    }
    for p in phones {
        keys.extend(phone_tokens(p));
    }
    if let Some(n) = national_id {
        keys.push(id_token(n));
    }
    keys.join(" ")
}

const SUMMARY: &str = "p.id, p.mrn, p.given_name, p.family_name, p.sex, p.birth_date,
                       json_extract(p.phones, '$[0]'), p.national_id";

fn summary(r: &Row<'_>) -> rusqlite::Result<PatientSummary> {
    Ok(PatientSummary {
        id: r.get(0)?,
        mrn: r.get(1)?,
        given_name: r.get(2)?,
        family_name: r.get(3)?,
        sex: Sex::parse(&r.get::<_, String>(4)?),
        birth_date: r.get(5)?,
        phone: r.get(6)?,
        national_id: r.get(7)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Patient> {
    conn.prepare_cached(
        "SELECT id, mrn, given_name, family_name, sex, birth_date, phones, email, address, national_id,
                blood_group, allergies, chronic_conditions, medical_history, current_medications,
                insurance_provider, insurance_policy, insurance_valid_until, emergency_name,
                emergency_relation, emergency_phone, notes,
                EXISTS (SELECT 1 FROM patient_photos f WHERE f.id = patients.id), created_at, updated_at
         FROM patients WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let phones: String = r.get(6)?;
        let allergies: String = r.get(11)?;
        Ok(Patient {
            id: r.get(0)?,
            mrn: r.get(1)?,
            given_name: r.get(2)?,
            family_name: r.get(3)?,
            sex: Sex::parse(&r.get::<_, String>(4)?),
            birth_date: r.get(5)?,
            phones: serde_json::from_str(&phones).unwrap_or_default(),
            email: r.get(7)?,
            address: r.get(8)?,
            national_id: r.get(9)?,
            blood_group: r.get(10)?,
            allergies: serde_json::from_str(&allergies).unwrap_or_default(),
            chronic_conditions: r.get(12)?,
            medical_history: r.get(13)?,
            current_medications: r.get(14)?,
            insurance_provider: r.get(15)?,
            insurance_policy: r.get(16)?,
            insurance_valid_until: r.get(17)?,
            emergency_name: r.get(18)?,
            emergency_relation: r.get(19)?,
            emergency_phone: r.get(20)?,
            notes: r.get(21)?,
            has_photo: r.get(22)?,
            created_at: r.get(23)?,
            updated_at: r.get(24)?,
        })
    })
    .optional()?
    .ok_or(Error::NotFound { entity: "patients" })
}

pub fn summary_of(conn: &Connection, id: &str) -> Result<PatientSummary> {
    conn.prepare_cached(&format!("SELECT {SUMMARY} FROM patients p WHERE p.id = ?1"))?
        .query_row([id], summary)
        .optional()?
        .ok_or(Error::NotFound { entity: "patients" })
}

/// Who is already on file with the same name and birth date, the same phone, or the
/// same national ID. `except` leaves out the patient being edited.
fn duplicates(conn: &Connection, c: &Clean, except: Option<&str>) -> Result<Vec<DuplicateMatch>> {
    let mut found: Vec<DuplicateMatch> = vec![];
    let mut add = |p: PatientSummary, reason: DuplicateReason| {
        if Some(p.id.as_str()) == except {
            return;
        }
        match found.iter_mut().find(|m| m.patient.id == p.id) {
            Some(m) if !m.reasons.contains(&reason) => m.reasons.push(reason),
            Some(_) => {}
            None => found.push(DuplicateMatch { patient: p, reasons: vec![reason] }),
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
        let last9 = if d.len() > 9 { &d[d.len() - 9..] } else { d.as_str() };
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

/// Registers a patient; `tz` is the clinic's zone, whose date decides what "in the future" is.
pub fn register(w: &mut Write<'_>, input: &PatientInput, allow_duplicates: bool, device_code: &str, tz: Tz) -> Result<RegisterOutcome> {
    let c = clean(input, crate::schedule::local_date(tz, w.now()))?;
    if !allow_duplicates {
        let matches = duplicates(w.conn(), &c, None)?;
        if !matches.is_empty() {
            return Ok(RegisterOutcome::PossibleDuplicates { matches });
        }
    }
    let id = new_id();
    let mrn = format!("{device_code}-{:06}", w.next_number("mrn", "")?);
    let mut values = vec![id.clone().into(), mrn.clone().into()];
    values.extend(c.values(search_keys(&mrn, &c.phones, c.national_id.as_deref()))?);
    values.extend([w.now_ts().into(), w.actor_id().into()]);
    w.insert(
        "patients",
        &id,
        "INSERT INTO patients (id, mrn, given_name, family_name, sex, birth_date, phones, email, address, national_id,
             blood_group, allergies, chronic_conditions, medical_history, current_medications, insurance_provider,
             insurance_policy, insurance_valid_until, emergency_name, emergency_relation, emergency_phone, notes,
             name_key, search_keys, created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
                 ?23, ?24, ?25, ?26, ?25, ?26)",
        rusqlite::params_from_iter(values),
    )?;
    Ok(RegisterOutcome::Registered { patient: get(w.conn(), &id)? })
}

pub fn update(w: &mut Write<'_>, id: &str, input: &PatientInput, tz: Tz) -> Result<Patient> {
    let c = clean(input, crate::schedule::local_date(tz, w.now()))?;
    let mrn: String = w
        .conn()
        .prepare_cached("SELECT mrn FROM patients WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(Error::NotFound { entity: "patients" })?;
    let mut values = vec![id.to_string().into()];
    values.extend(c.values(search_keys(&mrn, &c.phones, c.national_id.as_deref()))?);
    values.extend([w.now_ts().into(), w.actor_id().into()]);
    w.update(
        "patients",
        id,
        "UPDATE patients SET given_name = ?2, family_name = ?3, sex = ?4, birth_date = ?5, phones = ?6, email = ?7,
             address = ?8, national_id = ?9, blood_group = ?10, allergies = ?11, chronic_conditions = ?12,
             medical_history = ?13, current_medications = ?14, insurance_provider = ?15, insurance_policy = ?16,
             insurance_valid_until = ?17, emergency_name = ?18, emergency_relation = ?19, emergency_phone = ?20,
             notes = ?21, name_key = ?22, search_keys = ?23, updated_at = ?24, updated_by = ?25
         WHERE id = ?1",
        rusqlite::params_from_iter(values),
    )?;
    get(w.conn(), id)
}

/// Opens a chart: returns it and records who looked at whose record.
pub fn open_chart(w: &mut Write<'_>, id: &str) -> Result<Patient> {
    let p = get(w.conn(), id)?;
    w.record_event("view", "patients", id, None)?;
    Ok(p)
}

pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

pub fn set_photo(w: &mut Write<'_>, id: &str, mime: &str, base64: &str) -> Result<()> {
    get(w.conn(), id)?;
    if !["image/jpeg", "image/png", "image/webp"].contains(&mime) {
        return Err(Error::invalid(Field::Photo, Reason::InvalidFormat));
    }
    let bytes = B64.decode(base64.trim()).map_err(|_| Error::invalid(Field::Photo, Reason::InvalidFormat))?;
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(Error::invalid_limit(Field::Photo, Reason::TooLong, MAX_PHOTO_BYTES as i64));
    }
    let exists: bool =
        w.conn().prepare_cached("SELECT EXISTS (SELECT 1 FROM patient_photos WHERE id = ?1)")?.query_row([id], |r| r.get(0))?;
    if exists {
        w.update(
            "patient_photos",
            id,
            "UPDATE patient_photos SET mime = ?2, bytes = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
            rusqlite::params![id, mime, bytes, w.now_ts(), w.actor_id()],
        )?;
    } else {
        w.insert(
            "patient_photos",
            id,
            "INSERT INTO patient_photos (id, mime, bytes, created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
            rusqlite::params![id, mime, bytes, w.now_ts(), w.actor_id()],
        )?;
    }
    Ok(())
}

/// The photo as a data URL, for an `<img>`.
pub fn photo(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT mime, bytes FROM patient_photos WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .optional()?
        .map(|(mime, bytes)| format!("data:{mime};base64,{}", B64.encode(bytes))))
}

/// The FTS5 query for what someone typed: every word must match as a prefix, in any
/// order, against names or identifiers. `None` when nothing searchable was typed.
pub fn fts_query(text: &str) -> Option<String> {
    let word_query = |words: Vec<String>| -> Option<String> {
        let mut parts = vec![];
        for w in words {
            // Tokens are letters and digits only, so quoting needs no escaping.
            let mut alts = vec![format!("\"{w}\"*")];
            if w.bytes().all(|b| b.is_ascii_digit()) {
                // A phone typed with its trunk zero ("0812…") also matches the national number.
                let bare = w.trim_start_matches('0');
                if bare.len() >= 3 && bare != w {
                    alts.push(format!("\"{bare}\"*"));
                }
                // A whole number typed another way than it was stored ("07700 900123" for
                // "+44 7700 900123", "8 916 …" for "+7 916 …", "+66 …" for "81…") shares its
                // last nine digits, which every stored phone has as a token of its own.
                if w.len() > 9 {
                    alts.push(format!("\"{}\"*", &w[w.len() - 9..]));
                }
            }
            parts.push(if alts.len() == 1 { alts.remove(0) } else { format!("({})", alts.join(" OR ")) });
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    };
    let separate = word_query(words(text));
    // Digits with separators may be one identifier (a phone "081-234 56", a passport
    // "AB 123456") or several words ("123-000045", a record number of a device whose code
    // is digits; "Anna 1985"): match either.
    let joined = id_token(text);
    if words(text).len() > 1 && text.chars().any(|c| c.is_ascii_digit()) {
        let whole = word_query(vec![joined])?;
        return Some(match separate {
            Some(sep) => format!("({whole}) OR ({sep})"),
            None => whole,
        });
    }
    separate
}

pub const PAGE_MAX: u32 = 50;

/// One page of patients matching `text`. Empty text lists the most recently changed.
/// Never loads more than a page.
pub fn search(conn: &Connection, text: &str, offset: u32, limit: u32) -> Result<SearchPage> {
    let limit = limit.clamp(1, PAGE_MAX);
    let fetch = (limit + 1) as i64;
    let mut items = match fts_query(text) {
        Some(q) => conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY} FROM (SELECT rowid FROM patients_fts WHERE patients_fts MATCH ?1 LIMIT ?2 OFFSET ?3) m
                 JOIN patients p ON p.pk = m.rowid"
            ))?
            .query_map(rusqlite::params![q, fetch, offset], summary)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => conn
            .prepare_cached(&format!("SELECT {SUMMARY} FROM patients p ORDER BY p.updated_at DESC, p.pk DESC LIMIT ?1 OFFSET ?2"))?
            .query_map(rusqlite::params![fetch, offset], summary)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    let next_offset = (items.len() as i64 == fetch).then(|| {
        items.pop();
        offset + limit
    });
    Ok(SearchPage { items, next_offset })
}

/// The same query against the index alone, without fetching rows: the benchmark's
/// baseline for `search`.
pub fn search_raw_ids(conn: &Connection, text: &str, offset: u32, limit: u32) -> Result<Vec<i64>> {
    let Some(q) = fts_query(text) else { return Ok(vec![]) };
    Ok(conn
        .prepare_cached("SELECT rowid FROM patients_fts WHERE patients_fts MATCH ?1 LIMIT ?2 OFFSET ?3")?
        .query_map(rusqlite::params![q, (limit + 1) as i64, offset], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_words_and_widen_phones() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("Ann SMI"), Some("\"ann\"* AND \"smi\"*".into()));
        assert_eq!(
            fts_query("081-234 56"),
            Some("((\"08123456\"* OR \"8123456\"*)) OR (\"081\"* AND \"234\"* AND \"56\"*)".into()),
            "a phone typed with separators, or separate numbers"
        );
        assert_eq!(fts_query("0812345"), Some("(\"0812345\"* OR \"812345\"*)".into()));
        assert_eq!(fts_query("\"; DROP"), Some("\"drop\"*".into()));
    }

    #[test]
    fn record_numbers_are_found_without_zeros() {
        assert_eq!(search_keys("K3F-000123", &[], None), "k3f 000123 123");
        assert_eq!(search_keys("K3F-000123", &["+66 81 234 5678".into()], Some("AB 12-34")), "k3f 000123 123 66812345678 812345678 ab1234");
    }
}
