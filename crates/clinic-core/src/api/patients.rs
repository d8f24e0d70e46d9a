//! The patient registry.

use crate::error::Result;
use crate::patients::{self, Patient, PatientInput, RegisterOutcome, SearchPage, Sections};
use crate::session::Cx;

pub fn patient_search(cx: &Cx, text: String, offset: u32, limit: u32) -> Result<SearchPage> {
    cx.read(|c| patients::search(c, &text, offset, limit))
}

/// Opens a chart; the view is recorded in the audit trail.
pub fn patient_get(cx: &Cx, id: String) -> Result<Patient> {
    let seen = Sections::for_roles(cx.roles()?);
    cx.write(|w| patients::open_chart(w, &id, seen))
}

pub fn patient_register(
    cx: &Cx,
    input: PatientInput,
    allow_duplicates: bool,
) -> Result<RegisterOutcome> {
    let (code, today, seen) = (
        cx.db()?.device().code.clone(),
        cx.today()?,
        Sections::for_roles(cx.roles()?),
    );
    cx.write(|w| patients::register(w, &input, allow_duplicates, &code, today, seen))
}

pub fn patient_update(cx: &Cx, id: String, input: PatientInput) -> Result<Patient> {
    let (today, seen) = (cx.today()?, Sections::for_roles(cx.roles()?));
    cx.write(|w| patients::update(w, &id, &input, today, seen))
}

pub fn patient_set_photo(cx: &Cx, id: String, mime: String, base64: String) -> Result<()> {
    cx.write(|w| patients::set_photo(w, &id, &mime, &base64))
}

/// Looking at the photo is a view of the chart: audited.
pub fn patient_photo(cx: &Cx, id: String) -> Result<Option<String>> {
    cx.write(|w| patients::photo(w, &id))
}
