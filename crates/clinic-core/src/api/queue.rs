//! Check-in, the waiting queue and the waiting-room board.

use crate::error::Result;
use crate::queue::{self, Board, CheckIn, QueueToday, Ticket, TicketStatus};
use crate::session::Cx;
use crate::settings;

pub fn queue_check_in(cx: &Cx, input: CheckIn) -> Result<Ticket> {
    let tz = cx.tz()?;
    cx.write(|w| queue::check_in(w, &input, tz))
}

pub fn queue_today(cx: &Cx) -> Result<QueueToday> {
    let tz = cx.tz()?;
    cx.read(|c| queue::today_list(c, cx.now(), tz))
}

/// Calls the next patient for `doctor_id`, or for the signed-in doctor when null.
pub fn queue_call_next(cx: &Cx, doctor_id: Option<String>) -> Result<Ticket> {
    let (tz, staff_id) = (cx.tz()?, cx.staff_id()?.to_string());
    cx.write(|w| queue::call_next(w, doctor_id.as_deref(), &staff_id, tz))
}

pub fn queue_advance(cx: &Cx, ticket_id: String, to: TicketStatus) -> Result<Ticket> {
    cx.write(|w| queue::advance_in_room(w, &ticket_id, to))
}

pub fn queue_mark_left(cx: &Cx, ticket_id: String) -> Result<Ticket> {
    cx.write(|w| queue::advance(w, &ticket_id, TicketStatus::Left))
}

/// The waiting-room board: numbers and rooms only. It reads the database while someone is
/// signed in on this PC (even if locked) and needs no session of its own; otherwise it is
/// empty.
pub fn queue_board(cx: &Cx) -> Result<Board> {
    // Someone must be signed in (a sign-in waiting for its second factor is not).
    let (Some(db), Ok(_)) = (cx.db_if_open(), cx.session()) else {
        return Ok(Board {
            clinic_name: String::new(),
            entries: vec![],
            waiting: 0,
        });
    };
    db.read(|c| {
        let clinic = settings::clinic(c)?;
        queue::board(c, &clinic.name, cx.now(), clinic.tz())
    })
}
