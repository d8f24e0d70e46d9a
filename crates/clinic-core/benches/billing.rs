//! Billing figures (BENCHMARKS.md), on a generated year of a busy clinic: 200 invoices a day
//! for 365 days (73,000 invoices of three lines, most paid the same day, every day closed but
//! the last 30), kept in `target/bench-billing` and generated the first time. Measured through
//! the commands a cashier uses: issuing an invoice, the outstanding-invoices list with its
//! ageing, and 1,000 invoice PDFs one after another; and closing a day of 200 invoices (the
//! close itself, through the billing domain, for each of the 30 open days).
//!
//! `cargo bench -p clinic-core --features dev-data --bench billing` prints one JSON document.

mod common;

use std::path::PathBuf;

use clinic_core::billing::close::{self, DayCloseInput};
use clinic_core::billing::invoices::LineInput;
use clinic_core::billing::LineKind;
use clinic_core::dev::demo::{self, Size};
use clinic_core::dev::generate;
use clinic_core::perm::Command;
use clinic_core::session::LoginStep;
use clinic_core::settings::Language;
use clinic_core::store::Actor;
use clinic_core::Core;
use common::Stats;

const DAYS: i64 = 365;
const PER_DAY: usize = 200;
const OPEN_DAYS: i64 = 30;

fn sign_in(core: &Core) {
    let LoginStep::Done { .. } = core
        .login("cashier".into(), "cash-drawer-demo".into())
        .unwrap()
    else {
        panic!("demo accounts have no second factor");
    };
}

fn main() {
    let dir = std::env::var_os("CLINICDESK_BENCH_BILLING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-billing")
        });
    let actor = Actor {
        id: "bench".into(),
        name: "Generated billing".into(),
    };
    let mut generated_s = None;
    if !dir.join("clinic.db").exists() {
        let t = std::time::Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        demo::create_sized(
            &dir,
            Size {
                doctors: 2,
                patients: 5_000,
                days: 1,
                max_appointments: 0,
            },
            |_| {},
        )
        .unwrap();
        let core = Core::new(&dir);
        sign_in(&core);
        let patients: Vec<String> = core
            .dev_db()
            .unwrap()
            .read(|c| {
                let mut st = c.prepare("SELECT id FROM patients")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .unwrap();
        generate::billing_year(
            &core.dev_db().unwrap(),
            &actor,
            &patients,
            generate::BillingSize {
                days: DAYS,
                per_day: PER_DAY,
                open_days: OPEN_DAYS,
            },
            11,
            |p| eprintln!("{p}"),
        )
        .unwrap();
        core.logout().unwrap();
        generated_s = Some((t.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    }
    let core = Core::new(&dir);
    sign_in(&core);
    let db = core.dev_db().unwrap();
    let (invoices, outstanding_n, open_days): (i64, i64, Vec<String>) = db
        .read(|c| {
            let n: i64 = c.query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))?;
            let o: i64 = c.query_row(
                "SELECT count(*) FROM invoices WHERE status IN ('issued', 'partly_paid')",
                [],
                |r| r.get(0),
            )?;
            let mut st =
                c.prepare("SELECT DISTINCT day FROM payments WHERE close_id IS NULL ORDER BY day")?;
            let days = st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((n, o, days))
        })
        .unwrap();

    // Issuing: 1,000 drafts of three lines made first, then each issued by the command.
    let patient = core.patient_search(String::new(), 0, 1).unwrap().items[0]
        .id
        .clone();
    let drafts: Vec<String> = (0..1000)
        .map(|n| {
            let d = core.invoice_new(patient.clone()).unwrap();
            for (kind, price) in [
                (LineKind::Consultation, 60_000),
                (LineKind::Service, 7_500),
                (LineKind::Pharmacy, 500),
            ] {
                core.invoice_line_add(LineInput {
                    invoice_id: d.id.clone(),
                    kind,
                    description: format!("Line {n}"),
                    quantity: 1,
                    unit_price: price,
                    ..Default::default()
                })
                .unwrap();
            }
            d.id
        })
        .collect();
    let issue = Stats::measure("issue_invoice", 0, drafts.len(), |i| {
        core.invoice_issue(drafts[i].clone()).unwrap();
    });
    let mut listed = 0;
    let outstanding = Stats::measure("outstanding_list", 5, 100, |_| {
        listed = core.outstanding_invoices(None).unwrap().invoices.len();
    });
    // Closing each of the open days (200 invoices and their payments each).
    let device = db.device().id.clone();
    let mut closed = 0;
    let close = Stats::measure("daily_close", 0, open_days.len(), |i| {
        let day: chrono::NaiveDate = open_days[i].parse().unwrap();
        db.write(&actor, |w| {
            let c = close::close(
                w,
                &device,
                day,
                &DayCloseInput {
                    counted: vec![],
                    note: "bench: cash not counted".into(),
                },
            )?;
            closed += c.payments;
            Ok(())
        })
        .unwrap();
    });
    // 1,000 invoice PDFs one after another (the most recent issued ones).
    let ids: Vec<String> = db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT id FROM invoices WHERE status <> 'draft' ORDER BY rowid DESC LIMIT 1000",
            )?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap();
    let t = std::time::Instant::now();
    let mut bytes = 0;
    for id in &ids {
        bytes += core
            .billing_pdf(Command::invoice_print, id, Some(Language::Th))
            .unwrap()
            .len();
    }
    let pdfs_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "year": {
                "invoices": invoices,
                "outstanding": outstanding_n,
                "generated_s": generated_s,
            },
            "issue_invoice": issue.json(),
            "outstanding_list": { "stats": outstanding.json(), "rows": listed },
            "daily_close": { "stats": close.json(), "payments_closed": closed },
            "invoice_pdfs_1000": { "ms": pdfs_ms.round(), "count": ids.len(), "mean_bytes": bytes / ids.len().max(1) },
        }))
        .unwrap()
    );
}
