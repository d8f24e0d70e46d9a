//! Doctors, their hours and leave, appointments.

use crate::error::Result;
use crate::ids::stored_ts;
use crate::scheduling::{appointments, doctors, Field};
use crate::scheduling::{
    Appointment, AppointmentStatus, BookInput, CalendarEntry, CalendarQuery, Doctor,
    FirstFreeQuery, HistoryEntry, RescheduleInput, ScheduleException, Slot, SlotQuery,
    Specialization, WorkingBlock,
};
use crate::session::Cx;

pub fn specialization_list(cx: &Cx) -> Result<Vec<Specialization>> {
    cx.read(doctors::specializations)
}

pub fn specialization_save(cx: &Cx, input: Specialization) -> Result<Specialization> {
    cx.write(|w| doctors::save_specialization(w, &input))
}

pub fn doctor_list(cx: &Cx) -> Result<Vec<Doctor>> {
    cx.read(doctors::doctors)
}

pub fn doctor_save(cx: &Cx, input: Doctor) -> Result<Doctor> {
    cx.write(|w| doctors::save_doctor(w, &input))
}

pub fn doctor_hours_get(cx: &Cx, doctor_id: String) -> Result<Vec<WorkingBlock>> {
    cx.read(|c| doctors::working_hours(c, &doctor_id))
}

pub fn doctor_hours_set(
    cx: &Cx,
    doctor_id: String,
    blocks: Vec<WorkingBlock>,
) -> Result<Vec<WorkingBlock>> {
    cx.write(|w| doctors::set_working_hours(w, &doctor_id, &blocks))
}

/// Exceptions overlapping [from, to): one doctor's and the clinic-wide ones, or all.
pub fn exception_list(
    cx: &Cx,
    doctor_id: Option<String>,
    from: String,
    to: String,
) -> Result<Vec<ScheduleException>> {
    let (from, to) = (
        stored_ts(&from, Field::StartsAt)?,
        stored_ts(&to, Field::EndsAt)?,
    );
    cx.read(|c| doctors::exceptions(c, doctor_id.as_deref(), &from, &to))
}

pub fn exception_add(cx: &Cx, input: ScheduleException) -> Result<ScheduleException> {
    cx.write(|w| doctors::add_exception(w, &input))
}

pub fn exception_remove(cx: &Cx, id: String) -> Result<()> {
    cx.write(|w| doctors::remove_exception(w, &id))
}

pub fn slots_find(cx: &Cx, query: SlotQuery) -> Result<Vec<Slot>> {
    let tz = cx.tz()?;
    cx.read(|c| appointments::find_slots(c, &query, cx.now(), tz))
}

pub fn appointment_book(cx: &Cx, input: BookInput) -> Result<Appointment> {
    let tz = cx.tz()?;
    cx.write(|w| appointments::book(w, &input, tz))
}

pub fn appointment_book_first_free(cx: &Cx, query: FirstFreeQuery) -> Result<Appointment> {
    let tz = cx.tz()?;
    cx.write(|w| appointments::book_first_free(w, &query, tz))
}

pub fn appointment_set_status(
    cx: &Cx,
    id: String,
    status: AppointmentStatus,
    reason: String,
) -> Result<Appointment> {
    cx.write(|w| appointments::set_status(w, &id, status, &reason))
}

pub fn appointment_reschedule(cx: &Cx, input: RescheduleInput) -> Result<Appointment> {
    let tz = cx.tz()?;
    cx.write(|w| appointments::reschedule(w, &input, tz))
}

pub fn appointment_history(cx: &Cx, id: String) -> Result<Vec<HistoryEntry>> {
    cx.read(|c| appointments::history_of(c, &id))
}

pub fn appointments_calendar(cx: &Cx, query: CalendarQuery) -> Result<Vec<CalendarEntry>> {
    cx.read(|c| appointments::calendar(c, &query))
}

/// A patient's appointments are part of the chart: listing them is audited.
pub fn appointments_for_patient(cx: &Cx, patient_id: String) -> Result<Vec<CalendarEntry>> {
    cx.write(|w| {
        let list = appointments::for_patient(w.conn(), &patient_id)?;
        w.record_event(
            "view_appointments",
            crate::patients::Table::Patients,
            &patient_id,
            None,
        )?;
        Ok(list)
    })
}
