//! Pharmacy figures (BENCHMARKS.md), on a generated pharmacy of 5,000 items, 50,000 batches
//! and 1,000,000 ledger rows (kept in `target/bench-pharmacy`, generated the first time,
//! a few minutes): on-hand stock of every item, the alert counts, and one dispensing of a
//! signed prescription (FEFO pick, dispensing and ledger rows, billable item, audit) through
//! the pharmacist's command.
//!
//! `cargo bench -p clinic-core --features dev-data --bench pharmacy` prints one JSON document.

mod common;

use std::path::PathBuf;

use clinic_core::clinical::prescriptions::{Acknowledgement, ItemInput};
use clinic_core::dev::demo::{self, Size};
use clinic_core::dev::generate::{self, PharmacySize};
use clinic_core::pharmacy::dispense::{DispenseInput, DispenseLine};
use clinic_core::session::LoginStep;
use clinic_core::store::Actor;
use clinic_core::Core;
use common::Stats;

const SIZE: PharmacySize = PharmacySize {
    items: 5_000,
    batches_per_item: 10,
    moves: 1_000_000,
};

fn sign_in(core: &Core, user: &str, password: &str) {
    let LoginStep::Done { .. } = core.login(user.into(), password.into()).unwrap() else {
        panic!("demo accounts have no second factor");
    };
}

fn main() {
    let dir = std::env::var_os("CLINICDESK_BENCH_PHARMACY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-pharmacy")
        });
    let mut generated_s = None;
    if !dir.join("clinic.db").exists() {
        let t = std::time::Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        demo::create_sized(
            &dir,
            Size {
                doctors: 1,
                patients: 50,
                days: 1,
                max_appointments: 0,
            },
            |_| {},
        )
        .unwrap();
        let core = Core::new(&dir);
        sign_in(&core, "pharmacist", "dispensary-demo");
        let actor = Actor {
            id: "bench".into(),
            name: "Generated stock".into(),
        };
        generate::pharmacy(&core.dev_db().unwrap(), &actor, SIZE, 7, |p| {
            eprintln!("{p}")
        })
        .unwrap();
        core.logout().unwrap();
        generated_s = Some((t.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    }
    let core = Core::new(&dir);

    // Fifty signed prescriptions of amoxicillin, a thousand capsules each, to dispense from.
    sign_in(&core, "doctor", "consult-room-demo");
    let patients = core.patient_search(String::new(), 0, 50).unwrap().items;
    let amox = core.drug_search("Amoxicillin".into(), 5).unwrap()[0]
        .id
        .clone();
    let mut rxs = Vec::new();
    for p in &patients {
        let e = core.encounter_open(p.id.clone()).unwrap();
        let rx = core.prescription_open(e.id.clone()).unwrap();
        let drafted = core
            .prescription_item_add(ItemInput {
                prescription_id: rx.id.clone(),
                drug_id: Some(amox.clone()),
                dose: "1 capsule".into(),
                frequency: "3 times a day".into(),
                duration_days: 7,
                quantity: 1000,
                unit: "capsules".into(),
                ..Default::default()
            })
            .unwrap();
        let acks = drafted
            .alerts
            .iter()
            .map(|a| Acknowledgement {
                key: a.key.clone(),
                reason: "benchmark".into(),
            })
            .collect();
        let signed = core.prescription_sign(rx.id.clone(), acks).unwrap();
        core.encounter_close(clinic_core::clinical::CloseInput {
            encounter_id: e.id,
            ..Default::default()
        })
        .unwrap();
        rxs.push(signed);
    }
    core.logout().unwrap();

    sign_in(&core, "pharmacist", "dispensary-demo");
    let db = core.dev_db().unwrap();
    let (batches, moves): (i64, i64) = db
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM stock_moves)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    let mut items = 0;
    let on_hand = Stats::measure("on_hand_all_items", 3, 40, |_| {
        let all = core.stock_items(String::new(), None).unwrap();
        items = all.len();
        std::hint::black_box(all);
    });
    let mut counts = Default::default();
    let alerts = Stats::measure("alert_counts", 10, 200, |_| {
        counts = core.stock_alert_counts().unwrap();
    });
    let dispense = Stats::measure("dispense_one", 20, 2000, |i| {
        let rx = &rxs[i % rxs.len()];
        core.dispense(DispenseInput {
            prescription_id: rx.id.clone(),
            lines: vec![DispenseLine {
                prescription_item_id: rx.items[0].id.clone(),
                quantity: 1,
                ..Default::default()
            }],
        })
        .unwrap();
    });
    let off = db
        .read(clinic_core::pharmacy::ledger::out_of_balance)
        .unwrap();
    assert!(
        off.is_empty(),
        "the ledger no longer sums to on-hand: {off:?}"
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "pharmacy": {
                "items": items,
                "batches": batches,
                "ledger_rows": moves,
                "generated_s": generated_s,
            },
            "on_hand_all_items": on_hand.json(),
            "alert_counts": { "stats": alerts.json(), "counts": counts },
            "dispense_one": dispense.json(),
        }))
        .unwrap()
    );
}
