//! Re-keying the 1,000,000-patient clinic (BENCHMARKS.md): the whole file re-encrypted under a
//! new key in one transaction, then written back from the log. Prints one JSON document.
//! `cargo bench -p clinic-core --bench rekey` uses `CLINICDESK_BENCH_DIR` (default
//! `target/bench-1m`, made by the reception bench).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clinic_core::dev::demo;
use clinic_core::session::LoginStep;
use clinic_core::Core;

fn main() {
    let dir = std::env::var_os("CLINICDESK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-1m"));
    assert!(
        dir.join("clinic.db").exists(),
        "{} has no clinic: run the reception bench first",
        dir.display()
    );
    let bytes = std::fs::metadata(dir.join("clinic.db")).unwrap().len();
    let core = Core::new(&dir);
    // Every demo account signs in once first: a slot made before key pairs is upgraded at its
    // owner's sign-in, and only upgraded slots can receive the new key.
    for (user, pw, ..) in demo::ACCOUNTS {
        if let Ok(LoginStep::Done { .. }) = core.login((*user).into(), (*pw).into()) {
            core.logout().unwrap();
        }
    }
    assert!(matches!(
        core.login("admin".into(), "clinic-admin-demo".into())
            .unwrap(),
        LoginStep::Done { .. }
    ));
    // A clinic re-keyed before those sign-ins lost them: an admin gives them their password
    // back (reset, then the account changes it to its usual one).
    for (user, pw, ..) in &demo::ACCOUNTS[1..] {
        if core.login((*user).into(), (*pw).into()).is_ok() {
            continue;
        }
        assert!(matches!(
            core.login("admin".into(), "clinic-admin-demo".into())
                .unwrap(),
            LoginStep::Done { .. }
        ));
        let id = core
            .staff_accounts()
            .unwrap()
            .into_iter()
            .find(|s| s.username == *user)
            .unwrap()
            .id;
        core.staff_reset_password(id, format!("{pw}-reset"))
            .unwrap();
        core.logout().unwrap();
        core.login((*user).into(), format!("{pw}-reset")).unwrap();
        core.change_password(format!("{pw}-reset"), (*pw).into())
            .unwrap();
    }
    core.logout().unwrap();
    assert!(matches!(
        core.login("admin".into(), "clinic-admin-demo".into())
            .unwrap(),
        LoginStep::Done { .. }
    ));
    let started = Instant::now();
    let (report, samples) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut samples: Vec<(f64, u64)> = vec![];
            let mut idle = 0;
            while idle < 50 {
                let p = core.database_rekey_progress().unwrap();
                if p.running {
                    samples.push((started.elapsed().as_secs_f64(), p.done_bytes));
                    idle = 0;
                } else if !samples.is_empty() {
                    idle += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        let report = match core.database_rekey() {
            Err(e) if e.code() == "recovery_key_outdated" => {
                core.recovery_key_rotate().unwrap();
                core.database_rekey().unwrap()
            }
            other => other.unwrap(),
        };
        (report, watcher.join().unwrap())
    });
    let out = serde_json::json!({
        "bench": "rekey",
        "database_bytes": bytes,
        "seconds": (report.seconds * 10.0).round() / 10.0,
        "mib_per_second": ((bytes as f64 / 1048576.0 / report.seconds) * 10.0).round() / 10.0,
        "progress_samples": samples.len(),
        "progress_first_and_last": [samples.first(), samples.last()],
        "accounts_needing_new_password": report.accounts_needing_new_password,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    core.logout().unwrap();
}
