//! Doctors, their specializations, weekly working hours and exceptions (leave,
//! holidays, blocked hours).

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Field, Table};
use crate::error::{Reason, Result};
use crate::ids::{new_id, parse_ts, ts};
use crate::store::{Table as _, Write};
use crate::validate;
use crate::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Default)]
pub struct Specialization {
    /// Empty to create.
    pub id: String,
    pub name: String,
    /// Letters on this department's queue tickets ("C" → C-014).
    pub queue_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum DoctorStatus {
    #[default]
    Pending,
    Approved,
    Suspended,
}

crate::text_column!(DoctorStatus, ExceptionKind);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Default)]
pub struct Doctor {
    /// Empty to create.
    pub id: String,
    /// The staff account that signs in as this doctor, if any.
    pub staff_id: Option<String>,
    pub full_name: String,
    pub specialization_id: String,
    pub licence_number: String,
    pub qualification: String,
    pub years_experience: u32,
    /// Consultation fee in minor units of `fee_currency`.
    pub fee_minor: i64,
    pub fee_currency: String,
    pub biography: String,
    pub status: DoctorStatus,
    pub available: bool,
    pub room: String,
}

impl Doctor {
    pub fn bookable(&self) -> bool {
        self.status == DoctorStatus::Approved && self.available
    }
}

/// One block of weekly hours in the clinic's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct WorkingBlock {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Minutes after local midnight.
    pub start_minute: u16,
    pub end_minute: u16,
    pub slot_minutes: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    #[default]
    Leave,
    Holiday,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Default)]
pub struct ScheduleException {
    /// Empty to create.
    pub id: String,
    /// None: the whole clinic (a public holiday).
    pub doctor_id: Option<String>,
    pub kind: ExceptionKind,
    /// UTC, RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
    pub reason: String,
}

// ---------------------------------------------------------------------------------

pub fn specializations(conn: &Connection) -> Result<Vec<Specialization>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, queue_code FROM specializations ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Specialization {
                id: r.get(0)?,
                name: r.get(1)?,
                queue_code: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn specialization(conn: &Connection, id: &str) -> Result<Specialization> {
    conn.prepare_cached("SELECT id, name, queue_code FROM specializations WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Specialization {
                id: r.get(0)?,
                name: r.get(1)?,
                queue_code: r.get(2)?,
            })
        })
        .optional()?
        .ok_or(Table::Specializations.not_found())
}

/// Refuses `value` for a unique column when a row other than `own_id` (empty for a new row)
/// already holds it; `sql` selects the holder's id.
fn unique(conn: &Connection, sql: &str, value: &str, own_id: &str, field: Field) -> Result<()> {
    let holder: Option<String> = conn
        .prepare_cached(sql)?
        .query_row([value], |r| r.get(0))
        .optional()?;
    if holder.is_some_and(|h| h != own_id) {
        return Err(Error::duplicate(field));
    }
    Ok(())
}

pub fn save_specialization(w: &mut Write<'_>, s: &Specialization) -> Result<Specialization> {
    let name = validate::required(Field::Name, &s.name, 100)?;
    let code = s.queue_code.trim().to_uppercase();
    if code.is_empty() || code.len() > 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(Error::invalid(Field::QueueCode, Reason::InvalidFormat));
    }
    unique(
        w.conn(),
        "SELECT id FROM specializations WHERE name = ?1 COLLATE NOCASE",
        &name,
        &s.id,
        Field::Name,
    )?;
    unique(
        w.conn(),
        "SELECT id FROM specializations WHERE queue_code = ?1",
        &code,
        &s.id,
        Field::QueueCode,
    )?;
    let id = if s.id.is_empty() {
        let id = new_id();
        w.insert(
            Table::Specializations,
            &id,
            "INSERT INTO specializations (id, name, queue_code, created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
            rusqlite::params![id, name, code, w.now_ts(), w.actor_id()],
        )?;
        id
    } else {
        w.update(
            Table::Specializations,
            &s.id,
            "UPDATE specializations SET name = ?2, queue_code = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
            rusqlite::params![s.id, name, code, w.now_ts(), w.actor_id()],
        )?;
        s.id.clone()
    };
    specialization(w.conn(), &id)
}

const DOCTOR_COLUMNS: &str =
    "id, staff_id, full_name, specialization_id, licence_number, qualification, years_experience,
                              fee_minor, fee_currency, biography, status, available, room";

fn doctor_row(r: &Row<'_>) -> rusqlite::Result<Doctor> {
    Ok(Doctor {
        id: r.get(0)?,
        staff_id: r.get(1)?,
        full_name: r.get(2)?,
        specialization_id: r.get(3)?,
        licence_number: r.get(4)?,
        qualification: r.get(5)?,
        years_experience: r.get(6)?,
        fee_minor: r.get(7)?,
        fee_currency: r.get(8)?,
        biography: r.get(9)?,
        status: r.get(10)?,
        available: r.get(11)?,
        room: r.get(12)?,
    })
}

pub fn doctors(conn: &Connection) -> Result<Vec<Doctor>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DOCTOR_COLUMNS} FROM doctors ORDER BY full_name"
    ))?;
    let rows = stmt
        .query_map([], doctor_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn doctor(conn: &Connection, id: &str) -> Result<Doctor> {
    conn.prepare_cached(&format!(
        "SELECT {DOCTOR_COLUMNS} FROM doctors WHERE id = ?1"
    ))?
    .query_row([id], doctor_row)
    .optional()?
    .ok_or(Table::Doctors.not_found())
}

pub fn doctor_for_staff(conn: &Connection, staff_id: &str) -> Result<Option<Doctor>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {DOCTOR_COLUMNS} FROM doctors WHERE staff_id = ?1"
        ))?
        .query_row([staff_id], doctor_row)
        .optional()?)
}

pub fn doctors_of_specialization(
    conn: &Connection,
    specialization_id: &str,
) -> Result<Vec<Doctor>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DOCTOR_COLUMNS} FROM doctors WHERE specialization_id = ?1 ORDER BY full_name"
    ))?;
    let rows = stmt
        .query_map([specialization_id], doctor_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn save_doctor(w: &mut Write<'_>, d: &Doctor) -> Result<Doctor> {
    let full_name = validate::required(Field::FullName, &d.full_name, 200)?;
    let licence = validate::required(Field::LicenceNumber, &d.licence_number, 60)?;
    specialization(w.conn(), &d.specialization_id)
        .map_err(|_| Error::invalid(Field::Specialization, Reason::Required))?;
    if d.years_experience > 70 {
        return Err(Error::invalid_limit(
            Field::YearsExperience,
            Reason::OutOfRange,
            70,
        ));
    }
    if d.fee_minor < 0 {
        return Err(Error::invalid(Field::Fee, Reason::OutOfRange));
    }
    let currency = d.fee_currency.trim().to_uppercase();
    if crate::settings::minor_digits(&currency).is_none() {
        return Err(Error::invalid(Field::Currency, Reason::Unknown));
    }
    if let Some(staff_id) = &d.staff_id {
        crate::staff::get(w.conn(), staff_id)?;
    }
    unique(
        w.conn(),
        "SELECT id FROM doctors WHERE licence_number = ?1",
        &licence,
        &d.id,
        Field::LicenceNumber,
    )?;
    let id = if d.id.is_empty() {
        new_id()
    } else {
        d.id.clone()
    };
    let (now, actor) = (w.now_ts(), w.actor_id());
    // The same values in the same order for both statements.
    let values = rusqlite::params![
        id,
        d.staff_id,
        full_name,
        d.specialization_id,
        licence,
        validate::optional(Field::Qualification, &d.qualification, 200)?.unwrap_or_default(),
        d.years_experience,
        d.fee_minor,
        currency,
        validate::optional(Field::Biography, &d.biography, 5000)?.unwrap_or_default(),
        d.status,
        d.available,
        validate::optional(Field::Room, &d.room, 50)?.unwrap_or_default(),
        now,
        actor,
    ];
    if d.id.is_empty() {
        w.insert(
            Table::Doctors,
            &id,
            "INSERT INTO doctors (id, staff_id, full_name, specialization_id, licence_number, qualification,
                 years_experience, fee_minor, fee_currency, biography, status, available, room,
                 created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?14, ?15)",
            values,
        )?;
    } else {
        w.update(
            Table::Doctors,
            &id,
            "UPDATE doctors SET staff_id = ?2, full_name = ?3, specialization_id = ?4, licence_number = ?5,
                 qualification = ?6, years_experience = ?7, fee_minor = ?8, fee_currency = ?9, biography = ?10,
                 status = ?11, available = ?12, room = ?13, updated_at = ?14, updated_by = ?15
             WHERE id = ?1",
            values,
        )?;
    }
    doctor(w.conn(), &id)
}

// ---------------------------------------------------------------------------------
// Working hours and exceptions.

pub fn working_hours(conn: &Connection, doctor_id: &str) -> Result<Vec<WorkingBlock>> {
    let mut stmt = conn.prepare_cached(
        "SELECT weekday, start_minute, end_minute, slot_minutes FROM working_hours
         WHERE doctor_id = ?1 ORDER BY weekday, start_minute",
    )?;
    let rows = stmt
        .query_map([doctor_id], |r| {
            Ok(WorkingBlock {
                weekday: r.get(0)?,
                start_minute: r.get(1)?,
                end_minute: r.get(2)?,
                slot_minutes: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Replaces a doctor's weekly hours. Blocks of one day may not overlap.
pub fn set_working_hours(
    w: &mut Write<'_>,
    doctor_id: &str,
    blocks: &[WorkingBlock],
) -> Result<Vec<WorkingBlock>> {
    doctor(w.conn(), doctor_id)?;
    let mut sorted = blocks.to_vec();
    sorted.sort_by_key(|b| (b.weekday, b.start_minute));
    for b in &sorted {
        if !(1..=7).contains(&b.weekday) {
            return Err(Error::invalid(Field::Weekday, Reason::OutOfRange));
        }
        if b.end_minute > 1440 || b.end_minute <= b.start_minute {
            return Err(Error::invalid(Field::EndMinute, Reason::OutOfRange));
        }
        if !(5..=240).contains(&b.slot_minutes) || b.slot_minutes > b.end_minute - b.start_minute {
            return Err(Error::invalid(Field::SlotMinutes, Reason::OutOfRange));
        }
    }
    if sorted
        .windows(2)
        .any(|p| p[0].weekday == p[1].weekday && p[1].start_minute < p[0].end_minute)
    {
        return Err(Error::invalid(Field::StartMinute, Reason::Overlap));
    }
    let old: Vec<String> = w
        .conn()
        .prepare_cached("SELECT id FROM working_hours WHERE doctor_id = ?1")?
        .query_map([doctor_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in old {
        w.delete(Table::WorkingHours, &id)?;
    }
    for b in &sorted {
        let id = new_id();
        w.insert(
            Table::WorkingHours,
            &id,
            "INSERT INTO working_hours (id, doctor_id, weekday, start_minute, end_minute, slot_minutes,
                                        created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8)",
            rusqlite::params![id, doctor_id, b.weekday, b.start_minute, b.end_minute, b.slot_minutes, w.now_ts(), w.actor_id()],
        )?;
    }
    working_hours(w.conn(), doctor_id)
}

fn exception_row(r: &Row<'_>) -> rusqlite::Result<ScheduleException> {
    Ok(ScheduleException {
        id: r.get(0)?,
        doctor_id: r.get(1)?,
        kind: r.get(2)?,
        starts_at: r.get(3)?,
        ends_at: r.get(4)?,
        reason: r.get(5)?,
    })
}

/// Exceptions of one doctor (and the clinic-wide ones) that overlap [from, to).
/// Exceptions overlapping [from, to): a doctor's own and the clinic-wide ones, or with no
/// doctor given, every exception. The bounds are in the stored form (`ids::ts`).
pub fn exceptions(
    conn: &Connection,
    doctor_id: Option<&str>,
    from: &str,
    to: &str,
) -> Result<Vec<ScheduleException>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, doctor_id, kind, starts_at, ends_at, reason FROM schedule_exceptions
         WHERE (?1 IS NULL OR doctor_id IS NULL OR doctor_id = ?1) AND starts_at < ?3 AND ends_at > ?2
         ORDER BY starts_at",
    )?;
    let rows = stmt
        .query_map(rusqlite::params![doctor_id, from, to], exception_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn add_exception(w: &mut Write<'_>, e: &ScheduleException) -> Result<ScheduleException> {
    let start =
        parse_ts(&e.starts_at).ok_or(Error::invalid(Field::StartsAt, Reason::InvalidFormat))?;
    let end = parse_ts(&e.ends_at).ok_or(Error::invalid(Field::EndsAt, Reason::InvalidFormat))?;
    if end <= start {
        return Err(Error::invalid(Field::EndsAt, Reason::OutOfRange));
    }
    if let Some(d) = &e.doctor_id {
        doctor(w.conn(), d)?;
    }
    let reason = validate::optional(Field::Reason, &e.reason, 500)?.unwrap_or_default();
    let id = new_id();
    w.insert(
        Table::ScheduleExceptions,
        &id,
        "INSERT INTO schedule_exceptions (id, doctor_id, kind, starts_at, ends_at, reason,
                                          created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8)",
        rusqlite::params![
            id,
            e.doctor_id,
            e.kind,
            ts(start),
            ts(end),
            reason,
            w.now_ts(),
            w.actor_id()
        ],
    )?;
    Ok(ScheduleException {
        id,
        starts_at: ts(start),
        ends_at: ts(end),
        reason,
        ..e.clone()
    })
}

pub fn remove_exception(w: &mut Write<'_>, id: &str) -> Result<()> {
    w.delete(Table::ScheduleExceptions, id)
}
