//! Patients, search, duplicates, schedules, booking (and its race), statuses, queue.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use clinic_core::patients::{
    Allergy, DuplicateReason, PatientInput, RegisterOutcome, Severity, Sex,
};
use clinic_core::queue::{CheckIn, Priority, TicketStatus};
use clinic_core::scheduling::{
    self, appointments, AppointmentKind, AppointmentStatus, BookInput, CalendarQuery,
    FirstFreeQuery, RescheduleInput, SlotQuery,
};
use clinic_core::scheduling::{
    Doctor, DoctorStatus, ExceptionKind, ScheduleException, Specialization, WorkingBlock,
};
use clinic_core::session::keyslots::KeySlots;
use clinic_core::store::audit::AuditFilter;
use clinic_core::store::{Actor, Db};
use clinic_core::Core;

use crate::support::*;

pub fn patient(given: &str, family: &str, dob: &str) -> PatientInput {
    PatientInput {
        given_name: given.into(),
        family_name: family.into(),
        sex: Sex::Unknown,
        birth_date: dob.into(),
        phones: vec![],
        email: String::new(),
        address: String::new(),
        national_id: String::new(),
        blood_group: String::new(),
        allergies: vec![],
        chronic_conditions: String::new(),
        medical_history: String::new(),
        current_medications: String::new(),
        insurance_provider: String::new(),
        insurance_policy: String::new(),
        insurance_valid_until: String::new(),
        emergency_name: String::new(),
        emergency_relation: String::new(),
        emergency_phone: String::new(),
        notes: String::new(),
    }
}

pub fn doctor_input(name: &str, specialization_id: &str) -> Doctor {
    Doctor {
        id: String::new(),
        staff_id: None,
        full_name: name.into(),
        specialization_id: specialization_id.into(),
        licence_number: format!(
            "MD-{}",
            name.len() * 7919 + name.bytes().map(|b| b as usize).sum::<usize>()
        ),
        qualification: "MD".into(),
        years_experience: 10,
        fee_minor: 50_000,
        fee_currency: "THB".into(),
        biography: String::new(),
        status: DoctorStatus::Approved,
        available: true,
        room: format!("Room {}", name.len()),
    }
}

pub fn registered(o: RegisterOutcome) -> clinic_core::patients::Patient {
    match o {
        RegisterOutcome::Registered { patient } => patient,
        RegisterOutcome::PossibleDuplicates { matches } => {
            panic!("unexpected duplicates: {matches:?}")
        }
    }
}

pub fn t(s: &str) -> DateTime<Utc> {
    clinic_core::ids::parse_ts(s).unwrap()
}

/// Monday 2030-01-07, 08:00 in Bangkok (01:00 UTC).
pub const MONDAY_8AM: &str = "2030-01-07T01:00:00Z";

pub struct Desk {
    pub c: Clinic,
    pub core: Core,
    pub spec: Specialization,
    pub doctors: Vec<Doctor>,
}

/// A clinic at Monday 08:00 local with a General department ("C") and doctors working
/// Monday to Saturday 09:00–17:00 in 15-minute slots.
pub fn desk(n_doctors: usize) -> Desk {
    let c = new_clinic();
    *c.clock.0.lock() = t(MONDAY_8AM);
    let core = admin_core(&c);
    let mut s = core.settings_get().unwrap();
    s.security.idle_lock_minutes = 240;
    core.settings_update(s).unwrap();
    let spec = core
        .specialization_save(Specialization {
            id: String::new(),
            name: "General".into(),
            queue_code: "c".into(),
        })
        .unwrap();
    let hours: Vec<WorkingBlock> = (1..=6)
        .map(|d| WorkingBlock {
            weekday: d,
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            slot_minutes: 15,
        })
        .collect();
    let doctors = (0..n_doctors)
        .map(|i| {
            let d = core
                .doctor_save(doctor_input(&format!("Doctor {i}"), &spec.id))
                .unwrap();
            core.doctor_hours_set(d.id.clone(), hours.clone()).unwrap();
            d
        })
        .collect();
    Desk {
        c,
        core,
        spec,
        doctors,
    }
}

pub fn book_input(patient: &str, doctor: &str, start: &str, minutes: u16) -> BookInput {
    BookInput {
        patient_id: patient.into(),
        doctor_id: doctor.into(),
        starts_at: start.into(),
        duration_minutes: minutes,
        kind: AppointmentKind::Consultation,
        reason: "check-up".into(),
        override_reason: None,
    }
}

pub fn new_patient(core: &Core, given: &str, family: &str) -> String {
    registered(
        core.patient_register(patient(given, family, "1980-05-05"), true)
            .unwrap(),
    )
    .id
}

#[test]
fn search_finds_any_script_part_order_case_and_marks() {
    let c = new_clinic();
    let core = admin_core(&c);
    let mut anna = patient("Anna", "Smith", "1990-01-01");
    anna.phones = vec!["+66 81 234 5678".into()];
    anna.national_id = "1-1037-00123-45-6".into();
    let anna = registered(core.patient_register(anna, false).unwrap());
    for (g, f) in [
        ("Ánh", "Nguyễn"),
        ("Иван", "Ёлкин"),
        ("Йоханнес", "Мюллер"),
        ("สมชาย", "ใจดี"),
        ("สมศักดิ์", "รักไทย"),
        ("Annabel", "Jones"),
    ] {
        new_patient(&core, g, f);
    }
    let names = |q: &str| -> Vec<String> {
        core.patient_search(q.into(), 0, 20)
            .unwrap()
            .items
            .into_iter()
            .map(|p| format!("{} {}", p.given_name, p.family_name))
            .collect()
    };
    assert_eq!(names("smi"), vec!["Anna Smith"]);
    assert_eq!(names("SMITH an"), vec!["Anna Smith"], "any order, any case");
    assert_eq!(names("ann"), vec!["Anna Smith", "Annabel Jones"]);
    assert_eq!(
        names("anh nguyen"),
        vec!["Ánh Nguyễn"],
        "diacritics ignored"
    );
    assert_eq!(names("НГУ"), Vec::<String>::new());
    assert_eq!(names("елк"), vec!["Иван Ёлкин"], "ё matches е");
    assert_eq!(names("иоханнес"), vec!["Йоханнес Мюллер"], "й matches и");
    assert_eq!(names("мюл"), vec!["Йоханнес Мюллер"]);
    assert_eq!(names("สมช"), vec!["สมชาย ใจดี"], "Thai prefix");
    assert_eq!(names("สมศักดิ์"), vec!["สมศักดิ์ รักไทย"], "Thai with marks");
    assert_eq!(
        names("สมศกด"),
        vec!["สมศักดิ์ รักไทย"],
        "Thai typed without marks"
    );
    // Phones however they are typed, the record number, the national ID.
    for q in ["0812345678", "081-234-5678", "+66 81 234", "812345"] {
        assert_eq!(names(q), vec!["Anna Smith"], "phone {q}");
    }
    assert_eq!(names(&anna.mrn), vec!["Anna Smith"]);
    let number = anna
        .mrn
        .split('-')
        .nth(1)
        .unwrap()
        .trim_start_matches('0')
        .to_string();
    assert!(
        names(&number).contains(&"Anna Smith".to_string()),
        "record number without zeros: {number}"
    );
    assert_eq!(names("1103700123456"), vec!["Anna Smith"]);
    assert_eq!(
        names("1-1037-00123"),
        vec!["Anna Smith"],
        "national ID typed with dashes"
    );
    assert!(names("zzz").is_empty());
}

#[test]
fn record_numbers_of_a_device_with_a_digit_code_are_found() {
    // Codes now start with a letter, but "123-000001" must not be taken for a phone number.
    let dir = tempfile::tempdir().unwrap();
    let key: clinic_core::store::DbKey = zeroize::Zeroizing::new(clinic_core::ids::random_bytes());
    let db = Db::create(dir.path(), &key, "123", TestClock::new().clock()).unwrap();
    let actor = Actor {
        id: "t".into(),
        name: "t".into(),
    };
    let today = start_instant().date_naive();
    let mrn = db
        .write(&actor, |w| {
            match clinic_core::patients::register(
                w,
                &patient("Dee", "Digits", "1990-01-01"),
                true,
                "123",
                today,
                clinic_core::patients::Sections::ALL,
            )? {
                RegisterOutcome::Registered { patient } => Ok(patient.mrn),
                _ => unreachable!(),
            }
        })
        .unwrap();
    assert_eq!(mrn, "123-000001");
    let hits = db
        .read(|c| clinic_core::patients::search(c, &mrn, 0, 20))
        .unwrap()
        .items;
    assert_eq!(hits.len(), 1, "found by its record number");
}

#[test]
fn search_pages_never_load_everything() {
    let c = new_clinic();
    let core = admin_core(&c);
    for i in 0..55 {
        new_patient(&core, &format!("Pat{i}"), "Pagerson");
    }
    let p1 = core.patient_search("pagers".into(), 0, 20).unwrap();
    assert_eq!((p1.items.len(), p1.next_offset), (20, Some(20)));
    let p3 = core.patient_search("pagers".into(), 40, 20).unwrap();
    assert_eq!((p3.items.len(), p3.next_offset), (15, None));
    let p2 = core.patient_search("pagers".into(), 20, 20).unwrap();
    let mut all: Vec<String> = [p1.items, p2.items, p3.items]
        .concat()
        .into_iter()
        .map(|p| p.id)
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 55, "pages don't overlap");
    assert_eq!(
        core.patient_search("pagers".into(), 0, 10_000)
            .unwrap()
            .items
            .len(),
        50,
        "a page is capped"
    );
    assert_eq!(
        core.patient_search("".into(), 0, 5).unwrap().items.len(),
        5,
        "empty query: recent patients, one page"
    );
}

#[test]
fn registration_validates_and_warns_of_duplicates() {
    let c = new_clinic();
    let core = admin_core(&c);
    let reason = |r: clinic_core::Result<RegisterOutcome>| {
        let e = r.unwrap_err();
        (
            e.code(),
            e.params().get("field").cloned().unwrap_or_default(),
            e.params().get("reason").cloned().unwrap_or_default(),
        )
    };
    // "Tomorrow" is the clinic's: at 23:30 UTC it is already tomorrow in Bangkok.
    let tomorrow = clinic_date(&c, 1);
    assert_eq!(
        reason(core.patient_register(patient("A", "B", &tomorrow), false)),
        (
            "validation".to_string(),
            "birth_date".into(),
            "in_future".into()
        )
    );
    assert_eq!(
        reason(core.patient_register(patient(" ", "B", "1990-01-01"), false)).1,
        "given_name"
    );
    assert_eq!(
        reason(core.patient_register(patient("A", "B", "1990-13-01"), false)).2,
        "invalid_format"
    );
    let mut bad = patient("A", "B", "1990-01-01");
    bad.phones = vec!["12-34".into()];
    assert_eq!(
        reason(core.patient_register(bad.clone(), false)).1,
        "phones"
    );
    bad.phones = vec![];
    bad.email = "a@b".into();
    assert_eq!(reason(core.patient_register(bad, false)).1, "email");

    let mut first = patient("Maria", "Ivanova", "1975-03-14");
    first.phones = vec!["+7 912 555 12 34".into()];
    first.national_id = "4509 123456".into();
    first.allergies = vec![Allergy {
        substance: "Penicillin".into(),
        reaction: "rash".into(),
        severity: Severity::Severe,
    }];
    let maria = registered(core.patient_register(first.clone(), false).unwrap());
    assert_eq!(maria.allergies[0].severity, Severity::Severe);

    // Same name and birth date (in another case and with a mark), different everything else.
    let count = |core: &Core| core.patient_search("".into(), 0, 50).unwrap().items.len();
    let before = count(&core);
    match core
        .patient_register(patient("MARIA", "Ivanová", "1975-03-14"), false)
        .unwrap()
    {
        RegisterOutcome::PossibleDuplicates { matches } => {
            assert_eq!(matches.len(), 1);
            assert_eq!(matches[0].patient.id, maria.id);
            assert_eq!(matches[0].reasons, vec![DuplicateReason::NameAndBirthDate]);
        }
        other => panic!("expected a duplicate warning, got {other:?}"),
    }
    assert_eq!(count(&core), before, "a warning writes nothing");
    // Same phone, written differently; same national ID.
    let mut by_phone = patient("Pyotr", "Ivanov", "1970-01-01");
    by_phone.phones = vec!["8 (912) 555-12-34".into()];
    let mut by_id = patient("Olga", "Petrova", "1980-01-01");
    by_id.national_id = "4509123456".into();
    for (input, why) in [
        (by_phone, DuplicateReason::Phone),
        (by_id, DuplicateReason::NationalId),
    ] {
        match core.patient_register(input.clone(), false).unwrap() {
            RegisterOutcome::PossibleDuplicates { matches } => {
                assert_eq!(matches[0].reasons, vec![why])
            }
            other => panic!("expected {why:?}, got {other:?}"),
        }
        // The receptionist goes on anyway.
        registered(core.patient_register(input, true).unwrap());
    }
    assert_eq!(count(&core), before + 2);
}

#[test]
fn record_numbers_never_collide_across_devices() {
    // Two PCs of one clinic, offline, registering at the same time.
    let key: clinic_core::store::DbKey = zeroize::Zeroizing::new(clinic_core::ids::random_bytes());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let clock = TestClock::new();
    let mut all = vec![];
    let handles: Vec<_> = dirs
        .iter()
        .zip(["K3F", "M7Q"])
        .map(|(d, code)| {
            let path = d.path().to_path_buf();
            let key = key.clone();
            let clock = clock.clock();
            std::thread::spawn(move || {
                let db = Db::create(&path, &key, code, clock).unwrap();
                let actor = Actor {
                    id: "t".into(),
                    name: "t".into(),
                };
                let today = start_instant().date_naive();
                (0..200)
                    .map(|i| {
                        db.write(&actor, |w| {
                            Ok(
                                match clinic_core::patients::register(
                                    w,
                                    &patient(&format!("P{i}"), "Same", "2000-01-01"),
                                    true,
                                    code,
                                    today,
                                    clinic_core::patients::Sections::ALL,
                                )? {
                                    RegisterOutcome::Registered { patient } => patient.mrn,
                                    _ => unreachable!(),
                                },
                            )
                        })
                        .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    assert_eq!(all.len(), 400);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 400, "record numbers collide");
    assert!(all.contains(&"K3F-000001".to_string()) && all.contains(&"M7Q-000200".to_string()));
}

#[test]
fn opening_a_chart_is_audited() {
    let d = desk(0);
    let id = new_patient(&d.core, "Vera", "Viewed");
    d.core.patient_get(id.clone()).unwrap();
    let log = d
        .core
        .audit_list(AuditFilter {
            entity_id: Some(id.clone()),
            ..Default::default()
        })
        .unwrap();
    let view = log
        .entries
        .iter()
        .find(|e| e.action == "view")
        .expect("a view entry");
    assert_eq!(view.actor_name, "Anna Admin");
}

/// The key for opening more connections to the same file, as another PC process would.
fn key_of(c: &Clinic) -> clinic_core::store::DbKey {
    let mut slots = KeySlots::load(c.dir.path()).unwrap();
    slots
        .open_with_password(ADMIN, ADMIN_PW, start_instant())
        .unwrap()
        .keys
        .remove(0)
}

#[test]
fn concurrent_bookings_of_one_slot_exactly_one_wins() {
    let d = desk(1);
    let patients: Vec<String> = (0..8)
        .map(|i| new_patient(&d.core, &format!("Racer{i}"), "Race"))
        .collect();
    let doctor = d.doctors[0].id.clone();
    let key = key_of(&d.c);
    let barrier = Arc::new(Barrier::new(patients.len()));
    let handles: Vec<_> = patients
        .iter()
        .map(|p| {
            let (dir, key, barrier, clock) = (
                d.c.dir.path().to_path_buf(),
                key.clone(),
                barrier.clone(),
                d.c.clock.clock(),
            );
            let input = book_input(p, &doctor, "2030-01-07T03:00:00Z", 30);
            std::thread::spawn(move || {
                let db = Db::open(&dir, &key, clock).unwrap();
                let actor = Actor {
                    id: "t".into(),
                    name: "t".into(),
                };
                let tz: chrono_tz::Tz = "Asia/Bangkok".parse().unwrap();
                barrier.wait();
                db.write(&actor, |w| appointments::book(w, &input, tz))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one booking of the slot succeeds");
    for r in &results {
        if let Err(e) = r {
            match e.as_domain::<scheduling::Error>() {
                Some(scheduling::Error::SlotTaken { appointment_id, .. }) => {
                    assert_eq!(appointment_id, &winners[0].id, "names the clash")
                }
                _ => panic!("expected slot_taken, got {e:?}"),
            }
        }
    }
}

#[test]
fn booking_checks_hours_exceptions_both_clashes_and_overrides() {
    let d = desk(2);
    let (a, b) = (d.doctors[0].id.clone(), d.doctors[1].id.clone());
    let p = new_patient(&d.core, "Bo", "Booker");
    let q = new_patient(&d.core, "Cy", "Clash");
    let code = |r: clinic_core::Result<appointments::Appointment>| r.unwrap_err().code();
    // 10:00–10:30 Bangkok = 03:00 UTC.
    let first = d
        .core
        .appointment_book(book_input(&p, &a, "2030-01-07T03:00:00Z", 30))
        .unwrap();
    assert_eq!(first.status, AppointmentStatus::Scheduled);
    let err = d
        .core
        .appointment_book(book_input(&q, &a, "2030-01-07T03:15:00Z", 30))
        .unwrap_err();
    assert_eq!(err.code(), "slot_taken");
    assert_eq!(err.params()["appointment_id"], first.id);
    assert_eq!(err.params()["clash"], "doctor");
    let err = d
        .core
        .appointment_book(book_input(&p, &b, "2030-01-07T03:20:00Z", 15))
        .unwrap_err();
    assert_eq!(
        err.params()["clash"],
        "patient",
        "the patient can't be in two rooms"
    );
    d.core
        .appointment_book(book_input(&q, &a, "2030-01-07T03:30:00Z", 15))
        .expect("back to back is fine");
    // Outside hours: before 09:00, across 17:00, on Sunday, in the past.
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &b, "2030-01-07T01:30:00Z", 15))
        ),
        "outside_hours"
    );
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &b, "2030-01-07T09:50:00Z", 15))
        ),
        "outside_hours"
    );
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &b, "2030-01-13T03:00:00Z", 15))
        ),
        "outside_hours"
    );
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &b, "2030-01-06T03:00:00Z", 15))
        ),
        "validation"
    );
    // Leave for doctor B on Tuesday, a clinic holiday on Wednesday.
    d.core
        .exception_add(ScheduleException {
            id: String::new(),
            doctor_id: Some(b.clone()),
            kind: ExceptionKind::Leave,
            starts_at: "2030-01-08T00:00:00Z".into(),
            ends_at: "2030-01-08T12:00:00Z".into(),
            reason: "conference".into(),
        })
        .unwrap();
    d.core
        .exception_add(ScheduleException {
            id: String::new(),
            doctor_id: None,
            kind: ExceptionKind::Holiday,
            starts_at: "2030-01-08T17:00:00Z".into(),
            ends_at: "2030-01-09T17:00:00Z".into(),
            reason: "public holiday".into(),
        })
        .unwrap();
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &b, "2030-01-08T03:00:00Z", 15))
        ),
        "outside_hours"
    );
    assert_eq!(
        code(
            d.core
                .appointment_book(book_input(&q, &a, "2030-01-09T03:00:00Z", 15))
        ),
        "outside_hours"
    );
    d.core
        .appointment_book(book_input(&q, &a, "2030-01-08T03:00:00Z", 15))
        .expect("doctor A works Tuesday");
    // The admin's list shows both; a doctor's list shows theirs and the clinic's.
    let reasons = |doctor: Option<&String>| -> Vec<String> {
        let list = d
            .core
            .exception_list(
                doctor.cloned(),
                "2030-01-07T00:00:00Z".into(),
                "2030-01-14T00:00:00Z".into(),
            )
            .unwrap();
        list.into_iter().map(|x| x.reason).collect()
    };
    assert_eq!(reasons(None), ["conference", "public holiday"]);
    assert_eq!(reasons(Some(&b)), ["conference", "public holiday"]);
    assert_eq!(reasons(Some(&a)), ["public holiday"]);

    // An emergency may override, with a reason, and the override is audited.
    let mut emergency = book_input(&q, &a, "2030-01-07T03:10:00Z", 20);
    emergency.kind = AppointmentKind::Emergency;
    assert_eq!(
        code(d.core.appointment_book(emergency.clone())),
        "slot_taken",
        "no reason, no override"
    );
    emergency.override_reason = Some("chest pain".into());
    let e = d.core.appointment_book(emergency).unwrap();
    assert_eq!(e.override_reason.as_deref(), Some("chest pain"));
    let log = d
        .core
        .audit_list(AuditFilter {
            entity_id: Some(e.id.clone()),
            ..Default::default()
        })
        .unwrap();
    let o = log
        .entries
        .iter()
        .find(|x| x.action == "override")
        .expect("override audited");
    assert!(
        o.after.as_deref().unwrap().contains("chest pain")
            && o.after.as_deref().unwrap().contains("doctor:")
    );
    let mut not_emergency = book_input(&q, &b, "2030-01-07T05:00:00Z", 15);
    not_emergency.override_reason = Some("because".into());
    assert_eq!(code(d.core.appointment_book(not_emergency)), "validation");
}

#[test]
fn statuses_follow_the_machine_and_keep_history() {
    let d = desk(1);
    let doc = d.doctors[0].id.clone();
    let p = new_patient(&d.core, "Stan", "Status");
    let a = d
        .core
        .appointment_book(book_input(&p, &doc, "2030-01-07T04:00:00Z", 15))
        .unwrap();
    use AppointmentStatus::*;
    for s in [Confirmed, CheckedIn, InConsultation, Completed] {
        assert_eq!(
            d.core
                .appointment_set_status(a.id.clone(), s, "".into())
                .unwrap()
                .status,
            s
        );
    }
    let err = d
        .core
        .appointment_set_status(a.id.clone(), Cancelled, "too late".into())
        .unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.params()["from"].as_str()),
        ("bad_transition", "completed")
    );
    let h = d.core.appointment_history(a.id.clone()).unwrap();
    let seq: Vec<_> = h.iter().map(|e| (e.old_status, e.new_status)).collect();
    assert_eq!(
        seq,
        vec![
            (None, Scheduled),
            (Some(Scheduled), Confirmed),
            (Some(Confirmed), CheckedIn),
            (Some(CheckedIn), InConsultation),
            (Some(InConsultation), Completed)
        ]
    );
    assert_eq!(h[1].by, "Anna Admin");

    let b = d
        .core
        .appointment_book(book_input(&p, &doc, "2030-01-07T05:00:00Z", 15))
        .unwrap();
    assert_eq!(
        d.core
            .appointment_set_status(b.id.clone(), Cancelled, "  ".into())
            .unwrap_err()
            .code(),
        "validation",
        "cancelling needs a reason"
    );
    assert_eq!(
        d.core
            .appointment_set_status(b.id.clone(), InConsultation, "".into())
            .unwrap_err()
            .code(),
        "bad_transition"
    );
    d.core
        .appointment_set_status(b.id.clone(), Cancelled, "patient called".into())
        .unwrap();
    assert_eq!(
        d.core
            .appointment_history(b.id.clone())
            .unwrap()
            .last()
            .unwrap()
            .reason,
        "patient called"
    );
    // A cancelled slot is free again.
    d.core
        .appointment_book(book_input(&p, &doc, "2030-01-07T05:00:00Z", 15))
        .unwrap();
}

#[test]
fn rescheduling_links_old_and_new_under_the_same_checks() {
    let d = desk(1);
    let doc = d.doctors[0].id.clone();
    let p = new_patient(&d.core, "Rita", "Moved");
    let other = new_patient(&d.core, "Otto", "Other");
    let a = d
        .core
        .appointment_book(book_input(&p, &doc, "2030-01-07T03:00:00Z", 30))
        .unwrap();
    let blocker = d
        .core
        .appointment_book(book_input(&other, &doc, "2030-01-07T04:00:00Z", 30))
        .unwrap();
    let mv = |start: &str| RescheduleInput {
        appointment_id: a.id.clone(),
        starts_at: start.into(),
        doctor_id: None,
        duration_minutes: None,
        reason: "asked".into(),
    };
    let err = d
        .core
        .appointment_reschedule(mv("2030-01-07T04:15:00Z"))
        .unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.params()["appointment_id"].clone()),
        ("slot_taken", blocker.id.clone())
    );
    // Overlapping its own old time is fine: it doesn't clash with itself.
    let new = d
        .core
        .appointment_reschedule(mv("2030-01-07T03:15:00Z"))
        .unwrap();
    let old = appointments_get(&d.core, &a.id);
    assert_eq!(
        (old.status, old.rescheduled_to.as_deref()),
        (AppointmentStatus::Rescheduled, Some(new.id.as_str()))
    );
    assert_eq!(
        new.ends_at, "2030-01-07T03:45:00.000000Z",
        "keeps its length"
    );
    assert_eq!(
        d.core
            .appointment_reschedule(mv("2030-01-07T06:00:00Z"))
            .unwrap_err()
            .code(),
        "bad_transition",
        "moved once"
    );
    let day = d
        .core
        .appointments_calendar(CalendarQuery {
            from: "2030-01-07T00:00:00Z".into(),
            to: "2030-01-08T00:00:00Z".into(),
            doctor_ids: vec![],
        })
        .unwrap();
    assert_eq!(day.len(), 2, "the calendar shows the new time, not the old");
}

fn appointments_get(core: &Core, id: &str) -> appointments::Appointment {
    with_db(core, |db| appointments::get(db.conn(), id)).unwrap()
}

#[test]
fn free_slots_and_first_free_doctor() {
    let d = desk(2);
    let (a, b) = (d.doctors[0].id.clone(), d.doctors[1].id.clone());
    let slots = d
        .core
        .slots_find(SlotQuery {
            doctor_id: Some(a.clone()),
            specialization_id: None,
            from: None,
            days: 14,
            limit: 2000,
        })
        .unwrap();
    // 14 days from Monday 08:00: 12 working days (Mon–Sat twice) × 32 slots.
    assert_eq!(slots.len(), 12 * 32);
    assert_eq!(
        slots[0].starts_at, "2030-01-07T02:00:00.000000Z",
        "09:00 Bangkok"
    );
    let p = new_patient(&d.core, "Fay", "First");
    d.core
        .appointment_book(book_input(&p, &a, "2030-01-07T02:00:00Z", 15))
        .unwrap();
    let slots = d
        .core
        .slots_find(SlotQuery {
            doctor_id: Some(a.clone()),
            specialization_id: None,
            from: None,
            days: 1,
            limit: 5,
        })
        .unwrap();
    assert_eq!(
        slots[0].starts_at, "2030-01-07T02:15:00.000000Z",
        "the booked slot is gone"
    );
    // Give B the 09:00 too and A one more booking later: both are next free at 09:15.
    let q = new_patient(&d.core, "Gus", "Second");
    d.core
        .appointment_book(book_input(&q, &b, "2030-01-07T02:00:00Z", 15))
        .unwrap();
    let extra = new_patient(&d.core, "Hal", "Third");
    d.core
        .appointment_book(book_input(&extra, &a, "2030-01-07T06:00:00Z", 15))
        .unwrap();
    // Now both are free from 09:15; A has 2 bookings today, B has 1: B wins the tie.
    let r = new_patient(&d.core, "Ida", "Auto");
    let auto = d
        .core
        .appointment_book_first_free(FirstFreeQuery {
            specialization_id: d.spec.id.clone(),
            patient_id: r,
            from: None,
            days: 3,
            duration_minutes: None,
            kind: AppointmentKind::Consultation,
            reason: String::new(),
        })
        .unwrap();
    assert_eq!(
        (auto.doctor_id.as_str(), auto.starts_at.as_str()),
        (b.as_str(), "2030-01-07T02:15:00.000000Z")
    );

    // The first free slot must also suit the patient: Ida now holds 09:15, so her next
    // "first free" skips every 09:15 and, asked for 30 minutes, lands where 30 minutes fit.
    let second = d
        .core
        .appointment_book_first_free(FirstFreeQuery {
            specialization_id: d.spec.id.clone(),
            patient_id: auto.patient_id.clone(),
            from: None,
            days: 3,
            duration_minutes: Some(30),
            kind: AppointmentKind::FollowUp,
            reason: String::new(),
        })
        .unwrap();
    let got = (
        second.doctor_id.as_str(),
        second.starts_at.as_str(),
        second.ends_at.as_str(),
    );
    assert_eq!(
        got,
        (
            a.as_str(),
            "2030-01-07T02:30:00.000000Z",
            "2030-01-07T03:00:00.000000Z"
        )
    );
}

#[test]
fn queue_numbers_priorities_calls_and_board() {
    let d = desk(1);
    let doc = d.doctors[0].clone();
    let booked = new_patient(&d.core, "Ann", "Booked");
    let walk = new_patient(&d.core, "Wes", "Walkin");
    let urgent = new_patient(&d.core, "Emma", "Emergency");
    let a = d
        .core
        .appointment_book(book_input(&booked, &doc.id, "2030-01-07T02:00:00Z", 15))
        .unwrap();
    let t1 = d
        .core
        .queue_check_in(CheckIn {
            appointment_id: Some(a.id.clone()),
            patient_id: None,
            specialization_id: None,
            doctor_id: None,
            priority: None,
        })
        .unwrap();
    assert_eq!(t1.number, "C-001");
    assert_eq!(
        appointments_get(&d.core, &a.id).status,
        AppointmentStatus::CheckedIn
    );
    // Tomorrow's appointment doesn't check in today, and nothing changes.
    let tomorrow = d
        .core
        .appointment_book(book_input(&urgent, &doc.id, "2030-01-08T02:00:00Z", 15))
        .unwrap();
    let early = d.core.queue_check_in(CheckIn {
        appointment_id: Some(tomorrow.id.clone()),
        patient_id: None,
        specialization_id: None,
        doctor_id: None,
        priority: None,
    });
    assert_eq!(early.unwrap_err().params()["reason"], "in_future");
    assert_eq!(
        appointments_get(&d.core, &tomorrow.id).status,
        AppointmentStatus::Scheduled
    );
    let dup = d.core.queue_check_in(CheckIn {
        appointment_id: None,
        patient_id: Some(booked.clone()),
        specialization_id: Some(d.spec.id.clone()),
        doctor_id: None,
        priority: None,
    });
    assert_eq!(dup.unwrap_err().code(), "already_queued");
    d.c.clock.advance(Duration::minutes(5));
    let t2 = d
        .core
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(walk),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap();
    d.c.clock.advance(Duration::minutes(5));
    let t3 = d
        .core
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(urgent),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: Some(Priority::Emergency),
        })
        .unwrap();
    assert_eq!((t2.number.as_str(), t3.number.as_str()), ("C-002", "C-003"));
    d.c.clock.advance(Duration::minutes(10));
    // The admin can't call patients; a nurse can (for a doctor), and so can the doctor.
    assert_eq!(
        d.core
            .queue_call_next(Some(doc.id.clone()))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    d.core
        .staff_create(new_staff(
            "nora",
            vec![clinic_core::perm::Role::Nurse],
            "Nurse-initial-1",
        ))
        .unwrap();
    let nurse = d.c.core();
    login_any(&d.c, &nurse, "nora", "Nurse-initial-1");
    nurse
        .change_password("Nurse-initial-1".into(), "Nurse-station-22".into())
        .unwrap();
    // Emergency first, then the earliest arrival.
    let called: Vec<String> = (0..3)
        .map(|_| nurse.queue_call_next(Some(doc.id.clone())).unwrap().number)
        .collect();
    assert_eq!(called, vec!["C-003", "C-001", "C-002"]);
    assert_eq!(
        nurse
            .queue_call_next(Some(doc.id.clone()))
            .unwrap_err()
            .code(),
        "queue_empty"
    );
    let today = d.core.queue_today().unwrap();
    assert_eq!(today.waiting, 0);
    // Waits: C-001 20 min, C-002 15 min, C-003 10 min.
    assert_eq!(today.average_wait_minutes, Some(15.0));
    let board = d.core.queue_board().unwrap();
    assert_eq!(board.entries.len(), 3);
    assert_eq!(board.entries[0].room, doc.room);
    // The consultation moves the appointment along; the next day starts at 001 again.
    nurse
        .queue_advance(t1.id.clone(), TicketStatus::InConsultation)
        .unwrap();
    assert_eq!(
        appointments_get(&d.core, &a.id).status,
        AppointmentStatus::InConsultation
    );
    nurse
        .queue_advance(t1.id.clone(), TicketStatus::Done)
        .unwrap();
    assert_eq!(
        appointments_get(&d.core, &a.id).status,
        AppointmentStatus::Completed
    );
    assert_eq!(
        nurse
            .queue_advance(t2.id.clone(), TicketStatus::Left)
            .unwrap_err()
            .code(),
        "bad_transition"
    );
    // Leaving is the front desk's move, not the room's; the refusal names where the ticket
    // really is: a ticket still waiting is "waiting", not "called".
    let late = new_patient(&d.core, "Lee", "Late");
    let w = d
        .core
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(late),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap();
    let err = nurse
        .queue_advance(w.id.clone(), TicketStatus::Left)
        .unwrap_err();
    assert_eq!(
        (
            err.code().as_str(),
            err.params()["from"].as_str(),
            err.params()["to"].as_str()
        ),
        ("bad_transition", "waiting", "left")
    );
    d.core.queue_mark_left(t2.id.clone()).unwrap();
    d.c.clock.advance(Duration::days(1));
    d.core.unlock(ADMIN_PW.into()).unwrap();
    let next_day = new_patient(&d.core, "Ned", "Nextday");
    let t = d
        .core
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(next_day),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap();
    assert_eq!(t.number, "C-001");
}

#[test]
fn not_here_goes_to_the_back_and_back_to_the_department() {
    let d = desk(2);
    let (doc, other) = (d.doctors[0].clone(), d.doctors[1].clone());
    let first = new_patient(&d.core, "Abe", "Absent");
    let second = new_patient(&d.core, "Bea", "Present");
    let walk_in = |p: &str| {
        d.core
            .queue_check_in(CheckIn {
                appointment_id: None,
                patient_id: Some(p.into()),
                specialization_id: Some(d.spec.id.clone()),
                doctor_id: None,
                priority: None,
            })
            .unwrap()
    };
    let t1 = walk_in(&first);
    d.c.clock.advance(Duration::minutes(3));
    let t2 = walk_in(&second);
    d.core
        .staff_create(new_staff(
            "nina",
            vec![clinic_core::perm::Role::Nurse],
            "Nurse-initial-1",
        ))
        .unwrap();
    let nurse = d.c.core();
    login_any(&d.c, &nurse, "nina", "Nurse-initial-1");
    nurse
        .change_password("Nurse-initial-1".into(), "Nurse-station-22".into())
        .unwrap();
    assert_eq!(
        nurse.queue_call_next(Some(doc.id.clone())).unwrap().id,
        t1.id
    );
    // A minute later, not here: waiting again, no longer the doctor's, no room on the board.
    d.c.clock.advance(Duration::minutes(1));
    let back = nurse
        .queue_advance(t1.id.clone(), TicketStatus::Waiting)
        .unwrap();
    assert_eq!(
        (back.status, back.doctor_id.as_deref(), back.room.as_deref()),
        (TicketStatus::Waiting, None, None)
    );
    // The next call takes the one who was behind; the absent patient comes after.
    assert_eq!(
        nurse.queue_call_next(Some(doc.id.clone())).unwrap().id,
        t2.id
    );
    assert_eq!(
        nurse.queue_call_next(Some(other.id.clone())).unwrap().id,
        t1.id,
        "any doctor of the department"
    );
}

#[test]
fn queue_letters_are_one_per_department() {
    let d = desk(0);
    let clash = d.core.specialization_save(Specialization {
        id: String::new(),
        name: "Cardiology".into(),
        queue_code: "C".into(),
    });
    let err = clash.unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.params()["field"].as_str()),
        ("duplicate", "queue_code")
    );
    let k = d
        .core
        .specialization_save(Specialization {
            id: String::new(),
            name: "Cardiology".into(),
            queue_code: "K".into(),
        })
        .unwrap();
    // Saving a department under its own letter is no clash.
    d.core
        .specialization_save(Specialization {
            name: "Cardiology & vessels".into(),
            ..k
        })
        .unwrap();
}

#[test]
fn emergencies_in_the_past_need_an_override_and_bounds_compare_as_instants() {
    let d = desk(1);
    let doc = d.doctors[0].id.clone();
    let p = new_patient(&d.core, "Pat", "Past");
    // Sunday 10:00 Bangkok, yesterday: an emergency without a reason is refused like any booking.
    let mut late = book_input(&p, &doc, "2030-01-06T03:00:00Z", 15);
    late.kind = AppointmentKind::Emergency;
    let err = d.core.appointment_book(late.clone()).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.params()["reason"].as_str()),
        ("validation", "in_past")
    );
    late.override_reason = Some("recorded after the fact".into());
    let a = d.core.appointment_book(late).unwrap();
    let log = d
        .core
        .audit_list(AuditFilter {
            entity_id: Some(a.id.clone()),
            ..Default::default()
        })
        .unwrap();
    let o = log
        .entries
        .iter()
        .find(|x| x.action == "override")
        .expect("override audited");
    assert!(o.after.as_deref().unwrap().contains("in_past"));

    // An emergency at local midnight (17:00 UTC), asked for with the UI's millisecond bounds.
    let mut midnight = book_input(&p, &doc, "2030-01-07T17:00:00Z", 15);
    midnight.kind = AppointmentKind::Emergency;
    midnight.override_reason = Some("night call".into());
    let m = d.core.appointment_book(midnight).unwrap();
    let day = |from: &str, to: &str| -> Vec<String> {
        let q = CalendarQuery {
            from: from.into(),
            to: to.into(),
            doctor_ids: vec![],
        };
        d.core
            .appointments_calendar(q)
            .unwrap()
            .into_iter()
            .map(|e| e.appointment.id)
            .collect()
    };
    assert!(
        day("2030-01-07T17:00:00.000Z", "2030-01-08T16:59:59.999Z").contains(&m.id),
        "Tuesday shows it"
    );
    assert!(
        !day("2030-01-06T17:00:00.000Z", "2030-01-07T17:00:00.000Z").contains(&m.id),
        "Monday doesn't"
    );
    let bad = d.core.appointments_calendar(CalendarQuery {
        from: "Monday".into(),
        to: "2030-01-08T00:00:00Z".into(),
        doctor_ids: vec![],
    });
    assert_eq!(bad.unwrap_err().code(), "validation");
}

#[test]
fn birth_dates_are_checked_against_the_clinics_day() {
    let d = desk(0);
    // 20:00 UTC on Monday 7 January is 03:00 on Tuesday 8 January in Bangkok.
    *d.c.clock.0.lock() = t("2030-01-07T20:00:00Z");
    d.core.unlock(ADMIN_PW.into()).unwrap();
    let newborn = d
        .core
        .patient_register(patient("Baby", "Born", "2030-01-08"), true);
    assert!(newborn.is_ok(), "born today in Bangkok: {newborn:?}");
    let err = d
        .core
        .patient_register(patient("Not", "Yet", "2030-01-09"), true)
        .unwrap_err();
    assert_eq!(err.params()["reason"], "in_future");
}

#[test]
fn ids_with_letters_are_found_typed_with_separators_and_recent_pages_dont_repeat() {
    let d = desk(0);
    let mut p = patient("Paul", "Passport", "1970-02-02");
    p.national_id = "AB123456".into();
    let paul = registered(d.core.patient_register(p, false).unwrap());
    for q in ["AB 123456", "ab-123456", "AB123456"] {
        let found = d.core.patient_search(q.into(), 0, 10).unwrap().items;
        assert_eq!(
            found.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            [paul.id.as_str()],
            "{q}"
        );
    }
    // With the clock standing still every patient has the same updated_at: the recent
    // list still pages without repeats or gaps.
    for i in 0..9 {
        new_patient(&d.core, &format!("Same{i}"), "Moment");
    }
    let mut seen = vec![];
    let mut offset = Some(0);
    while let Some(o) = offset {
        let page = d.core.patient_search("".into(), o, 4).unwrap();
        seen.extend(page.items.into_iter().map(|x| x.id));
        offset = page.next_offset;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (10, 10));
}

#[test]
fn phones_are_found_typed_the_national_or_international_way() {
    let d = desk(0);
    let with_phone = |given: &str, phone: &str| {
        let mut p = patient(given, "Caller", "1980-01-01");
        p.phones = vec![phone.into()];
        registered(d.core.patient_register(p, true).unwrap()).id
    };
    let london = with_phone("London", "+44 7700 900123");
    let moscow = with_phone("Moscow", "+7 916 123-45-67");
    let bangkok = with_phone("Bangkok", "81 234 5678");
    for (typed, who) in [
        ("07700 900123", &london),
        ("+44 7700 900123", &london),
        ("8 916 123 45 67", &moscow),
        ("+7 (916) 123-45-67", &moscow),
        ("+66 81 234 5678", &bangkok),
        ("081-234-5678", &bangkok),
    ] {
        let found: Vec<String> = d
            .core
            .patient_search(typed.into(), 0, 10)
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(found, [who.as_str()], "{typed}");
    }
}

#[test]
fn stroked_letters_fold_and_v4_refolds_keys_stored_before() {
    let d = desk(0);
    let dang = registered(
        d.core
            .patient_register(patient("Văn", "Đặng", "1975-05-05"), true)
            .unwrap(),
    );
    let lukasz = registered(
        d.core
            .patient_register(patient("Łukasz", "Søndergaard", "1981-03-03"), true)
            .unwrap(),
    );
    let ids = |q: &str| -> Vec<String> {
        d.core
            .patient_search(q.into(), 0, 10)
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.id)
            .collect()
    };
    assert_eq!(ids("dang van"), [dang.id.as_str()]);
    assert_eq!(ids("Đặng"), [dang.id.as_str()]);
    assert_eq!(ids("lukasz sond"), [lukasz.id.as_str()]);
    // Keys as the fold before V4 stored them: the stroke kept.
    with_db(&d.core, |db| {
        db.conn().execute(
            "UPDATE patients SET name_key = 'van đang' WHERE id = ?1",
            [&dang.id],
        )?;
        Ok(())
    })
    .unwrap();
    assert!(
        ids("dang").is_empty(),
        "the old key doesn't answer the new fold"
    );
    with_db(&d.core, |db| {
        Ok(db.conn().execute_batch(include_str!(
            "../../../../migrations/V4__fold_stroked_letters.sql"
        ))?)
    })
    .unwrap();
    assert_eq!(ids("dang"), [dang.id.as_str()]);
    let key: String = with_db(&d.core, |db| {
        Ok(db.conn().query_row(
            "SELECT name_key FROM patients WHERE id = ?1",
            [&dang.id],
            |r| r.get(0),
        )?)
    })
    .unwrap();
    assert_eq!(key, "van dang");
}

#[test]
fn each_refused_patient_field_is_named_as_itself() {
    let c = new_clinic();
    let admin = admin_core(&c);
    // A doctor sees (and so may write) every part of the chart.
    admin
        .staff_create(new_staff(
            "dr-fields",
            vec![clinic_core::perm::Role::Doctor],
            "Doctor-initial-1",
        ))
        .unwrap();
    admin.logout().unwrap();
    let core = c.core();
    login_any(&c, &core, "dr-fields", "Doctor-initial-1");
    core.change_password("Doctor-initial-1".into(), "Doctor-second-22".into())
        .unwrap();
    let long = |n: usize| "x".repeat(n);
    let field_of =
        |p: PatientInput| core.patient_register(p, true).unwrap_err().params()["field"].clone();
    let base = || patient("Fay", "Fields", "1990-01-01");
    let mut p = base();
    p.allergies = vec![Allergy {
        substance: "Latex".into(),
        reaction: long(501),
        severity: Severity::Mild,
    }];
    assert_eq!(field_of(p), "allergy_reaction");
    type Set = fn(&mut PatientInput, String);
    let cases: [(Set, usize, &str); 6] = [
        (
            |p, v| p.chronic_conditions = v,
            20_001,
            "chronic_conditions",
        ),
        (|p, v| p.medical_history = v, 20_001, "medical_history"),
        (
            |p, v| p.current_medications = v,
            20_001,
            "current_medications",
        ),
        (|p, v| p.insurance_policy = v, 101, "insurance_policy"),
        (|p, v| p.emergency_relation = v, 101, "emergency_relation"),
        (|p, v| p.notes = v, 20_001, "notes"),
    ];
    for (set, n, field) in cases {
        let mut p = base();
        set(&mut p, long(n));
        assert_eq!(field_of(p), field);
    }
}

#[test]
fn a_stored_value_this_version_does_not_know_is_an_error_not_a_default() {
    let d = desk(1);
    let p = new_patient(&d.core, "Una", "Known");
    let a = d
        .core
        .appointment_book(book_input(&p, &d.doctors[0].id, "2030-01-07T03:00:00Z", 15))
        .unwrap();
    // A newer version (whose schema allows more statuses) wrote one this version doesn't have.
    let newer = |sql: &str| {
        with_db(&d.core, |db| {
            db.conn()
                .execute_batch("PRAGMA ignore_check_constraints = ON")?;
            db.conn().execute(sql, [])?;
            Ok(db
                .conn()
                .execute_batch("PRAGMA ignore_check_constraints = OFF")?)
        })
        .unwrap()
    };
    newer(&format!(
        "UPDATE appointments SET status = 'teleported' WHERE id = '{}'",
        a.id
    ));
    let err = d.core.appointments_for_patient(p.clone()).unwrap_err();
    assert_eq!(err.code(), "unknown_value");
    assert_eq!(
        (
            err.params()["kind"].as_str(),
            err.params()["value"].as_str()
        ),
        ("AppointmentStatus", "teleported")
    );
    // Nothing reads it as "scheduled": a booking over it is not refused as a clash by accident
    // of a default, and the calendar refuses to draw it rather than draw it wrong.
    let q = CalendarQuery {
        from: "2030-01-07T00:00:00Z".into(),
        to: "2030-01-08T00:00:00Z".into(),
        doctor_ids: vec![],
    };
    assert_eq!(
        d.core.appointments_calendar(q).unwrap_err().code(),
        "unknown_value"
    );
    // A ticket's priority is a number: an unknown one is refused the same way.
    d.core
        .queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(p),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap();
    newer("UPDATE queue_tickets SET priority = 7");
    assert_eq!(d.core.queue_today().unwrap_err().code(), "unknown_value");
}

#[test]
fn reasons_have_limits() {
    let d = desk(1);
    let p = new_patient(&d.core, "Rea", "Son");
    let long = "r".repeat(1001);
    let mut input = book_input(&p, &d.doctors[0].id, "2030-01-07T03:00:00Z", 15);
    input.reason = long.clone();
    let field = |e: clinic_core::Error| (e.params()["field"].clone(), e.params()["reason"].clone());
    assert_eq!(
        field(d.core.appointment_book(input).unwrap_err()),
        ("reason".into(), "too_long".into())
    );
    let a = d
        .core
        .appointment_book(book_input(&p, &d.doctors[0].id, "2030-01-07T03:00:00Z", 15))
        .unwrap();
    let e = d
        .core
        .appointment_set_status(a.id.clone(), AppointmentStatus::Cancelled, long.clone())
        .unwrap_err();
    assert_eq!(field(e), ("reason".into(), "too_long".into()));
    let e = d
        .core
        .appointment_reschedule(RescheduleInput {
            appointment_id: a.id.clone(),
            starts_at: "2030-01-07T04:00:00Z".into(),
            doctor_id: None,
            duration_minutes: None,
            reason: long,
        })
        .unwrap_err();
    assert_eq!(field(e), ("reason".into(), "too_long".into()));
    let e = d
        .core
        .exception_add(ScheduleException {
            id: String::new(),
            doctor_id: Some(d.doctors[0].id.clone()),
            kind: ExceptionKind::Leave,
            starts_at: "2030-02-01T00:00:00Z".into(),
            ends_at: "2030-02-02T00:00:00Z".into(),
            reason: "x".repeat(501),
        })
        .unwrap_err();
    assert_eq!(field(e), ("reason".into(), "too_long".into()));
}
