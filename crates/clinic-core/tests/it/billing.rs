//! Billing: a visit's invoice fills itself (consultation, lab test, dispensed drug), is
//! discounted within the cashier's limit, issued with a gap-free number, paid in part in cash
//! (change worked out) and the rest by card, refunded, receipted, and the day closed with a
//! difference; insurance and claims; price versions; numbers without gaps or repeats; totals
//! that always add up; a 120-line invoice across pages.

use chrono::{Datelike, Duration};
use clinic_core::billing::claims::{ClaimStatus, ClaimUpdate};
use clinic_core::billing::close::{DayCloseInput, Denomination};
use clinic_core::billing::invoices::{self, InvoiceStatus, LineInput};
use clinic_core::billing::payments::{Method, PaymentInput};
use clinic_core::billing::{
    BillingSettings, CoverageKind, LineKind, Policy, PriceInput, PriceKind, Rounding, TaxRates,
};
use clinic_core::clinical::prescriptions::Acknowledgement;
use clinic_core::clinical::CloseInput as VisitClose;
use clinic_core::perm::{Command, Role};
use clinic_core::pharmacy::dispense::{DispenseInput, DispenseLine};
use clinic_core::pharmacy::ReceiveInput;
use clinic_core::settings::Language;
use clinic_core::store::Actor;
use clinic_core::Core;

use crate::clinical::{drug_id, item, register, room, signed_in, walk_in, Room};
use crate::support::*;

fn cashier(r: &Room) -> Core {
    r.admin
        .staff_create(new_staff("cash", vec![Role::Cashier], "Initial-pass-11"))
        .unwrap();
    signed_in(r, "cash")
}

fn settings(inclusive: bool) -> BillingSettings {
    BillingSettings {
        prices_include_tax: inclusive,
        rounding: Rounding::HalfUp,
        tax_bp: TaxRates {
            pharmacy: 700,
            ..Default::default()
        },
        cashier_discount_limit_bp: 1000,
        receipts_on_roll: true,
    }
}

/// A closed visit with a lab test and 21 capsules of amoxicillin dispensed at 5.00 each.
fn billed_visit(r: &Room, given: &str, family: &str) -> (String, String) {
    let pat = register(&r.doctor, given, family, "1972-02-02");
    walk_in(r, &pat);
    let e = r.doctor.encounter_call_next().unwrap();
    let hb = r
        .doctor
        .lab_tests()
        .unwrap()
        .into_iter()
        .find(|t| t.loinc == "718-7")
        .unwrap();
    r.doctor.lab_order(e.id.clone(), hb.id).unwrap();
    let rx = r.doctor.prescription_open(e.id.clone()).unwrap();
    let mut it = item(&rx.id, Some(&drug_id(&r.doctor, "Amoxicillin")), "");
    it.quantity = 21;
    let drafted = r.doctor.prescription_item_add(it).unwrap();
    let acks = drafted
        .alerts
        .iter()
        .map(|a| Acknowledgement {
            key: a.key.clone(),
            reason: "skin test negative".into(),
        })
        .collect();
    let rx = r.doctor.prescription_sign(rx.id.clone(), acks).unwrap();
    r.doctor
        .encounter_close(VisitClose {
            encounter_id: e.id.clone(),
            ..Default::default()
        })
        .unwrap();
    let phil = signed_in(r, "phil");
    let amox = phil.stock_items("Amoxicillin".into(), None).unwrap()[0].clone();
    r.admin
        .stock_item_price_set(amox.id.clone(), 200, 500)
        .unwrap();
    phil.stock_receive(ReceiveInput {
        item_id: amox.id,
        lot: format!("L-{family}"),
        expiry: clinic_date(&r.c, 300),
        quantity: 100,
        cost: 200,
        ..Default::default()
    })
    .unwrap();
    phil.dispense(DispenseInput {
        prescription_id: rx.id.clone(),
        lines: vec![DispenseLine {
            prescription_item_id: rx.items[0].id.clone(),
            quantity: 21,
            ..Default::default()
        }],
    })
    .unwrap();
    phil.logout().unwrap();
    (pat, e.id)
}

#[test]
fn a_visit_is_invoiced_paid_in_part_then_in_full_refunded_receipted_and_the_day_closed() {
    let r = room();
    let cash = cashier(&r);
    r.admin.billing_settings_set(settings(false)).unwrap();
    let doctor = r.admin.doctor_list().unwrap()[0].clone();
    r.admin
        .price_save(PriceInput {
            kind: PriceKind::Consultation,
            code: doctor.id.clone(),
            name: "Consultation".into(),
            amount: 50_000,
            effective_from: clinic_date(&r.c, 0),
            active: true,
        })
        .unwrap();
    let hb = r
        .doctor
        .lab_tests()
        .unwrap()
        .into_iter()
        .find(|t| t.loinc == "718-7")
        .unwrap();
    r.admin
        .price_save(PriceInput {
            kind: PriceKind::LabTest,
            code: hb.id.clone(),
            name: "Hemoglobin".into(),
            amount: 15_000,
            effective_from: clinic_date(&r.c, 0),
            active: true,
        })
        .unwrap();
    // A cashier doesn't price, void or (beyond the limit) discount.
    assert_eq!(
        cash.price_save(PriceInput::default()).unwrap_err().code(),
        "forbidden"
    );
    let (pat, visit) = billed_visit(&r, "Bill", "Payer");

    // The visit's invoice fills itself: consultation, lab test, the dispensed drug + 7 % tax.
    let todo = cash.visits_to_bill().unwrap();
    assert!(todo.iter().any(|v| v.encounter_id == visit));
    let inv = cash.invoice_for_visit(visit.clone()).unwrap();
    let kinds: Vec<_> = inv.lines.iter().map(|l| (l.kind, l.total)).collect();
    assert_eq!(
        kinds,
        vec![
            (LineKind::Consultation, 50_000),
            (LineKind::LabTest, 15_000),
            (LineKind::Pharmacy, 10_500 + 735)
        ]
    );
    assert_eq!((inv.tax, inv.total), (735, 76_235));
    // Opening it again adds nothing twice.
    assert_eq!(
        cash.invoice_for_visit(visit.clone()).unwrap().lines.len(),
        3
    );
    // A hand line from the price list, then removed.
    let with = cash
        .invoice_line_add(LineInput {
            invoice_id: inv.id.clone(),
            kind: LineKind::Service,
            description: "Dressing".into(),
            quantity: 2,
            unit_price: 3_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(with.total, 76_235 + 6_000);
    let dressing = with.lines.last().unwrap().id.clone();
    assert_eq!(cash.invoice_line_remove(dressing).unwrap().total, 76_235);
    // A line the visit brought is not the cashier's to remove (it would be a discount of all
    // of it, past the limit): the consultation stays.
    let consultation = with.lines[0].id.clone();
    assert_eq!(
        cash.invoice_line_remove(consultation.clone())
            .unwrap_err()
            .code(),
        "line_from_visit"
    );
    assert_eq!(cash.invoice_get(inv.id.clone()).unwrap().lines.len(), 3);

    // A discount sized on a huge typed line doesn't outlive it: the line can't be removed
    // while the discount stands (it would write the visit off past the cashier's limit).
    let typed = |quantity, unit_price| LineInput {
        invoice_id: inv.id.clone(),
        kind: LineKind::Service,
        description: "Decoy".into(),
        quantity,
        unit_price,
        ..Default::default()
    };
    let too_big = cash
        .invoice_line_add(typed(1_000_000, 10_000_000_000))
        .unwrap_err();
    assert_eq!(
        too_big.params().get("field").map(String::as_str),
        Some("unit_price"),
        "an invoice over ten trillion is refused before its sums overflow"
    );
    let decoy = cash.invoice_line_add(typed(100_000, 1_000_000)).unwrap();
    let decoy_line = decoy.lines.last().unwrap().id.clone();
    cash.invoice_discount(inv.id.clone(), 76_235, "decoy".into())
        .unwrap();
    assert_eq!(
        cash.invoice_line_remove(decoy_line.clone())
            .unwrap_err()
            .code(),
        "discount_over_limit"
    );
    assert_eq!(cash.invoice_get(inv.id.clone()).unwrap().lines.len(), 4);
    cash.invoice_discount(inv.id.clone(), 0, String::new())
        .unwrap();
    assert_eq!(cash.invoice_line_remove(decoy_line).unwrap().total, 76_235);

    // Discounts need a reason and stay within the cashier's 10 % of the invoice (755.00 here)
    // all together, unless an admin gives them: splitting one into several doesn't help.
    let (consult, lab) = (inv.lines[0].id.clone(), inv.lines[1].id.clone());
    let no_reason = cash
        .invoice_line_discount(consult.clone(), 1_000, String::new())
        .unwrap_err();
    assert_eq!(
        no_reason.params().get("field").map(String::as_str),
        Some("discount_reason")
    );
    cash.invoice_line_discount(consult.clone(), 5_000, "loyal patient".into())
        .unwrap();
    let over = cash
        .invoice_line_discount(lab.clone(), 3_000, "loyal patient".into())
        .unwrap_err();
    assert_eq!(
        (over.code(), over.params().get("limit").map(String::as_str)),
        ("discount_over_limit".into(), Some("2550"))
    );
    let over = cash
        .invoice_discount(inv.id.clone(), 3_000, "round down".into())
        .unwrap_err();
    assert_eq!(over.code(), "discount_over_limit");
    let inv = r
        .admin
        .invoice_line_discount(consult.clone(), 10_000, "staff family".into())
        .unwrap();
    assert_eq!(inv.total, 66_235);
    let inv = r
        .admin
        .invoice_discount(inv.id.clone(), 235, "round down".into())
        .unwrap();
    assert_eq!(inv.total, 66_000);

    // Issued: the first number of this PC's year; its lines are kept as issued.
    let inv = cash.invoice_issue(inv.id.clone()).unwrap();
    let device = cash.session_info().unwrap().device_code;
    let year = r.c.clock.now().with_timezone(&clinic_tz()).year();
    assert_eq!(
        inv.number.as_deref(),
        Some(format!("{device}-{year}-000001").as_str())
    );
    assert_eq!(inv.status, InvoiceStatus::Issued);
    let edit = with_db(&r.admin, |db| {
        db.conn()
            .execute("UPDATE invoice_lines SET unit_price = 1", [])
            .map_err(Into::into)
    });
    assert!(edit.unwrap_err().to_string().contains("kept as issued"));
    assert_eq!(
        cash.invoice_discount(inv.id.clone(), 100, "late".into())
            .unwrap_err()
            .code(),
        "invoice_not_draft"
    );

    // Part in cash (the change worked out), more than is due refused, the rest by card.
    let pay = |method, amount, tendered| {
        cash.payment_take(PaymentInput {
            invoice_id: inv.id.clone(),
            method,
            amount,
            tendered,
            reason: String::new(),
        })
    };
    let p1 = pay(Method::Cash, 40_000, Some(50_000)).unwrap();
    assert_eq!(p1.payment.change_due, Some(10_000));
    assert_eq!(p1.invoice.status, InvoiceStatus::PartlyPaid);
    assert_eq!(p1.invoice.balance, 26_000);
    let too_much = pay(Method::Card, 26_001, None).unwrap_err();
    assert_eq!(
        (
            too_much.code(),
            too_much.params().get("balance").map(String::as_str)
        ),
        ("overpayment".into(), Some("26000"))
    );
    assert_eq!(
        pay(Method::Cash, 100, Some(50)).unwrap_err().code(),
        "tendered_too_little"
    );
    let p2 = pay(Method::Card, 26_000, None).unwrap();
    assert_eq!(
        (p2.invoice.status, p2.invoice.balance),
        (InvoiceStatus::Paid, 0)
    );
    // A refund is a negative payment with a reason.
    assert_eq!(
        pay(Method::Cash, -500, None)
            .unwrap_err()
            .params()
            .get("field")
            .map(String::as_str),
        Some("reason")
    );
    // …back the way it was paid: nothing was paid by mobile, so nothing goes back that way.
    let wrong_way = cash
        .payment_take(PaymentInput {
            invoice_id: inv.id.clone(),
            method: Method::Mobile,
            amount: -500,
            tendered: None,
            reason: "one capsule returned".into(),
        })
        .unwrap_err();
    assert_eq!(
        (
            wrong_way.code(),
            wrong_way.params().get("paid").map(String::as_str)
        ),
        ("over_refund".into(), Some("0"))
    );
    let refund = cash
        .payment_take(PaymentInput {
            invoice_id: inv.id.clone(),
            method: Method::Cash,
            amount: -500,
            tendered: None,
            reason: "one capsule returned".into(),
        })
        .unwrap();
    assert_eq!(refund.invoice.status, InvoiceStatus::PartlyPaid);
    assert_eq!(
        cash.outstanding_invoices(Some(pat.clone())).unwrap().total,
        500
    );
    // An admin can't void an invoice with money on it.
    assert_eq!(
        cash.invoice_void(inv.id.clone(), "mistake".into())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        r.admin
            .invoice_void(inv.id.clone(), "mistake".into())
            .unwrap_err()
            .code(),
        "has_payments"
    );

    // The receipt (on the roll), read back: patient, amounts.
    let pdf = cash
        .billing_pdf(Command::receipt_print, &p2.payment.id, Some(Language::En))
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "receipt", false);
    for want in [
        "Receipt",
        "Bill Payer",
        "260.00 THB",
        "660.00 THB",
        &p2.payment.receipt_no,
    ] {
        assert!(text.contains(want), "{want} not on the receipt: {text}");
    }
    let pdf = cash
        .billing_pdf(Command::invoice_save, &inv.id, Some(Language::Th))
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "invoice-th", false);
    for want in [
        "ใบแจ้งหนี้",
        "Bill Payer",
        "Amoxicillin",
        "660.00 THB",
        "staff family",
    ] {
        assert!(text.contains(want), "{want} not on the invoice: {text}");
    }

    // The day's close: cash expected 400 − 5 = 395.00; counted 390.00 needs a note.
    let counted = vec![
        Denomination {
            value: 10_000,
            count: 3,
        },
        Denomination {
            value: 5_000,
            count: 1,
        },
        Denomination {
            value: 1_000,
            count: 4,
        },
    ];
    let preview = cash.daily_close_preview(counted.clone()).unwrap();
    assert_eq!(
        (
            preview.expected_cash,
            preview.counted_cash,
            preview.difference
        ),
        (39_500, 39_000, -500)
    );
    let card = preview
        .by_method
        .iter()
        .find(|m| m.method == Method::Card)
        .unwrap();
    assert_eq!((card.count, card.amount), (1, 26_000));
    let err = cash
        .daily_close(DayCloseInput {
            counted: counted.clone(),
            note: String::new(),
        })
        .unwrap_err();
    assert_eq!(err.params().get("field").map(String::as_str), Some("note"));
    let closed = cash
        .daily_close(DayCloseInput {
            counted,
            note: "a 5.00 coin short".into(),
        })
        .unwrap();
    assert_eq!(closed.payments, 3);
    assert!(closed.audit_seq > 0 && closed.audit_hash.len() == 64);
    // The day is closed: no more payments into it; its payments are kept.
    assert_eq!(
        pay(Method::Cash, 500, None).unwrap_err().code(),
        "day_closed"
    );
    let edit = with_db(&r.admin, |db| {
        db.conn()
            .execute("UPDATE payments SET amount = 1", [])
            .map_err(Into::into)
    });
    assert!(edit.unwrap_err().to_string().contains("closed day"));
    let pdf = cash
        .billing_pdf(Command::daily_close_print, &closed.id, Some(Language::En))
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "daily-close", false);
    for want in [
        "Daily close",
        "395.00 THB",
        "390.00 THB",
        "-5.00 THB",
        &closed.audit_hash[..16],
    ] {
        assert!(text.contains(want), "{want} not on the close: {text}");
    }
    // The next day takes the correction.
    r.c.clock.advance(Duration::days(1));
    cash.unlock("Second-pass-22".into()).unwrap();
    let next = pay(Method::Cash, 500, None).unwrap();
    assert_eq!(next.invoice.status, InvoiceStatus::Paid);
}

#[test]
fn insurance_covers_a_share_and_its_claim_pays_into_the_invoice() {
    let r = room();
    let cash = cashier(&r);
    r.admin.billing_settings_set(settings(true)).unwrap();
    let (pat, visit) = billed_visit(&r, "Ins", "Ured");
    cash.policy_save(Policy {
        patient_id: pat.clone(),
        provider: "Bangkok Mutual".into(),
        policy_number: "BM-778-2026".into(),
        kind: CoverageKind::Percent,
        value: 8_000,
        valid_until: clinic_date(&r.c, 200),
        active: true,
        ..Default::default()
    })
    .unwrap();
    let inv = cash.invoice_for_visit(visit).unwrap();
    let inv = cash.invoice_issue(inv.id).unwrap();
    // Prices include tax here: the drug line is 105.00 with 6.87 of tax inside it.
    let drug = inv
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Pharmacy)
        .unwrap();
    assert_eq!((drug.total, drug.tax, drug.net), (10_500, 687, 9_813));
    assert_eq!(inv.insurer_part, (inv.total * 8 + 5) / 10);
    assert_eq!(inv.patient_part, inv.total - inv.insurer_part);
    let claim = cash.claim_create(inv.id.clone()).unwrap();
    assert_eq!(
        (claim.status, claim.claimed),
        (ClaimStatus::Submitted, inv.insurer_part)
    );
    let step = |status, amount| {
        cash.claim_update(ClaimUpdate {
            id: claim.id.clone(),
            status,
            amount,
            note: String::new(),
        })
    };
    assert_eq!(
        step(ClaimStatus::Paid, None).unwrap_err().code(),
        "claim_step"
    );
    let approved = step(ClaimStatus::PartlyApproved, Some(claim.claimed - 1_000)).unwrap();
    assert_eq!(approved.approved, Some(claim.claimed - 1_000));
    step(ClaimStatus::Paid, None).unwrap();
    let inv = cash.invoice_get(inv.id.clone()).unwrap();
    let c = inv.claim.clone().unwrap();
    assert_eq!(
        (c.status, c.claimed - c.paid.unwrap()),
        (ClaimStatus::Paid, 1_000)
    );
    assert_eq!(inv.payments[0].method, Method::Insurance);
    assert_eq!(inv.paid, claim.claimed - 1_000);
    assert_eq!(inv.status, InvoiceStatus::PartlyPaid);
    assert_eq!(cash.claims(Some(ClaimStatus::Paid)).unwrap().len(), 1);
}

#[test]
fn a_new_price_applies_from_its_day_and_issued_invoices_keep_theirs() {
    let r = room();
    let cash = cashier(&r);
    let price = |amount, days| {
        r.admin
            .price_save(PriceInput {
                kind: PriceKind::Procedure,
                code: "ECG".into(),
                name: "Electrocardiogram".into(),
                amount,
                effective_from: clinic_date(&r.c, days),
                active: true,
            })
            .unwrap()
    };
    let v1 = price(30_000, 0);
    price(35_000, 1);
    assert_eq!(
        r.admin
            .price_save(PriceInput {
                kind: PriceKind::Procedure,
                code: "ECG".into(),
                name: "x".into(),
                amount: 1,
                effective_from: clinic_date(&r.c, -1),
                active: true,
            })
            .unwrap_err()
            .params()
            .get("reason")
            .map(String::as_str),
        Some("in_past")
    );
    let pat = register(&r.doctor, "Price", "Versions", "1990-01-01");
    let add = |inv: &str| {
        cash.invoice_line_add(LineInput {
            invoice_id: inv.into(),
            price_id: Some(v1.id.clone()),
            quantity: 1,
            ..Default::default()
        })
        .unwrap()
    };
    let today = cash.invoice_new(pat.clone()).unwrap();
    assert_eq!(add(&today.id).total, 30_000);
    let issued = cash.invoice_issue(today.id.clone()).unwrap();
    r.c.clock.advance(Duration::days(1));
    cash.unlock("Second-pass-22".into()).unwrap();
    let tomorrow = cash.invoice_new(pat).unwrap();
    assert_eq!(add(&tomorrow.id).total, 35_000);
    assert_eq!(cash.invoice_get(issued.id).unwrap().total, 30_000);
    let list = cash.price_list(false).unwrap();
    assert_eq!(
        list.iter().find(|p| p.code == "ECG").map(|p| p.amount),
        Some(35_000)
    );
    assert_eq!(
        cash.price_list(true)
            .unwrap()
            .iter()
            .filter(|p| p.code == "ECG")
            .count(),
        2
    );
}

#[test]
fn ten_thousand_invoices_some_voided_have_numbers_without_gaps_and_two_threads_never_share_one() {
    let r = room();
    let cash = cashier(&r);
    let pat = register(&r.doctor, "Many", "Invoices", "1980-01-01");
    let db = cash.dev_db().unwrap();
    let device = db.device().code.clone();
    let today = r.c.clock.now().with_timezone(&clinic_tz()).date_naive();
    let actor = Actor {
        id: "test".into(),
        name: "Test".into(),
    };
    let line = |id: &str, n: i64| LineInput {
        invoice_id: id.into(),
        kind: LineKind::Service,
        description: format!("Service {n}"),
        quantity: 1,
        unit_price: 1_000 + n,
        ..Default::default()
    };
    for batch in 0..10 {
        db.write(&actor, |w| {
            for i in 0..1000 {
                let n = batch * 1000 + i;
                let inv = invoices::create(w, &pat, None)?;
                invoices::add_line(w, &line(&inv.id, n), today)?;
                let inv = invoices::issue(w, &inv.id, &device, today)?;
                if n % 7 == 3 {
                    invoices::void(w, &inv.id, "issued by mistake")?;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    // Two cashiers' windows issuing at once.
    let drafts: Vec<String> = (0..40)
        .map(|n| {
            let d = cash.invoice_new(pat.clone()).unwrap();
            cash.invoice_line_add(line(&d.id, n)).unwrap();
            d.id
        })
        .collect();
    std::thread::scope(|s| {
        for half in drafts.chunks(20) {
            let cash = &cash;
            s.spawn(move || {
                for d in half {
                    cash.invoice_issue(d.clone()).unwrap();
                }
            });
        }
    });
    let mut numbers: Vec<i64> = with_db(&cash, |db| {
        let mut st = db
            .conn()
            .prepare("SELECT number FROM invoices WHERE number NOT LIKE 'VOID-%'")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows
            .map(|n| n.unwrap().rsplit('-').next().unwrap().parse().unwrap())
            .collect())
    })
    .unwrap();
    numbers.sort();
    assert_eq!(numbers.len(), 10_040);
    assert_eq!(
        numbers,
        (1..=10_040).collect::<Vec<i64>>(),
        "gaps or repeats"
    );
    let voided: i64 = with_db(&cash, |db| {
        Ok(db.conn().query_row(
            "SELECT count(*) FROM invoices WHERE status = 'void'",
            [],
            |r| r.get(0),
        )?)
    })
    .unwrap();
    assert_eq!(voided, 1429);
}

/// Random invoices: lines, line and invoice discounts, both tax modes and roundings, payments
/// and refunds. Every time: net + tax = the lines' total; total = lines − discount; paid = the
/// payments' sum; balance = total − paid; and the outstanding list agrees.
#[test]
fn lines_taxes_discounts_and_payments_always_add_up_to_the_cent() {
    let r = room();
    let cash = cashier(&r);
    let pat = register(&r.doctor, "Sum", "Checks", "1980-01-01");
    let db = cash.dev_db().unwrap();
    let device = db.device().code.clone();
    let today = r.c.clock.now().with_timezone(&clinic_tz()).date_naive();
    let actor = Actor {
        id: "test".into(),
        name: "Test".into(),
    };
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut expected_outstanding = 0;
    let mut buckets = [0i64; 4];
    for round in 0..300 {
        let s = BillingSettings {
            prices_include_tax: next(2) == 0,
            rounding: if next(2) == 0 {
                Rounding::HalfUp
            } else {
                Rounding::HalfEven
            },
            tax_bp: TaxRates {
                consultation: next(1500) as u32,
                service: next(1500) as u32,
                procedure: next(1500) as u32,
                lab_test: next(1500) as u32,
                pharmacy: next(1500) as u32,
            },
            cashier_discount_limit_bp: 10_000,
            receipts_on_roll: true,
        };
        // Issued up to 120 days ago, for the ageing.
        let age = next(121) as i64;
        let issued = today - Duration::days(age);
        let inv = db
            .write(&actor, |w| {
                clinic_core::billing::save_settings(w, s)?;
                let inv = invoices::create(w, &pat, None)?;
                for n in 0..1 + next(6) {
                    let kinds = [
                        LineKind::Service,
                        LineKind::Procedure,
                        LineKind::Consultation,
                    ];
                    let mut inv = invoices::add_line(
                        w,
                        &LineInput {
                            invoice_id: inv.id.clone(),
                            kind: kinds[next(3) as usize],
                            description: format!("line {round}.{n}"),
                            quantity: 1 + next(5) as i64,
                            unit_price: next(2_000_000) as i64,
                            ..Default::default()
                        },
                        today,
                    )?;
                    let l = inv.lines.last().unwrap().clone();
                    if next(3) == 0 && l.quantity * l.unit_price > 0 {
                        let d = next((l.quantity * l.unit_price) as u64 + 1) as i64;
                        inv = invoices::discount_line(w, &l.id, d, "promotion", true)?;
                    }
                    let _ = inv;
                }
                let inv = invoices::get(w.conn(), &inv.id)?;
                if next(3) == 0 && inv.lines_total > 0 {
                    let d = next(inv.lines_total as u64 / 2 + 1) as i64;
                    invoices::discount_invoice(w, &inv.id, d, "loyalty", true)?;
                }
                invoices::issue(w, &inv.id, &device, issued)
            })
            .unwrap();
        // Paid in cash or by card; a refund goes back the way it came.
        let mut paid = 0;
        let mut by = [0i64; 2];
        for _ in 0..next(4) {
            let due = inv.total - paid;
            let m = next(2) as usize;
            let amount = if due > 0 && next(4) != 0 {
                1 + next(due as u64) as i64
            } else if by[m] > 0 {
                -(1 + next(by[m] as u64) as i64)
            } else {
                continue;
            };
            let out = cash
                .payment_take(PaymentInput {
                    invoice_id: inv.id.clone(),
                    method: [Method::Cash, Method::Card][m],
                    amount,
                    tendered: None,
                    reason: "customer returned goods".into(),
                })
                .unwrap();
            paid += amount;
            by[m] += amount;
            assert_eq!(out.invoice.paid, paid);
        }
        let got = cash.invoice_get(inv.id.clone()).unwrap();
        assert_eq!(got.net + got.tax, got.lines_total, "{got:?}");
        assert_eq!(
            got.lines_total,
            got.lines.iter().map(|l| l.total).sum::<i64>()
        );
        for l in &got.lines {
            assert_eq!(l.net + l.tax, l.total);
        }
        assert_eq!(got.total, got.lines_total - got.discount);
        assert_eq!(got.paid, got.payments.iter().map(|p| p.amount).sum::<i64>());
        assert_eq!(got.balance, got.total - got.paid);
        if matches!(
            got.status,
            InvoiceStatus::Issued | InvoiceStatus::PartlyPaid
        ) {
            expected_outstanding += got.balance;
            let bucket = match age {
                0..=30 => 0,
                31..=60 => 1,
                61..=90 => 2,
                _ => 3,
            };
            buckets[bucket] += got.balance;
        }
    }
    let out = cash.outstanding_invoices(None).unwrap();
    assert_eq!(out.total, expected_outstanding);
    let a = out.ageing;
    assert_eq!(
        [a.days_0_30, a.days_31_60, a.days_61_90, a.over_90],
        buckets
    );
    assert!(
        buckets.iter().all(|b| *b > 0),
        "every age bucket is exercised: {buckets:?}"
    );
    assert_eq!(
        a.days_0_30 + a.days_31_60 + a.days_61_90 + a.over_90,
        out.total
    );
    // The list is oldest first, each with its age.
    assert!(out
        .invoices
        .windows(2)
        .all(|w| w[0].age_days >= w[1].age_days));
}

#[test]
fn a_120_line_invoice_breaks_across_pages_cleanly() {
    let r = room();
    let cash = cashier(&r);
    let pat = register(&r.doctor, "Long", "Invoice", "1980-01-01");
    let inv = cash.invoice_new(pat).unwrap();
    for n in 1..=120 {
        cash.invoice_line_add(LineInput {
            invoice_id: inv.id.clone(),
            kind: LineKind::Service,
            description: format!("Service item number {n:03}"),
            quantity: 1,
            unit_price: 100 * n,
            ..Default::default()
        })
        .unwrap();
    }
    let inv = cash.invoice_issue(inv.id).unwrap();
    let pdf = cash
        .billing_pdf(Command::invoice_print, &inv.id, Some(Language::En))
        .unwrap();
    let text = crate::printing::pdftotext(&pdf, "invoice-120", false);
    let pages = text.matches('\u{c}').count();
    assert!(pages >= 3, "{pages} pages");
    for n in 1..=120 {
        assert_eq!(
            text.matches(&format!("Service item number {n:03}")).count(),
            1,
            "line {n} once"
        );
    }
    assert!(text.contains(&format!("Page 1 of {pages}")));
    // 1 + 2 + … + 120 = 7,260.00
    assert!(text.contains("7,260.00 THB"));
}
