//! Reception figures on a clinic of 1,000,000 patients (BENCHMARKS.md): patient search
//! through the core API next to the raw FTS5 query, the same search while another thread
//! writes 200 audited rows a second, booking, free slots, a day calendar.
//!
//! `cargo bench -p clinic-core --bench reception` uses the clinic in
//! `CLINICDESK_BENCH_DIR` (default `target/bench-1m`), generating it first if missing
//! (about 3 minutes; progress on stderr). Prints one JSON document.

mod common;

use std::path::PathBuf;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use clinic_core::store::Db;

use chrono::{Duration, Utc};
use clinic_core::dev::demo::{self, Size};
use clinic_core::dev::generate::Rng;
use clinic_core::scheduling::{
    AppointmentKind, BookInput, CalendarQuery, Doctor, DoctorStatus, SlotQuery, WorkingBlock,
};
use clinic_core::session::LoginStep;
use clinic_core::store::Actor;
use clinic_core::{patients, Core};
use common::Stats;

fn dir() -> PathBuf {
    std::env::var_os("CLINICDESK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-1m"))
}

fn sign_in(core: &Core, user: &str, pw: &str) {
    assert!(
        matches!(
            core.login(user.into(), pw.into()).unwrap(),
            LoginStep::Done { .. }
        ),
        "demo accounts have no second factor"
    );
}

fn main() {
    let dir = dir();
    let patients_n: u64 = std::env::var("BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if !dir.join("clinic.db").exists() {
        let t = std::time::Instant::now();
        demo::create_sized(
            &dir,
            Size {
                doctors: 20,
                patients: patients_n,
                days: 60,
                max_appointments: u64::MAX,
            },
            |l| eprintln!("[{:>6.1}s] {l}", t.elapsed().as_secs_f64()),
        )
        .unwrap();
    }
    let core = Core::new(&dir);

    // A doctor working around the clock in 5-minute slots, so every booking has a free slot.
    sign_in(&core, "admin", "clinic-admin-demo");
    let spec = core.specialization_list().unwrap()[0].id.clone();
    let bench_doctor = core
        .doctor_save(Doctor {
            id: String::new(),
            staff_id: None,
            full_name: "Dr. Bench".into(),
            specialization_id: spec,
            licence_number: format!("BENCH-{}", Utc::now().timestamp_micros()),
            qualification: String::new(),
            years_experience: 1,
            fee_minor: 0,
            fee_currency: "THB".into(),
            biography: String::new(),
            status: DoctorStatus::Approved,
            available: true,
            room: "B1".into(),
        })
        .unwrap();
    let around_the_clock: Vec<WorkingBlock> = (1..=7)
        .map(|d| WorkingBlock {
            weekday: d,
            start_minute: 0,
            end_minute: 1440,
            slot_minutes: 5,
        })
        .collect();
    core.doctor_hours_set(bench_doctor.id.clone(), around_the_clock)
        .unwrap();
    let all = core.doctor_list().unwrap();
    // Each run books its own days, so runs on the same data never clash with each other.
    let earlier_runs = all.iter().filter(|d| d.full_name == "Dr. Bench").count() as i64 - 1;
    let doctors: Vec<Doctor> = all
        .into_iter()
        .filter(|d| d.full_name != "Dr. Bench")
        .collect();
    core.logout().unwrap();
    sign_in(&core, "reception", "front-desk-demo");

    // Search: prefixes of names in three scripts, phone fragments, record numbers.
    let queries: Vec<String> = [
        "sm",
        "smi",
        "smith",
        "jo",
        "jon",
        "anna",
        "oliv",
        "tho",
        "wil",
        "green ja",
        "ja green",
        "robin",
        "wh",
        "ив",
        "иван",
        "смир",
        "кузн",
        "ольга",
        "ёлк",
        "елк",
        "петр",
        "нат",
        "волк",
        "мари",
        "สม",
        "สมช",
        "สมศักดิ์",
        "สมศกด",
        "ใจด",
        "รักไ",
        "มาลี",
        "วิไล",
        "ศรีส",
        "ทองด",
        "081",
        "0812",
        "+66 8",
        "7912",
        "4479",
        "555",
        "000123",
        "123456",
        "99",
        "q",
        "zzzz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let n = 4000;
    let core_search = Stats::measure(
        "patient search, core API (FTS5 + rows for one page of 20)",
        400,
        n,
        |i| {
            let q = &queries[i % queries.len()];
            std::hint::black_box(core.patient_search(q.into(), 0, 20).unwrap());
        },
    );
    let db = core.dev_db().unwrap();
    let raw_search = Stats::measure(
        "raw FTS5 query, same queries (row ids of one page)",
        400,
        n,
        |i| {
            let q = &queries[i % queries.len()];
            std::hint::black_box(db.read(|c| patients::search_raw_ids(c, q, 0, 20)).unwrap());
        },
    );

    // The same search while a background thread writes 200 audited rows a second (sync, a
    // report's bookkeeping): readers don't wait for the writer. Once as 200 commits a second,
    // once as 10 commits of 20 rows (how sync applies what it pulled).
    let (busy_search, busy_rate) = search_beside_writer(&core, &db, &queries, n, 1);
    let (batched_search, batched_rate) = search_beside_writer(&core, &db, &queries, n, 20);
    let hits: usize = queries
        .iter()
        .map(|q| core.patient_search(q.into(), 0, 20).unwrap().items.len())
        .sum();

    // Booking: checks, insert, history and audit, each its own transaction.
    let mut rng = Rng::new(7 + earlier_runs as u64);
    let some_patients: Vec<String> = (0..2000)
        .filter_map(|_| {
            let q = format!("{}", 100_000 + rng.below(899_999));
            core.patient_search(q.clone(), 0, 1)
                .unwrap()
                .items
                .into_iter()
                .next()
                .map(|p| p.id)
        })
        .collect();
    let first = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    // After the generated 60 days (whose random patients would clash with ours) and after
    // every earlier run's 8 days.
    let booking_from = first + Duration::days(62 + 8 * earlier_runs);
    let booking = Stats::measure(
        "booking (hours, exceptions, both clash checks, insert, history, audit)",
        100,
        2000,
        |i| {
            let start = booking_from + Duration::minutes(5 * i as i64);
            core.appointment_book(BookInput {
                patient_id: some_patients[i % some_patients.len()].clone(),
                doctor_id: bench_doctor.id.clone(),
                starts_at: clinic_core::ids::ts(start),
                duration_minutes: 5,
                kind: AppointmentKind::Consultation,
                reason: String::new(),
                override_reason: None,
            })
            .unwrap_or_else(|e| panic!("booking {i}: {e}"));
        },
    );

    // Free slots of one (busy) doctor over 14 days.
    let slots = Stats::measure("free slots, one doctor, 14 days", 50, 1000, |i| {
        let d = &doctors[i % doctors.len()];
        std::hint::black_box(
            core.slots_find(SlotQuery {
                doctor_id: Some(d.id.clone()),
                specialization_id: None,
                from: None,
                days: 14,
                limit: 2000,
            })
            .unwrap(),
        );
    });
    let slot_count = core
        .slots_find(SlotQuery {
            doctor_id: Some(doctors[0].id.clone()),
            specialization_id: None,
            from: None,
            days: 14,
            limit: 2000,
        })
        .unwrap()
        .len();

    // A day calendar of 20 doctors side by side (tomorrow: the generator filled it).
    let ids: Vec<String> = doctors.iter().take(20).map(|d| d.id.clone()).collect();
    let day_from = clinic_core::ids::ts(first - Duration::hours(7));
    let day_to = clinic_core::ids::ts(first + Duration::hours(17));
    let calendar = Stats::measure("day calendar, 20 doctors", 50, 1000, |_| {
        std::hint::black_box(
            core.appointments_calendar(CalendarQuery {
                from: day_from.clone(),
                to: day_to.clone(),
                doctor_ids: ids.clone(),
            })
            .unwrap(),
        );
    });
    let calendar_entries = core
        .appointments_calendar(CalendarQuery {
            from: day_from,
            to: day_to,
            doctor_ids: ids.clone(),
        })
        .unwrap()
        .len();

    let patients_on_file: i64 = db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM patients", [], |r| r.get(0))?))
        .unwrap();
    let appointments_on_file: i64 = db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM appointments", [], |r| r.get(0))?))
        .unwrap();
    let ratio = core_search.pct(0.95).as_secs_f64() / raw_search.pct(0.95).as_secs_f64();
    let busy_ratio = busy_search.pct(0.95).as_secs_f64() / core_search.pct(0.95).as_secs_f64();
    let batched_ratio =
        batched_search.pct(0.95).as_secs_f64() / core_search.pct(0.95).as_secs_f64();
    let out = serde_json::json!({
        "bench": "reception",
        "data": { "patients": patients_on_file, "appointments": appointments_on_file, "doctors": doctors.len(),
                  "search_queries": queries.len(), "search_hits_first_pages": hits,
                  "free_slots_14_days_first_doctor": slot_count, "calendar_entries": calendar_entries },
        "results": [core_search.json(), raw_search.json(), busy_search.json(), batched_search.json(), booking.json(), slots.json(), calendar.json()],
        "search_core_vs_raw_p95_ratio": (ratio * 100.0).round() / 100.0,
        "search_with_writer_vs_without_p95_ratio": (busy_ratio * 100.0).round() / 100.0,
        "search_with_batched_writer_vs_without_p95_ratio": (batched_ratio * 100.0).round() / 100.0,
        "background_rows_per_sec": [busy_rate, batched_rate],
        "targets": { "search_p95_us": 10_000, "search_ratio_max": 1.5, "search_with_writer_p95_us": 10_000,
                     "search_with_writer_ratio_max": 1.5, "search_with_batched_writer_ratio_max": 1.5, "booking_p95_us": 2000,
                     "free_slots_p95_us": 5000, "day_calendar_p95_us": 20_000 },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    core.logout().unwrap();
}

/// Runs the search queries through `core` while another thread writes 200 audited rows a
/// second, `per_tx` rows to a transaction. Returns the search figures and the rows per
/// second the writer actually managed.
fn search_beside_writer(
    core: &Core,
    db: &Arc<Db>,
    queries: &[String],
    n: usize,
    per_tx: u64,
) -> (Stats, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let actor = Actor {
                id: "bench-writer".into(),
                name: "background writer".into(),
            };
            let start = std::time::Instant::now();
            let mut rows = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.write(&actor, |w| {
                    for _ in 0..per_tx {
                        let id = clinic_core::ids::new_id();
                        w.insert(
                            clinic_core::settings::Table::Settings,
                            &id,
                            "INSERT INTO settings (id, key, value, created_at, created_by, updated_at, updated_by)
                             VALUES (?1, ?2, '{\"v\":1}', ?3, ?4, ?3, ?4)",
                            (&id, format!("bench.bg.{id}"), w.now_ts(), w.actor_id()),
                        )?;
                    }
                    Ok(())
                })
                .unwrap();
                rows += per_tx;
                written.store(rows, Ordering::Relaxed);
                // 200 rows a second: row k is due at k × 5 ms.
                let due = std::time::Duration::from_millis(5 * rows);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            start.elapsed()
        })
    };
    let name = if per_tx == 1 {
        "patient search, core API, beside 200 audited rows/s written as 200 commits/s".to_string()
    } else {
        format!("patient search, core API, beside 200 audited rows/s written {per_tx} to a commit")
    };
    let stats = Stats::measure(&name, 400, n, |i| {
        let q = &queries[i % queries.len()];
        std::hint::black_box(core.patient_search(q.into(), 0, 20).unwrap());
    });
    stop.store(true, Ordering::Relaxed);
    let secs = writer.join().unwrap().as_secs_f64();
    let rate = (written.load(Ordering::Relaxed) as f64 / secs * 10.0).round() / 10.0;
    (stats, rate)
}
