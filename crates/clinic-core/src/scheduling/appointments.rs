//! Appointments: booking without double booking, the status machine and its history,
//! rescheduling, the free-slot finder and the calendar.
//!
//! The clash checks run inside the booking's immediate transaction, so two PCs (or two
//! threads) booking the same slot are serialised by SQLite's write lock: the second
//! one sees the first one's row and gets `slot_taken`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::doctors::{self, Doctor};
use super::hours::{self as schedule, Interval, Slot};
use super::{Clash, Error, Field, Table};
use crate::error::{Reason, Result};
use crate::ids::{new_id, parse_ts, stored_ts, ts};
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentKind {
    #[default]
    Consultation,
    FollowUp,
    Emergency,
    Checkup,
}

crate::text_column!(AppointmentKind, AppointmentStatus);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    #[default]
    Scheduled,
    Confirmed,
    CheckedIn,
    InConsultation,
    Completed,
    Cancelled,
    NoShow,
    Rescheduled,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 8] = [
        Self::Scheduled,
        Self::Confirmed,
        Self::CheckedIn,
        Self::InConsultation,
        Self::Completed,
        Self::Cancelled,
        Self::NoShow,
        Self::Rescheduled,
    ];

    /// The transitions allowed from here. Rescheduling goes through `reschedule`.
    pub fn next(self) -> &'static [AppointmentStatus] {
        use AppointmentStatus::*;
        match self {
            Scheduled => &[Confirmed, CheckedIn, Cancelled, NoShow, Rescheduled],
            Confirmed => &[CheckedIn, Cancelled, NoShow, Rescheduled],
            CheckedIn => &[InConsultation, Cancelled],
            InConsultation => &[Completed],
            Completed | Cancelled | NoShow | Rescheduled => &[],
        }
    }

    /// Holds its time: another booking may not overlap it.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::Confirmed | Self::CheckedIn | Self::InConsultation
        )
    }
}

/// The statuses that hold time, as SQL (a test checks it against `is_active`).
const ACTIVE_SQL: &str = "('scheduled', 'confirmed', 'checked_in', 'in_consultation')";

/// The longest range the calendar answers for, in days.
pub const CALENDAR_MAX_DAYS: i64 = 62;

/// Longest reason (for a booking, a cancellation, a move, an override) in characters.
pub const REASON_CHARS: usize = 1000;

/// Longest bookable appointment; also bounds the clash search.
pub const MAX_MINUTES: u16 = 8 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct BookInput {
    pub patient_id: String,
    pub doctor_id: String,
    /// UTC, RFC 3339.
    pub starts_at: String,
    pub duration_minutes: u16,
    pub kind: AppointmentKind,
    pub reason: String,
    /// Emergencies only: why it may clash or fall outside working hours.
    pub override_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Appointment {
    pub id: String,
    pub patient_id: String,
    pub doctor_id: String,
    pub starts_at: String,
    pub ends_at: String,
    pub kind: AppointmentKind,
    pub reason: String,
    pub status: AppointmentStatus,
    pub rescheduled_to: Option<String>,
    pub override_reason: Option<String>,
}

/// An appointment as the calendar and today's list show it.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct CalendarEntry {
    pub appointment: Appointment,
    pub patient_name: String,
    pub mrn: String,
    pub doctor_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct HistoryEntry {
    pub old_status: Option<AppointmentStatus>,
    pub new_status: AppointmentStatus,
    pub reason: String,
    pub at: String,
    pub by: String,
}

const COLUMNS: &str =
    "a.id, a.patient_id, a.doctor_id, a.starts_at, a.ends_at, a.kind, a.reason, a.status, a.rescheduled_to, a.override_reason";

fn row(r: &Row<'_>) -> rusqlite::Result<Appointment> {
    Ok(Appointment {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        doctor_id: r.get(2)?,
        starts_at: r.get(3)?,
        ends_at: r.get(4)?,
        kind: r.get(5)?,
        reason: r.get(6)?,
        status: r.get(7)?,
        rescheduled_to: r.get(8)?,
        override_reason: r.get(9)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Appointment> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM appointments a WHERE a.id = ?1"
    ))?
    .query_row([id], row)
    .optional()?
    .ok_or(Table::Appointments.not_found())
}

/// Whole minutes from one stored instant to another.
pub fn minutes_between(start: &str, end: &str) -> Option<u16> {
    Some(
        (parse_ts(end)? - parse_ts(start)?)
            .num_minutes()
            .clamp(0, u16::MAX as i64) as u16,
    )
}

/// An active appointment of `column` (doctor_id or patient_id) = `who` overlapping
/// [start, end), other than `except`.
fn clash(
    conn: &Connection,
    column: &str,
    who: &str,
    start: &str,
    end: &str,
    except: Option<&str>,
) -> Result<Option<String>> {
    let earliest = parse_ts(start)
        .map(|s| ts(s - Duration::minutes(MAX_MINUTES as i64)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT id FROM appointments
         WHERE {column} = ?1 AND starts_at < ?3 AND starts_at > ?5 AND ends_at > ?2
           AND status IN {ACTIVE_SQL} AND id IS NOT ?4
         ORDER BY starts_at LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params![who, start, end, except, earliest], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Another active appointment of the same doctor or patient overlapping this one, when
/// neither was booked over a clash on purpose (an emergency's `override_reason`): what two PCs
/// booking the same slot while apart leave behind once they sync.
pub fn double_booked(conn: &Connection, id: &str) -> Result<Option<String>> {
    let row: Option<(String, String, String, String, bool, bool)> = conn
        .prepare_cached(&format!(
            "SELECT doctor_id, patient_id, starts_at, ends_at, status IN {ACTIVE_SQL}, override_reason IS NOT NULL
             FROM appointments WHERE id = ?1"
        ))?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .optional()?;
    let Some((doctor, patient, start, end, active, overridden)) = row else {
        return Ok(None);
    };
    if !active || overridden {
        return Ok(None);
    }
    for (column, who) in [("doctor_id", &doctor), ("patient_id", &patient)] {
        if let Some(other) = clash(conn, column, who, &start, &end, Some(id))? {
            let on_purpose: bool = conn
                .prepare_cached(
                    "SELECT override_reason IS NOT NULL FROM appointments WHERE id = ?1",
                )?
                .query_row([&other], |r| r.get(0))?;
            if !on_purpose {
                return Ok(Some(other));
            }
        }
    }
    Ok(None)
}

/// Busy intervals of a doctor (active appointments) overlapping [from, to).
fn busy(
    conn: &Connection,
    doctor_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Interval>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT starts_at, ends_at FROM appointments
         WHERE doctor_id = ?1 AND starts_at < ?3 AND starts_at > ?4 AND ends_at > ?2 AND status IN {ACTIVE_SQL}"
    ))?;
    let earliest = ts(from - Duration::minutes(MAX_MINUTES as i64));
    let rows = stmt
        .query_map(
            rusqlite::params![doctor_id, ts(from), ts(to), earliest],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?
        .filter_map(|r| r.ok())
        .filter_map(|(s, e)| Some((parse_ts(&s)?, parse_ts(&e)?)))
        .collect();
    Ok(rows)
}

fn exception_intervals(
    conn: &Connection,
    doctor_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Interval>> {
    Ok(
        doctors::exceptions(conn, Some(doctor_id), &ts(from), &ts(to))?
            .into_iter()
            .filter_map(|e| Some((parse_ts(&e.starts_at)?, parse_ts(&e.ends_at)?)))
            .collect(),
    )
}

fn history(
    w: &mut Write<'_>,
    appointment_id: &str,
    old: Option<AppointmentStatus>,
    new: AppointmentStatus,
    reason: &str,
) -> Result<()> {
    let id = new_id();
    w.insert(
        Table::AppointmentHistory,
        &id,
        "INSERT INTO appointment_history (id, appointment_id, old_status, new_status, reason,
                                          created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?7)",
        rusqlite::params![
            id,
            appointment_id,
            old,
            new,
            reason,
            w.now_ts(),
            w.actor_id()
        ],
    )?;
    Ok(())
}

fn bookable_doctor(conn: &Connection, id: &str) -> Result<Doctor> {
    let d = doctors::doctor(conn, id)?;
    if !d.bookable() {
        return Err(Error::DoctorUnavailable.into());
    }
    Ok(d)
}

/// Books one appointment: checks hours, exceptions and both clashes inside this
/// transaction. An emergency with an override reason may go past the checks; the
/// override is stored on the row and recorded as its own audit event.
pub fn book(w: &mut Write<'_>, input: &BookInput, tz: Tz) -> Result<Appointment> {
    book_except(w, input, tz, None)
}

fn book_except(
    w: &mut Write<'_>,
    input: &BookInput,
    tz: Tz,
    except: Option<&str>,
) -> Result<Appointment> {
    crate::patients::summary_of(w.conn(), &input.patient_id)?;
    bookable_doctor(w.conn(), &input.doctor_id)?;
    let start = parse_ts(&input.starts_at)
        .ok_or(CrateError::invalid(Field::StartsAt, Reason::InvalidFormat))?;
    if !(5..=MAX_MINUTES).contains(&input.duration_minutes) {
        return Err(CrateError::invalid_limit(
            Field::Duration,
            Reason::OutOfRange,
            MAX_MINUTES as i64,
        ));
    }
    let end = start + Duration::minutes(input.duration_minutes as i64);
    let emergency = input.kind == AppointmentKind::Emergency;
    let override_reason = crate::validate::optional(
        Field::OverrideReason,
        input.override_reason.as_deref().unwrap_or(""),
        REASON_CHARS,
    )?;
    let override_reason = override_reason.as_deref();
    if override_reason.is_some() && !emergency {
        return Err(CrateError::invalid(
            Field::OverrideReason,
            Reason::NotAllowed,
        ));
    }
    let reason =
        crate::validate::optional(Field::Reason, &input.reason, REASON_CHARS)?.unwrap_or_default();
    let (s, e) = (ts(start), ts(end));
    let mut overridden = vec![];
    if start < w.now() - Duration::minutes(5) {
        match override_reason {
            Some(_) => overridden.push("in_past".to_string()),
            None => return Err(CrateError::invalid(Field::StartsAt, Reason::InPast)),
        }
    }

    let blocks = doctors::working_hours(w.conn(), &input.doctor_id)?;
    let exceptions = exception_intervals(w.conn(), &input.doctor_id, start, end)?;
    if !schedule::within_hours(&blocks, &exceptions, start, end, tz) {
        match override_reason {
            Some(_) => overridden.push("outside_hours".to_string()),
            None => return Err(Error::OutsideHours.into()),
        }
    }
    for (column, who, kind) in [
        ("doctor_id", &input.doctor_id, Clash::Doctor),
        ("patient_id", &input.patient_id, Clash::Patient),
    ] {
        if let Some(other) = clash(w.conn(), column, who, &s, &e, except)? {
            match override_reason {
                Some(_) => overridden.push(format!("{}:{other}", crate::names::name_of(&kind))),
                None => {
                    let other_start = get(w.conn(), &other)?.starts_at;
                    return Err(Error::SlotTaken {
                        appointment_id: other,
                        clash: kind,
                        starts_at: other_start,
                    }
                    .into());
                }
            }
        }
    }

    let id = new_id();
    w.insert(
        Table::Appointments,
        &id,
        "INSERT INTO appointments (id, patient_id, doctor_id, starts_at, ends_at, kind, reason, status, override_reason,
                                   created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'scheduled', ?8, ?9, ?10, ?9, ?10)",
        rusqlite::params![
            id,
            input.patient_id,
            input.doctor_id,
            s,
            e,
            input.kind,
            reason,
            if overridden.is_empty() { None } else { override_reason },
            w.now_ts(),
            w.actor_id()
        ],
    )?;
    history(w, &id, None, AppointmentStatus::Scheduled, &reason)?;
    if !overridden.is_empty() {
        w.record_event(
            "override",
            Table::Appointments,
            &id,
            Some(serde_json::json!({ "reason": override_reason, "overrode": overridden })),
        )?;
    }
    get(w.conn(), &id)
}

/// Moves an appointment along the status machine. Cancelling needs a reason.
pub fn set_status(
    w: &mut Write<'_>,
    id: &str,
    to: AppointmentStatus,
    reason: &str,
) -> Result<Appointment> {
    let a = get(w.conn(), id)?;
    if to == AppointmentStatus::Rescheduled || !a.status.next().contains(&to) {
        return Err(CrateError::BadTransition {
            from: a.status.as_str(),
            to: to.as_str(),
        });
    }
    let reason =
        crate::validate::optional(Field::Reason, reason, REASON_CHARS)?.unwrap_or_default();
    let reason = reason.as_str();
    if to == AppointmentStatus::Cancelled && reason.is_empty() {
        return Err(CrateError::invalid(Field::Reason, Reason::Required));
    }
    w.update(
        Table::Appointments,
        id,
        "UPDATE appointments SET status = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
        rusqlite::params![id, to, w.now_ts(), w.actor_id()],
    )?;
    history(w, id, Some(a.status), to, reason)?;
    get(w.conn(), id)
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct RescheduleInput {
    pub appointment_id: String,
    /// UTC, RFC 3339.
    pub starts_at: String,
    /// Another doctor, or null to keep the same one.
    pub doctor_id: Option<String>,
    /// Null keeps the length.
    pub duration_minutes: Option<u16>,
    pub reason: String,
}

/// Books the new time under the same checks (the old appointment doesn't clash with
/// itself), then marks the old one rescheduled and links it to the new one.
pub fn reschedule(w: &mut Write<'_>, input: &RescheduleInput, tz: Tz) -> Result<Appointment> {
    let old = get(w.conn(), &input.appointment_id)?;
    if !old.status.next().contains(&AppointmentStatus::Rescheduled) {
        return Err(CrateError::BadTransition {
            from: old.status.as_str(),
            to: AppointmentStatus::Rescheduled.as_str(),
        });
    }
    let old_len = minutes_between(&old.starts_at, &old.ends_at).unwrap_or(15);
    let new = book_except(
        w,
        &BookInput {
            patient_id: old.patient_id.clone(),
            doctor_id: input.doctor_id.clone().unwrap_or(old.doctor_id.clone()),
            starts_at: input.starts_at.clone(),
            duration_minutes: input.duration_minutes.unwrap_or(old_len),
            kind: old.kind,
            reason: old.reason.clone(),
            override_reason: None,
        },
        tz,
        Some(&old.id),
    )?;
    w.update(
        Table::Appointments,
        &old.id,
        "UPDATE appointments SET status = 'rescheduled', rescheduled_to = ?2, updated_at = ?3, updated_by = ?4 WHERE id = ?1",
        rusqlite::params![old.id, new.id, w.now_ts(), w.actor_id()],
    )?;
    let why =
        crate::validate::optional(Field::Reason, &input.reason, REASON_CHARS)?.unwrap_or_default();
    history(
        w,
        &old.id,
        Some(old.status),
        AppointmentStatus::Rescheduled,
        &why,
    )?;
    Ok(new)
}

pub fn history_of(conn: &Connection, appointment_id: &str) -> Result<Vec<HistoryEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.old_status, h.new_status, h.reason, h.created_at, coalesce(s.full_name, h.created_by)
         FROM appointment_history h LEFT JOIN staff s ON s.id = h.created_by
         WHERE h.appointment_id = ?1 ORDER BY h.created_at, h.rowid",
    )?;
    let rows = stmt
        .query_map([appointment_id], |r| {
            Ok(HistoryEntry {
                old_status: r.get(0)?,
                new_status: r.get(1)?,
                reason: r.get(2)?,
                at: r.get(3)?,
                by: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------
// Finding free time.

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct SlotQuery {
    /// One doctor, or
    pub doctor_id: Option<String>,
    /// every bookable doctor of a specialty.
    pub specialization_id: Option<String>,
    /// UTC start; null = now.
    pub from: Option<String>,
    pub days: u32,
    /// At most this many slots (earliest first).
    pub limit: u32,
}

pub fn free_slots_for(
    conn: &Connection,
    doctor: &Doctor,
    from: DateTime<Utc>,
    days: u32,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Slot>> {
    let to = from + Duration::days(days as i64 + 1);
    let blocks = doctors::working_hours(conn, &doctor.id)?;
    let exceptions = exception_intervals(conn, &doctor.id, from, to)?;
    let busy = busy(conn, &doctor.id, from, to)?;
    Ok(schedule::free_slots(
        &doctor.id,
        &blocks,
        &exceptions,
        &busy,
        from,
        days,
        now,
        tz,
    ))
}

pub fn find_slots(
    conn: &Connection,
    q: &SlotQuery,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Slot>> {
    let from = match &q.from {
        Some(f) => {
            parse_ts(f).ok_or(CrateError::invalid(Field::StartsAt, Reason::InvalidFormat))?
        }
        None => now,
    };
    let days = q.days.clamp(1, 62);
    let doctors = candidates(conn, q)?;
    let mut slots = vec![];
    for d in &doctors {
        slots.extend(free_slots_for(conn, d, from, days, now, tz)?);
    }
    slots.sort_by(|a, b| {
        a.starts_at
            .cmp(&b.starts_at)
            .then(a.doctor_id.cmp(&b.doctor_id))
    });
    slots.truncate(q.limit.clamp(1, 2000) as usize);
    Ok(slots)
}

fn candidates(conn: &Connection, q: &SlotQuery) -> Result<Vec<Doctor>> {
    Ok(match (&q.doctor_id, &q.specialization_id) {
        (Some(d), _) => vec![bookable_doctor(conn, d)?],
        (None, Some(s)) => doctors::doctors_of_specialization(conn, s)?
            .into_iter()
            .filter(Doctor::bookable)
            .collect(),
        (None, None) => return Err(CrateError::invalid(Field::Doctor, Reason::Required)),
    })
}

/// Active appointments of a doctor on the local day containing `t`.
fn bookings_that_day(conn: &Connection, doctor_id: &str, t: DateTime<Utc>, tz: Tz) -> Result<i64> {
    let date = schedule::local_date(tz, t);
    let start = schedule::local_instant(tz, date, 0).unwrap_or(t);
    let end = schedule::local_instant(tz, date + Duration::days(1), 0).unwrap_or(t);
    Ok(conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM appointments WHERE doctor_id = ?1 AND starts_at >= ?2 AND starts_at < ?3 AND status IN {ACTIVE_SQL}"
        ))?
        .query_row(rusqlite::params![doctor_id, ts(start), ts(end)], |r| r.get(0))?)
}

/// "First free doctor of specialty X": its doctors' free slots in the order to offer them,
/// the earliest first and, at one start time, the doctor with fewer bookings that day first.
/// `book_first_free` books the first that also suits the patient.
pub fn first_free(
    conn: &Connection,
    specialization_id: &str,
    from: Option<&str>,
    days: u32,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Slot>> {
    let slots = find_slots(
        conn,
        &SlotQuery {
            doctor_id: None,
            specialization_id: Some(specialization_id.into()),
            from: from.map(String::from),
            days,
            limit: 2000,
        },
        now,
        tz,
    )?;
    let mut counts: HashMap<(String, chrono::NaiveDate), i64> = HashMap::new();
    let mut keyed = Vec::with_capacity(slots.len());
    for s in slots {
        let t = parse_ts(&s.starts_at).unwrap_or(now);
        let key = (s.doctor_id.clone(), schedule::local_date(tz, t));
        let n = match counts.entry(key) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(bookings_that_day(conn, &s.doctor_id, t, tz)?),
        };
        keyed.push((n, s));
    }
    // Stable: equal starts and counts keep find_slots' doctor order.
    keyed.sort_by(|(n, a), (m, b)| a.starts_at.cmp(&b.starts_at).then(n.cmp(m)));
    Ok(keyed.into_iter().map(|(_, s)| s).collect())
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct FirstFreeQuery {
    pub specialization_id: String,
    pub patient_id: String,
    pub from: Option<String>,
    pub days: u32,
    pub duration_minutes: Option<u16>,
    pub kind: AppointmentKind,
    pub reason: String,
}

/// Books the earliest free slot across the doctors of a specialty that also suits the
/// patient: long enough for the asked duration and clear of the patient's own bookings. It
/// passes the same checks as any booking, so it never answers with a clash.
pub fn book_first_free(w: &mut Write<'_>, q: &FirstFreeQuery, tz: Tz) -> Result<Appointment> {
    let slots = first_free(
        w.conn(),
        &q.specialization_id,
        q.from.as_deref(),
        q.days.max(1),
        w.now(),
        tz,
    )?;
    for slot in slots {
        let len = minutes_between(&slot.starts_at, &slot.ends_at).unwrap_or(15);
        let input = BookInput {
            patient_id: q.patient_id.clone(),
            doctor_id: slot.doctor_id,
            starts_at: slot.starts_at,
            duration_minutes: q.duration_minutes.unwrap_or(len),
            kind: q.kind,
            reason: q.reason.clone(),
            override_reason: None,
        };
        // A refused slot wrote nothing (every check comes before the insert): try the next.
        match book(w, &input, tz) {
            Err(e)
                if e == Error::OutsideHours
                    || e.as_domain::<Error>()
                        .is_some_and(|d| matches!(d, Error::SlotTaken { .. })) =>
            {
                continue
            }
            done => return done,
        }
    }
    Err(Error::NoFreeSlot.into())
}

// ---------------------------------------------------------------------------------
// Reading for the calendar and lists.

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct CalendarQuery {
    /// UTC bounds, RFC 3339: appointments starting in [from, to).
    pub from: String,
    pub to: String,
    /// Empty: every doctor.
    pub doctor_ids: Vec<String>,
}

/// Appointments starting in [from, to), of the given doctors (all if empty), with the
/// names the calendar shows. Rescheduled ones are left out (their replacement shows).
pub fn calendar(conn: &Connection, q: &CalendarQuery) -> Result<Vec<CalendarEntry>> {
    let (from, to) = (
        stored_ts(&q.from, Field::StartsAt)?,
        stored_ts(&q.to, Field::EndsAt)?,
    );
    // A calendar shows days or weeks; a longer range is a bulk export, which it isn't for.
    let span = parse_ts(&to)
        .zip(parse_ts(&from))
        .map(|(t, f)| t - f)
        .unwrap_or_default();
    if span > Duration::days(CALENDAR_MAX_DAYS) {
        return Err(CrateError::invalid_limit(
            Field::EndsAt,
            Reason::OutOfRange,
            CALENDAR_MAX_DAYS,
        ));
    }
    let doctor_ids = &q.doctor_ids;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, p.given_name || ' ' || p.family_name, p.mrn, d.full_name
         FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN doctors d ON d.id = a.doctor_id
         WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND a.status != 'rescheduled'
           AND (?3 = '[]' OR a.doctor_id IN (SELECT value FROM json_each(?3)))
         ORDER BY a.starts_at, d.full_name"
    ))?;
    let ids = serde_json::to_string(doctor_ids)?;
    let rows = stmt
        .query_map(rusqlite::params![from, to, ids], |r| {
            Ok(CalendarEntry {
                appointment: row(r)?,
                patient_name: r.get(10)?,
                mrn: r.get(11)?,
                doctor_name: r.get(12)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A patient's appointments, newest first (at most 100).
pub fn for_patient(conn: &Connection, patient_id: &str) -> Result<Vec<CalendarEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, p.given_name || ' ' || p.family_name, p.mrn, d.full_name
         FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN doctors d ON d.id = a.doctor_id
         WHERE a.patient_id = ?1 ORDER BY a.starts_at DESC LIMIT 100"
    ))?;
    let rows = stmt
        .query_map([patient_id], |r| {
            Ok(CalendarEntry {
                appointment: row(r)?,
                patient_name: r.get(10)?,
                mrn: r.get(11)?,
                doctor_name: r.get(12)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_sql_lists_exactly_the_active_statuses() {
        let active: Vec<String> = AppointmentStatus::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(ACTIVE_SQL, format!("({})", active.join(", ")));
    }
}
