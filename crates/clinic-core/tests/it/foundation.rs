//! Store, key slots, sign-in, lockout, idle lock, audit chain.

use chrono::Duration;
use clinic_core::perm::Role;
use clinic_core::print::Output;
use clinic_core::session::LoginStep;
use clinic_core::staff::SetActive;
use clinic_core::store::audit::AuditFilter;
use clinic_core::Core;

use crate::support::*;

fn code_of<T: std::fmt::Debug>(r: clinic_core::Result<T>) -> String {
    r.expect_err("expected an error").code()
}

#[test]
fn the_database_file_holds_no_plaintext() {
    let probe = "Zanzibarqux Polyclinic";
    let c = new_clinic_named(probe);
    let core = admin_core(&c);
    core.staff_create(new_staff(
        "quetzal",
        vec![Role::Nurse],
        "Blue-heron-42-lake",
    ))
    .unwrap();
    // The staff name, the clinic name and SQLite's own header must not appear anywhere on disk.
    core.logout().unwrap();
    drop(core);
    let mut seen = 0;
    for entry in std::fs::read_dir(c.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        seen += bytes.len();
        for needle in [
            probe.as_bytes(),
            b"quetzal Person".as_slice(),
            b"SQLite format 3".as_slice(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains {:?} in plaintext",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(
        seen > 10_000,
        "the probe read the database files ({seen} bytes)"
    );
}

#[test]
fn migrations_run_from_empty_and_tables_are_strict() {
    let c = new_clinic();
    let core = admin_core(&c);
    with_db(&core, |db| {
        let versions: Vec<i64> = db
            .conn()
            .prepare("SELECT version FROM refinery_schema_history ORDER BY version")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        assert_eq!(versions.first(), Some(&1));
        let loose: Vec<String> = db
            .conn()
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE 'refinery_%' AND name NOT LIKE '%_fts%' AND sql NOT LIKE '%) STRICT'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        assert!(loose.is_empty(), "tables without STRICT: {loose:?}");
        let fk: i64 = db.conn().query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        let mode: String = db.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        assert_eq!((fk, mode.as_str()), (1, "wal"));
        // Every table has the five standard columns.
        let tables: Vec<String> = db
            .conn()
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE 'refinery_%' AND name NOT LIKE '%_fts%'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        // Sync's bookkeeping is written once per change and never edited (V13, V15).
        for t in tables.into_iter().filter(|t| {
            !["sync_versions", "sync_inbox", "sync_held", "blobs"].contains(&t.as_str())
        })
        {
            let cols: Vec<String> = db
                .conn()
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for needed in ["id", "created_at", "created_by", "updated_at", "updated_by"] {
                assert!(cols.iter().any(|c| c == needed), "{t} lacks {needed}");
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn wrong_password_missing_and_corrupt_slot_files_give_clear_errors() {
    let c = new_clinic();
    let core = c.core();
    assert_eq!(
        code_of(core.login(ADMIN.into(), "not-the-password".into())),
        "bad_credentials"
    );
    assert_eq!(
        code_of(core.login("nobody".into(), ADMIN_PW.into())),
        "bad_credentials",
        "unknown users look the same"
    );

    let slots = c.dir.path().join("keyslots.json");
    let saved = std::fs::read(&slots).unwrap();
    std::fs::write(&slots, b"{ this is not json").unwrap();
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "keyslot_corrupt"
    );
    std::fs::write(&slots, &saved[..saved.len() / 2]).unwrap();
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "keyslot_corrupt"
    );
    std::fs::remove_file(&slots).unwrap();
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "keyslot_missing"
    );

    // A slot file from another clinic (same admin password) unwraps that clinic's key,
    // which does not open this database.
    let other = new_clinic();
    std::fs::copy(other.dir.path().join("keyslots.json"), &slots).unwrap();
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "database_unreadable"
    );

    // Back to the right slot file, but a damaged database.
    std::fs::write(&slots, &saved).unwrap();
    let db = c.dir.path().join("clinic.db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(c.dir.path().join("clinic.db-wal"));
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "database_unreadable"
    );
}

#[test]
fn five_failures_start_a_growing_delay_that_survives_a_restart() {
    let c = new_clinic();
    let core = c.core();
    for i in 1..=4 {
        assert_eq!(
            code_of(core.login(ADMIN.into(), "wrong-password-x".into())),
            "bad_credentials",
            "attempt {i}"
        );
    }
    let err = core
        .login(ADMIN.into(), "wrong-password-x".into())
        .unwrap_err();
    assert_eq!(
        err.code(),
        "too_many_attempts",
        "the fifth failure starts the delay"
    );
    assert_eq!(err.params()["seconds"], "30");
    // Even the right password waits now, and a new process sees the same count.
    drop(core);
    let core = c.core();
    assert_eq!(
        code_of(core.login(ADMIN.into(), ADMIN_PW.into())),
        "too_many_attempts"
    );
    c.clock.advance(Duration::seconds(31));
    let err = core
        .login(ADMIN.into(), "wrong-password-x".into())
        .unwrap_err();
    assert_eq!(err.params()["seconds"], "60", "the delay doubles");
    c.clock.advance(Duration::seconds(61));
    login_with_totp(&c, &core, ADMIN, ADMIN_PW, &c.admin_totp);
    core.logout().unwrap();
    // A successful sign-in clears the count.
    assert_eq!(
        code_of(core.login(ADMIN.into(), "wrong-password-x".into())),
        "bad_credentials"
    );
}

#[test]
fn wrong_totp_codes_count_as_failures() {
    let c = new_clinic();
    let core = c.core();
    for _ in 0..4 {
        assert!(matches!(
            core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
            LoginStep::Totp
        ));
        assert_eq!(code_of(core.login_totp("000000".into())), "bad_totp");
    }
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    assert_eq!(
        code_of(core.login_totp("000000".into())),
        "too_many_attempts"
    );
    assert_eq!(code_of(core.session_info()), "not_authenticated");
}

#[test]
fn totp_codes_work_once_and_recovery_codes_once() {
    let c = new_clinic();
    let core = c.core();
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    let used = code(&c, &c.admin_totp);
    core.login_totp(used.clone()).unwrap();
    core.logout().unwrap();
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    assert_eq!(
        code_of(core.login_totp(used.clone())),
        "bad_totp",
        "a replayed code is refused"
    );
    core.logout().unwrap();

    // Reset the admin's 2FA from a second admin, enrol again, and use a recovery code.
    let admin = admin_core_after_step(&c, &core);
    let boss = admin
        .staff_create(new_staff("boss", vec![Role::Admin], "Second-admin-pass"))
        .unwrap();
    admin.logout().unwrap();
    login_any(&c, &core, "boss", "Second-admin-pass");
    core.change_password("Second-admin-pass".into(), "Boss-new-pass-2026".into())
        .unwrap();
    let me = core
        .staff_accounts()
        .unwrap()
        .into_iter()
        .find(|s| s.username == ADMIN)
        .unwrap();
    assert!(me.totp_enrolled);
    let me = core.staff_reset_totp(me.id.clone()).unwrap();
    assert!(!me.totp_enrolled);
    core.logout().unwrap();
    let _ = boss;
    let secret = match core.login(ADMIN.into(), ADMIN_PW.into()).unwrap() {
        LoginStep::EnrolTotp {
            secret_base32,
            qr_png_base64,
            otpauth_url,
        } => {
            assert!(otpauth_url.starts_with("otpauth://totp/"));
            assert!(qr_png_base64.len() > 100);
            secret_base32
        }
        other => panic!("expected enrolment, got {other:?}"),
    };
    let done = core.login_totp((&code(&c, &secret)).into()).unwrap();
    core.logout().unwrap();
    let rc = done.recovery_codes[3].clone();
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    core.login_totp((&rc.to_lowercase()).into())
        .expect("recovery code accepted, in any case");
    core.logout().unwrap();
    assert!(matches!(
        core.login(ADMIN.into(), ADMIN_PW.into()).unwrap(),
        LoginStep::Totp
    ));
    assert_eq!(
        code_of(core.login_totp(rc.clone())),
        "bad_totp",
        "a recovery code works once"
    );
}

fn admin_core_after_step(c: &Clinic, _other: &Core) -> Core {
    c.clock.advance(Duration::seconds(30));
    admin_core(c)
}

#[test]
fn first_login_with_an_admin_set_password_forces_a_change() {
    let c = new_clinic();
    let admin = admin_core(&c);
    admin
        .staff_create(new_staff(
            "rita",
            vec![Role::Receptionist],
            "Initial-pass-123",
        ))
        .unwrap();
    admin.logout().unwrap();

    let core = c.core();
    let info = match core
        .login("rita".into(), "Initial-pass-123".into())
        .unwrap()
    {
        LoginStep::Done { session } => session,
        other => panic!("receptionists need no TOTP by default, got {other:?}"),
    };
    assert!(info.must_change_password);
    assert_eq!(code_of(core.staff_list()), "password_change_required");
    assert_eq!(
        code_of(core.change_password("Initial-pass-123".into(), "short".into())),
        "validation"
    );
    assert_eq!(
        code_of(core.change_password("Initial-pass-123".into(), "Initial-pass-123".into())),
        "validation"
    );
    let info = core
        .change_password("Initial-pass-123".into(), "Rita-owns-this-one".into())
        .unwrap();
    assert!(!info.must_change_password);
    assert!(core.staff_list().is_ok());
    core.logout().unwrap();
    assert_eq!(
        code_of(core.login("rita".into(), "Initial-pass-123".into())),
        "bad_credentials",
        "the old slot is gone"
    );
    assert!(matches!(
        core.login("rita".into(), "Rita-owns-this-one".into())
            .unwrap(),
        LoginStep::Done { .. }
    ));
}

#[test]
fn idle_sessions_lock_and_unlock_with_the_password() {
    let c = new_clinic();
    let core = admin_core(&c);
    assert!(core.staff_list().is_ok());
    c.clock.advance(Duration::minutes(11));
    assert_eq!(code_of(core.staff_list()), "session_locked");
    assert!(core.session_info().unwrap().locked);
    assert_eq!(
        code_of(core.unlock("wrong-password-x".into())),
        "bad_credentials"
    );
    let info = core.unlock(ADMIN_PW.into()).unwrap();
    assert!(!info.locked);
    assert!(core.staff_list().is_ok(), "the same session resumes");
    core.lock().unwrap();
    assert_eq!(code_of(core.staff_list()), "session_locked");
}

#[test]
fn disabling_an_account_removes_its_slot() {
    let c = new_clinic();
    let admin = admin_core(&c);
    let n = admin
        .staff_create(new_staff("nina", vec![Role::Nurse], "Nurse-initial-1"))
        .unwrap();
    let has_slot = || {
        clinic_core::session::keyslots::KeySlots::load(c.dir.path())
            .unwrap()
            .public_key_of(&n.id)
            .is_some()
    };
    assert!(has_slot());
    admin
        .staff_set_active(SetActive {
            id: n.id.clone(),
            active: false,
            initial_password: None,
        })
        .unwrap();
    assert!(!has_slot(), "slot removed");
    let other = c.core();
    assert_eq!(
        code_of(other.login("nina".into(), "Nurse-initial-1".into())),
        "bad_credentials"
    );
    assert_eq!(
        code_of(admin.staff_set_active(SetActive {
            id: n.id.clone(),
            active: true,
            initial_password: None
        })),
        "validation",
        "re-enabling needs a new password"
    );
    let me = admin.session_info().unwrap();
    assert_eq!(
        code_of(admin.staff_set_active(SetActive {
            id: me.staff_id,
            active: false,
            initial_password: None
        })),
        "self_action"
    );
    admin
        .staff_set_active(SetActive {
            id: n.id.clone(),
            active: true,
            initial_password: Some("Nurse-again-2026".into()),
        })
        .unwrap();
    assert!(
        matches!(other.login("nina".into(), "Nurse-again-2026".into()).unwrap(), LoginStep::Done { session } if session.must_change_password)
    );
}

#[test]
fn the_recovery_key_resets_an_admin_and_prints_a_sheet() {
    let c = new_clinic();
    let core = c.core();
    assert_eq!(
        code_of(core.recover_account("AAAA-BBBB".into(), ADMIN.into(), "Recovered-pass-1".into())),
        "bad_credentials"
    );
    core.recover_account(
        (&c.recovery_key.to_lowercase()).into(),
        ADMIN.into(),
        "Recovered-pass-1".into(),
    )
    .unwrap();
    // Password and 2FA were reset: the admin enrols again.
    assert!(matches!(
        core.login(ADMIN.into(), "Recovered-pass-1".into()).unwrap(),
        LoginStep::EnrolTotp { .. }
    ));

    let pdf = core
        .recovery_sheet_pdf(Output::Save, &c.recovery_key)
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert!(pdf.len() < 150_000, "fonts are subset: {} bytes", pdf.len());
    let path = c.dir.path().join("sheet.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&c.recovery_key[..9]),
        "the key is printed: {text}"
    );
    assert!(text.contains("Riverside Family Clinic"));
    assert_eq!(
        code_of(core.recovery_sheet_pdf(Output::Save, "AAAA-BBBB-CCCC")),
        "bad_credentials",
        "only a real key is printed"
    );
}

#[test]
fn audit_chain_detects_tampering_and_names_the_first_broken_link() {
    let c = new_clinic();
    let core = admin_core(&c);
    for i in 0..5 {
        core.staff_create(new_staff(
            &format!("user{i}"),
            vec![Role::Cashier],
            "Cashier-pass-123",
        ))
        .unwrap();
    }
    let status = core.audit_verify().unwrap();
    assert!(status.first_broken_seq.is_none());
    assert!(status.entries >= 10, "{status:?}");

    // Every insert was recorded with its after-image, the TOTP secret redacted.
    let page = core
        .audit_list(AuditFilter {
            entity: Some("staff".into()),
            ..Default::default()
        })
        .unwrap();
    let created = page
        .entries
        .iter()
        .find(|e| e.action == "insert" && e.after.as_deref().unwrap_or("").contains("user3"))
        .unwrap();
    assert_eq!(created.actor_name, "Anna Admin");
    let admin_row = core
        .audit_list(AuditFilter {
            entity: Some("staff".into()),
            limit: Some(500),
            ..Default::default()
        })
        .unwrap()
        .entries
        .into_iter()
        .filter_map(|e| e.after)
        .find(|a| a.contains("\"totp_secret\":\"["))
        .expect("the enrolment update is audited");
    assert!(admin_row.contains("[redacted]"));

    // Change one entry in the middle (the app can't: a trigger stops it).
    let target = created.seq;
    with_db(&core, |db| {
        assert!(db
            .conn()
            .execute(
                "UPDATE audit_log SET actor_name = 'x' WHERE seq = ?1",
                [target]
            )
            .is_err());
        db.conn()
            .execute_batch("DROP TRIGGER audit_log_no_update")?;
        db.conn().execute(
            "UPDATE audit_log SET after = replace(after, 'user3', 'userX') WHERE seq = ?1",
            [target],
        )?;
        Ok(())
    })
    .unwrap();
    let status = core.audit_verify().unwrap();
    assert_eq!(status.first_broken_seq, Some(target));

    // And a deleted entry breaks the link after it.
    let c2 = new_clinic();
    let core2 = admin_core(&c2);
    core2
        .staff_create(new_staff("zed", vec![Role::Cashier], "Cashier-pass-123"))
        .unwrap();
    with_db(&core2, |db| {
        db.conn().execute_batch(
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 3;",
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(core2.audit_verify().unwrap().first_broken_seq, Some(4));
}

#[test]
fn each_write_lands_in_the_change_log_with_the_device() {
    let c = new_clinic();
    let core = admin_core(&c);
    let s = core
        .staff_create(new_staff("carl", vec![Role::Cashier], "Cashier-pass-123"))
        .unwrap();
    with_db(&core, |db| {
        let (device, op, after): (String, String, String) = db.conn().query_row(
            "SELECT device_id, op, after FROM change_log WHERE entity = 'staff' AND entity_id = ?1",
            [&s.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!(device, db.device().id);
        assert_eq!(op, "insert");
        assert!(after.contains("carl"));
        let seqs: Vec<i64> =
            db.conn().prepare("SELECT seq FROM change_log ORDER BY seq")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers have no gaps");
        // Append-only both ways, and (device, seq) unique: seq is the row key, every row this
        // device's.
        assert!(db.conn().execute("UPDATE change_log SET op = 'delete' WHERE seq = ?1", [seqs[0]]).is_err());
        assert!(db.conn().execute("DELETE FROM change_log WHERE seq = ?1", [seqs[0]]).is_err(), "a change can't vanish");
        let again = db.conn().execute(
            "INSERT INTO change_log (seq, id, device_id, entity, entity_id, op, after, at, created_at, created_by, updated_at, updated_by)
             SELECT seq, 'x', device_id, entity, entity_id, op, after, at, created_at, created_by, updated_at, updated_by
             FROM change_log WHERE seq = ?1",
            [seqs[0]],
        );
        assert!(again.is_err(), "a second change with the same (device, seq)");
        let devices: Vec<String> =
            db.conn().prepare("SELECT DISTINCT device_id FROM change_log")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        assert_eq!(devices, [db.device().id.clone()], "the log holds this device's changes only");
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_failed_command_writes_nothing() {
    let c = new_clinic();
    let core = admin_core(&c);
    let count = |core: &Core| {
        with_db(core, |db| {
            Ok(db.conn().query_row(
                "SELECT (SELECT count(*) FROM staff) + (SELECT count(*) FROM audit_log)",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .unwrap()
    };
    let before = count(&core);
    let mut bad = new_staff("admin", vec![Role::Cashier], "Cashier-pass-123");
    assert_eq!(code_of(core.staff_create(bad.clone())), "duplicate");
    bad.username = "okname".into();
    bad.email = "not-an-email".into();
    assert_eq!(code_of(core.staff_create(bad)), "validation");
    assert_eq!(count(&core), before);
}

#[test]
fn nobody_demotes_themselves_and_the_last_admin_stays() {
    let c = new_clinic();
    let core = admin_core(&c);
    let me = core.session_info().unwrap();
    let demote = |id: &str| clinic_core::staff::StaffUpdate {
        id: id.into(),
        full_name: "Demoted".into(),
        email: String::new(),
        phone: String::new(),
        roles: vec![Role::Doctor],
        language: me.language,
    };
    assert_eq!(
        code_of(core.staff_update(demote(&me.staff_id))),
        "self_action"
    );
    assert_eq!(
        code_of(core.staff_set_active(SetActive {
            id: me.staff_id.clone(),
            active: false,
            initial_password: None
        })),
        "self_action"
    );

    // A second admin, signed in on another window of the same clinic.
    let bea = core
        .staff_create(new_staff("bea", vec![Role::Admin], "Bea-initial-pass-1"))
        .unwrap();
    let other = c.core();
    let bea_totp = login_any(&c, &other, "bea", "Bea-initial-pass-1");
    assert!(!bea_totp.is_empty(), "admins enrol a second factor");
    other
        .change_password("Bea-initial-pass-1".into(), "Bea-second-pass-22".into())
        .unwrap();
    // Bea demotes Anna: two active admins, so that is allowed.
    other.staff_update(demote(&me.staff_id)).unwrap();
    // Anna's window still holds an admin session. Demoting or disabling Bea, the one
    // admin left, is refused: the rule reads the rows as they are now.
    assert_eq!(code_of(core.staff_update(demote(&bea.id))), "last_admin");
    assert_eq!(
        code_of(core.staff_set_active(SetActive {
            id: bea.id.clone(),
            active: false,
            initial_password: None
        })),
        "last_admin"
    );
    let admins: Vec<_> = other
        .staff_accounts()
        .unwrap()
        .into_iter()
        .filter(|s| s.active && s.roles.contains(&Role::Admin))
        .collect();
    assert_eq!(
        admins
            .iter()
            .map(|s| s.username.as_str())
            .collect::<Vec<_>>(),
        ["bea"],
        "an admin remains"
    );
}

/// The functions that may run SQL other than through a prepared query: the write path's
/// own (which audit what they run), opening a connection, and a reader's transaction.
const MAY_EXECUTE: &[(&str, &str)] = &[
    ("store/write.rs", "insert"),
    ("store/write.rs", "update"),
    ("store/write.rs", "delete"),
    ("store/write.rs", "record"),
    ("store/write.rs", "append_audit"),
    // Another PC's version of a row: audited as applied from that device.
    ("store/write.rs", "apply_remote"),
    // The upsert or delete both of the above share (a download's rows are audited per page).
    ("store/write.rs", "put_remote"),
    // A savepoint around one applied change.
    ("store/write.rs", "attempt"),
    ("store/write.rs", "defer_foreign_keys"),
    // Drafts only: it refuses every journaled table.
    ("store/write.rs", "keep_draft"),
    ("store/mod.rs", "keyed_connection"),
    ("store/mod.rs", "open_reader"),
    ("store/mod.rs", "read"),
    ("store/mod.rs", "write_durable"),
    ("store/mod.rs", "rekey"),
];

#[test]
fn only_the_write_path_executes_sql() {
    // Domains write through `Write`; a stray `execute` would bypass the audit trail. Every
    // source file is scanned, tests included; each call must sit in an allowed function.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = vec![];
    let mut allowed_seen = std::collections::BTreeSet::new();
    for entry in rust_files(&src) {
        let rel = entry
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&entry).unwrap();
        for needle in [
            ".execute(",
            "execute_batch(",
            "pragma_update(",
            ".execute_named(",
        ] {
            for (at, _) in text.match_indices(needle) {
                let before = &text[..at];
                let func = before
                    .rfind("fn ")
                    .map(|i| {
                        before[i + 3..]
                            .split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                    .unwrap_or_default();
                let line = before.lines().count();
                if MAY_EXECUTE.contains(&(rel.as_str(), func.as_str())) {
                    allowed_seen.insert((rel.clone(), func));
                } else {
                    offenders.push(format!("{rel}:{line} in fn {func}"));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL executed outside the write path: {offenders:?}"
    );
    // The scan finds what it looks for: the write path's own calls are seen.
    assert!(
        allowed_seen.contains(&("store/write.rs".to_string(), "insert".to_string())),
        "{allowed_seen:?}"
    );
    assert!(allowed_seen.len() >= 6, "{allowed_seen:?}");
}

#[test]
fn audit_filters_by_date_range_person_and_record() {
    let c = new_clinic();
    let core = admin_core(&c);
    let mut s = core.settings_get().unwrap();
    s.security.idle_lock_minutes = 240;
    core.settings_update(s).unwrap();
    let t0 = c.clock.now();
    let mut ids = vec![];
    for i in 0..6 {
        c.clock.advance(Duration::hours(1));
        // Someone at the keyboard: the window reports input, which keeps the session awake.
        core.session_touch().unwrap();
        ids.push(
            core.staff_create(new_staff(
                &format!("day{i}"),
                vec![Role::Cashier],
                "Cashier-pass-123",
            ))
            .unwrap()
            .id,
        );
    }
    let at = |h: i64| clinic_core::ids::ts(t0 + Duration::hours(h));
    let inserts = |f: AuditFilter| -> Vec<String> {
        core.audit_list(AuditFilter {
            entity: Some("staff".into()),
            ..f
        })
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == "insert")
        .map(|e| e.entity_id)
        .collect()
    };
    // Hours 2..=4 after t0, inclusive at both ends: the 2nd, 3rd and 4th accounts.
    let got = inserts(AuditFilter {
        from: Some(at(2)),
        to: Some(at(4)),
        ..Default::default()
    });
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone(), ids[1].clone()]);
    let got = inserts(AuditFilter {
        from: Some(at(6)),
        ..Default::default()
    });
    assert_eq!(got, vec![ids[5].clone()]);
    assert!(inserts(AuditFilter {
        to: Some(clinic_core::ids::ts(t0 - Duration::days(1))),
        ..Default::default()
    })
    .is_empty());
    // By record and by person.
    let one = core
        .audit_list(AuditFilter {
            entity_id: Some(ids[4].clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.entries.len(), 1);
    let me = core.session_info().unwrap().staff_id;
    let mine = core
        .audit_list(AuditFilter {
            actor_id: Some(me.clone()),
            limit: Some(500),
            ..Default::default()
        })
        .unwrap();
    assert!(mine.entries.iter().all(|e| e.actor_id == me) && mine.entries.len() >= 6);
    // Paging walks backwards without overlap.
    let p1 = core
        .audit_list(AuditFilter {
            limit: Some(3),
            ..Default::default()
        })
        .unwrap();
    let p2 = core
        .audit_list(AuditFilter {
            limit: Some(3),
            before_seq: p1.next_before_seq,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p1.entries.len(), 3);
    assert!(p2.entries[0].seq < p1.entries[2].seq);
}

/// The writer never pays for copying the write-ahead log into the file: its connection has no
/// automatic checkpoint, and a thread of its own checkpoints instead. Back-to-back commits grow
/// the log (the thread copies beside them); once they pause, the log is copied and the next
/// commit starts it again, trimmed. (With neither, it would only grow.)
#[test]
fn the_log_is_checkpointed_off_the_commit_path_and_stays_bounded() {
    let c = new_clinic();
    let core = admin_core(&c);
    let d = core.dev_db().unwrap();
    let auto: i64 = d
        .raw_writer(|w| Ok(w.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(auto, 0, "the writer checkpoints nothing itself");
    let wal = c.dir.path().join("clinic.db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let register = |i: usize| {
        core.patient_register(
            crate::reception::patient("Wal", &format!("Writer{i}"), "1980-01-01"),
            true,
        )
        .unwrap();
    };
    for i in 0..1000 {
        register(i);
    }
    let grown = size();
    assert!(grown > 16 << 20, "{grown}");
    // The writers pause: the thread copies the rest, and the next commit starts the log again.
    // (Settled: no checkpoint for a second, one begun before the last commit followed by
    // another.)
    let before = d.checkpoints_done();
    let waited = std::time::Instant::now();
    let (mut seen, mut since) = (before, std::time::Instant::now());
    while waited.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = d.checkpoints_done();
        if now != seen {
            (seen, since) = (now, std::time::Instant::now());
        } else if now > before && since.elapsed() > std::time::Duration::from_secs(1) {
            break;
        }
    }
    assert!(d.checkpoints_done() > before, "no checkpoint ran");
    register(1000);
    assert!(size() <= 16 << 20, "the log is still {} bytes", size());
    assert_eq!(
        core.patient_search("Writer1000".into(), 0, 20)
            .unwrap()
            .items
            .len(),
        1
    );
}
