//! Foundation figures (BENCHMARKS.md): unlock, audited write vs the same write without
//! audit. Prints one JSON document. Run: `cargo bench -p clinic-core --bench foundation`.

mod common;

use clinic_core::dev::demo;
use clinic_core::ids::new_id;
use clinic_core::session::LoginStep;
use clinic_core::store::Actor;
use clinic_core::Core;
use common::Stats;

fn main() {
    // `BENCH_MEMORY_SECURITY=1`: the same figures with SQLCipher's memory security on (every
    // allocation locked and wiped on free; process-wide), to weigh turning it on.
    let memory_security = std::env::var("BENCH_MEMORY_SECURITY").is_ok_and(|v| v == "1");
    if memory_security {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA cipher_memory_security = ON;")
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    demo::create(dir.path()).unwrap();
    let core = Core::new(dir.path());
    let (user, pw, ..) = demo::ACCOUNTS[3];

    // Unlock: argon2id over the slot, key unwrap, SQLCipher open, schema check, session.
    let unlock = Stats::measure(
        "unlock (argon2id + SQLCipher open + sign-in)",
        1,
        10,
        |_| {
            assert!(matches!(
                core.login(user.into(), pw.into()).unwrap(),
                LoginStep::Done { .. }
            ));
            core.logout().unwrap();
        },
    );

    assert!(matches!(
        core.login(user.into(), pw.into()).unwrap(),
        LoginStep::Done { .. }
    ));
    let actor = Actor {
        id: "bench".into(),
        name: "bench".into(),
    };
    const SQL: &str =
        "INSERT INTO settings (id, key, value, created_at, created_by, updated_at, updated_by)
                       VALUES (?1, ?2, '{\"v\":1}', ?3, ?4, ?3, ?4)";
    let n = 10_000;
    let db = core.dev_db().unwrap();
    let audited = Stats::measure(
        "audited single-row write (insert + audit + change log, one transaction)",
        300,
        n,
        |i| {
            db.write(&actor, |w| {
                let id = new_id();
                w.insert(
                    clinic_core::settings::Table::Settings,
                    &id,
                    SQL,
                    (&id, format!("bench.a{i}"), w.now_ts(), w.actor_id()),
                )
            })
            .unwrap();
        },
    );
    // The same statement in the same kind of transaction on the same connection, with no
    // audit: the baseline.
    let plain = db
        .raw_writer(|conn| {
            Ok(Stats::measure(
                "the same write without audit (baseline)",
                300,
                n,
                |i| {
                    let now = clinic_core::ids::ts(chrono::Utc::now());
                    let tx = conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .unwrap();
                    let id = new_id();
                    tx.prepare_cached(SQL)
                        .unwrap()
                        .execute((&id, format!("bench.p{i}"), &now, "bench"))
                        .unwrap();
                    tx.commit().unwrap();
                },
            ))
        })
        .unwrap();
    let ratio = audited.pct(0.95).as_secs_f64() / plain.pct(0.95).as_secs_f64();
    let out = serde_json::json!({
        "bench": "foundation",
        "cipher_memory_security": memory_security,
        "results": [unlock.json(), audited.json(), plain.json()],
        "audited_vs_plain_p95_ratio": (ratio * 100.0).round() / 100.0,
        "targets": {"unlock_p95_us": 1_000_000, "audited_write_p95_us": 1000, "ratio_max": 2.0},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
