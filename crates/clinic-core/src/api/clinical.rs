//! Consultation: the doctor's workspace, visits, vitals, notes, diagnoses, problems.

use crate::clinical::diagnoses::{self, Diagnosis, DiagnosisInput, Problem, ProblemStatus};
use crate::clinical::icd10::IcdCode;
use crate::clinical::notes::{self, Addendum, Draft, DraftInput, Note};
use crate::clinical::prescriptions::{self, Acknowledgement, Drug, ItemInput, Prescription};
use crate::clinical::vitals::{self, Vital, VitalKind, VitalsInput};
use crate::clinical::{self, CloseInput, Encounter, EncounterView, PatientHeader, Workspace};
use crate::error::{Reason, Result};
use crate::patients::Sections;
use crate::session::Cx;
use crate::settings::Language;

fn language(cx: &Cx) -> Result<Language> {
    Ok(cx.session()?.staff.language)
}

pub fn consultation_workspace(cx: &Cx) -> Result<Workspace> {
    crate::clinical::icd10::Index::warm();
    let (staff_id, tz) = (cx.staff_id()?.to_string(), cx.tz()?);
    cx.read(|c| clinical::workspace(c, &staff_id, cx.now(), tz))
}

pub fn encounter_call_next(cx: &Cx) -> Result<Encounter> {
    let (staff_id, tz) = (cx.staff_id()?.to_string(), cx.tz()?);
    cx.write(|w| clinical::call_next(w, &staff_id, tz))
}

pub fn encounter_open(cx: &Cx, patient_id: String) -> Result<Encounter> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| clinical::open(w, &staff_id, &patient_id))
}

pub fn encounter_get(cx: &Cx, id: String) -> Result<EncounterView> {
    let (staff_id, lang) = (cx.staff_id()?.to_string(), language(cx)?);
    cx.write(|w| clinical::view_encounter(w, &id, &staff_id, lang))
}

pub fn encounter_close(cx: &Cx, input: CloseInput) -> Result<Encounter> {
    let (staff_id, today) = (cx.staff_id()?.to_string(), cx.today()?);
    cx.write(|w| clinical::close(w, &staff_id, &input, today))
}

pub fn patient_header(cx: &Cx, patient_id: String) -> Result<PatientHeader> {
    let (seen, today, lang) = (Sections::for_roles(cx.roles()?), cx.today()?, language(cx)?);
    cx.write(|w| clinical::header(w, &patient_id, seen, today, lang))
}

/// Doctors and nurses record vitals, in a visit that is open (anyone's: the nurse works for
/// the doctor) or outside one (triage).
pub fn vitals_record(cx: &Cx, input: VitalsInput) -> Result<Vec<Vital>> {
    let today = cx.today()?;
    cx.write(|w| {
        let p = crate::patients::get(w.conn(), &input.patient_id)?;
        if let Some(e) = &input.encounter_id {
            let e = clinical::encounter(w.conn(), e)?;
            if e.patient_id != p.id {
                return Err(crate::Error::invalid(
                    clinical::Field::Encounter,
                    Reason::Mismatch,
                ));
            }
            if e.status != clinical::EncounterStatus::Open {
                return Err(clinical::Error::EncounterClosed.into());
            }
        }
        let birth = p
            .birth_date
            .parse()
            .map_err(|_| crate::Error::Internal("a stored birth date is not a date".into()))?;
        vitals::record(w, &input, birth, today)
    })
}

pub fn vitals_history(cx: &Cx, patient_id: String, kind: Option<VitalKind>) -> Result<Vec<Vital>> {
    cx.read(|c| vitals::history(c, &patient_id, kind))
}

/// Saved durably: what the doctor typed survives a power cut once this returns.
pub fn note_draft_save(cx: &Cx, input: DraftInput) -> Result<Draft> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write_durable(|w| {
        clinical::writable(w.conn(), &input.encounter_id, &staff_id)?;
        notes::save_draft(w, &staff_id, &input)
    })
}

pub fn note_draft_discard(cx: &Cx, encounter_id: String) -> Result<()> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        clinical::writable(w.conn(), &encounter_id, &staff_id)?;
        notes::discard_draft(w, &encounter_id, &staff_id)
    })
}

pub fn note_sign(cx: &Cx, encounter_id: String) -> Result<Note> {
    let staff = cx.session()?.staff.clone();
    cx.write_durable(|w| {
        let e = clinical::writable(w.conn(), &encounter_id, &staff.id)?;
        notes::sign(w, &e.id, &e.patient_id, &staff.id, &staff.full_name)
    })
}

pub fn note_addendum_add(cx: &Cx, note_id: String, text: String) -> Result<Addendum> {
    let staff = cx.session()?.staff.clone();
    cx.write_durable(|w| notes::add_addendum(w, &note_id, &staff.id, &staff.full_name, &text))
}

pub fn icd_search(cx: &Cx, text: String, limit: u32) -> Result<Vec<IcdCode>> {
    let lang = language(cx)?;
    cx.read(|c| diagnoses::search(c, &text, lang, limit as usize))
}

pub fn icd_local_name_set(cx: &Cx, code: String, language: Language, name: String) -> Result<()> {
    cx.write(|w| diagnoses::set_local_name(w, &code, language, &name))
}

pub fn diagnosis_add(cx: &Cx, input: DiagnosisInput) -> Result<Diagnosis> {
    let (staff_id, today, lang) = (cx.staff_id()?.to_string(), cx.today()?, language(cx)?);
    cx.write(|w| {
        let e = clinical::writable(w.conn(), &input.encounter_id, &staff_id)?;
        diagnoses::add(w, &e.patient_id, &input, &today.to_string(), lang)
    })
}

pub fn diagnosis_remove(cx: &Cx, id: String) -> Result<()> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        let encounter_id = diagnoses::encounter_of(w.conn(), &id)?;
        clinical::writable(w.conn(), &encounter_id, &staff_id)?;
        diagnoses::remove(w, &id)
    })
}

pub fn problem_list(cx: &Cx, patient_id: String) -> Result<Vec<Problem>> {
    let lang = language(cx)?;
    cx.read(|c| diagnoses::problems(c, &patient_id, lang))
}

pub fn problem_set_status(cx: &Cx, id: String, status: ProblemStatus) -> Result<Problem> {
    let (today, lang) = (cx.today()?, language(cx)?);
    cx.write(|w| {
        let patient_id = diagnoses::problem_patient(w.conn(), &id)?;
        diagnoses::set_problem_status(w, &id, status, &today.to_string())?;
        diagnoses::problems(w.conn(), &patient_id, lang)?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| crate::Error::internal("a row just written is gone"))
    })
}

pub fn drug_search(cx: &Cx, text: String, limit: u32) -> Result<Vec<Drug>> {
    cx.read(|c| prescriptions::drug_search(c, &text, limit as usize))
}

/// The visit's draft prescription (started if there is none).
pub fn prescription_open(cx: &Cx, encounter_id: String) -> Result<Prescription> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        let e = clinical::writable(w.conn(), &encounter_id, &staff_id)?;
        prescriptions::open(w, &e)
    })
}

pub fn prescription_get(cx: &Cx, id: String) -> Result<Prescription> {
    cx.read(|c| prescriptions::get(c, &id))
}

pub fn prescriptions_for_patient(cx: &Cx, patient_id: String) -> Result<Vec<Prescription>> {
    cx.read(|c| prescriptions::for_patient(c, &patient_id))
}

/// The prescription's visit, checked to be open and the caller's.
fn rx_writable(
    w: &crate::store::Write<'_>,
    rx_id: &str,
    staff_id: &str,
) -> Result<clinical::Encounter> {
    let rx = prescriptions::get(w.conn(), rx_id)?;
    clinical::writable(w.conn(), &rx.encounter_id, staff_id)
}

pub fn prescription_item_add(cx: &Cx, input: ItemInput) -> Result<Prescription> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        rx_writable(w, &input.prescription_id, &staff_id)?;
        prescriptions::add_item(w, &input)
    })
}

pub fn prescription_item_remove(cx: &Cx, item_id: String) -> Result<Prescription> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        rx_writable(w, &prescriptions::of_item(w.conn(), &item_id)?, &staff_id)?;
        prescriptions::remove_item(w, &item_id)
    })
}

pub fn prescription_sign(
    cx: &Cx,
    id: String,
    acknowledgements: Vec<Acknowledgement>,
) -> Result<Prescription> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write_durable(|w| {
        rx_writable(w, &id, &staff_id)?;
        prescriptions::sign(w, &id, &acknowledgements)
    })
}

/// A new draft, in the doctor's open visit with the same patient, with a signed one's items.
pub fn prescription_renew(cx: &Cx, id: String, encounter_id: String) -> Result<Prescription> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        let e = clinical::writable(w.conn(), &encounter_id, &staff_id)?;
        prescriptions::renew(w, &id, &e)
    })
}

/// Follow-ups due in the next week (and overdue ones), not booked yet.
pub fn follow_ups_due(cx: &Cx) -> Result<Vec<clinical::FollowUpDue>> {
    let until = cx.today()? + chrono::Duration::days(7);
    cx.read(|c| clinical::follow_ups_due(c, &until.to_string()))
}

pub fn follow_up_book(cx: &Cx, encounter_id: String) -> Result<crate::scheduling::Appointment> {
    let tz = cx.tz()?;
    cx.write(|w| clinical::book_follow_up(w, &encounter_id, tz))
}

pub fn lab_tests(cx: &Cx) -> Result<Vec<crate::clinical::lab::LabTest>> {
    cx.read(crate::clinical::lab::tests)
}

pub fn lab_order(
    cx: &Cx,
    encounter_id: String,
    test_id: String,
) -> Result<crate::clinical::lab::LabOrder> {
    let staff_id = cx.staff_id()?.to_string();
    cx.write(|w| {
        let e = clinical::writable(w.conn(), &encounter_id, &staff_id)?;
        crate::clinical::lab::place(w, &e, &test_id)
    })
}

/// Doctors and nurses enter results (the lab's paper, a point-of-care meter).
pub fn lab_result(
    cx: &Cx,
    order_id: String,
    value: f64,
    comment: String,
) -> Result<crate::clinical::lab::LabOrder> {
    cx.write(|w| crate::clinical::lab::enter_result(w, &order_id, value, &comment))
}

pub fn lab_results(
    cx: &Cx,
    patient_id: String,
    test_id: Option<String>,
) -> Result<Vec<crate::clinical::lab::LabOrder>> {
    cx.read(|c| crate::clinical::lab::results(c, &patient_id, test_id.as_deref()))
}

pub fn record_add(
    cx: &Cx,
    input: crate::clinical::records::RecordInput,
) -> Result<crate::clinical::records::TimelineEntry> {
    let (name, today) = (cx.session()?.staff.full_name.clone(), cx.today()?);
    cx.write(|w| crate::clinical::records::add(w, &input, &name, today))
}

/// Attaches a file (decoded and checked before the write begins).
pub fn record_attach(
    cx: &Cx,
    record_id: String,
    file_name: String,
    base64: String,
) -> Result<crate::clinical::records::AttachmentInfo> {
    let staff_id = cx.staff_id()?.to_string();
    let upload = crate::clinical::records::decode(&file_name, &base64)?;
    cx.write(|w| crate::clinical::records::attach(w, &record_id, &staff_id, upload))
}

/// The file as a `data:` URL, to show in the window (audited as a view).
pub fn attachment_view(cx: &Cx, id: String) -> Result<String> {
    let (info, bytes) = open_attachment(cx, &id, "view")?;
    Ok(crate::clinical::records::data_url(&info, &bytes))
}

/// An attachment's bytes (audited as `action`). A file whose row came from another PC before
/// its bytes is fetched from the server now, if it holds it whole; else `FileNotHere`.
pub fn open_attachment(
    cx: &Cx,
    id: &str,
    action: &str,
) -> Result<(crate::clinical::records::AttachmentInfo, Vec<u8>)> {
    use crate::clinical::records;
    match cx.write(|w| records::open(w, id, action)) {
        Err(e)
            if matches!(
                e.as_domain(),
                Some(crate::clinical::Error::FileNotHere { .. })
            ) =>
        {
            let (info, sha) = cx.read(|c| records::attachment(c, id))?;
            // Offline, or not on the server yet: the file is simply not here yet.
            match crate::sync::blobs::fetch_now(cx.db()?, &sha, info.size as u64) {
                Ok(true) => cx.write(|w| records::open(w, id, action)),
                _ => Err(e),
            }
        }
        other => other,
    }
}

pub fn patient_timeline(
    cx: &Cx,
    query: crate::clinical::records::TimelineQuery,
) -> Result<Vec<crate::clinical::records::TimelineEntry>> {
    let tz = cx.tz()?;
    let day = move |at: &str| {
        crate::ids::parse_ts(at)
            .map(|t| t.with_timezone(&tz).date_naive().to_string())
            .unwrap_or_default()
    };
    // The chart's history shows notes and results: the view is audited, as a visit's is.
    cx.write(|w| {
        w.record_event(
            "view_history",
            crate::patients::Table::Patients,
            &query.patient_id,
            None,
        )?;
        crate::clinical::records::timeline(w.conn(), &query, day)
    })
}
