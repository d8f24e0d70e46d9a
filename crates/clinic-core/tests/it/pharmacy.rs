//! The pharmacy: receiving batches (on a purchase order or not), FEFO dispensing of signed
//! prescriptions, partial fills, substitutions, expired stock, the append-only ledger that
//! always sums to on-hand, counts, alerts, reports, labels, scanning, and who may do what.

use chrono::Duration;
use clinic_core::clinical::prescriptions::{Acknowledgement, Prescription};
use clinic_core::pharmacy::dispense::{DispenseInput, DispenseLine, FillStatus, WarningKind};
use clinic_core::pharmacy::ledger::{CountInput, CountLine, MoveKind};
use clinic_core::pharmacy::orders::{OrderInput, OrderLineInput, OrderStatus};
use clinic_core::pharmacy::reports::{ReportKind, ReportQuery};
use clinic_core::pharmacy::{Category, ReceiveInput, Shelf, StockItem, StockItemInput, Supplier};
use clinic_core::print::Output;
use clinic_core::settings::Language;
use clinic_core::Core;

use crate::clinical::{drug_id, item, register, room, signed_in, walk_in, Room};
use crate::support::*;

/// A signed prescription for a new patient: `(drug, quantity, days)` per item.
pub fn signed_rx(r: &Room, given: &str, family: &str, items: &[(&str, u32, u32)]) -> Prescription {
    let pat = register(&r.doctor, given, family, "1980-03-03");
    walk_in(r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    let rx = r.doctor.prescription_open(e.id.clone()).unwrap();
    let mut last = rx.clone();
    for (drug, qty, days) in items {
        let mut it = item(&rx.id, Some(&drug_id(&r.doctor, drug)), "");
        it.quantity = *qty;
        it.duration_days = *days;
        last = r.doctor.prescription_item_add(it).unwrap();
    }
    let acks = last
        .alerts
        .iter()
        .map(|a| Acknowledgement {
            key: a.key.clone(),
            reason: "checked with the patient".into(),
        })
        .collect();
    let signed = r.doctor.prescription_sign(rx.id.clone(), acks).unwrap();
    r.doctor
        .encounter_close(clinic_core::clinical::CloseInput {
            encounter_id: e.id,
            ..Default::default()
        })
        .unwrap();
    signed
}

pub fn stock_item(core: &Core, name: &str) -> StockItem {
    core.stock_items(name.into(), None)
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is not a stock item"))
}

pub fn receive(core: &Core, item: &str, lot: &str, expiry: String, qty: i64) -> String {
    core.stock_receive(ReceiveInput {
        item_id: item.into(),
        lot: lot.into(),
        expiry,
        quantity: qty,
        cost: 200,
        ..Default::default()
    })
    .unwrap()
    .id
}

fn line(rx: &Prescription, n: usize, qty: i64) -> DispenseLine {
    DispenseLine {
        prescription_item_id: rx.items[n].id.clone(),
        quantity: qty,
        ..Default::default()
    }
}

fn dispense(
    core: &Core,
    rx: &Prescription,
    lines: Vec<DispenseLine>,
) -> clinic_core::Result<clinic_core::pharmacy::dispense::DispenseOutcome> {
    core.dispense(DispenseInput {
        prescription_id: rx.id.clone(),
        lines,
    })
}

fn balanced(core: &Core) {
    let off = with_db(core, |db| {
        clinic_core::pharmacy::ledger::out_of_balance(db.conn())
    })
    .unwrap();
    assert!(
        off.is_empty(),
        "batches whose on-hand is not their ledger's sum: {off:?}"
    );
}

#[test]
fn receiving_on_orders_and_dispensing_first_expiry_first_out() {
    let r = room();
    let phil = signed_in(&r, "phil");
    let amox = stock_item(&phil, "Amoxicillin");
    assert_eq!((amox.category, amox.on_hand), (Category::Medication, 0));
    assert!(amox.ingredients.contains(&"amoxicillin".to_string()));

    // Prices are the admin's to set, not the pharmacist's.
    assert_eq!(
        phil.stock_item_price_set(amox.id.clone(), 200, 500)
            .unwrap_err()
            .code(),
        "forbidden"
    );
    let priced = r
        .admin
        .stock_item_price_set(amox.id.clone(), 200, 500)
        .unwrap();
    assert_eq!(
        (priced.price, priced.currency.as_deref()),
        (500, Some("THB"))
    );

    // A purchase order, received in part, batch by batch.
    let sup = phil
        .supplier_save(Supplier {
            name: "MedSupply Co".into(),
            phone: "+66 2 123 4567".into(),
            active: true,
            ..Default::default()
        })
        .unwrap();
    let po = phil
        .purchase_order_create(OrderInput {
            supplier_id: sup.id.clone(),
            note: "monthly".into(),
            lines: vec![OrderLineInput {
                item_id: amox.id.clone(),
                quantity: 150,
                cost: 200,
            }],
        })
        .unwrap();
    assert_eq!((po.status, po.total), (OrderStatus::Open, 30_000));
    assert!(po.number.starts_with("PO-"));
    let late = phil
        .stock_receive(ReceiveInput {
            item_id: amox.id.clone(),
            order_line_id: Some(po.lines[0].id.clone()),
            lot: "LATE-1".into(),
            expiry: clinic_date(&r.c, 400),
            quantity: 100,
            cost: 200,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(late.supplier_name.as_deref(), Some("MedSupply Co"));
    let after = phil.purchase_orders(true).unwrap();
    assert_eq!(after[0].status, OrderStatus::Partial);
    assert_eq!(after[0].lines[0].received, 100);
    let over = phil
        .stock_receive(ReceiveInput {
            item_id: amox.id.clone(),
            order_line_id: Some(po.lines[0].id.clone()),
            lot: "LATE-2".into(),
            expiry: clinic_date(&r.c, 400),
            quantity: 51,
            cost: 200,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        (
            over.code(),
            over.params().get("remaining").map(String::as_str)
        ),
        ("over_receipt".into(), Some("50"))
    );
    // The earlier-expiring batch, delivered without an order.
    let early = receive(&phil, &amox.id, "EARLY-1", clinic_date(&r.c, 60), 50);
    // The same lot with another expiry is a typing mistake.
    let wrong = phil
        .stock_receive(ReceiveInput {
            item_id: amox.id.clone(),
            lot: "EARLY-1".into(),
            expiry: clinic_date(&r.c, 61),
            quantity: 1,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(wrong.code(), "lot_expiry_mismatch");
    assert_eq!(stock_item(&phil, "Amoxicillin").on_hand, 150);

    // A signed prescription: FEFO proposes the earlier batch.
    let rx1 = signed_rx(&r, "Fefo", "First", &[("Amoxicillin", 21, 7)]);
    let queue = phil.dispense_queue().unwrap();
    let entry = queue.iter().find(|q| q.prescription_id == rx1.id).unwrap();
    assert_eq!(entry.status, FillStatus::New);
    assert_eq!(entry.allergies[0].substance, "Penicillin");
    let plan = phil.dispense_plan(rx1.id.clone()).unwrap();
    assert_eq!(plan.lines[0].picks.len(), 1);
    assert_eq!(plan.lines[0].picks[0].batch_id, early);
    assert_eq!(plan.lines[0].remaining, 21);
    // Another batch by hand needs a reason.
    let by_hand = DispenseLine {
        batch_id: Some(late.id.clone()),
        ..line(&rx1, 0, 21)
    };
    let err = dispense(&phil, &rx1, vec![by_hand.clone()]).unwrap_err();
    assert_eq!(
        err.params().get("field").map(String::as_str),
        Some("reason")
    );
    let out = dispense(
        &phil,
        &rx1,
        vec![DispenseLine {
            reason: "patient travels for a year".into(),
            ..by_hand
        }],
    )
    .unwrap();
    assert_eq!(out.status, FillStatus::Done);
    assert!(out.dispensings[0].batch_overridden);
    assert!(!phil
        .dispense_queue()
        .unwrap()
        .iter()
        .any(|q| q.prescription_id == rx1.id));

    // A second prescription, dispensed in part by FEFO: it stays on the queue.
    let rx2 = signed_rx(&r, "Part", "Second", &[("Amoxicillin", 60, 20)]);
    let out = dispense(&phil, &rx2, vec![line(&rx2, 0, 40)]).unwrap();
    assert_eq!(out.status, FillStatus::Partial);
    assert_eq!(
        out.dispensings
            .iter()
            .map(|d| (d.lot.as_str(), d.quantity))
            .collect::<Vec<_>>(),
        vec![("EARLY-1", 40)]
    );
    let q = phil.dispense_queue().unwrap();
    assert_eq!(
        q.iter()
            .find(|q| q.prescription_id == rx2.id)
            .unwrap()
            .status,
        FillStatus::Partial
    );
    let over = dispense(&phil, &rx2, vec![line(&rx2, 0, 30)]).unwrap_err();
    assert_eq!(
        (
            over.code(),
            over.params().get("remaining").map(String::as_str)
        ),
        ("over_dispense".into(), Some("20"))
    );
    // The rest spans two batches: the last 10 of the early one, then the late one.
    let out = dispense(&phil, &rx2, vec![line(&rx2, 0, 20)]).unwrap();
    assert_eq!(out.status, FillStatus::Done);
    assert_eq!(
        out.dispensings
            .iter()
            .map(|d| (d.lot.as_str(), d.quantity))
            .collect::<Vec<_>>(),
        vec![("EARLY-1", 10), ("LATE-1", 10)]
    );
    assert_eq!(stock_item(&phil, "Amoxicillin").on_hand, 150 - 21 - 60);

    // Dispensed items wait for the visit's invoice, at the selling price.
    let bill = phil.billables_pending(rx2.patient_id.clone()).unwrap();
    assert_eq!(
        bill.iter()
            .map(|b| (b.quantity, b.unit_price))
            .collect::<Vec<_>>(),
        vec![(40, 500), (10, 500), (10, 500)]
    );
    assert_eq!(bill[0].description, "Amoxicillin 500 mg");

    // Stock never goes negative; the ledger can't be rewritten; it sums to on-hand.
    let err = phil
        .stock_move(
            late.id.clone(),
            MoveKind::Destroyed,
            -1000,
            "dropped".into(),
        )
        .unwrap_err();
    assert_eq!(
        (err.code(), err.params().get("on_hand").map(String::as_str)),
        ("insufficient_stock".into(), Some("69"))
    );
    assert_eq!(
        phil.stock_move(late.id.clone(), MoveKind::Adjusted, -1, "x".into())
            .unwrap_err()
            .params()
            .get("field")
            .map(String::as_str),
        Some("reason")
    );
    assert_eq!(
        phil.stock_move(late.id.clone(), MoveKind::Received, 5, "free".into())
            .unwrap_err()
            .params()
            .get("reason")
            .map(String::as_str),
        Some("not_allowed")
    );
    let tamper = with_db(&phil, |db| {
        db.conn()
            .execute("UPDATE stock_moves SET quantity = 1000", [])
            .map_err(Into::into)
    });
    assert!(tamper.unwrap_err().to_string().contains("append-only"));
    let tamper = with_db(&phil, |db| {
        db.conn()
            .execute("DELETE FROM stock_moves", [])
            .map_err(Into::into)
    });
    assert!(tamper.unwrap_err().to_string().contains("append-only"));
    balanced(&phil);

    // A stock count: two missing become an adjustment naming the count.
    let count = phil
        .stock_count(CountInput {
            note: "November shelf count".into(),
            lines: vec![
                CountLine {
                    batch_id: late.id.clone(),
                    counted: 67,
                },
                CountLine {
                    batch_id: early.clone(),
                    counted: 0,
                },
            ],
        })
        .unwrap();
    assert_eq!(count.lines[0].expected, 69);
    assert_eq!(count.adjustments.len(), 1);
    assert_eq!(count.adjustments[0].quantity, -2);
    let hist = phil.stock_history(None, Some(late.id.clone())).unwrap();
    assert_eq!(hist[0].kind, MoveKind::Adjusted);
    assert_eq!(hist[0].reason, "stock count: November shelf count");
    assert_eq!(hist[0].balance, 67);
    assert_eq!(hist.last().unwrap().kind, MoveKind::Received);
    balanced(&phil);

    // Reports: valuation at cost, with its CSV and printed forms.
    let val = phil
        .stock_report(ReportQuery {
            kind: ReportKind::Valuation,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(val.total, Some(67 * 200));
    assert_eq!(val.rows.len(), 1);
    let (name, csv) = phil
        .stock_report_file(
            Output::Save,
            &ReportQuery {
                kind: ReportKind::Valuation,
                ..Default::default()
            },
            Some(Language::Ru),
        )
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(name, "valuation.csv");
    assert!(
        csv.starts_with("\u{feff}Наименование,Серия,Годен до"),
        "{csv}"
    );
    assert!(csv.contains("Amoxicillin,LATE-1,"));
    let (_, pdf) = phil
        .stock_report_file(
            Output::Print,
            &ReportQuery {
                kind: ReportKind::Movements,
                item_id: Some(amox.id.clone()),
                ..Default::default()
            },
            Some(Language::En),
        )
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "stock-movements", false);
    assert!(
        text.contains("Stock movements") && text.contains("EARLY-1"),
        "{text}"
    );

    // The label, in Thai: patient, drug, lot, expiry.
    let ids: Vec<String> = out.dispensings.iter().map(|d| d.id.clone()).collect();
    let pdf = phil
        .dispense_label_pdf(Output::Save, &ids, Some(Language::Th))
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "label-th", false);
    for want in [
        "Part Second",
        "Amoxicillin 500 mg",
        "LATE-1",
        "เลขที่ผลิต",
        &clinic_date(&r.c, 400),
    ] {
        assert!(text.contains(want), "{want} not on the label: {text}");
    }

    // Nobody else touches stock: reception and the cashier see none; the admin sees it
    // but neither receives nor dispenses.
    let rita = signed_in(&r, "rita");
    assert_eq!(
        rita.stock_items(String::new(), None).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        r.admin
            .dispense(DispenseInput::default())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        r.admin
            .stock_receive(ReceiveInput::default())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert!(r.admin.stock_items(String::new(), None).is_ok());
}

#[test]
fn expired_batches_are_skipped_short_dated_ones_flagged_and_generics_substituted() {
    let r = room();
    let phil = signed_in(&r, "phil");
    let amox = stock_item(&phil, "Amoxicillin");
    let soon = receive(&phil, &amox.id, "SOON", clinic_date(&r.c, 10), 30);
    let mid = receive(&phil, &amox.id, "MID", clinic_date(&r.c, 40), 30);
    // Receiving stock that has already expired is refused.
    let err = phil
        .stock_receive(ReceiveInput {
            item_id: amox.id.clone(),
            lot: "OLD".into(),
            expiry: clinic_date(&r.c, -1),
            quantity: 5,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.params().get("reason").map(String::as_str),
        Some("in_past")
    );

    let rx = signed_rx(&r, "Expiry", "Skipped", &[("Amoxicillin", 20, 60)]);
    // Eleven days on, SOON has expired on the shelf.
    r.c.clock.advance(Duration::days(11));
    phil.unlock("Second-pass-22".into()).unwrap();
    let alerts = phil.stock_alerts().unwrap();
    assert_eq!((alerts.counts.expired, alerts.counts.expiring), (1, 1));
    assert_eq!(alerts.expired[0].lot, "SOON");
    assert_eq!(alerts.expired[0].shelf, Shelf::Expired);
    assert_eq!(phil.stock_alert_counts().unwrap(), alerts.counts);

    // A 60-day course: SOON is skipped with a warning; MID outlasts… not the course.
    let plan = phil.dispense_plan(rx.id.clone()).unwrap();
    let l = &plan.lines[0];
    assert_eq!(
        l.picks.iter().map(|p| p.lot.as_str()).collect::<Vec<_>>(),
        vec!["MID"]
    );
    let kinds: Vec<_> = l.warnings.iter().map(|w| (w.kind, w.lot.clone())).collect();
    assert!(
        kinds.contains(&(WarningKind::ExpiredSkipped, Some("SOON".into()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(WarningKind::ExpiresBeforeCourseEnd, Some("MID".into()))),
        "{kinds:?}"
    );
    // The expired batch can't be picked by hand either.
    let err = dispense(
        &phil,
        &rx,
        vec![DispenseLine {
            batch_id: Some(soon.clone()),
            reason: "use it up".into(),
            ..line(&rx, 0, 5)
        }],
    )
    .unwrap_err();
    assert_eq!(err.code(), "batch_expired");
    let out = dispense(&phil, &rx, vec![line(&rx, 0, 5)]).unwrap();
    assert_eq!(out.dispensings[0].batch_id, mid);
    assert_eq!(out.warnings[0].kind, WarningKind::ExpiresBeforeCourseEnd);
    // The expired stock leaves the shelf as `expired`.
    assert_eq!(
        phil.stock_move(soon.clone(), MoveKind::Expired, -30, String::new())
            .unwrap_err()
            .params()
            .get("field")
            .map(String::as_str),
        Some("reason"),
        "stock leaves the shelf with a reason"
    );
    phil.stock_move(
        soon.clone(),
        MoveKind::Expired,
        -30,
        "expired on the shelf".into(),
    )
    .unwrap();
    assert_eq!(phil.stock_alert_counts().unwrap().expired, 0);

    // An equivalent generic (same ingredients) may be given, with a reason; another drug not.
    let generic = phil
        .stock_item_save(StockItemInput {
            category: Category::Medication,
            name: "Amoxil 500".into(),
            generic_name: "Amoxicillin".into(),
            form: "capsule".into(),
            strength: "500 mg".into(),
            unit: "capsule".into(),
            route: "oral".into(),
            ingredients: vec!["amoxicillin".into()],
            classes: vec!["penicillins".into(), "beta_lactams".into()],
            reorder_level: 10,
            active: true,
            ..Default::default()
        })
        .unwrap();
    assert!(
        generic.drug_id.is_some(),
        "a new medication joins the formulary"
    );
    receive(&phil, &generic.id, "GEN-1", clinic_date(&r.c, 300), 40);
    let plan = phil.dispense_plan(rx.id.clone()).unwrap();
    assert!(plan.lines[0].equivalents.iter().any(|e| e.id == generic.id));
    let ibu = stock_item(&phil, "Ibuprofen");
    receive(&phil, &ibu.id, "IBU-1", clinic_date(&r.c, 300), 40);
    let err = dispense(
        &phil,
        &rx,
        vec![DispenseLine {
            item_id: Some(ibu.id.clone()),
            reason: "out of stock".into(),
            ..line(&rx, 0, 5)
        }],
    )
    .unwrap_err();
    assert_eq!(err.code(), "not_equivalent");
    let out = dispense(
        &phil,
        &rx,
        vec![DispenseLine {
            item_id: Some(generic.id.clone()),
            reason: "brand preferred by patient".into(),
            ..line(&rx, 0, 15)
        }],
    )
    .unwrap();
    assert!(out.dispensings[0].substituted);
    assert_eq!(out.dispensings[0].item_name, "Amoxil 500");
    assert_eq!(out.status, FillStatus::Done);

    // Low stock: at or below the reorder level.
    let low = phil.stock_alerts().unwrap();
    assert!(low.low_stock.iter().any(|i| i.id == generic.id) == (40 - 15 <= 10));
    let mut edit = StockItemInput {
        id: generic.id.clone(),
        category: Category::Medication,
        name: generic.name.clone(),
        generic_name: generic.generic_name.clone(),
        form: generic.form.clone(),
        strength: generic.strength.clone(),
        unit: generic.unit.clone(),
        route: "oral".into(),
        ingredients: generic.ingredients.clone(),
        classes: generic.classes.clone(),
        reorder_level: 25,
        active: true,
        ..Default::default()
    };
    phil.stock_item_save(edit.clone()).unwrap();
    let low = phil.stock_alerts().unwrap();
    assert!(low.low_stock.iter().any(|i| i.id == generic.id));
    // What the prescribing checks read is fixed once the drug exists: dropping an
    // ingredient (which an allergy check would have caught) is refused.
    let err = phil
        .stock_item_save(StockItemInput {
            ingredients: vec!["starch".into()],
            ..edit.clone()
        })
        .unwrap_err();
    assert_eq!(
        (
            err.params().get("field").map(String::as_str),
            err.params().get("reason").map(String::as_str)
        ),
        (Some("ingredients"), Some("not_allowed"))
    );
    // A medication can't become a consumable (it is a formulary drug).
    edit.category = Category::Consumable;
    assert_eq!(
        phil.stock_item_save(edit)
            .unwrap_err()
            .params()
            .get("reason")
            .map(String::as_str),
        Some("not_allowed")
    );
    // The expiry report lists what expires within the setting's days.
    let rep = phil
        .stock_report(ReportQuery {
            kind: ReportKind::Expiry,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rep.rows.len(), 1);
    assert_eq!(rep.rows[0][1], "MID");
    balanced(&phil);
}

#[test]
fn two_dispensings_of_the_last_units_at_once_one_gets_them() {
    let r = room();
    let phil = signed_in(&r, "phil");
    let amox = stock_item(&phil, "Amoxicillin");
    receive(&phil, &amox.id, "LAST", clinic_date(&r.c, 200), 10);
    let a = signed_rx(&r, "Race", "One", &[("Amoxicillin", 10, 5)]);
    let b = signed_rx(&r, "Race", "Two", &[("Amoxicillin", 10, 5)]);
    // Both threads start together and race for the writer.
    let start = std::sync::Barrier::new(2);
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|rx| {
                let (phil, start) = (&phil, &start);
                s.spawn(move || {
                    start.wait();
                    dispense(phil, rx, vec![line(rx, 0, 10)])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let err = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(
        (err.code(), err.params().get("on_hand").map(String::as_str)),
        ("insufficient_stock".into(), Some("0"))
    );
    assert_eq!(stock_item(&phil, "Amoxicillin").on_hand, 0);
    balanced(&phil);
}

#[test]
fn a_scanner_finds_items_by_barcode_and_batches_by_lot_or_gs1() {
    let r = room();
    let phil = signed_in(&r, "phil");
    let para = stock_item(&phil, "Paracetamol");
    let mut input = StockItemInput {
        id: para.id.clone(),
        category: Category::Medication,
        name: para.name.clone(),
        generic_name: para.generic_name.clone(),
        form: para.form.clone(),
        strength: para.strength.clone(),
        unit: para.unit.clone(),
        route: "oral".into(),
        barcode: "8850123456789".into(),
        ingredients: para.ingredients.clone(),
        classes: para.classes.clone(),
        active: true,
        ..Default::default()
    };
    phil.stock_item_save(input.clone()).unwrap();
    let batch = receive(&phil, &para.id, "PX-778", clinic_date(&r.c, 500), 100);
    // The pack's GS1 DataMatrix: GTIN-14 (the EAN-13 with a leading zero), expiry, lot.
    let s = phil
        .stock_scan("(01)08850123456789(17)280131(10)PX-778".to_string())
        .unwrap();
    assert_eq!(
        s.item.as_ref().map(|i| i.id.as_str()),
        Some(para.id.as_str())
    );
    assert_eq!(
        s.batch.as_ref().map(|b| b.id.as_str()),
        Some(batch.as_str())
    );
    assert_eq!(s.gs1.unwrap().expiry.as_deref(), Some("2028-01-31"));
    // The plain barcode, and a bare lot number.
    assert_eq!(
        phil.stock_scan("8850123456789".into())
            .unwrap()
            .item
            .unwrap()
            .id,
        para.id
    );
    assert_eq!(
        phil.stock_scan("PX-778".into()).unwrap().batch.unwrap().id,
        batch
    );
    assert_eq!(
        phil.stock_scan("no-such-thing".into()).unwrap_err().code(),
        "nothing_scanned"
    );
    // One barcode, one item.
    let ibu = stock_item(&phil, "Ibuprofen");
    input.id = ibu.id.clone();
    input.name = ibu.name.clone();
    input.ingredients = ibu.ingredients.clone();
    assert_eq!(
        phil.stock_item_save(input).unwrap_err().code(),
        "barcode_taken"
    );
}

/// What a pharmacist can't do to the checks or the bill: retire a drug out of the checks,
/// shadow a formulary drug, give another strength, give a non-medicine or a drug the patient
/// is newly allergic to for a free-text item, bill a substitute cheaper, or write off as
/// expired what has not expired.
#[test]
fn substitutes_keep_the_checks_the_strength_and_the_price() {
    let r = room();
    let phil = signed_in(&r, "phil");
    let amox = stock_item(&phil, "Amoxicillin");
    r.admin
        .stock_item_price_set(amox.id.clone(), 200, 500)
        .unwrap();
    let batch = receive(&phil, &amox.id, "A-1", clinic_date(&r.c, 300), 50);
    let input = |i: &StockItem, name: &str, strength: &str| StockItemInput {
        category: Category::Medication,
        name: name.into(),
        generic_name: i.generic_name.clone(),
        form: i.form.clone(),
        strength: strength.into(),
        unit: i.unit.clone(),
        route: "oral".into(),
        ingredients: i.ingredients.clone(),
        classes: vec![],
        active: true,
        ..Default::default()
    };
    // A new item can't take a formulary drug's name; a brand takes the generic's classes.
    assert_eq!(
        phil.stock_item_save(input(&amox, "Amoxicillin", "500 mg"))
            .unwrap_err()
            .code(),
        "drug_exists"
    );
    let brand = phil
        .stock_item_save(input(&amox, "Amoxil", "500 mg"))
        .unwrap();
    assert!(
        brand.classes.contains(&"penicillins".to_string()),
        "{:?}",
        brand.classes
    );
    let strong = phil
        .stock_item_save(input(&amox, "Amoxil Forte", "1000 mg"))
        .unwrap();
    receive(&phil, &brand.id, "B-1", clinic_date(&r.c, 300), 50);
    receive(&phil, &strong.id, "S-1", clinic_date(&r.c, 300), 50);
    // Retiring the stock item leaves the drug in the prescribing checks.
    let warfarin = stock_item(&phil, "Warfarin");
    phil.stock_item_save(StockItemInput {
        id: warfarin.id.clone(),
        active: false,
        ..input(&warfarin, &warfarin.name, &warfarin.strength)
    })
    .unwrap_err(); // (classes may not change: the form keeps them as they are)
    phil.stock_item_save(StockItemInput {
        id: warfarin.id.clone(),
        active: false,
        classes: warfarin.classes.clone(),
        ..input(&warfarin, &warfarin.name, &warfarin.strength)
    })
    .unwrap();
    assert!(r
        .doctor
        .drug_search("Warfarin".into(), 5)
        .unwrap()
        .iter()
        .any(|d| d.name == "Warfarin"));

    let rx = signed_rx(&r, "Sub", "Stitute", &[("Amoxicillin", 20, 7)]);
    let sub = |item: &StockItem, qty| {
        dispense(
            &phil,
            &rx,
            vec![DispenseLine {
                item_id: Some(item.id.clone()),
                reason: "patient asked".into(),
                ..line(&rx, 0, qty)
            }],
        )
    };
    assert_eq!(sub(&strong, 5).unwrap_err().code(), "not_same_strength");
    let gloves = phil
        .stock_item_save(StockItemInput {
            category: Category::Consumable,
            name: "Gloves".into(),
            form: "box".into(),
            unit: "box".into(),
            active: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        sub(&gloves, 5)
            .unwrap_err()
            .params()
            .get("reason")
            .map(String::as_str),
        Some("not_allowed")
    );
    // The brand (no price of its own) is billed at the prescribed drug's price.
    let out = sub(&brand, 5).unwrap();
    assert!(out.dispensings[0].substituted);
    let bill = phil.billables_pending(rx.patient_id.clone()).unwrap();
    assert_eq!(bill.last().map(|b| b.unit_price), Some(500));

    // A free-text item for a penicillin-allergic patient: amoxicillin is refused, as the
    // doctor never saw that allergy against it.
    let pat = register(&r.doctor, "Free", "Text", "1970-01-01");
    walk_in(&r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    let draft = r.doctor.prescription_open(e.id.clone()).unwrap();
    r.doctor
        .prescription_item_add(clinic_core::clinical::prescriptions::ItemInput {
            route: "oral".into(),
            ..item(&draft.id, None, "Antibiotic syrup")
        })
        .unwrap();
    let free = r
        .doctor
        .prescription_sign(draft.id.clone(), vec![])
        .unwrap();
    let err = dispense(
        &phil,
        &free,
        vec![DispenseLine {
            item_id: Some(amox.id.clone()),
            reason: "closest we have".into(),
            ..line(&free, 0, 5)
        }],
    )
    .unwrap_err();
    assert_eq!(err.code(), "allergy_on_given");

    // Not expired: can't be written off as expired.
    assert_eq!(
        phil.stock_move(batch, MoveKind::Expired, -1, "looks old".into())
            .unwrap_err()
            .code(),
        "not_expired"
    );
    balanced(&phil);
}
