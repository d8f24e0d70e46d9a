//! Consultation: the doctor's encounters (visits) and what is written in them: vitals,
//! SOAP notes (a draft kept as the doctor types, signed read-only, then addenda), ICD-10
//! diagnoses and the patient's problem list.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::{FieldEnum, Reason, Result};
use crate::ids::new_id;
use crate::queue::{self, TicketStatus};
use crate::scheduling::doctors;
use crate::store::{Table as _, Write};
use crate::Error as CrateError;

pub mod diagnoses;
pub mod icd10;
pub mod lab;
pub mod notes;
pub mod prescriptions;
pub mod records;
pub mod rx_paper;
pub mod vitals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "ClinicalTable")]
pub enum Table {
    Encounters,
    Vitals,
    NoteDrafts,
    Notes,
    NoteAddenda,
    Diagnoses,
    Problems,
    IcdLocalNames,
    Drugs,
    Prescriptions,
    PrescriptionItems,
    PrescriptionOverrides,
    LabTests,
    LabOrders,
    Records,
    Attachments,
}

impl crate::store::Table for Table {
    fn journaled(self) -> bool {
        self != Table::NoteDrafts
    }
    fn remote_check(self) -> crate::store::RemoteCheck {
        match self {
            Table::Attachments => records::check_remote_attachment,
            _ => crate::store::no_remote_check,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "ClinicalField")]
pub enum Field {
    Patient,
    Doctor,
    Encounter,
    Vitals,
    Temperature,
    Systolic,
    Diastolic,
    HeartRate,
    RespiratoryRate,
    Spo2,
    Weight,
    Height,
    Bmi,
    HeadCircumference,
    BloodGlucose,
    Note,
    Addendum,
    Code,
    LocalName,
    FollowUpOn,
    FollowUpNote,
    Drug,
    Strength,
    Route,
    Dose,
    Frequency,
    DurationDays,
    Quantity,
    Unit,
    Instructions,
    OverrideReason,
    LabTest,
    LabValue,
    LabComment,
    Title,
    Description,
    RecordedOn,
    Attachment,
    From,
    To,
}
impl FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "ClinicalError"
)]
pub enum Error {
    #[error("the visit is closed")]
    EncounterClosed,
    #[error("the note is empty")]
    NoteEmpty,
    #[error("the note was already signed")]
    NoteSigned,
    #[error("another visit with this patient is open ({doctor})")]
    EncounterOpen { doctor: String },
    #[error("not your visit: it is {doctor}'s")]
    NotYourEncounter { doctor: String },
    #[error("{code} is not in the ICD-10-CM list")]
    UnknownCode { code: String },
    #[error("this visit already has a primary diagnosis: {code}")]
    PrimaryTaken { code: String },
    #[error("the prescription is signed")]
    PrescriptionSigned,
    #[error("the prescription has no items")]
    PrescriptionEmpty,
    #[error("{count} warnings need a reason before signing")]
    UnacknowledgedWarnings { count: u32 },
    #[error("the result was already entered")]
    LabResulted,
    #[error("not your record: it is {author}'s")]
    NotYourRecord { author: String },
    /// The file's record arrived from another PC, its bytes not yet (they travel apart).
    #[error("the file {file_name} has not arrived from the other computer yet")]
    FileNotHere { file_name: String },
}

impl From<Error> for CrateError {
    fn from(e: Error) -> Self {
        CrateError::domain(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum EncounterStatus {
    Open,
    Closed,
}

crate::text_column!(EncounterStatus);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Encounter {
    pub id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub doctor_id: String,
    pub doctor_name: String,
    pub ticket_id: Option<String>,
    pub ticket_number: Option<String>,
    pub appointment_id: Option<String>,
    pub status: EncounterStatus,
    pub opened_at: String,
    pub closed_at: Option<String>,
    /// YYYY-MM-DD in the clinic's zone.
    pub follow_up_on: Option<String>,
    pub follow_up_note: String,
    pub follow_up_appointment_id: Option<String>,
}

const ENCOUNTER: &str = "e.id, e.patient_id, p.given_name || ' ' || p.family_name, p.mrn, e.doctor_id, d.full_name,
                         e.ticket_id, t.number, e.appointment_id, e.status, e.opened_at, e.closed_at,
                         e.follow_up_on, e.follow_up_note, e.follow_up_appointment_id";
const ENCOUNTER_FROM: &str =
    "encounters e JOIN patients p ON p.id = e.patient_id JOIN doctors d ON d.id = e.doctor_id
                              LEFT JOIN queue_tickets t ON t.id = e.ticket_id";

fn encounter_row(r: &Row<'_>) -> rusqlite::Result<Encounter> {
    Ok(Encounter {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        patient_name: r.get(2)?,
        mrn: r.get(3)?,
        doctor_id: r.get(4)?,
        doctor_name: r.get(5)?,
        ticket_id: r.get(6)?,
        ticket_number: r.get(7)?,
        appointment_id: r.get(8)?,
        status: r.get(9)?,
        opened_at: r.get(10)?,
        closed_at: r.get(11)?,
        follow_up_on: r.get(12)?,
        follow_up_note: r.get(13)?,
        follow_up_appointment_id: r.get(14)?,
    })
}

pub fn encounter(conn: &Connection, id: &str) -> Result<Encounter> {
    conn.prepare_cached(&format!(
        "SELECT {ENCOUNTER} FROM {ENCOUNTER_FROM} WHERE e.id = ?1"
    ))?
    .query_row([id], encounter_row)
    .optional()?
    .ok_or(Table::Encounters.not_found())
}

/// The doctor who signs in as `staff_id`; refused for staff who are not a doctor.
pub fn doctor_of(conn: &Connection, staff_id: &str) -> Result<doctors::Doctor> {
    doctors::doctor_for_staff(conn, staff_id)?
        .ok_or(CrateError::invalid(Field::Doctor, Reason::Required))
}

/// An open encounter that `staff_id` may write in: theirs, and open.
pub fn writable(conn: &Connection, id: &str, staff_id: &str) -> Result<Encounter> {
    let e = encounter(conn, id)?;
    if e.status != EncounterStatus::Open {
        return Err(Error::EncounterClosed.into());
    }
    let me = doctor_of(conn, staff_id)?;
    if me.id != e.doctor_id {
        return Err(Error::NotYourEncounter {
            doctor: e.doctor_name,
        }
        .into());
    }
    Ok(e)
}

fn open_for_patient(conn: &Connection, patient_id: &str) -> Result<Option<Encounter>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ENCOUNTER} FROM {ENCOUNTER_FROM} WHERE e.patient_id = ?1 AND e.status = 'open'
             ORDER BY e.opened_at DESC LIMIT 1"
        ))?
        .query_row([patient_id], encounter_row)
        .optional()?)
}

fn insert(
    w: &mut Write<'_>,
    patient_id: &str,
    doctor_id: &str,
    ticket: Option<&queue::Ticket>,
) -> Result<Encounter> {
    if let Some(open) = open_for_patient(w.conn(), patient_id)? {
        if open.doctor_id == doctor_id && ticket.is_none() {
            return Ok(open);
        }
        return Err(Error::EncounterOpen {
            doctor: open.doctor_name,
        }
        .into());
    }
    let id = new_id();
    w.insert_row(
        Table::Encounters,
        &id,
        &[
            ("patient_id", &patient_id),
            ("doctor_id", &doctor_id),
            ("ticket_id", &ticket.map(|t| t.id.clone())),
            (
                "appointment_id",
                &ticket.and_then(|t| t.appointment_id.clone()),
            ),
            ("status", &EncounterStatus::Open),
            ("opened_at", &w.now_ts()),
        ],
    )?;
    encounter(w.conn(), &id)
}

/// "Call next": the next patient in the doctor's queue is called and goes straight into the
/// consultation (the board shows the number and room), and the visit opens, linked to the
/// ticket and its appointment.
pub fn call_next(w: &mut Write<'_>, staff_id: &str, tz: chrono_tz::Tz) -> Result<Encounter> {
    let me = doctor_of(w.conn(), staff_id)?;
    let ticket = queue::call_next(w, Some(&me.id), staff_id, tz)?;
    let ticket = queue::advance(w, &ticket.id, TicketStatus::InConsultation)?;
    insert(w, &ticket.patient_id, &me.id, Some(&ticket))
}

/// Opens a visit from the chart (no ticket), or returns the doctor's open one.
pub fn open(w: &mut Write<'_>, staff_id: &str, patient_id: &str) -> Result<Encounter> {
    let me = doctor_of(w.conn(), staff_id)?;
    crate::patients::get(w.conn(), patient_id)?;
    insert(w, patient_id, &me.id, None)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct CloseInput {
    pub encounter_id: String,
    /// YYYY-MM-DD: when the doctor wants to see the patient again.
    pub follow_up_on: Option<String>,
    pub follow_up_note: String,
}

/// Closes the visit: a note still in draft must be signed or discarded first (nothing
/// written is dropped silently). The ticket moves to done, and the appointment follows.
pub fn close(
    w: &mut Write<'_>,
    staff_id: &str,
    input: &CloseInput,
    today: NaiveDate,
) -> Result<Encounter> {
    let e = writable(w.conn(), &input.encounter_id, staff_id)?;
    if notes::has_unsigned_draft(w.conn(), &e.id)? {
        return Err(CrateError::invalid(Field::Note, Reason::Required));
    }
    let follow_up_on = match input.follow_up_on.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => {
            let day: NaiveDate = d
                .parse()
                .map_err(|_| CrateError::invalid(Field::FollowUpOn, Reason::InvalidFormat))?;
            if day <= today {
                return Err(CrateError::invalid(Field::FollowUpOn, Reason::InPast));
            }
            Some(day.format("%Y-%m-%d").to_string())
        }
    };
    let note = crate::validate::optional(Field::FollowUpNote, &input.follow_up_note, 500)?
        .unwrap_or_default();
    w.update_row(
        Table::Encounters,
        &e.id,
        &[
            ("status", &EncounterStatus::Closed),
            ("closed_at", &w.now_ts()),
            ("follow_up_on", &follow_up_on),
            ("follow_up_note", &note),
        ],
    )?;
    if let Some(t) = &e.ticket_id {
        if queue::get(w.conn(), t)?.status == TicketStatus::InConsultation {
            queue::advance(w, t, TicketStatus::Done)?;
        }
    }
    encounter(w.conn(), &e.id)
}

/// The doctor's open visits and those closed today, newest first.
pub fn for_doctor(conn: &Connection, doctor_id: &str, since: &str) -> Result<Vec<Encounter>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENCOUNTER} FROM {ENCOUNTER_FROM}
         WHERE e.doctor_id = ?1 AND (e.status = 'open' OR e.opened_at >= ?2)
         ORDER BY e.status = 'open' DESC, e.opened_at DESC"
    ))?;
    let rows = st.query_map([doctor_id, since], encounter_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A patient's visits, newest first.
pub fn for_patient(conn: &Connection, patient_id: &str, limit: u32) -> Result<Vec<Encounter>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENCOUNTER} FROM {ENCOUNTER_FROM} WHERE e.patient_id = ?1 ORDER BY e.opened_at DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(rusqlite::params![patient_id, limit], encounter_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The consultation room's home: who is waiting for this doctor, today's appointments, and
/// the doctor's visits open or from today.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct Workspace {
    pub doctor_id: String,
    pub doctor_name: String,
    pub waiting: Vec<queue::Ticket>,
    pub appointments: Vec<crate::scheduling::CalendarEntry>,
    pub encounters: Vec<Encounter>,
}

pub fn workspace(
    conn: &Connection,
    staff_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    tz: chrono_tz::Tz,
) -> Result<Workspace> {
    use chrono::TimeZone;
    let me = doctor_of(conn, staff_id)?;
    let today = crate::scheduling::hours::local_date(tz, now);
    let midnight = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| crate::ids::ts(t.with_timezone(&chrono::Utc)))
            .unwrap_or_else(|| crate::ids::ts(now))
    };
    let (from, to) = (midnight(today), midnight(today.succ_opt().unwrap_or(today)));
    let appointments = crate::scheduling::appointments::calendar(
        conn,
        &crate::scheduling::CalendarQuery {
            from: from.clone(),
            to,
            doctor_ids: vec![me.id.clone()],
        },
    )?;
    let code = doctors::specialization(conn, &me.specialization_id)?.queue_code;
    let waiting = queue::today_list(conn, now, tz)?
        .tickets
        .into_iter()
        .filter(|t| {
            t.status == TicketStatus::Waiting
                && (t.doctor_id.as_deref() == Some(me.id.as_str())
                    || (t.doctor_id.is_none() && t.number.starts_with(&format!("{code}-"))))
        })
        .collect();
    Ok(Workspace {
        encounters: for_doctor(conn, &me.id, &from)?,
        doctor_id: me.id,
        doctor_name: me.full_name,
        waiting,
        appointments,
    })
}

/// One visit as the doctor sees it: the visit, its vitals, the signed note (with addenda)
/// or the doctor's own draft, and its diagnoses.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct EncounterView {
    pub encounter: Encounter,
    pub vitals: Vec<vitals::Vital>,
    pub note: Option<notes::Note>,
    pub draft: Option<notes::Draft>,
    pub diagnoses: Vec<diagnoses::Diagnosis>,
    pub prescriptions: Vec<prescriptions::Prescription>,
    pub lab: Vec<lab::LabOrder>,
}

/// Opens a visit for reading; the view is audited (it shows the note).
pub fn view_encounter(
    w: &mut Write<'_>,
    id: &str,
    staff_id: &str,
    lang: crate::settings::Language,
) -> Result<EncounterView> {
    let e = encounter(w.conn(), id)?;
    w.record_event("view", Table::Encounters, id, None)?;
    let conn = w.conn();
    let mut st = conn.prepare_cached("SELECT id FROM vitals WHERE encounter_id = ?1")?;
    let ids: Vec<String> = st
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let vitals = vitals::history(conn, &e.patient_id, None)?
        .into_iter()
        .filter(|v| ids.contains(&v.id))
        .collect();
    Ok(EncounterView {
        vitals,
        note: notes::for_encounter(conn, id)?,
        draft: notes::draft(conn, id, staff_id)?,
        diagnoses: diagnoses::for_encounter(conn, id, lang)?,
        prescriptions: prescriptions::for_encounter(conn, id)?,
        lab: lab::for_encounter(conn, id)?,
        encounter: e,
    })
}

/// Always on screen while a patient is in the room: who they are and what must not be missed.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct PatientHeader {
    pub patient_id: String,
    pub name: String,
    pub mrn: String,
    pub sex: crate::patients::Sex,
    pub birth_date: String,
    /// Whole years; months for children under two.
    pub age_years: u32,
    pub age_months: u32,
    pub allergies: Vec<crate::patients::Allergy>,
    pub chronic_conditions: String,
    pub current_medications: String,
    pub problems: Vec<diagnoses::Problem>,
    pub last_vitals: Vec<vitals::Vital>,
    pub recent_visits: Vec<Encounter>,
}

/// The header for `patient_id`; opening it is audited as a view of the chart.
pub fn header(
    w: &mut Write<'_>,
    patient_id: &str,
    seen: crate::patients::Sections,
    today: NaiveDate,
    lang: crate::settings::Language,
) -> Result<PatientHeader> {
    let p = crate::patients::open_chart(w, patient_id, seen)?;
    let conn = w.conn();
    let birth: NaiveDate = p
        .birth_date
        .parse()
        .map_err(|_| CrateError::Internal("a stored birth date is not a date".into()))?;
    let months = {
        use chrono::Datelike;
        let m = (today.year() - birth.year()) * 12 + today.month() as i32
            - birth.month() as i32
            - i32::from(today.day() < birth.day());
        m.max(0) as u32
    };
    Ok(PatientHeader {
        patient_id: p.id.clone(),
        name: format!("{} {}", p.given_name, p.family_name),
        mrn: p.mrn.clone(),
        sex: p.sex,
        birth_date: p.birth_date.clone(),
        age_years: months / 12,
        age_months: months,
        allergies: p.allergies.clone(),
        chronic_conditions: p.chronic_conditions.clone().unwrap_or_default(),
        current_medications: p.current_medications.clone().unwrap_or_default(),
        problems: diagnoses::problems(conn, patient_id, lang)?,
        last_vitals: vitals::latest(conn, patient_id)?,
        recent_visits: for_patient(conn, patient_id, 5)?,
    })
}

/// A visit whose doctor asked to see the patient again, not booked yet: reception's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct FollowUpDue {
    pub encounter_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub doctor_id: String,
    pub doctor_name: String,
    /// YYYY-MM-DD.
    pub due_on: String,
    pub note: String,
}

/// Follow-ups due by `until` (YYYY-MM-DD) and not booked, the earliest first (overdue ones
/// too, until booked).
pub fn follow_ups_due(conn: &Connection, until: &str) -> Result<Vec<FollowUpDue>> {
    let mut st = conn.prepare_cached(
        "SELECT e.id, e.patient_id, p.given_name || ' ' || p.family_name, p.mrn, e.doctor_id, d.full_name,
                e.follow_up_on, e.follow_up_note
         FROM encounters e JOIN patients p ON p.id = e.patient_id JOIN doctors d ON d.id = e.doctor_id
         WHERE e.follow_up_on IS NOT NULL AND e.follow_up_on <= ?1 AND e.follow_up_appointment_id IS NULL
         ORDER BY e.follow_up_on, p.family_name LIMIT 200",
    )?;
    let rows = st.query_map([until], |r| {
        Ok(FollowUpDue {
            encounter_id: r.get(0)?,
            patient_id: r.get(1)?,
            patient_name: r.get(2)?,
            mrn: r.get(3)?,
            doctor_id: r.get(4)?,
            doctor_name: r.get(5)?,
            due_on: r.get(6)?,
            note: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Books the follow-up in one step: the first free slot with the same doctor from the day it
/// is due (or today, if that has passed), over the next four weeks, that passes every
/// booking check; the visit then points at it.
pub fn book_follow_up(
    w: &mut Write<'_>,
    encounter_id: &str,
    tz: chrono_tz::Tz,
) -> Result<crate::scheduling::Appointment> {
    use crate::scheduling::{appointments, hours, AppointmentKind, BookInput, SlotQuery};
    let e = encounter(w.conn(), encounter_id)?;
    let due: NaiveDate = e
        .follow_up_on
        .as_deref()
        .and_then(|d| d.parse().ok())
        .ok_or(CrateError::invalid(Field::FollowUpOn, Reason::Required))?;
    if e.follow_up_appointment_id.is_some() {
        return Err(CrateError::duplicate(Field::FollowUpOn));
    }
    let from = hours::local_instant(tz, due, 0)
        .unwrap_or(w.now())
        .max(w.now());
    let slots = appointments::find_slots(
        w.conn(),
        &SlotQuery {
            doctor_id: Some(e.doctor_id.clone()),
            specialization_id: None,
            from: Some(crate::ids::ts(from)),
            days: 28,
            limit: 200,
        },
        w.now(),
        tz,
    )?;
    for slot in slots {
        let input = BookInput {
            patient_id: e.patient_id.clone(),
            doctor_id: e.doctor_id.clone(),
            duration_minutes: appointments::minutes_between(&slot.starts_at, &slot.ends_at)
                .unwrap_or(15),
            starts_at: slot.starts_at,
            kind: AppointmentKind::FollowUp,
            reason: if e.follow_up_note.is_empty() {
                "follow-up".into()
            } else {
                e.follow_up_note.clone()
            },
            override_reason: None,
        };
        // A slot the patient can't take (their own booking then) wrote nothing: the next.
        match appointments::book(w, &input, tz) {
            Ok(a) => {
                w.update_row(
                    Table::Encounters,
                    &e.id,
                    &[("follow_up_appointment_id", &a.id)],
                )?;
                return Ok(a);
            }
            Err(err)
                if err
                    .as_domain::<crate::scheduling::Error>()
                    .is_some_and(|d| {
                        matches!(
                            d,
                            crate::scheduling::Error::SlotTaken { .. }
                                | crate::scheduling::Error::OutsideHours
                        )
                    }) =>
            {
                continue
            }
            Err(err) => return Err(err),
        }
    }
    Err(crate::scheduling::Error::NoFreeSlot.into())
}
