//! Consultation figures (BENCHMARKS.md): ICD-10-CM search over the whole list (by code and
//! by words), opening a patient with ten years of history (200 visits, 1,000 vitals, 200
//! signed notes and diagnoses, 300 prescriptions, made through the commands a doctor uses),
//! and making a prescription's PDF.
//!
//! `cargo bench -p clinic-core --bench clinical` prints one JSON document.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use clinic_core::clinical::diagnoses::DiagnosisInput;
use clinic_core::clinical::icd10::Index;
use clinic_core::clinical::notes::{DraftInput, Soap};
use clinic_core::clinical::prescriptions::{Acknowledgement, ItemInput};
use clinic_core::clinical::vitals::VitalsInput;
use clinic_core::clinical::CloseInput;
use clinic_core::dev::demo::{self, Size};
use clinic_core::print::Output;
use clinic_core::session::LoginStep;
use clinic_core::settings::Language;
use clinic_core::Core;
use common::Stats;

const QUERIES: &[&str] = &[
    "e11",
    "E11.9",
    "i10",
    "s72.0",
    "diabetes",
    "diab typ 2 without",
    "essential hypertension",
    "high blood pressure",
    "fracture femur right initial",
    "asthma",
    "pneumonia unspecified",
    "chronic kidney disease stage 3",
    "cough",
    "pain",
    "a",
    "infection",
    "otitis media acute",
    "migraine without aura",
    "burn of second degree",
    "z00",
];

fn main() {
    let t = std::time::Instant::now();
    let ix = Index::get();
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let search = Stats::measure("icd_search", 200, 4000, |i| {
        let found = ix.search(QUERIES[i % QUERIES.len()], 20);
        std::hint::black_box(found);
    });
    let worst = QUERIES
        .iter()
        .map(|q| {
            let s = Stats::measure(q, 5, 50, |_| {
                std::hint::black_box(ix.search(q, 20));
            });
            (q.to_string(), Stats::us(s.pct(0.95)))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();

    // A clinic, and a patient seen every 18 days for ten years.
    let dir = tempfile::tempdir().unwrap();
    demo::create_sized(
        dir.path(),
        Size {
            doctors: 1,
            patients: 1,
            days: 1,
            max_appointments: 0,
        },
        |_| {},
    )
    .unwrap();
    let now = Arc::new(Mutex::new(Utc::now()));
    let clock_now = now.clone();
    let core = Core::with_clock(dir.path(), Arc::new(move || *clock_now.lock().unwrap()));
    let LoginStep::Done { .. } = core
        .login("doctor".into(), "consult-room-demo".into())
        .unwrap()
    else {
        panic!("the demo doctor has no second factor");
    };
    let patient = core.patient_search(String::new(), 0, 1).unwrap().items[0]
        .id
        .clone();
    let t = std::time::Instant::now();
    let step = |now: &Arc<Mutex<DateTime<Utc>>>, d: Duration| *now.lock().unwrap() += d;
    let codes = [
        "I10", "E11.9", "J45.909", "J06.9", "M54.5", "K21.9", "N39.0", "R51.9",
    ];
    let formulary = |name: &str| core.drug_search(name.into(), 5).unwrap()[0].id.clone();
    let (amlodipine, metformin) = (formulary("Amlodipine"), formulary("Metformin"));
    let mut last_rx = String::new();
    for visit in 0..200u32 {
        step(&now, Duration::days(18));
        // Eighteen days idle locked the session: the doctor unlocks it.
        core.unlock("consult-room-demo".into()).unwrap();
        let e = core.encounter_open(patient.clone()).unwrap();
        core.vitals_record(VitalsInput {
            patient_id: patient.clone(),
            encounter_id: Some(e.id.clone()),
            temperature: Some(36.5 + (visit % 20) as f64 / 10.0),
            systolic: Some(110.0 + (visit % 40) as f64),
            diastolic: Some(70.0 + (visit % 20) as f64),
            heart_rate: Some(60.0 + (visit % 30) as f64),
            weight: Some(70.0 + (visit % 10) as f64 / 2.0),
            ..Default::default()
        })
        .unwrap();
        core.note_draft_save(DraftInput {
            encounter_id: e.id.clone(),
            revision: 1,
            soap: Soap {
                subjective: format!("Visit {visit}: headache and tiredness for a week"),
                objective: "Alert, afebrile, chest clear".into(),
                assessment: "Stable".into(),
                plan: "Continue treatment; review in three weeks".into(),
            },
        })
        .unwrap();
        core.note_sign(e.id.clone()).unwrap();
        core.diagnosis_add(DiagnosisInput {
            encounter_id: e.id.clone(),
            code: codes[visit as usize % codes.len()].into(),
            rank: None,
            add_to_problems: visit % 25 == 0,
        })
        .unwrap();
        // 300 prescriptions: one a visit, two in every other visit.
        for n in 0..(1 + visit % 2) {
            // The second opens a new draft: the first is signed by then.
            let _ = n;
            let rx = core.prescription_open(e.id.clone()).unwrap();
            for (drug, dose) in [(&amlodipine, "1 tablet"), (&metformin, "2 tablets")] {
                core.prescription_item_add(ItemInput {
                    prescription_id: rx.id.clone(),
                    drug_id: Some(drug.clone()),
                    dose: dose.into(),
                    frequency: "once a day".into(),
                    duration_days: 30,
                    quantity: 30,
                    unit: "tablets".into(),
                    ..Default::default()
                })
                .unwrap();
            }
            let alerts = core.prescription_get(rx.id.clone()).unwrap().alerts;
            core.prescription_sign(
                rx.id.clone(),
                alerts
                    .iter()
                    .map(|a| Acknowledgement {
                        key: a.key.clone(),
                        reason: "long-term treatment".into(),
                    })
                    .collect(),
            )
            .unwrap();
            last_rx = rx.id;
        }
        core.encounter_close(CloseInput {
            encounter_id: e.id.clone(),
            ..Default::default()
        })
        .unwrap();
    }
    let built_s = t.elapsed().as_secs_f64();
    let history = core.vitals_history(patient.clone(), None).unwrap();
    assert_eq!(
        history.len(),
        1000,
        "five vitals a visit (no height, so no BMI)"
    );
    let last = core.patient_header(patient.clone()).unwrap().recent_visits[0]
        .id
        .clone();
    // Opening the patient: the header (allergies, problems, last vitals, recent visits),
    // every vital for the trend charts, and the last visit with its note and diagnoses.
    let open = Stats::measure("open_patient_10_years", 20, 300, |_| {
        std::hint::black_box(core.patient_header(patient.clone()).unwrap());
        std::hint::black_box(core.vitals_history(patient.clone(), None).unwrap());
        std::hint::black_box(core.encounter_get(last.clone()).unwrap());
        std::hint::black_box(core.prescriptions_for_patient(patient.clone()).unwrap());
    });
    let prescriptions = core
        .prescriptions_for_patient(patient.clone())
        .unwrap()
        .len();
    assert_eq!(prescriptions, 300);
    let mut pdf_bytes = 0;
    let pdf = Stats::measure("prescription_pdf", 10, 200, |_| {
        let p = core
            .prescription_pdf(Output::Save, &last_rx, Some(Language::Th))
            .unwrap();
        pdf_bytes = p.len();
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "icd10": {
                "codes": ix.len(),
                "load_ms": (load_ms * 10.0).round() / 10.0,
                "search": search.json(),
                "slowest_query_p95": { "query": worst.0, "p95_us": worst.1 },
            },
            "history_10_years": {
                "visits": 200,
                "vitals": history.len(),
                "prescriptions": prescriptions,
                "built_s": (built_s * 10.0).round() / 10.0,
                "open": open.json(),
            },
            "prescription_pdf": { "stats": pdf.json(), "bytes": pdf_bytes },
        }))
        .unwrap()
    );
}
