//! The security review's findings (issue 7), each as a test that failed before its fix:
//! revoked access, the idle lock, long clinic names, crashes during set-up and between a key
//! slot and its account, narrower reads, sign-in details, smaller gaps.

use clinic_core::print::Output;
use std::path::Path;
use std::process::Command as Process;

use chrono::Duration;
use clinic_core::patients::RegisterOutcome;
use clinic_core::perm::Role;
use clinic_core::session::keyslots::KeySlots;
use clinic_core::session::LoginStep;
use clinic_core::staff::SetActive;
use clinic_core::store::audit::AuditFilter;
use clinic_core::store::Db;
use clinic_core::Core;

use crate::support::*;

fn cli() -> &'static str {
    env!("CARGO_BIN_EXE_clinicdesk-cli")
}

/// Runs the command-line tool as the admin of `c`, optionally killed at a crash point.
fn run_as_admin(c: &Clinic, crash_at: Option<&str>, op: &[&str]) -> std::process::Output {
    let dir = c.dir.path().to_str().unwrap();
    let now = clinic_core::ids::ts(c.clock.now());
    let mut p = Process::new(cli());
    p.args([
        "as",
        dir,
        ADMIN,
        ADMIN_PW,
        "--totp",
        &c.admin_totp,
        "--now",
        &now,
    ])
    .args(op);
    if let Some(point) = crash_at {
        p.env("CLINICDESK_CRASH_AT", point);
    }
    let out = p.output().unwrap();
    // The tool used this step's code: the next sign-in needs the next one.
    c.clock.advance(Duration::seconds(30));
    out
}

fn crashed(out: &std::process::Output, point: &str) {
    assert!(
        !out.status.success(),
        "expected a crash at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("crash point {point}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The database key a slot file gives for `user` (first key), without the app.
fn key_from(
    slots_json: &[u8],
    dir: &Path,
    user: &str,
    pw: &str,
) -> Option<clinic_core::store::DbKey> {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("keyslots.json"), slots_json).unwrap();
    let _ = dir;
    let mut slots = KeySlots::load(scratch.path()).unwrap();
    slots
        .open_with_password(user, pw, start_instant())
        .ok()
        .map(|mut o| o.keys.remove(0))
}

fn opens(dir: &Path, key: &clinic_core::store::DbKey) -> bool {
    Db::open(dir, key, TestClock::new().clock()).is_ok()
}

fn signed_in(c: &Clinic, user: &str, pw: &str) -> Core {
    let core = c.core();
    login_any(c, &core, user, pw);
    core
}

// ---------------------------------------------------------------------------------
// 1. Taking access away takes it away.

#[test]
fn after_a_rekey_old_slot_files_and_revoked_passwords_open_nothing() {
    let c = new_clinic();
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff(
            "gone",
            vec![Role::Cashier],
            "Cashier-pass-gone-1",
        ))
        .unwrap();
    admin
        .staff_create(new_staff(
            "stays",
            vec![Role::Cashier],
            "Cashier-pass-stays-1",
        ))
        .unwrap();
    let dir = c.dir.path();
    // A copy of the slot file as someone could have taken it, before access was taken away.
    std::fs::write(dir.join("keyslots.json.bak"), b"left by an older version").unwrap();
    let copy = std::fs::read(dir.join("keyslots.json")).unwrap();
    let gone = admin
        .staff_accounts()
        .unwrap()
        .into_iter()
        .find(|s| s.username == "gone")
        .unwrap();
    admin
        .staff_set_active(SetActive {
            id: gone.id.clone(),
            active: false,
            initial_password: None,
        })
        .unwrap();
    assert!(
        !dir.join("keyslots.json.bak").exists(),
        "no stale copy of the slot file is left"
    );
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("keyslots") && n != "keyslots.json" && n != "keyslots.lock"),
        "{names:?}"
    );

    // Until the re-key, the copy and the revoked password still give the key (SECURITY.md).
    let old_key = key_from(&copy, dir, "gone", "Cashier-pass-gone-1")
        .expect("the copy opens with the old password");
    assert!(opens(dir, &old_key));
    let report = admin.database_rekey().unwrap();
    assert!(report.accounts_needing_new_password.is_empty());
    assert!(
        !opens(dir, &old_key),
        "the old key opens nothing after the re-key"
    );
    assert!(key_from(
        &std::fs::read(dir.join("keyslots.json")).unwrap(),
        dir,
        "gone",
        "Cashier-pass-gone-1"
    )
    .is_none());

    // Everyone still active signs in as before; the admin's own session goes on.
    admin.staff_list().unwrap();
    admin.logout().unwrap();
    let stays = c.core();
    login_any(&c, &stays, "stays", "Cashier-pass-stays-1");
    assert!(stays.session_info().unwrap().must_change_password);
    stays.logout().unwrap();
    let again = admin_core(&c);
    let log = again
        .audit_list(AuditFilter {
            entity: Some("device".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        log.entries.iter().any(|e| e.action == "database_rekeyed"),
        "the re-key is audited"
    );
}

#[test]
fn a_changed_password_reaches_no_later_key() {
    let c = new_clinic();
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff("nina", vec![Role::Nurse], "Nurse-initial-1"))
        .unwrap();
    let nina = signed_in(&c, "nina", "Nurse-initial-1");
    let copy = std::fs::read(c.dir.path().join("keyslots.json")).unwrap();
    nina.change_password("Nurse-initial-1".into(), "Nurse-second-22".into())
        .unwrap();
    admin.database_rekey().unwrap();
    // The old password opened only the old key pair, which holds the old key.
    let from_copy = key_from(&copy, c.dir.path(), "nina", "Nurse-initial-1").unwrap();
    assert!(!opens(c.dir.path(), &from_copy));
    // Even with today's slot file, the old password opens nothing.
    assert!(key_from(
        &std::fs::read(c.dir.path().join("keyslots.json")).unwrap(),
        c.dir.path(),
        "nina",
        "Nurse-initial-1"
    )
    .is_none());
    // Nina's window, open through the re-key, holds the old key: it reads nothing more, and
    // she signs in again with her new password.
    assert_eq!(
        nina.queue_today().unwrap_err().code(),
        "database_unreadable"
    );
    nina.logout().unwrap();
    signed_in(&c, "nina", "Nurse-second-22");
}

#[test]
fn a_rekey_killed_at_any_step_leaves_a_database_that_opens() {
    for point in ["rekey_sealed", "rekey_committed"] {
        let c = new_clinic();
        let admin = admin_core(&c);
        let p = new_patient_for(&admin, "Crash", "Rekey");
        admin.logout().unwrap();
        crashed(&run_as_admin(&c, Some(point), &["rekey"]), point);
        // The admin signs in (old key or new, whichever the crash left) and nothing is lost.
        let core = admin_core(&c);
        assert_eq!(
            core.patient_get(p.clone()).unwrap().family_name,
            "Rekey",
            "{point}"
        );
        let slots = KeySlots::load(c.dir.path()).unwrap();
        assert!(
            !slots.rekey_pending(),
            "{point}: the sign-in settled the re-key"
        );
        // And a full re-key afterwards works.
        core.database_rekey().unwrap();
        core.logout().unwrap();
        assert_eq!(admin_core(&c).patient_get(p).unwrap().given_name, "Crash");
    }
}

fn new_patient_for(core: &Core, given: &str, family: &str) -> String {
    match core
        .patient_register(crate::reception::patient(given, family, "1980-01-01"), true)
        .unwrap()
    {
        RegisterOutcome::Registered { patient } => patient.id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_rekey_reports_its_progress_as_it_goes() {
    let c = new_clinic();
    let admin = admin_core(&c);
    for i in 0..300 {
        new_patient_for(&admin, &format!("Pro{i}"), "Gress");
    }
    let before = admin.database_rekey_progress().unwrap();
    assert!(!before.running);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = vec![];
            for _ in 0..2000 {
                let p = admin.database_rekey_progress().unwrap();
                if p.running {
                    seen.push((p.done_bytes, p.total_bytes));
                }
                if !seen.is_empty() && !p.running {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            seen
        });
        admin.database_rekey().unwrap();
        let seen = watcher.join().unwrap();
        assert!(
            !seen.is_empty(),
            "progress was visible while the re-key ran"
        );
        assert!(
            seen.iter().any(|(done, total)| *total > 0 && done <= total),
            "{seen:?}"
        );
    });
    let after = admin.database_rekey_progress().unwrap();
    assert!(
        !after.running && after.done_bytes >= after.total_bytes,
        "{after:?}"
    );
}

// ---------------------------------------------------------------------------------
// 2. The idle lock fires while a screen polls.

#[test]
fn a_polling_screen_does_not_keep_the_session_awake() {
    let c = new_clinic();
    let core = admin_core(&c);
    // The queue screen polls every 5 seconds; nobody touches the keyboard for 11 minutes.
    for _ in 0..(11 * 60 / 5) {
        c.clock.advance(Duration::seconds(5));
        match core.queue_today() {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), "session_locked");
                assert!(core.session_info().unwrap().locked);
                // Input again (after unlocking) keeps it awake: the window reports it.
                core.unlock(ADMIN_PW.into()).unwrap();
                for _ in 0..24 {
                    c.clock.advance(Duration::minutes(1));
                    core.session_touch().unwrap();
                }
                core.queue_today().expect("a person at the keyboard");
                return;
            }
        }
    }
    panic!("the session never locked while the screen polled for 11 minutes");
}

// ---------------------------------------------------------------------------------
// 4. The longest clinic name in each script still lets people enrol their second factor.

#[test]
fn the_longest_clinic_names_let_the_first_admin_enrol() {
    for letter in ["ก", "Ж", "W"] {
        let name = letter.repeat(200);
        let c = new_clinic_named(&name);
        let core = admin_core(&c);
        assert_eq!(
            core.settings_get().unwrap().clinic.name.chars().count(),
            200
        );
        // And after a rename, a new account with a second factor enrols too.
        let mut s = core.settings_get().unwrap();
        s.clinic.name = "ที่".repeat(66);
        core.settings_update(s).unwrap();
        core.staff_create(new_staff("dr-long", vec![Role::Doctor], "Doctor-initial-1"))
            .unwrap();
        core.logout().unwrap();
        match c
            .core()
            .login("dr-long".into(), "Doctor-initial-1".into())
            .unwrap()
        {
            LoginStep::EnrolTotp {
                qr_png_base64,
                otpauth_url,
                ..
            } => {
                assert!(qr_png_base64.len() > 100);
                assert!(
                    otpauth_url.starts_with("otpauth://totp/ClinicDesk:dr-long"),
                    "{otpauth_url}"
                );
            }
            other => panic!("{letter}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// 5. A crash during set-up leaves a folder set-up can use again.

#[test]
fn a_setup_killed_half_way_is_cleared_and_runs_again() {
    for point in ["setup_db_created", "setup_slots_saved"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Process::new(cli())
            .args(["setup", dir.path().to_str().unwrap(), ADMIN, ADMIN_PW])
            .env("CLINICDESK_CRASH_AT", point)
            .output()
            .unwrap();
        crashed(&out, point);
        assert!(
            dir.path().join("clinic.db").exists(),
            "{point}: the crash left files"
        );
        let core = Core::new(dir.path());
        assert!(
            !core.setup_status().unwrap(),
            "{point}: the half-made folder is not taken as set up"
        );
        assert!(
            !dir.path().join("clinic.db").exists(),
            "{point}: and was cleared"
        );
        let out = Process::new(cli())
            .args(["setup", dir.path().to_str().unwrap(), ADMIN, ADMIN_PW])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{point}: set-up runs again: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(matches!(
            core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
            LoginStep::EnrolTotp { .. }
        ));
    }
}

// ---------------------------------------------------------------------------------
// 6. A key slot and its account can't disagree for good.

#[test]
fn a_crash_between_a_slot_and_its_account_leaves_no_access() {
    let c = new_clinic();
    // Killed after the new account's slot, before its row: the slot is removed at the next
    // sign-in, and its password opens nothing through the app.
    crashed(
        &run_as_admin(
            &c,
            Some("account_slot_saved"),
            &["create-account", "orphan", "Orphan-pass-123"],
        ),
        "account_slot_saved",
    );
    assert_eq!(
        c.core()
            .login("orphan".into(), "Orphan-pass-123".into())
            .unwrap_err()
            .code(),
        "bad_credentials"
    );
    let admin = admin_core(&c);
    assert!(admin
        .staff_accounts()
        .unwrap()
        .iter()
        .all(|s| s.username != "orphan"));
    let slots = KeySlots::load(c.dir.path()).unwrap();
    assert!(
        slots.slot_for_username("orphan").is_none(),
        "the orphan slot is gone"
    );

    // Killed after disabling an account, before its slot goes: it can't sign in, and the
    // next sign-in removes the slot.
    admin
        .staff_create(new_staff("leaver", vec![Role::Cashier], "Leaver-pass-123"))
        .unwrap();
    admin.logout().unwrap();
    crashed(
        &run_as_admin(&c, Some("account_disabled"), &["disable", "leaver"]),
        "account_disabled",
    );
    assert!(KeySlots::load(c.dir.path())
        .unwrap()
        .slot_for_username("leaver")
        .is_some());
    assert_eq!(
        c.core()
            .login("leaver".into(), "Leaver-pass-123".into())
            .unwrap_err()
            .code(),
        "account_disabled"
    );
    let admin = admin_core(&c);
    let slots = KeySlots::load(c.dir.path()).unwrap();
    assert!(slots.slot_for_username("leaver").is_none());
    // Disabled by a signed grant, as if the command had finished: other PCs take it, and
    // the account's older grants can't come back.
    let leaver = admin
        .staff_accounts()
        .unwrap()
        .into_iter()
        .find(|s| s.username == "leaver")
        .unwrap();
    assert!(!leaver.active);
    assert!(!slots.grant_of(&leaver.id).unwrap().body.active);
}

#[test]
fn two_windows_writing_slots_at_once_lose_nothing() {
    let c = new_clinic();
    let (a, b) = (admin_core(&c), admin_core(&c));
    std::thread::scope(|s| {
        for (core, tag) in [(&a, "a"), (&b, "b")] {
            s.spawn(move || {
                for i in 0..4 {
                    core.staff_create(new_staff(
                        &format!("w{tag}{i}"),
                        vec![Role::Cashier],
                        "Cashier-pass-123",
                    ))
                    .unwrap();
                }
            });
        }
    });
    let slots = KeySlots::load(c.dir.path()).unwrap();
    for tag in ["a", "b"] {
        for i in 0..4 {
            assert!(
                slots.slot_for_username(&format!("w{tag}{i}")).is_some(),
                "w{tag}{i} lost its slot"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// 7. Each role reads what it needs.

#[test]
fn a_photo_and_the_list_of_appointments_are_chart_views_and_audited() {
    let c = new_clinic();
    let core = admin_core(&c);
    let id = new_patient_for(&core, "Audie", "Viewed");
    core.patient_photo(id.clone()).unwrap();
    core.appointments_for_patient(id.clone()).unwrap();
    let log = core
        .audit_list(AuditFilter {
            entity_id: Some(id),
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"view_photo") && actions.contains(&"view_appointments"),
        "{actions:?}"
    );
}

// ---------------------------------------------------------------------------------
// 8. Sign-in details.

#[test]
fn an_unknown_username_waits_exactly_as_a_real_one() {
    let c = new_clinic();
    let core = c.core();
    for user in ["admin", "nobody-here"] {
        let codes: Vec<String> = (0..5)
            .map(|_| {
                core.login(user.into(), "Wrong-password-1".into())
                    .unwrap_err()
                    .code()
            })
            .collect();
        assert_eq!(
            codes,
            [
                "bad_credentials",
                "bad_credentials",
                "bad_credentials",
                "bad_credentials",
                "too_many_attempts"
            ],
            "{user}"
        );
        assert_eq!(
            core.login(user.into(), "Wrong-password-1".into())
                .unwrap_err()
                .code(),
            "too_many_attempts",
            "{user}"
        );
    }
}

#[test]
fn failed_sign_ins_are_audited_at_the_next_sign_in() {
    let c = new_clinic();
    let core = c.core();
    core.login("admin".into(), "Wrong-password-1".into())
        .unwrap_err();
    core.login("mallory".into(), "Guessing-1234".into())
        .unwrap_err();
    let admin = admin_core(&c);
    let log = admin.audit_list(AuditFilter::default()).unwrap();
    let failed: Vec<String> = log
        .entries
        .iter()
        .filter(|e| e.action == "login_failed")
        .filter_map(|e| e.after.clone())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().any(|f| f.contains("mallory"))
            && failed.iter().any(|f| f.contains("\"admin\""))
    );
    assert!(
        KeySlots::load(c.dir.path())
            .unwrap()
            .failed_signins()
            .is_empty(),
        "audited once"
    );
}

#[test]
fn nothing_reads_the_database_before_the_second_factor() {
    let c = new_clinic();
    let core = c.core();
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    let board = core.queue_board().unwrap();
    assert!(
        board.clinic_name.is_empty(),
        "the board stays empty while the second factor is awaited"
    );
    assert_eq!(core.session_info().unwrap_err().code(), "not_authenticated");
    // The wait runs out: the database is closed.
    c.clock.advance(Duration::minutes(6));
    core.app_info().unwrap();
    assert!(
        core.dev_db().is_err(),
        "the database is closed once the second factor timed out"
    );
}

// ---------------------------------------------------------------------------------
// 9. Smaller gaps.

#[test]
fn a_new_recovery_key_replaces_the_old_one() {
    let c = new_clinic();
    let core = admin_core(&c);
    let new_key = core.recovery_key_rotate().unwrap().recovery_key;
    assert_ne!(new_key, c.recovery_key);
    assert_eq!(
        core.recovery_sheet_pdf(Output::Save, &c.recovery_key)
            .unwrap_err()
            .code(),
        "bad_credentials",
        "the old key stops working"
    );
    assert!(core
        .recovery_sheet_pdf(Output::Save, &new_key)
        .unwrap()
        .starts_with(b"%PDF"));
    let log = core
        .audit_list(AuditFilter {
            entity: Some("device".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(log
        .entries
        .iter()
        .any(|e| e.action == "recovery_key_rotated"));
    core.logout().unwrap();
    core.recover_account(new_key, ADMIN.into(), "Recovered-pass-77".into())
        .unwrap();
}

#[test]
fn free_text_has_limits_and_a_photo_is_measured_before_decoding() {
    let c = new_clinic();
    let core = admin_core(&c);
    let p = new_patient_for(&core, "Long", "Texts");
    // More than 2 MiB of base64 (and not even base64): refused as too long, not decoded.
    let huge = "!".repeat(3 * 1024 * 1024);
    assert_eq!(
        core.patient_set_photo(p, "image/png".into(), huge)
            .unwrap_err()
            .params()["reason"],
        "too_long"
    );
    let spec = core
        .specialization_save(clinic_core::scheduling::Specialization {
            id: String::new(),
            name: "Limits".into(),
            queue_code: "L".into(),
        })
        .unwrap();
    for (field, set) in [
        (
            "qualification",
            (|d: &mut clinic_core::scheduling::Doctor| d.qualification = "q".repeat(201))
                as fn(&mut _),
        ),
        ("biography", |d| d.biography = "b".repeat(5001)),
        ("room", |d| d.room = "r".repeat(51)),
    ] {
        let mut d = crate::reception::doctor_input("Dr. Limit", &spec.id);
        set(&mut d);
        let e = core.doctor_save(d).unwrap_err();
        assert_eq!(
            (e.params()["field"].as_str(), e.params()["reason"].as_str()),
            (field, "too_long")
        );
    }
}

#[test]
fn the_key_never_passes_through_sql_text() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for f in rust_files(&src) {
        let text = std::fs::read_to_string(&f).unwrap();
        for sql in [
            "PRAGMA key =",
            "PRAGMA key=",
            "PRAGMA rekey =",
            "PRAGMA rekey=",
            "KEY \"x'",
        ] {
            assert!(
                !text.contains(sql),
                "{} keys through SQL text ({sql})",
                f.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// The attacker's review of the fixes above.

/// A key pair anyone who can write to the folder plants in the slot file: as a second
/// recovery slot, or as the slot of an existing account.
fn plant(dir: &Path, owner: serde_json::Value) -> crypto_box::SecretKey {
    let secret = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
    let path = dir.join("keyslots.json");
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let any = file["slots"][0].clone();
    let mut slot = any.clone();
    slot["owner"] = owner;
    slot["public_key"] = serde_json::json!(base64_encode(secret.public_key().as_bytes()));
    file["slots"].as_array_mut().unwrap().push(slot);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    secret
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn a_key_pair_planted_in_the_slot_file_gets_nothing_from_a_rekey() {
    let c = new_clinic();
    let admin = admin_core(&c);
    let dir = c.dir.path();
    let as_recovery = plant(dir, serde_json::json!({ "kind": "recovery" }));
    let me = admin.session_info().unwrap().staff_id;
    let as_admin = plant(
        dir,
        serde_json::json!({ "kind": "staff", "staff_id": me, "username": "admin-again" }),
    );
    admin.database_rekey().unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("keyslots.json")).unwrap()).unwrap();
    for secret in [&as_recovery, &as_admin] {
        let mine = base64_encode(secret.public_key().as_bytes());
        assert!(
            file["slots"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["public_key"] != serde_json::json!(mine)),
            "a planted slot was kept: {file}"
        );
    }
    // Everyone real still gets in, the recovery key included.
    admin.logout().unwrap();
    admin_core(&c)
        .recovery_sheet_pdf(Output::Save, &c.recovery_key)
        .unwrap();
}

#[test]
fn an_error_after_the_rekey_committed_keeps_the_new_key() {
    let c = new_clinic();
    let admin = admin_core(&c);
    let p = new_patient_for(&admin, "After", "Commit");
    admin.logout().unwrap();
    let dir = c.dir.path().to_str().unwrap();
    let now = clinic_core::ids::ts(c.clock.now());
    let out = Process::new(cli())
        .args([
            "as",
            dir,
            ADMIN,
            ADMIN_PW,
            "--totp",
            &c.admin_totp,
            "--now",
            &now,
            "rekey",
        ])
        .env("CLINICDESK_FAIL_AT", "rekey_after_commit")
        .output()
        .unwrap();
    c.clock.advance(Duration::seconds(30));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fail point rekey_after_commit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both keys stayed sealed; the sign-in finds that the new one opens the file.
    let core = admin_core(&c);
    assert_eq!(core.patient_get(p).unwrap().family_name, "Commit");
    assert!(!KeySlots::load(c.dir.path()).unwrap().rekey_pending());
}

#[test]
fn a_window_holding_the_old_key_writes_no_slot() {
    let c = new_clinic();
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff("nora", vec![Role::Nurse], "Nurse-initial-1"))
        .unwrap();
    let nora = signed_in(&c, "nora", "Nurse-initial-1");
    admin.database_rekey().unwrap();
    let before = std::fs::read(c.dir.path().join("keyslots.json")).unwrap();
    let e = nora
        .change_password("Nurse-initial-1".into(), "Nurse-second-22".into())
        .unwrap_err();
    assert_eq!(e.code(), "key_outdated");
    assert_eq!(
        std::fs::read(c.dir.path().join("keyslots.json")).unwrap(),
        before,
        "her slot still holds the current key"
    );
    nora.logout().unwrap();
    signed_in(&c, "nora", "Nurse-initial-1");
}

#[test]
fn a_rekey_needs_a_recovery_key_the_database_knows() {
    let c = new_clinic();
    let admin = admin_core(&c);
    // A clinic from before recorded keys: nothing is recorded for the recovery slot.
    with_db(&admin, |db| {
        Ok(db
            .conn()
            .execute("UPDATE device SET recovery_public_key = NULL", [])?)
    })
    .unwrap();
    let before = std::fs::read(c.dir.path().join("keyslots.json")).unwrap();
    assert_eq!(
        admin.database_rekey().unwrap_err().code(),
        "recovery_key_outdated"
    );
    assert_eq!(
        std::fs::read(c.dir.path().join("keyslots.json")).unwrap(),
        before,
        "nothing changed"
    );
    admin.recovery_key_rotate().unwrap();
    admin.database_rekey().unwrap();
}

#[test]
fn recovery_keys_are_throttled_and_their_failures_audited() {
    let c = new_clinic();
    let core = c.core();
    let codes: Vec<String> = (0..5)
        .map(|i| {
            core.recover_account(
                format!("AAAA-BBBB-CCC{i}"),
                ADMIN.into(),
                "Recovered-pass-1".into(),
            )
            .unwrap_err()
            .code()
        })
        .collect();
    assert_eq!(
        codes.last().map(String::as_str),
        Some("too_many_attempts"),
        "{codes:?}"
    );
    assert_eq!(
        core.recovery_sheet_pdf(Output::Save, &c.recovery_key)
            .unwrap_err()
            .code(),
        "too_many_attempts",
        "the sheet waits too"
    );
    let admin = admin_core(&c);
    let log = admin.audit_list(AuditFilter::default()).unwrap();
    let n = log
        .entries
        .iter()
        .filter(|e| {
            e.action == "login_failed"
                && e.after
                    .as_deref()
                    .is_some_and(|a| a.contains("recovery_key"))
        })
        .count();
    assert_eq!(n, 5);
}

#[test]
fn the_audit_screen_shows_no_more_of_a_chart_than_the_chart() {
    let c = new_clinic();
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff("dr-a", vec![Role::Doctor], "Doctor-initial-1"))
        .unwrap();
    admin.logout().unwrap();
    let doctor = c.core();
    login_any(&c, &doctor, "dr-a", "Doctor-initial-1");
    doctor
        .change_password("Doctor-initial-1".into(), "Doctor-second-22".into())
        .unwrap();
    let id = match doctor
        .patient_register(crate::matrix::full_patient(), true)
        .unwrap()
    {
        RegisterOutcome::Registered { patient } => patient.id,
        other => panic!("{other:?}"),
    };
    doctor.logout().unwrap();
    let admin = admin_core(&c);
    let log = admin
        .audit_list(AuditFilter {
            entity_id: Some(id),
            ..Default::default()
        })
        .unwrap();
    let insert = log
        .entries
        .iter()
        .find(|e| e.action == "insert")
        .unwrap()
        .after
        .clone()
        .unwrap();
    assert!(
        !insert.contains("Prefers mornings")
            && !insert.contains("Metformin")
            && !insert.contains("Appendectomy"),
        "{insert}"
    );
    assert!(
        insert.contains("[hidden]") && insert.contains("Penicillin") && insert.contains("Parts"),
        "allergies and demographics stay: {insert}"
    );
}

#[test]
fn the_calendar_answers_for_weeks_not_years() {
    let c = new_clinic();
    let core = admin_core(&c);
    let q = |to: &str| clinic_core::scheduling::CalendarQuery {
        from: "2030-01-01T00:00:00Z".into(),
        to: to.into(),
        doctor_ids: vec![],
    };
    core.appointments_calendar(q("2030-03-01T00:00:00Z"))
        .unwrap();
    let e = core
        .appointments_calendar(q("2031-01-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(
        (e.params()["field"].as_str(), e.params()["reason"].as_str()),
        ("ends_at", "out_of_range")
    );
}

#[test]
fn a_stray_setup_marker_moves_files_aside_and_a_crashed_writers_copy_is_removed() {
    let c = new_clinic();
    let dir = c.dir.path();
    std::fs::write(dir.join("setup.incomplete"), b"").unwrap();
    std::fs::write(dir.join("keyslots.json.999-abc.tmp"), b"an old copy").unwrap();
    let core = c.core();
    assert!(!core.setup_status().unwrap());
    let aside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(aside.len(), 1, "one folder set aside");
    assert!(
        aside[0].join("clinic.db").exists() && aside[0].join("keyslots.json").exists(),
        "nothing deleted"
    );
    // Put back, the folder works again; the next slot write removes the stale copy.
    for f in [
        "clinic.db",
        "clinic.db-wal",
        "clinic.db-shm",
        "keyslots.json",
    ] {
        let _ = std::fs::rename(aside[0].join(f), dir.join(f));
    }
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff("tidy", vec![Role::Cashier], "Cashier-pass-123"))
        .unwrap();
    assert!(!dir.join("keyslots.json.999-abc.tmp").exists());
}
