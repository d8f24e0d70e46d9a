//! Commands of the front desk and the consultation room: patients, doctors and their
//! schedules, appointments, the queue.

use serde::{Deserialize, Serialize};
use specta::Type;

use super::Core;
use crate::appointments::{self, Appointment, AppointmentStatus, BookInput, CalendarEntry, HistoryEntry, RescheduleInput, SlotQuery};
use crate::doctors::{self, Doctor, ScheduleException, Specialization, WorkingBlock};
use crate::error::{Error, Field, Reason, Result};
use crate::ids::stored_ts;
use crate::patients::{self, Patient, PatientInput, RegisterOutcome, SearchPage};
use crate::perm::Command;
use crate::queue::{self, Board, CheckIn, QueueToday, Ticket, TicketStatus};
use crate::schedule::Slot;
use crate::settings;

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct CalendarQuery {
    /// UTC bounds, RFC 3339: appointments starting in [from, to).
    pub from: String,
    pub to: String,
    /// Empty: every doctor.
    pub doctor_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct FirstFreeQuery {
    pub specialization_id: String,
    pub patient_id: String,
    pub from: Option<String>,
    pub days: u32,
    pub duration_minutes: Option<u16>,
    pub kind: appointments::AppointmentKind,
    pub reason: String,
}

impl Core {
    // -----------------------------------------------------------------------------
    // Patients.

    pub fn patient_search(&self, text: &str, offset: u32, limit: u32) -> Result<SearchPage> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::patient_search)?;
        patients::search(db.conn(), text, offset, limit)
    }

    /// Opens a chart; the view is recorded in the audit trail.
    pub fn patient_get(&self, id: &str) -> Result<Patient> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::patient_get)?;
        db.write(&s.actor(), |w| patients::open_chart(w, id))
    }

    pub fn patient_register(&self, input: PatientInput, allow_duplicates: bool) -> Result<RegisterOutcome> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::patient_register)?;
        let (code, tz) = (db.device().code.clone(), s.tz);
        db.write(&s.actor(), |w| patients::register(w, &input, allow_duplicates, &code, tz))
    }

    pub fn patient_update(&self, id: &str, input: PatientInput) -> Result<Patient> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::patient_update)?;
        let tz = s.tz;
        db.write(&s.actor(), |w| patients::update(w, id, &input, tz))
    }

    pub fn patient_set_photo(&self, id: &str, mime: &str, base64: &str) -> Result<()> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::patient_set_photo)?;
        db.write(&s.actor(), |w| patients::set_photo(w, id, mime, base64))
    }

    pub fn patient_photo(&self, id: &str) -> Result<Option<String>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::patient_photo)?;
        patients::photo(db.conn(), id)
    }

    // -----------------------------------------------------------------------------
    // Doctors and schedules.

    pub fn specialization_list(&self) -> Result<Vec<Specialization>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::specialization_list)?;
        doctors::specializations(db.conn())
    }

    pub fn specialization_save(&self, input: Specialization) -> Result<Specialization> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::specialization_save)?;
        db.write(&s.actor(), |w| doctors::save_specialization(w, &input))
    }

    pub fn doctor_list(&self) -> Result<Vec<Doctor>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::doctor_list)?;
        doctors::doctors(db.conn())
    }

    pub fn doctor_save(&self, input: Doctor) -> Result<Doctor> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::doctor_save)?;
        db.write(&s.actor(), |w| doctors::save_doctor(w, &input))
    }

    pub fn doctor_hours_get(&self, doctor_id: &str) -> Result<Vec<WorkingBlock>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::doctor_hours_get)?;
        doctors::working_hours(db.conn(), doctor_id)
    }

    pub fn doctor_hours_set(&self, doctor_id: &str, blocks: Vec<WorkingBlock>) -> Result<Vec<WorkingBlock>> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::doctor_hours_set)?;
        db.write(&s.actor(), |w| doctors::set_working_hours(w, doctor_id, &blocks))
    }

    /// Exceptions overlapping [from, to): one doctor's and the clinic-wide ones, or all.
    pub fn exception_list(&self, doctor_id: Option<String>, from: &str, to: &str) -> Result<Vec<ScheduleException>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::exception_list)?;
        let (from, to) = (stored_ts(from, Field::StartsAt)?, stored_ts(to, Field::EndsAt)?);
        doctors::exceptions(db.conn(), doctor_id.as_deref(), &from, &to)
    }

    pub fn exception_add(&self, input: ScheduleException) -> Result<ScheduleException> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::exception_add)?;
        db.write(&s.actor(), |w| doctors::add_exception(w, &input))
    }

    pub fn exception_remove(&self, id: &str) -> Result<()> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::exception_remove)?;
        db.write(&s.actor(), |w| doctors::remove_exception(w, id))
    }

    // -----------------------------------------------------------------------------
    // Appointments.

    pub fn slots_find(&self, query: SlotQuery) -> Result<Vec<Slot>> {
        let mut st = self.state.lock();
        let now = self.now();
        let (db, s) = self.guard(&mut st, Command::slots_find)?;
        appointments::find_slots(db.conn(), &query, now, s.tz)
    }

    pub fn appointment_book(&self, input: BookInput) -> Result<Appointment> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::appointment_book)?;
        let tz = s.tz;
        db.write(&s.actor(), |w| appointments::book(w, &input, tz))
    }

    /// Books the earliest free slot across the doctors of a specialty that also suits the
    /// patient: long enough for the asked duration and clear of the patient's own bookings.
    pub fn appointment_book_first_free(&self, q: FirstFreeQuery) -> Result<Appointment> {
        let mut st = self.state.lock();
        let now = self.now();
        let (db, s) = self.guard(&mut st, Command::appointment_book_first_free)?;
        let tz = s.tz;
        db.write(&s.actor(), |w| {
            let slots = appointments::first_free(w.conn(), &q.specialization_id, q.from.as_deref(), q.days.max(1), now, tz)?;
            for slot in slots {
                let len = appointments::minutes_between(&slot.starts_at, &slot.ends_at).unwrap_or(15);
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
                match appointments::book(w, &input, tz) {
                    Err(Error::SlotTaken { .. } | Error::OutsideHours) => continue,
                    done => return done,
                }
            }
            Err(Error::NoFreeSlot)
        })
    }

    pub fn appointment_set_status(&self, id: &str, status: AppointmentStatus, reason: &str) -> Result<Appointment> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::appointment_set_status)?;
        db.write(&s.actor(), |w| appointments::set_status(w, id, status, reason))
    }

    pub fn appointment_reschedule(&self, input: RescheduleInput) -> Result<Appointment> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::appointment_reschedule)?;
        let tz = s.tz;
        db.write(&s.actor(), |w| appointments::reschedule(w, &input, tz))
    }

    pub fn appointment_history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::appointment_history)?;
        appointments::history_of(db.conn(), id)
    }

    pub fn appointments_calendar(&self, q: CalendarQuery) -> Result<Vec<CalendarEntry>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::appointments_calendar)?;
        appointments::calendar(db.conn(), &q.from, &q.to, &q.doctor_ids)
    }

    pub fn appointments_for_patient(&self, patient_id: &str) -> Result<Vec<CalendarEntry>> {
        let mut st = self.state.lock();
        let (db, _) = self.guard(&mut st, Command::appointments_for_patient)?;
        appointments::for_patient(db.conn(), patient_id)
    }

    // -----------------------------------------------------------------------------
    // Queue.

    pub fn queue_check_in(&self, input: CheckIn) -> Result<Ticket> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::queue_check_in)?;
        let tz = s.tz;
        db.write(&s.actor(), |w| queue::check_in(w, &input, tz))
    }

    pub fn queue_today(&self) -> Result<QueueToday> {
        let mut st = self.state.lock();
        let now = self.now();
        let (db, s) = self.guard(&mut st, Command::queue_today)?;
        queue::today_list(db.conn(), now, s.tz)
    }

    /// Calls the next patient for `doctor_id`, or for the signed-in doctor when null.
    pub fn queue_call_next(&self, doctor_id: Option<String>) -> Result<Ticket> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::queue_call_next)?;
        let doctor = match doctor_id {
            Some(d) => d,
            None => doctors::doctor_for_staff(db.conn(), &s.staff.id)?
                .map(|d| d.id)
                .ok_or(Error::invalid(Field::Doctor, Reason::Required))?,
        };
        let tz = s.tz;
        db.write(&s.actor(), |w| queue::call_next(w, &doctor, tz))
    }

    /// Moves a called ticket into the consultation, or a consultation to done (or a
    /// called ticket back to waiting). Leaving is `queue_mark_left`.
    pub fn queue_advance(&self, ticket_id: &str, to: TicketStatus) -> Result<Ticket> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::queue_advance)?;
        if to == TicketStatus::Left {
            return Err(Error::BadTransition { from: "called", to: "left" });
        }
        db.write(&s.actor(), |w| queue::advance(w, ticket_id, to))
    }

    pub fn queue_mark_left(&self, ticket_id: &str) -> Result<Ticket> {
        let mut st = self.state.lock();
        let (db, s) = self.guard(&mut st, Command::queue_mark_left)?;
        db.write(&s.actor(), |w| queue::advance(w, ticket_id, TicketStatus::Left))
    }

    /// The waiting-room board: numbers and rooms only. It reads the database while it is
    /// open on this PC (someone signed in, even if locked) and needs no session of its
    /// own; with the database closed it is empty.
    pub fn queue_board(&self) -> Result<Board> {
        let st = self.state.lock();
        let now = self.now();
        let Some(db) = st.db.as_ref() else {
            return Ok(Board { clinic_name: String::new(), entries: vec![], waiting: 0 });
        };
        let clinic = settings::clinic(db.conn())?;
        queue::board(db.conn(), &clinic.name, now, clinic.tz())
    }
}
