//! Scheduling: departments (specializations) and doctors, their weekly hours and
//! exceptions (`doctors.rs`), the time arithmetic of hours and free slots (`hours.rs`), and
//! appointments: booking without double booking, the status machine, rescheduling, the
//! slot finder and the calendar (`appointments.rs`).

use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::FieldEnum;

pub mod appointments;
pub mod doctors;
pub mod hours;

pub use appointments::{
    Appointment, AppointmentKind, AppointmentStatus, BookInput, CalendarEntry, CalendarQuery,
    FirstFreeQuery, HistoryEntry, RescheduleInput, SlotQuery,
};
pub use doctors::{
    Doctor, DoctorStatus, ExceptionKind, ScheduleException, Specialization, WorkingBlock,
};
pub use hours::Slot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SchedulingTable")]
pub enum Table {
    Specializations,
    Doctors,
    WorkingHours,
    ScheduleExceptions,
    Appointments,
    AppointmentHistory,
}
impl crate::store::Table for Table {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SchedulingField")]
pub enum Field {
    Name,
    QueueCode,
    FullName,
    LicenceNumber,
    Specialization,
    YearsExperience,
    Fee,
    Currency,
    Weekday,
    StartMinute,
    EndMinute,
    SlotMinutes,
    StartsAt,
    EndsAt,
    Duration,
    OverrideReason,
    Reason,
    Qualification,
    Biography,
    Room,
    Doctor,
    Patient,
}
impl FieldEnum for Field {}

/// Whose other appointment a booking clashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Clash {
    Doctor,
    Patient,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "SchedulingError"
)]
pub enum Error {
    #[error(
        "the {} already has an appointment then ({appointment_id} at {starts_at})",
        crate::names::name_of(clash)
    )]
    SlotTaken {
        appointment_id: String,
        clash: Clash,
        starts_at: String,
    },
    #[error("outside the doctor's working hours, or during leave, a holiday or blocked time")]
    OutsideHours,
    #[error("this doctor is not taking appointments")]
    DoctorUnavailable,
    #[error("no free time in that period")]
    NoFreeSlot,
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::domain(e)
    }
}
