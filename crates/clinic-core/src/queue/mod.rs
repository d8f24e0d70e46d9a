//! Check-in and the waiting queue: tickets numbered per department per day ("C-014"),
//! priority first, then arrival; the board in the waiting room.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::{new_id, parse_ts};
use crate::scheduling::hours::local_date;
use crate::scheduling::{self, appointments, doctors, AppointmentStatus};
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "QueueTable")]
pub enum Table {
    QueueTickets,
}
impl crate::store::Table for Table {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "QueueField")]
pub enum Field {
    Patient,
    Specialization,
    Doctor,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "QueueError"
)]
pub enum Error {
    #[error("already in today's queue as {number}")]
    AlreadyQueued { number: String },
    #[error("nobody is waiting")]
    QueueEmpty,
}

impl From<Error> for CrateError {
    fn from(e: Error) -> Self {
        CrateError::domain(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    Urgent,
    Emergency,
}

/// Stored as its level (0, 1, 2), so the queue sorts by it; an unknown level is an error.
impl Priority {
    const LEVELS: [Priority; 3] = [Priority::Normal, Priority::Urgent, Priority::Emergency];
}

impl rusqlite::types::ToSql for Priority {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok((*self as u8 as i64).into())
    }
}

impl rusqlite::types::FromSql for Priority {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let n = v.as_i64()?;
        Priority::LEVELS
            .get(n as usize)
            .copied()
            .filter(|_| n >= 0)
            .ok_or_else(|| {
                rusqlite::types::FromSqlError::Other(Box::new(crate::names::UnknownValue {
                    kind: "Priority",
                    value: n.to_string(),
                }))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    #[default]
    Waiting,
    Called,
    InConsultation,
    Done,
    Left,
}

crate::text_column!(TicketStatus);

impl TicketStatus {
    fn next(self) -> &'static [TicketStatus] {
        use TicketStatus::*;
        match self {
            Waiting => &[Called, Left],
            Called => &[InConsultation, Waiting, Left],
            InConsultation => &[Done],
            Done | Left => &[],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Type, Default)]
pub struct CheckIn {
    /// A booked patient: their appointment (doctor and department follow from it), or
    pub appointment_id: Option<String>,
    /// a walk-in: the patient and a department (specialization), optionally a doctor.
    pub patient_id: Option<String>,
    pub specialization_id: Option<String>,
    pub doctor_id: Option<String>,
    /// Null: emergency for emergency appointments, else normal.
    pub priority: Option<Priority>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Ticket {
    pub id: String,
    pub number: String,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub appointment_id: Option<String>,
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    pub priority: Priority,
    pub status: TicketStatus,
    pub arrived_at: String,
    pub called_at: Option<String>,
    pub room: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct QueueToday {
    pub day: String,
    pub tickets: Vec<Ticket>,
    pub waiting: u32,
    /// Mean minutes from arrival to being called, over today's called tickets.
    pub average_wait_minutes: Option<f64>,
}

/// What the waiting-room screen shows: numbers and rooms, never names.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct BoardEntry {
    pub number: String,
    pub room: String,
    pub status: TicketStatus,
    pub called_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Board {
    pub clinic_name: String,
    pub entries: Vec<BoardEntry>,
    pub waiting: u32,
}

const TICKET: &str = "t.id, t.number, t.patient_id, p.given_name || ' ' || p.family_name, p.mrn, t.appointment_id,
                      t.doctor_id, d.full_name, t.priority, t.status, t.arrived_at, t.called_at, t.room";
const TICKET_FROM: &str =
    "queue_tickets t JOIN patients p ON p.id = t.patient_id LEFT JOIN doctors d ON d.id = t.doctor_id";

fn ticket(r: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: r.get(0)?,
        number: r.get(1)?,
        patient_id: r.get(2)?,
        patient_name: r.get(3)?,
        mrn: r.get(4)?,
        appointment_id: r.get(5)?,
        doctor_id: r.get(6)?,
        doctor_name: r.get(7)?,
        priority: r.get(8)?,
        status: r.get(9)?,
        arrived_at: r.get(10)?,
        called_at: r.get(11)?,
        room: r.get(12)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Ticket> {
    conn.prepare_cached(&format!(
        "SELECT {TICKET} FROM {TICKET_FROM} WHERE t.id = ?1"
    ))?
    .query_row([id], ticket)
    .optional()?
    .ok_or(Table::QueueTickets.not_found())
}

fn today(now: DateTime<Utc>, tz: Tz) -> String {
    local_date(tz, now).format("%Y-%m-%d").to_string()
}

pub fn check_in(w: &mut Write<'_>, input: &CheckIn, tz: Tz) -> Result<Ticket> {
    let (patient_id, doctor_id, specialization_id, default_priority) = match &input.appointment_id {
        Some(aid) => {
            let a = appointments::get(w.conn(), aid)?;
            // Only today's appointments check in: another day's is a mistaken click.
            let day = parse_ts(&a.starts_at).map(|t| local_date(tz, t));
            let today = local_date(tz, w.now());
            match day {
                Some(d) if d > today => {
                    return Err(CrateError::invalid(
                        scheduling::Field::StartsAt,
                        Reason::InFuture,
                    ))
                }
                Some(d) if d < today => {
                    return Err(CrateError::invalid(
                        scheduling::Field::StartsAt,
                        Reason::InPast,
                    ))
                }
                _ => {}
            }
            appointments::set_status(w, aid, AppointmentStatus::CheckedIn, "")?;
            let d = doctors::doctor(w.conn(), &a.doctor_id)?;
            let p = if a.kind == scheduling::AppointmentKind::Emergency {
                Priority::Emergency
            } else {
                Priority::Normal
            };
            (a.patient_id, Some(d.id), d.specialization_id, p)
        }
        None => {
            let patient = input
                .patient_id
                .clone()
                .ok_or(CrateError::invalid(Field::Patient, Reason::Required))?;
            crate::patients::summary_of(w.conn(), &patient)?;
            let spec = match (&input.doctor_id, &input.specialization_id) {
                (Some(d), _) => doctors::doctor(w.conn(), d)?.specialization_id,
                (None, Some(s)) => s.clone(),
                (None, None) => {
                    return Err(CrateError::invalid(Field::Specialization, Reason::Required))
                }
            };
            (patient, input.doctor_id.clone(), spec, Priority::Normal)
        }
    };
    let day = today(w.now(), tz);
    let queued: Option<String> = w
        .conn()
        .prepare_cached("SELECT number FROM queue_tickets WHERE day = ?1 AND patient_id = ?2 AND status IN ('waiting', 'called')")?
        .query_row([&day, &patient_id], |r| r.get(0))
        .optional()?;
    if let Some(number) = queued {
        return Err(Error::AlreadyQueued { number }.into());
    }
    let code = doctors::specialization(w.conn(), &specialization_id)?.queue_code;
    let n = w.next_number("queue", &format!("{code}:{day}"))?;
    // Each PC counts its own tickets; once PCs sync, the desk number keeps two desks'
    // tickets of one department apart ("C2-014").
    let number = match crate::store::desk_number(w.conn())? {
        Some(desk) => format!("{code}{desk}-{n:03}"),
        None => format!("{code}-{n:03}"),
    };
    let priority = input.priority.unwrap_or(default_priority);
    let id = new_id();
    w.insert(
        Table::QueueTickets,
        &id,
        "INSERT INTO queue_tickets (id, number, queue_code, day, patient_id, appointment_id, doctor_id, asked_doctor_id,
                                    priority, status, arrived_at, created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, 'waiting', ?9, ?9, ?10, ?9, ?10)",
        rusqlite::params![id, number, code, day, patient_id, input.appointment_id, doctor_id, priority, w.now_ts(), w.actor_id()],
    )?;
    get(w.conn(), &id)
}

/// The doctor calls the next patient: emergencies first, then the earliest arrival (a
/// ticket sent back to waiting counts from then), among tickets for this doctor or for the
/// doctor's department with no doctor set. With no doctor given, the doctor is the one the
/// caller signs in as (`staff_id`).
pub fn call_next(
    w: &mut Write<'_>,
    doctor_id: Option<&str>,
    staff_id: &str,
    tz: Tz,
) -> Result<Ticket> {
    let d = match doctor_id {
        Some(id) => doctors::doctor(w.conn(), id)?,
        None => doctors::doctor_for_staff(w.conn(), staff_id)?
            .ok_or(CrateError::invalid(Field::Doctor, Reason::Required))?,
    };
    let doctor_id = d.id.as_str();
    let code = doctors::specialization(w.conn(), &d.specialization_id)?.queue_code;
    let day = today(w.now(), tz);
    let next: Option<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM queue_tickets
             WHERE day = ?1 AND status = 'waiting' AND (doctor_id = ?2 OR (doctor_id IS NULL AND queue_code = ?3))
             ORDER BY priority DESC, coalesce(requeued_at, arrived_at), rowid LIMIT 1",
        )?
        .query_row([&day, doctor_id, &code], |r| r.get(0))
        .optional()?;
    let id = next.ok_or(Error::QueueEmpty)?;
    w.update(
        Table::QueueTickets,
        &id,
        "UPDATE queue_tickets SET status = 'called', called_at = ?2, room = ?3, doctor_id = ?4, updated_at = ?2, updated_by = ?5
         WHERE id = ?1",
        rusqlite::params![id, w.now_ts(), d.room, doctor_id, w.actor_id()],
    )?;
    get(w.conn(), &id)
}

/// In the consultation room: a called ticket into the consultation, a consultation to
/// done, or a called ticket back to waiting ("not here"). Marking someone as left is the
/// front desk's (`advance` with `Left`, under its own permission).
pub fn advance_in_room(w: &mut Write<'_>, id: &str, to: TicketStatus) -> Result<Ticket> {
    if to == TicketStatus::Left {
        let t = get(w.conn(), id)?;
        return Err(CrateError::BadTransition {
            from: t.status.as_str(),
            to: to.as_str(),
        });
    }
    advance(w, id, to)
}

/// Moves a ticket on (called → in consultation → done, or → left); the appointment
/// behind it follows.
pub fn advance(w: &mut Write<'_>, id: &str, to: TicketStatus) -> Result<Ticket> {
    let t = get(w.conn(), id)?;
    if !t.status.next().contains(&to) {
        return Err(CrateError::BadTransition {
            from: t.status.as_str(),
            to: to.as_str(),
        });
    }
    if to == TicketStatus::Waiting {
        // "Not here": back of the queue, and back to whoever the patient came for.
        w.update(
            Table::QueueTickets,
            id,
            "UPDATE queue_tickets SET status = 'waiting', requeued_at = ?2, doctor_id = asked_doctor_id, room = NULL,
                                      called_at = NULL, updated_at = ?2, updated_by = ?3
             WHERE id = ?1",
            rusqlite::params![id, w.now_ts(), w.actor_id()],
        )?;
        return get(w.conn(), id);
    }
    let finished = matches!(to, TicketStatus::Done | TicketStatus::Left).then(|| w.now_ts());
    w.update(
        Table::QueueTickets,
        id,
        "UPDATE queue_tickets SET status = ?2, finished_at = coalesce(?3, finished_at), updated_at = ?4, updated_by = ?5
         WHERE id = ?1",
        rusqlite::params![id, to, finished, w.now_ts(), w.actor_id()],
    )?;
    if let Some(aid) = &t.appointment_id {
        let a = appointments::get(w.conn(), aid)?;
        let follow = match to {
            TicketStatus::InConsultation => Some((AppointmentStatus::InConsultation, "")),
            TicketStatus::Done => Some((AppointmentStatus::Completed, "")),
            TicketStatus::Left => Some((AppointmentStatus::Cancelled, "left without being seen")),
            _ => None,
        };
        if let Some((s, why)) = follow {
            if a.status.next().contains(&s) {
                appointments::set_status(w, aid, s, why)?;
            }
        }
    }
    get(w.conn(), id)
}

pub fn today_list(conn: &Connection, now: DateTime<Utc>, tz: Tz) -> Result<QueueToday> {
    let day = today(now, tz);
    let tickets = conn
        .prepare_cached(&format!(
            "SELECT {TICKET} FROM {TICKET_FROM} WHERE t.day = ?1
             ORDER BY CASE t.status WHEN 'called' THEN 0 WHEN 'in_consultation' THEN 1 WHEN 'waiting' THEN 2 ELSE 3 END,
                      t.priority DESC, t.arrived_at"
        ))?
        .query_map([&day], ticket)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let waiting = tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Waiting)
        .count() as u32;
    let waits: Vec<f64> = tickets
        .iter()
        .filter_map(|t| {
            Some(
                (parse_ts(t.called_at.as_deref()?)? - parse_ts(&t.arrived_at)?).num_seconds()
                    as f64
                    / 60.0,
            )
        })
        .collect();
    let average_wait_minutes = (!waits.is_empty())
        .then(|| (waits.iter().sum::<f64>() / waits.len() as f64 * 10.0).round() / 10.0);
    Ok(QueueToday {
        day,
        tickets,
        waiting,
        average_wait_minutes,
    })
}

pub fn board(conn: &Connection, clinic_name: &str, now: DateTime<Utc>, tz: Tz) -> Result<Board> {
    let day = today(now, tz);
    let entries = conn
        .prepare_cached(
            "SELECT number, coalesce(room, ''), status, called_at FROM queue_tickets
             WHERE day = ?1 AND status IN ('called', 'in_consultation') ORDER BY called_at DESC LIMIT 12",
        )?
        .query_map([&day], |r| {
            Ok(BoardEntry { number: r.get(0)?, room: r.get(1)?, status: r.get(2)?, called_at: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let waiting: u32 = conn
        .prepare_cached("SELECT count(*) FROM queue_tickets WHERE day = ?1 AND status = 'waiting'")?
        .query_row([&day], |r| r.get(0))?;
    Ok(Board {
        clinic_name: clinic_name.to_string(),
        entries,
        waiting,
    })
}
