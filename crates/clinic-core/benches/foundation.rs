//! Foundation figures (BENCHMARKS.md): unlock, audited write vs the same write without
//! audit. Prints one JSON document. Run: `cargo bench -p clinic-core --bench foundation`.

mod common;

use clinic_core::app::LoginStep;
use clinic_core::audit::Actor;
use clinic_core::ids::new_id;
use clinic_core::{demo, Core};
use common::Stats;
use rusqlite::TransactionBehavior;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    demo::create(dir.path()).unwrap();
    let core = Core::new(dir.path());
    let (user, pw, ..) = demo::ACCOUNTS[3];

    // Unlock: argon2id over the slot, key unwrap, SQLCipher open, schema check, session.
    let unlock = Stats::measure("unlock (argon2id + SQLCipher open + sign-in)", 1, 10, |_| {
        assert!(matches!(core.login(user, pw).unwrap(), LoginStep::Done { .. }));
        core.logout().unwrap();
    });

    assert!(matches!(core.login(user, pw).unwrap(), LoginStep::Done { .. }));
    let actor = Actor { id: "bench".into(), name: "bench".into() };
    const SQL: &str = "INSERT INTO settings (id, key, value, created_at, created_by, updated_at, updated_by)
                       VALUES (?1, ?2, '{\"v\":1}', ?3, ?4, ?3, ?4)";
    let n = 10_000;
    let audited = core
        .with_db(|db| {
            Ok(Stats::measure("audited single-row write (insert + audit + change log, one transaction)", 300, n, |i| {
                db.write(&actor, |w| {
                    let id = new_id();
                    w.insert("settings", &id, SQL, (&id, format!("bench.a{i}"), w.now_ts(), w.actor_id()))
                })
                .unwrap();
            }))
        })
        .unwrap();
    let plain = core
        .with_db(|db| {
            // The same statement in the same kind of transaction, with no audit: the baseline.
            Ok(Stats::measure("the same write without audit (baseline)", 300, n, |i| {
                let conn = db.conn();
                let now = clinic_core::ids::ts(chrono::Utc::now());
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                let id = new_id();
                conn.prepare_cached(SQL).unwrap().execute((&id, format!("bench.p{i}"), &now, "bench")).unwrap();
                conn.execute_batch("COMMIT").unwrap();
                let _ = TransactionBehavior::Immediate;
            }))
        })
        .unwrap();
    let ratio = audited.pct(0.95).as_secs_f64() / plain.pct(0.95).as_secs_f64();
    let out = serde_json::json!({
        "bench": "foundation",
        "results": [unlock.json(), audited.json(), plain.json()],
        "audited_vs_plain_p95_ratio": (ratio * 100.0).round() / 100.0,
        "targets": {"unlock_p95_us": 1_000_000, "audited_write_p95_us": 1000, "ratio_max": 2.0},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
