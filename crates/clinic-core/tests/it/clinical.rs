//! Consultation: a doctor calls the next patient, records vitals, writes and signs a note,
//! diagnoses by ICD-10 code, closes the visit; who may do what; a draft survives kill -9.

use chrono::Duration;
use clinic_core::clinical::diagnoses::{DiagnosisInput, DiagnosisRank, ProblemStatus};
use clinic_core::clinical::notes::{DraftInput, Soap};
use clinic_core::clinical::vitals::{Flag, VitalKind, VitalsInput};
use clinic_core::clinical::{CloseInput, EncounterStatus};
use clinic_core::patients::{Allergy, RegisterOutcome, Severity};
use clinic_core::perm::Role;
use clinic_core::queue::{CheckIn, TicketStatus};
use clinic_core::scheduling::{Specialization, WorkingBlock};
use clinic_core::settings::Language;
use clinic_core::Core;

use crate::support::*;

const DOC_PW: &str = "Consult-room-2026";

pub struct Room {
    pub c: Clinic,
    pub admin: Core,
    pub doctor: Core,
    pub spec: Specialization,
    pub doctor_secret: String,
}

/// A clinic with a General department ("C"), a doctor who signs in as `drhouse`, and a
/// nurse `nell`, a receptionist `rita` and a pharmacist `phil`.
pub fn room() -> Room {
    let c = new_clinic();
    let admin = admin_core(&c);
    let mut s = admin.settings_get().unwrap();
    s.security.idle_lock_minutes = 240;
    admin.settings_update(s).unwrap();
    let spec = admin
        .specialization_save(Specialization {
            id: String::new(),
            name: "General".into(),
            queue_code: "c".into(),
        })
        .unwrap();
    let staff = admin
        .staff_create(new_staff("drhouse", vec![Role::Doctor], "Doctor-initial-1"))
        .unwrap();
    let mut d = crate::reception::doctor_input("Gregory House", &spec.id);
    d.staff_id = Some(staff.id.clone());
    let d = admin.doctor_save(d).unwrap();
    admin
        .doctor_hours_set(
            d.id.clone(),
            (1..=7)
                .map(|weekday| WorkingBlock {
                    weekday,
                    start_minute: 0,
                    end_minute: 24 * 60 - 15,
                    slot_minutes: 15,
                })
                .collect(),
        )
        .unwrap();
    for (user, role) in [
        ("nell", Role::Nurse),
        ("rita", Role::Receptionist),
        ("phil", Role::Pharmacist),
    ] {
        admin
            .staff_create(new_staff(user, vec![role], "Initial-pass-11"))
            .unwrap();
    }
    let doctor = c.core();
    let doctor_secret = login_any(&c, &doctor, "drhouse", "Doctor-initial-1");
    doctor
        .change_password("Doctor-initial-1".into(), DOC_PW.into())
        .unwrap();
    Room {
        c,
        admin,
        doctor,
        spec,
        doctor_secret,
    }
}

pub fn signed_in(r: &Room, user: &str) -> Core {
    let core = r.c.core();
    login_any(&r.c, &core, user, "Initial-pass-11");
    core.change_password("Initial-pass-11".into(), "Second-pass-22".into())
        .unwrap();
    core
}

pub fn register(core: &Core, given: &str, family: &str, dob: &str) -> String {
    let mut p = crate::reception::patient(given, family, dob);
    p.allergies = vec![Allergy {
        substance: "Penicillin".into(),
        reaction: "hives".into(),
        severity: Severity::Severe,
    }];
    p.chronic_conditions = "Asthma".into();
    match core.patient_register(p, true).unwrap() {
        RegisterOutcome::Registered { patient } => patient.id,
        other => panic!("{other:?}"),
    }
}

pub fn walk_in(r: &Room, patient_id: &str) {
    r.admin
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(patient_id.into()),
            specialization_id: Some(r.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap();
}

fn draft(encounter_id: &str, revision: u32, subjective: &str) -> DraftInput {
    DraftInput {
        encounter_id: encounter_id.into(),
        revision,
        soap: Soap {
            subjective: subjective.into(),
            ..Default::default()
        },
    }
}

#[test]
fn a_visit_from_call_next_to_a_signed_note_diagnoses_and_follow_up() {
    let r = room();
    let ann = register(&r.doctor, "Ann", "Arbor", "1970-04-01");
    let ben = register(&r.doctor, "Ben", "Bell", "2024-01-15");
    walk_in(&r, &ann);
    r.c.clock.advance(Duration::minutes(2));
    walk_in(&r, &ben);
    let ws = r.doctor.consultation_workspace().unwrap();
    assert_eq!(ws.waiting.len(), 2);
    assert_eq!(ws.doctor_name, "Gregory House");

    // Call next: the first arrival, straight into the consultation.
    let e = r.doctor.encounter_call_next().unwrap();
    assert_eq!(
        (e.patient_id.as_str(), e.status),
        (ann.as_str(), EncounterStatus::Open)
    );
    let ticket = e.ticket_id.clone().unwrap();
    let today = r.admin.queue_today().unwrap();
    let t = today.tickets.iter().find(|t| t.id == ticket).unwrap();
    assert_eq!(t.status, TicketStatus::InConsultation);
    assert_eq!(r.doctor.consultation_workspace().unwrap().waiting.len(), 1);

    // Vitals, one abnormal; an impossible one names its field and writes nothing.
    let bad = r
        .doctor
        .vitals_record(VitalsInput {
            patient_id: ann.clone(),
            encounter_id: Some(e.id.clone()),
            temperature: Some(37.0),
            spo2: Some(140.0),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        (bad.code(), bad.params().get("field").cloned()),
        ("validation".into(), Some("spo2".into()))
    );
    let v = r
        .doctor
        .vitals_record(VitalsInput {
            patient_id: ann.clone(),
            encounter_id: Some(e.id.clone()),
            temperature: Some(38.6),
            systolic: Some(128.0),
            diastolic: Some(82.0),
            heart_rate: Some(88.0),
            weight: Some(70.0),
            height: Some(165.0),
            ..Default::default()
        })
        .unwrap();
    let of = |k| v.iter().find(|x| x.kind == k).unwrap();
    assert_eq!(of(VitalKind::Temperature).flag, Flag::High);
    assert_eq!(of(VitalKind::Temperature).loinc, "8310-5");
    assert_eq!(of(VitalKind::Temperature).unit, "Cel");
    assert_eq!(of(VitalKind::Systolic).flag, Flag::Normal);
    assert_eq!(of(VitalKind::Bmi).value, 25.7);
    assert_eq!(r.doctor.vitals_history(ann.clone(), None).unwrap().len(), 7);

    // The draft follows the typing; a late save of an older revision changes nothing.
    r.doctor.note_draft_save(draft(&e.id, 1, "Fev")).unwrap();
    r.doctor
        .note_draft_save(draft(&e.id, 3, "Fever for two days"))
        .unwrap();
    let stale = r.doctor.note_draft_save(draft(&e.id, 2, "Fever")).unwrap();
    assert_eq!(
        (stale.revision, stale.soap.subjective.as_str()),
        (3, "Fever for two days")
    );
    // A draft is not audited (it is a working copy); signing is.
    let audited = |action: &str, entity: &str| -> i64 {
        with_db(&r.admin, |db| {
            Ok(db.conn().query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1 AND entity = ?2",
                [action, entity],
                |row| row.get(0),
            )?)
        })
        .unwrap()
    };
    assert_eq!(
        audited("insert", "note_drafts") + audited("update", "note_drafts"),
        0
    );

    // Closing with a draft nobody signed is refused: nothing typed is dropped.
    let refused = r
        .doctor
        .encounter_close(CloseInput {
            encounter_id: e.id.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        refused.params().get("field").map(String::as_str),
        Some("note")
    );

    // Diagnoses found by words; the first is primary, the next secondary.
    let found = r
        .doctor
        .icd_search("essential hypertension".into(), 10)
        .unwrap();
    assert_eq!(found[0].code, "I10");
    let d1 = r
        .doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "i10".into(),
            rank: None,
            add_to_problems: true,
        })
        .unwrap();
    assert_eq!((d1.code.as_str(), d1.rank), ("I10", DiagnosisRank::Primary));
    let d2 = r
        .doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "J45.909".into(),
            rank: None,
            add_to_problems: false,
        })
        .unwrap();
    assert_eq!(d2.rank, DiagnosisRank::Secondary);
    let again = r
        .doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "E11.9".into(),
            rank: Some(DiagnosisRank::Primary),
            add_to_problems: false,
        })
        .unwrap_err();
    assert_eq!(again.code(), "primary_taken");
    let unknown = r
        .doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "Q99.999X".into(),
            rank: None,
            add_to_problems: false,
        })
        .unwrap_err();
    assert_eq!(unknown.code(), "unknown_code");

    // Sign: read-only from now on, even to someone with the key; corrections are addenda.
    let note = r.doctor.note_sign(e.id.clone()).unwrap();
    assert_eq!(note.soap.subjective, "Fever for two days");
    assert_eq!(note.author_name, "drhouse Person");
    assert_eq!(
        r.doctor.note_sign(e.id.clone()).unwrap_err().code(),
        "note_signed"
    );
    let edit = with_db(&r.admin, |db| {
        db.conn()
            .execute(
                "UPDATE notes SET subjective = 'changed' WHERE id = ?1",
                [&note.id],
            )
            .map_err(Into::into)
    });
    assert!(edit.unwrap_err().to_string().contains("read-only"));
    r.c.clock.advance(Duration::minutes(1));
    let add = r
        .doctor
        .note_addendum_add(note.id.clone(), "Temperature re-measured: 37.9".into())
        .unwrap();
    assert!(add.signed_at > note.signed_at);

    // The header shows what must not be missed.
    let h = r.doctor.patient_header(ann.clone()).unwrap();
    assert_eq!(h.allergies[0].substance, "Penicillin");
    assert_eq!(h.chronic_conditions, "Asthma");
    assert_eq!(h.problems.len(), 1);
    assert_eq!(h.problems[0].code, "I10");
    assert!(h
        .last_vitals
        .iter()
        .any(|v| v.kind == VitalKind::Temperature && v.value == 38.6));
    assert_eq!(h.recent_visits[0].id, e.id);
    assert!(h.age_years >= 55);

    // Close with a follow-up: the ticket is done; a follow-up in the past is refused.
    let past = r
        .doctor
        .encounter_close(CloseInput {
            encounter_id: e.id.clone(),
            follow_up_on: Some(clinic_date(&r.c, -1)),
            follow_up_note: String::new(),
        })
        .unwrap_err();
    assert_eq!(
        past.params().get("field").map(String::as_str),
        Some("follow_up_on")
    );
    let closed = r
        .doctor
        .encounter_close(CloseInput {
            encounter_id: e.id.clone(),
            follow_up_on: Some(clinic_date(&r.c, 14)),
            follow_up_note: "Recheck blood pressure".into(),
        })
        .unwrap();
    assert_eq!(closed.status, EncounterStatus::Closed);
    assert_eq!(closed.follow_up_on, Some(clinic_date(&r.c, 14)));
    let t = r.admin.queue_today().unwrap();
    assert_eq!(
        t.tickets.iter().find(|t| t.id == ticket).unwrap().status,
        TicketStatus::Done
    );
    // A closed visit takes no more writing.
    assert_eq!(
        r.doctor
            .note_draft_save(draft(&e.id, 9, "late"))
            .unwrap_err()
            .code(),
        "encounter_closed"
    );

    // Viewing the visit is audited, and shows all of it.
    let before = audited("view", "encounters");
    let view = r.doctor.encounter_get(e.id.clone()).unwrap();
    assert_eq!(audited("view", "encounters"), before + 1);
    assert_eq!(view.diagnoses.len(), 2);
    assert_eq!(view.vitals.len(), 7);
    assert_eq!(view.note.unwrap().addenda.len(), 1);

    // The problem can be resolved.
    let p = r
        .doctor
        .problem_set_status(h.problems[0].id.clone(), ProblemStatus::Resolved)
        .unwrap();
    assert_eq!(p.status, ProblemStatus::Resolved);
    assert!(p.resolved_on.is_some());

    // Reception sees the follow-up in the week it is due and books it in one step, with the
    // same doctor, on or after the day asked for.
    assert!(
        r.admin.follow_ups_due().unwrap().is_empty(),
        "due in two weeks, not this one"
    );
    r.c.clock.advance(Duration::days(8));
    let desk = admin_core(&r.c);
    let due = desk.follow_ups_due().unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].patient_id.as_str(), due[0].note.as_str()),
        (ann.as_str(), "Recheck blood pressure")
    );
    let booked = desk.follow_up_book(due[0].encounter_id.clone()).unwrap();
    assert_eq!(booked.doctor_id, e.doctor_id);
    assert_eq!(
        booked.kind,
        clinic_core::scheduling::AppointmentKind::FollowUp
    );
    let local_day = clinic_core::ids::parse_ts(&booked.starts_at)
        .unwrap()
        .with_timezone(&clinic_tz())
        .date_naive()
        .to_string();
    assert!(
        local_day >= clinic_date(&r.c, 6),
        "{local_day} is before the day asked for"
    );
    assert!(desk.follow_ups_due().unwrap().is_empty());
    assert_eq!(
        desk.follow_up_book(due[0].encounter_id.clone())
            .unwrap_err()
            .code(),
        "duplicate"
    );
}

#[test]
fn nurses_record_vitals_and_only_the_visits_doctor_writes_in_it() {
    let r = room();
    let kid = register(&r.doctor, "Kim", "Kid", "2025-06-01");
    walk_in(&r, &kid);
    let e = r.doctor.encounter_call_next().unwrap();
    let nurse = signed_in(&r, "nell");
    // A nurse records vitals in the doctor's visit; a baby's heart rate of 150 is normal.
    let v = nurse
        .vitals_record(VitalsInput {
            patient_id: kid.clone(),
            encounter_id: Some(e.id.clone()),
            heart_rate: Some(150.0),
            head_circumference: Some(45.0),
            ..Default::default()
        })
        .unwrap();
    assert!(v.iter().all(|v| v.flag == Flag::Normal));
    assert_eq!(v[0].taken_by, "nell Person");
    // …but writes no notes and opens no visits.
    assert_eq!(
        nurse
            .note_draft_save(draft(&e.id, 1, "x"))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(nurse.encounter_call_next().unwrap_err().code(), "forbidden");
    // She reads the visit (notes included); the receptionist reads none of it.
    assert!(nurse.encounter_get(e.id.clone()).is_ok());
    let rita = signed_in(&r, "rita");
    assert_eq!(
        rita.encounter_get(e.id.clone()).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        rita.patient_header(kid.clone()).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        rita.vitals_record(VitalsInput {
            patient_id: kid.clone(),
            temperature: Some(37.0),
            ..Default::default()
        })
        .unwrap_err()
        .code(),
        "forbidden"
    );

    // Another doctor can't write in this doctor's visit.
    let staff = r
        .admin
        .staff_create(new_staff("drwho", vec![Role::Doctor], "Initial-pass-11"))
        .unwrap();
    let mut d = crate::reception::doctor_input("Doctor Who", &r.spec.id);
    d.staff_id = Some(staff.id);
    r.admin.doctor_save(d).unwrap();
    let who = signed_in(&r, "drwho");
    let err = who.note_draft_save(draft(&e.id, 1, "mine?")).unwrap_err();
    assert_eq!(err.code(), "not_your_encounter");
    // Nor open a second visit with a patient who is in one.
    assert_eq!(
        who.encounter_open(kid.clone()).unwrap_err().code(),
        "encounter_open"
    );
    // An empty queue says so.
    assert_eq!(
        r.doctor.encounter_call_next().unwrap_err().code(),
        "queue_empty"
    );
}

#[test]
fn a_clinics_own_names_for_codes_are_searched_in_its_languages() {
    let r = room();
    r.doctor
        .icd_local_name_set("I10".into(), Language::Ru, "Гипертоническая болезнь".into())
        .unwrap();
    r.doctor
        .icd_local_name_set("i10".into(), Language::Th, "ความดันโลหิตสูง".into())
        .unwrap();
    r.doctor
        .icd_local_name_set(
            "E11.9".into(),
            Language::Ru,
            "Сахарный диабет 2 типа без осложнений".into(),
        )
        .unwrap();
    assert_eq!(
        r.doctor
            .icd_local_name_set("X99.999".into(), Language::Ru, "нет".into())
            .unwrap_err()
            .code(),
        "unknown_code"
    );
    // Search uses the language of the person searching.
    r.doctor.set_language(Language::Ru).unwrap();
    let found = r.doctor.icd_search("гипертон".into(), 10).unwrap();
    assert_eq!(found[0].code, "I10");
    assert_eq!(
        found[0].local_name.as_deref(),
        Some("Гипертоническая болезнь")
    );
    // Folded like patient search: ё/е, case; words in any order.
    let found = r.doctor.icd_search("ДИАБЕТ сахарный".into(), 10).unwrap();
    assert_eq!(found[0].code, "E11.9");
    // English words still find codes, with the Russian name beside them.
    let found = r
        .doctor
        .icd_search("essential hypertension".into(), 10)
        .unwrap();
    assert_eq!(
        found[0].local_name.as_deref(),
        Some("Гипертоническая болезнь")
    );
    // Thai: matched inside the run of letters (Thai has no spaces between words).
    r.doctor.set_language(Language::Th).unwrap();
    let found = r.doctor.icd_search("โลหิตสูง".into(), 10).unwrap();
    assert_eq!(found[0].code, "I10");
    // An empty name removes it.
    r.doctor
        .icd_local_name_set("I10".into(), Language::Th, " ".into())
        .unwrap();
    assert!(r.doctor.icd_search("โลหิตสูง".into(), 10).unwrap().is_empty());
}

/// The doctor's window saves the draft as they type. Each save that returned survives the
/// process being killed outright (SIGKILL, no clean-up), as in a crash or a power cut.
#[test]
fn a_draft_saved_before_kill_9_is_there_after_it() {
    use std::io::{BufRead, BufReader};
    let r = room();
    let pat = register(&r.doctor, "Kat", "Killed", "1990-01-01");
    walk_in(&r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    r.doctor.logout().unwrap();
    r.admin.logout().unwrap();
    let now = clinic_core::ids::ts(r.c.clock.now());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clinicdesk-cli"))
        .args([
            "as",
            r.c.dir.path().to_str().unwrap(),
            "drhouse",
            DOC_PW,
            "--totp",
            &r.doctor_secret,
            "--now",
            &now,
            "type-note",
            &e.id,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0u32;
    while last < 40 {
        match lines.next() {
            Some(Ok(l)) => last = l.trim_start_matches("saved ").parse().unwrap(),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the typist stopped: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    r.c.clock.advance(Duration::seconds(30));
    let doctor = r.c.core();
    login_with_totp(&r.c, &doctor, "drhouse", DOC_PW, &r.doctor_secret);
    let view = doctor.encounter_get(e.id.clone()).unwrap();
    let d = view.draft.expect("the draft survived");
    assert!(d.revision >= last, "saved {last}, found {}", d.revision);
    assert_eq!(d.soap.subjective, format!("Cough for {} days", d.revision));
}

pub fn item(
    rx: &str,
    drug: Option<&str>,
    name: &str,
) -> clinic_core::clinical::prescriptions::ItemInput {
    clinic_core::clinical::prescriptions::ItemInput {
        prescription_id: rx.into(),
        drug_id: drug.map(String::from),
        name: name.into(),
        dose: "1 tablet".into(),
        frequency: "twice a day".into(),
        duration_days: 7,
        quantity: 14,
        unit: "tablets".into(),
        ..Default::default()
    }
}

pub fn drug_id(core: &Core, name: &str) -> String {
    let found = core.drug_search(name.into(), 5).unwrap();
    found
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("{name} not in the formulary: {found:?}"))
        .id
        .clone()
}

#[test]
fn prescribing_warns_of_allergies_interactions_and_duplicates_and_signing_needs_reasons() {
    use clinic_core::clinical::prescriptions::{
        Acknowledgement, AlertKind, AlertSeverity, Effect, RxStatus,
    };
    let r = room();
    // Allergic to penicillin; already takes warfarin.
    let mut p = crate::reception::patient("ปิ่นแก้ว", "ศรีสุข", "1985-02-14");
    p.allergies = vec![Allergy {
        substance: "Penicillin".into(),
        reaction: "anaphylaxis".into(),
        severity: Severity::Severe,
    }];
    p.current_medications = "Warfarin 5 mg once daily".into();
    let pat = match r.doctor.patient_register(p, true).unwrap() {
        RegisterOutcome::Registered { patient } => patient.id,
        other => panic!("{other:?}"),
    };
    walk_in(&r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    let rx = r.doctor.prescription_open(e.id.clone()).unwrap();
    assert_eq!(
        r.doctor.prescription_open(e.id.clone()).unwrap().id,
        rx.id,
        "one draft per visit"
    );

    // A penicillin allergy catches amoxicillin by its class.
    let got = r
        .doctor
        .prescription_item_add(item(&rx.id, Some(&drug_id(&r.doctor, "Amoxicillin")), ""))
        .unwrap();
    let allergy = got
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::Allergy)
        .unwrap();
    assert_eq!(allergy.severity, AlertSeverity::Contraindicated);
    assert_eq!(allergy.subject, "Amoxicillin / Penicillin");
    // Ibuprofen with the warfarin she takes: bleeding, with its source.
    let got = r
        .doctor
        .prescription_item_add(item(&rx.id, Some(&drug_id(&r.doctor, "Ibuprofen")), ""))
        .unwrap();
    let bleed = got
        .alerts
        .iter()
        .find(|a| a.effect == Some(Effect::Bleeding))
        .unwrap();
    assert_eq!(bleed.subject, "Ibuprofen / Warfarin (current)");
    assert!(bleed.source.contains("Malone"));
    // Two NSAIDs: duplicate therapy. An MAO inhibitor with an SSRI: contraindicated.
    let naproxen = r
        .doctor
        .prescription_item_add(item(&rx.id, Some(&drug_id(&r.doctor, "Naproxen")), ""))
        .unwrap();
    assert!(naproxen
        .alerts
        .iter()
        .any(|a| a.kind == AlertKind::Duplicate && a.detail == "nsaids"));
    let naproxen_item = naproxen.items.last().unwrap().id.clone();
    let without = r.doctor.prescription_item_remove(naproxen_item).unwrap();
    assert!(!without
        .alerts
        .iter()
        .any(|a| a.kind == AlertKind::Duplicate));
    r.doctor
        .prescription_item_add(item(&rx.id, Some(&drug_id(&r.doctor, "Phenelzine")), ""))
        .unwrap();
    let got = r
        .doctor
        .prescription_item_add(clinic_core::clinical::prescriptions::ItemInput {
            route: "oral".into(),
            ..item(&rx.id, None, "Sertraline")
        })
        .unwrap();
    let serotonin = got
        .alerts
        .iter()
        .find(|a| a.effect == Some(Effect::SerotoninSyndrome))
        .unwrap();
    assert_eq!(serotonin.severity, AlertSeverity::Contraindicated);
    assert!(serotonin.source.contains("Phansalkar"));
    // Statin with a strong CYP3A4 inhibitor; tizanidine with ciprofloxacin.
    let pair = |a: &str, b: &str| {
        let e2 = {
            let q = register(&r.doctor, "Pat", &format!("{a}{b}"), "1960-01-01");
            q
        };
        let enc = r.doctor.encounter_open(e2.clone()).unwrap();
        let rx2 = r.doctor.prescription_open(enc.id.clone()).unwrap();
        r.doctor
            .prescription_item_add(item(&rx2.id, Some(&drug_id(&r.doctor, a)), ""))
            .unwrap();
        let out = r
            .doctor
            .prescription_item_add(item(&rx2.id, Some(&drug_id(&r.doctor, b)), ""))
            .unwrap();
        r.doctor
            .prescription_sign(
                rx2.id.clone(),
                out.alerts
                    .iter()
                    .map(|a| Acknowledgement {
                        key: a.key.clone(),
                        reason: "test".into(),
                    })
                    .collect(),
            )
            .unwrap();
        r.doctor
            .encounter_close(CloseInput {
                encounter_id: enc.id,
                ..Default::default()
            })
            .unwrap();
        out.alerts
    };
    assert!(pair("Simvastatin", "Clarithromycin")
        .iter()
        .any(|a| a.effect == Some(Effect::Myopathy)));
    assert!(pair("Tizanidine", "Ciprofloxacin")
        .iter()
        .any(|a| a.effect == Some(Effect::RaisedLevels)));
    assert!(pair("Citalopram", "Azithromycin")
        .iter()
        .any(|a| a.effect == Some(Effect::QtProlongation)));
    assert!(
        pair("Paracetamol", "Metformin").is_empty(),
        "no warning without a reason"
    );

    // Signing: every warning needs a reason; the reasons are kept and audited.
    let rx_now = r.doctor.prescription_get(rx.id.clone()).unwrap();
    let n = rx_now.alerts.len();
    assert!(n >= 4, "{:?}", rx_now.alerts);
    let refused = r
        .doctor
        .prescription_sign(rx.id.clone(), vec![])
        .unwrap_err();
    assert_eq!(refused.code(), "unacknowledged_warnings");
    assert_eq!(refused.params().get("count"), Some(&n.to_string()));
    let mut acks: Vec<Acknowledgement> = rx_now
        .alerts
        .iter()
        .map(|a| Acknowledgement {
            key: a.key.clone(),
            reason: "Benefits outweigh the risk; monitored".into(),
        })
        .collect();
    acks[0].reason = "ok".into(); // too short to be a reason
    assert_eq!(
        r.doctor
            .prescription_sign(rx.id.clone(), acks.clone())
            .unwrap_err()
            .code(),
        "unacknowledged_warnings"
    );
    acks[0].reason = "Desensitised under supervision".into();
    let signed = r.doctor.prescription_sign(rx.id.clone(), acks).unwrap();
    assert_eq!(signed.status, RxStatus::Signed);
    assert_eq!(signed.overrides.len(), n);
    assert!(signed.alerts.is_empty());
    let audited: i64 = with_db(&r.admin, |db| {
        Ok(db.conn().query_row(
            "SELECT count(*) FROM audit_log WHERE entity = 'prescription_overrides' AND action = 'insert'",
            [],
            |row| row.get(0),
        )?)
    })
    .unwrap();
    assert!(audited >= n as i64);
    // Read-only once signed, even to someone with the key.
    assert_eq!(
        r.doctor
            .prescription_item_add(item(&rx.id, None, "Vitamin C"))
            .unwrap_err()
            .code(),
        "prescription_signed"
    );
    let edit = with_db(&r.admin, |db| {
        db.conn()
            .execute(
                "UPDATE prescription_items SET dose = 'lots' WHERE prescription_id = ?1",
                [&rx.id],
            )
            .map_err(Into::into)
    });
    assert!(edit.unwrap_err().to_string().contains("read-only"));

    // Renewed into a new draft with the same items.
    let renewed = r
        .doctor
        .prescription_renew(rx.id.clone(), e.id.clone())
        .unwrap();
    assert_eq!(renewed.renewed_from.as_deref(), Some(rx.id.as_str()));
    assert_eq!(renewed.items.len(), signed.items.len());
    assert_eq!(renewed.status, RxStatus::Draft);

    // The pharmacist reads prescriptions (and allergies), writes none; reception reads none.
    let phil = signed_in(&r, "phil");
    assert_eq!(phil.prescription_get(rx.id.clone()).unwrap().items.len(), 4);
    assert_eq!(
        phil.prescription_open(e.id.clone()).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        phil.encounter_get(e.id.clone()).unwrap_err().code(),
        "forbidden"
    );
    let rita = signed_in(&r, "rita");
    assert_eq!(
        rita.prescription_get(rx.id.clone()).unwrap_err().code(),
        "forbidden"
    );

    // The printed prescription, in Thai and in Russian: patient, drugs, doctor, licence.
    use clinic_core::print::Output;
    for (lang, title) in [
        (Language::Th, "ใบสั่งยา"),
        (Language::Ru, "Рецепт"),
        (Language::En, "Prescription"),
    ] {
        let pdf = r
            .doctor
            .prescription_pdf(Output::Save, &rx.id, Some(lang))
            .unwrap();
        let text = crate::printing::pdftotext(&pdf, &format!("prescription-{lang:?}"), false);
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        for want in [
            title,
            "ปิ่นแก้ว ศรีสุข",
            "Amoxicillin",
            "Ibuprofen",
            "Phenelzine",
            "Sertraline",
            "Gregory House",
        ] {
            assert!(
                squeeze(&text).contains(&squeeze(want)),
                "{lang:?}: {want} missing:\n{text}"
            );
        }
        let licence = r
            .admin
            .doctor_list()
            .unwrap()
            .into_iter()
            .find(|d| d.full_name == "Gregory House")
            .unwrap()
            .licence_number;
        assert!(text.contains(&licence));
    }
    assert_eq!(
        rita.prescription_pdf(Output::Print, &rx.id, None)
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

#[test]
fn lab_results_records_attachments_and_the_timeline() {
    use base64::Engine;
    use clinic_core::clinical::lab::LabStatus;
    use clinic_core::clinical::records::{RecordInput, RecordKind, TimelineQuery};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let r = room();
    let pat = register(&r.doctor, "Lab", "Person", "1975-05-05");
    walk_in(&r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();

    // Orders, and results entered by the nurse: flagged against the range.
    let tests = r.doctor.lab_tests().unwrap();
    let hb = tests.iter().find(|t| t.loinc == "718-7").unwrap();
    let k = tests.iter().find(|t| t.loinc == "2823-3").unwrap();
    let o1 = r.doctor.lab_order(e.id.clone(), hb.id.clone()).unwrap();
    let o2 = r.doctor.lab_order(e.id.clone(), k.id.clone()).unwrap();
    assert_eq!(o1.status, LabStatus::Ordered);
    assert_eq!(
        r.doctor
            .lab_order(e.id.clone(), "no-such-test".into())
            .unwrap_err()
            .params()
            .get("field")
            .map(String::as_str),
        Some("lab_test")
    );
    let nurse = signed_in(&r, "nell");
    let res = nurse
        .lab_result(o1.id.clone(), 10.5, "repeat in a month".into())
        .unwrap();
    assert_eq!((res.flag, res.value), (Some(Flag::Low), Some(10.5)));
    assert_eq!(res.test.unit, "g/dL");
    assert_eq!(
        nurse
            .lab_result(o2.id.clone(), 4.0, String::new())
            .unwrap()
            .flag,
        Some(Flag::Normal)
    );
    assert_eq!(
        nurse
            .lab_result(o1.id.clone(), 11.0, String::new())
            .unwrap_err()
            .code(),
        "lab_resulted"
    );
    let o3 = r.doctor.lab_order(e.id.clone(), hb.id.clone()).unwrap();
    assert_eq!(
        nurse
            .lab_result(o3.id.clone(), f64::INFINITY, String::new())
            .unwrap_err()
            .params()
            .get("field")
            .map(String::as_str),
        Some("lab_value")
    );
    let rita = signed_in(&r, "rita");
    assert_eq!(
        rita.lab_result(o3.id.clone(), 12.0, String::new())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    // Results land on the trend (the patient's results of that test, oldest first).
    let trend = r
        .doctor
        .lab_results(pat.clone(), Some(hb.id.clone()))
        .unwrap();
    assert_eq!(trend.len(), 1);
    assert_eq!(r.doctor.encounter_get(e.id.clone()).unwrap().lab.len(), 3);

    // A record with attachments: a picture and a PDF, kept inside the encrypted database.
    let rec = r
        .doctor
        .record_add(RecordInput {
            patient_id: pat.clone(),
            encounter_id: Some(e.id.clone()),
            kind: RecordKind::Imaging,
            title: "Chest X-ray".into(),
            description: "No consolidation".into(),
            recorded_on: clinic_date(&r.c, 0),
        })
        .unwrap();
    let marker = b"ATTACHMENT-PLAINTEXT-MARKER-7f3a9c";
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(marker);
    let pic = r
        .doctor
        .record_attach(rec.id.clone(), "../../etc/x-ray.png".into(), b64(&png))
        .unwrap();
    assert_eq!(
        (pic.file_name.as_str(), pic.mime.as_str()),
        ("x-ray.png", "image/png")
    );
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend_from_slice(marker);
    r.doctor
        .record_attach(rec.id.clone(), "report.pdf".into(), b64(&pdf))
        .unwrap();
    let refused = |bytes: &[u8]| {
        r.doctor
            .record_attach(rec.id.clone(), "f.png".into(), b64(bytes))
            .unwrap_err()
            .params()
            .get("reason")
            .cloned()
    };
    assert_eq!(
        refused(b"just text, not a picture").as_deref(),
        Some("invalid_format")
    );
    let mut huge = b"%PDF-".to_vec();
    huge.resize(20 * 1024 * 1024 + 1, b'x');
    assert_eq!(refused(&huge).as_deref(), Some("too_long"));
    assert_eq!(
        r.doctor
            .record_add(RecordInput {
                patient_id: pat.clone(),
                recorded_on: clinic_date(&r.c, 3),
                title: "Later".into(),
                ..Default::default()
            })
            .unwrap_err()
            .params()
            .get("reason")
            .map(String::as_str),
        Some("in_future")
    );
    // Viewing and saving out are audited; other roles can't.
    let url = r.doctor.attachment_view(pic.id.clone()).unwrap();
    assert_eq!(url, format!("data:image/png;base64,{}", b64(&png)));
    let (name, bytes) = r.doctor.attachment_export(&pic.id).unwrap();
    assert_eq!((name.as_str(), bytes), ("x-ray.png", png.clone()));
    let audited = |action: &str| -> i64 {
        with_db(&r.admin, |db| {
            Ok(db.conn().query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1 AND entity = 'attachments'",
                [action],
                |row| row.get(0),
            )?)
        })
        .unwrap()
    };
    assert_eq!((audited("view"), audited("export")), (1, 1));
    assert_eq!(
        rita.attachment_view(pic.id.clone()).unwrap_err().code(),
        "forbidden"
    );
    let phil = signed_in(&r, "phil");
    assert_eq!(
        phil.attachment_view(pic.id.clone()).unwrap_err().code(),
        "forbidden"
    );
    // Only the record's author adds files to it.
    let staff = r
        .admin
        .staff_create(new_staff("drwho", vec![Role::Doctor], "Initial-pass-11"))
        .unwrap();
    let mut d = crate::reception::doctor_input("Doctor Who", &r.spec.id);
    d.staff_id = Some(staff.id);
    r.admin.doctor_save(d).unwrap();
    let who = signed_in(&r, "drwho");
    let err = who
        .record_attach(rec.id.clone(), "mine.png".into(), b64(&png))
        .unwrap_err();
    assert_eq!(
        (err.code(), err.params().get("author").map(String::as_str)),
        ("not_your_record".into(), Some("drhouse Person"))
    );
    // Nowhere on disk in the clear.
    for entry in std::fs::read_dir(r.c.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{} holds an attachment in the clear",
                p.display()
            );
        }
    }

    // The timeline: what the visit wrote and the record, filtered by kind and date.
    r.doctor.note_draft_save(draft(&e.id, 1, "Tired")).unwrap();
    r.doctor.note_sign(e.id.clone()).unwrap();
    r.doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "D64.9".into(),
            rank: None,
            add_to_problems: false,
        })
        .unwrap();
    let all = r
        .doctor
        .patient_timeline(TimelineQuery {
            patient_id: pat.clone(),
            ..Default::default()
        })
        .unwrap();
    let kinds: std::collections::BTreeSet<_> =
        all.iter().map(|t| format!("{:?}", t.kind)).collect();
    for k in ["Imaging", "Note", "Diagnosis", "LabResult"] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    let xray = all.iter().find(|t| t.kind == RecordKind::Imaging).unwrap();
    assert_eq!(xray.attachments.len(), 2);
    let labs = r
        .doctor
        .patient_timeline(TimelineQuery {
            patient_id: pat.clone(),
            kinds: vec![RecordKind::LabResult],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(labs.len(), 2);
    assert!(labs.iter().any(|l| l.description.contains("(low)")));
    let later = r
        .doctor
        .patient_timeline(TimelineQuery {
            patient_id: pat.clone(),
            from: clinic_date(&r.c, 1),
            ..Default::default()
        })
        .unwrap();
    assert!(later.is_empty());
    // Each look at the chart's history is audited against the patient.
    let looked: i64 = with_db(&r.admin, |db| {
        Ok(db.conn().query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'view_history' AND entity_id = ?1",
            [&pat],
            |row| row.get(0),
        )?)
    })
    .unwrap();
    assert_eq!(looked, 3);
    assert_eq!(
        rita.patient_timeline(TimelineQuery {
            patient_id: pat,
            ..Default::default()
        })
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

/// Not only which clinical commands a role may call: what it gets back. A visit with vitals,
/// a signed note, a diagnosis, a signed prescription (one warning overridden) and a follow-up;
/// then each role reads every view of it that it may.
#[test]
fn each_role_gets_back_only_the_clinical_fields_it_may_see() {
    use clinic_core::clinical::prescriptions::Acknowledgement;
    use clinic_core::clinical::records::TimelineQuery;
    const SECRET_NOTE: &str = "Confides low mood since the divorce";
    let r = room();
    let pat = register(&r.doctor, "Vera", "Views", "1966-06-06");
    walk_in(&r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    r.doctor
        .vitals_record(VitalsInput {
            patient_id: pat.clone(),
            encounter_id: Some(e.id.clone()),
            systolic: Some(150.0),
            diastolic: Some(95.0),
            ..Default::default()
        })
        .unwrap();
    r.doctor
        .note_draft_save(draft(&e.id, 1, SECRET_NOTE))
        .unwrap();
    r.doctor.note_sign(e.id.clone()).unwrap();
    r.doctor
        .diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: "F32.9".into(),
            rank: None,
            add_to_problems: true,
        })
        .unwrap();
    let rx = r.doctor.prescription_open(e.id.clone()).unwrap();
    let drafted = r
        .doctor
        .prescription_item_add(item(&rx.id, Some(&drug_id(&r.doctor, "Amoxicillin")), ""))
        .unwrap();
    let acks = drafted
        .alerts
        .iter()
        .map(|a| Acknowledgement {
            key: a.key.clone(),
            reason: "tolerated a cephalosporin before".into(),
        })
        .collect();
    r.doctor.prescription_sign(rx.id.clone(), acks).unwrap();
    r.doctor
        .encounter_close(CloseInput {
            encounter_id: e.id.clone(),
            follow_up_on: Some(clinic_date(&r.c, 5)),
            follow_up_note: "recheck blood pressure".into(),
        })
        .unwrap();
    r.admin
        .staff_create(new_staff("cash", vec![Role::Cashier], "Initial-pass-11"))
        .unwrap();

    // Each view as JSON (what crosses IPC), or the error code.
    let views = |core: &Core| -> Vec<(&'static str, Result<String, String>)> {
        fn json<T: serde::Serialize>(r: clinic_core::Result<T>) -> Result<String, String> {
            r.map(|v| serde_json::to_string(&v).unwrap())
                .map_err(|e| e.code().to_string())
        }
        vec![
            ("encounter_get", json(core.encounter_get(e.id.clone()))),
            ("patient_header", json(core.patient_header(pat.clone()))),
            (
                "vitals_history",
                json(core.vitals_history(pat.clone(), None)),
            ),
            ("problem_list", json(core.problem_list(pat.clone()))),
            (
                "patient_timeline",
                json(core.patient_timeline(TimelineQuery {
                    patient_id: pat.clone(),
                    ..Default::default()
                })),
            ),
            (
                "prescription_get",
                json(core.prescription_get(rx.id.clone())),
            ),
            ("follow_ups_due", json(core.follow_ups_due())),
        ]
    };
    let nurse = signed_in(&r, "nell");
    let rita = signed_in(&r, "rita");
    let phil = signed_in(&r, "phil");
    let cash = signed_in(&r, "cash");
    // Which views each role gets (in the order above).
    let expected: [(&str, &Core, [bool; 7]); 6] = [
        ("doctor", &r.doctor, [true; 7]),
        ("nurse", &nurse, [true; 7]),
        (
            "receptionist",
            &rita,
            [false, false, false, false, false, false, true],
        ),
        (
            "pharmacist",
            &phil,
            [false, false, false, false, false, true, false],
        ),
        (
            "cashier",
            &cash,
            [false, false, false, false, false, false, true],
        ),
        (
            "admin",
            &r.admin,
            [false, false, false, false, false, false, true],
        ),
    ];
    for (who, core, allowed) in expected {
        for ((view, got), allowed) in views(core).into_iter().zip(allowed) {
            match (&got, allowed) {
                (Ok(_), true) => {}
                (Err(code), false) => assert_eq!(code, "forbidden", "{who} {view}"),
                _ => panic!("{who} {view}: {got:?}"),
            }
            let Ok(body) = got else { continue };
            // The note is read only by those who read clinical notes.
            let reads_notes = matches!(who, "doctor" | "nurse");
            if !reads_notes {
                assert!(!body.contains("divorce"), "{who} {view} shows the note");
                assert!(!body.contains("F32.9"), "{who} {view} shows the diagnosis");
            }
            match view {
                "encounter_get" => assert!(body.contains(SECRET_NOTE), "{who}"),
                // The pharmacist sees the items and the doctor's reason for the override.
                "prescription_get" => {
                    assert!(body.contains("Amoxicillin") && body.contains("cephalosporin"))
                }
                // Reception sees whom to book and why, in the doctor's words for reception.
                "follow_ups_due" => {
                    assert!(body.contains("Vera") && body.contains("recheck blood pressure"))
                }
                _ => {}
            }
        }
    }
}
