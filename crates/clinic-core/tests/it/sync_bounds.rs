//! Sync that nothing can freeze, wedge or fool (issue 19): clock stamps bounded wherever they
//! enter, a download that trusts nothing the pull wouldn't, files outside the change log, and
//! a client that trusts the server for nothing but delivery. Real server (in-process or the
//! binary), real SQLCipher files, loopback only.

use std::sync::Arc;

use chrono::Duration;
use clinic_core::store::Db;
use clinic_core::sync::{self, apply};
use clinic_core::Core;
use clinic_sync_proto::MAX_STAMP_AHEAD_MS;

use crate::reception::{patient, registered};
use crate::support::*;
use crate::sync::{assert_same_everywhere, join_first_pc, join_new_pc, TestServer};

fn db(core: &Core) -> Arc<Db> {
    core.dev_db().unwrap()
}

fn count(d: &Db, sql: &str) -> i64 {
    d.read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

/// The Sync screen's state, read from the PC's database (a session may have locked while a
/// test moved its clock by days).
fn status(core: &Core) -> sync::Status {
    db(core).read(sync::status::status).unwrap()
}

/// Rita at the front desk (no second factor, so she signs in again whatever a test did to
/// the clock: a TOTP code from before the last one used is refused, as it should be).
pub const RITA: &str = "amber-Fox-lantern9";

/// Makes Rita on A (the admin's PC); she is on every PC once it has synced.
fn with_rita(a_clinic: &Clinic, a: &Core) {
    use clinic_core::perm::Role;
    a.staff_create(new_staff(
        "rita",
        vec![Role::Receptionist],
        "first-Rita-pass1",
    ))
    .unwrap();
    let r = rita_on(a_clinic.dir.path(), &a_clinic.clock, "first-Rita-pass1");
    r.change_password("first-Rita-pass1".into(), RITA.into())
        .unwrap();
}

/// Rita signed in on the PC in `dir` (a fresh session: the test may have moved the clock by
/// days, and an idle session locks).
fn rita_on(dir: &std::path::Path, clock: &TestClock, pw: &str) -> Core {
    let core = Core::with_clock(dir, clock.clock());
    core.login("rita".into(), pw.into()).unwrap();
    core
}

fn rita(dir: &std::path::Path, clock: &TestClock) -> Core {
    rita_on(dir, clock, RITA)
}

fn server_db(server: &TestServer) -> rusqlite::Connection {
    rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap()
}

/// A change stamped more than three days ahead of the server's clock (a PC whose date was
/// set a week ahead) is kept by the server but refused: never applied, never sent; the PC is
/// told and says so. Nothing else stops: the other PC's changes keep flowing both ways.
#[test]
fn a_stamp_a_week_ahead_is_refused_by_the_server_and_stops_nothing_else() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    with_rita(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let b = &pc_b.core;
    a_clinic.clock.advance(Duration::days(7));
    let a = rita(a_clinic.dir.path(), &a_clinic.clock);
    let future = registered(
        a.patient_register(patient("Wrong", "Clock", "1970-01-01"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&a)).unwrap();
    let st = status(&a);
    assert!(st.own_refused >= 1, "{st:?}");
    assert!(st.own_refused_at.is_some());
    // The server kept it (its seq is taken) but neither applied nor sent it.
    let refused: i64 = server_db(&server)
        .query_row(
            "SELECT count(*) FROM changes WHERE refused = 'clock_ahead' AND entity_id = ?1",
            [&future.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(refused, 1);
    // B works on, and its changes reach the server; B never saw the stamp.
    let seen_before = db(b)
        .read(|c| Ok(sync::link(c)?.unwrap().hlc_seen))
        .unwrap();
    let kim = registered(
        b.patient_register(patient("Kim", "Later", "1980-02-02"), false)
            .unwrap(),
    );
    sync::sync_once(&db(b)).unwrap();
    assert!(
        b.patient_get(future.id.clone()).is_err(),
        "a refused change was applied"
    );
    let seen_after = db(b)
        .read(|c| Ok(sync::link(c)?.unwrap().hlc_seen))
        .unwrap();
    assert!(seen_after >= seen_before);
    let future_ms = a_clinic.clock.now().timestamp_millis();
    assert!(
        clinic_sync_proto::stamp_ms(&seen_after).unwrap() < future_ms - MAX_STAMP_AHEAD_MS,
        "B's clock moved towards the refused stamp: {seen_after}"
    );
    assert_eq!(count(&db(b), "SELECT count(*) FROM sync_held"), 0);
    // B's new patient reaches A: A's pull goes on past its own refused change.
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(a.patient_get(kim.id.clone()).unwrap().given_name, "Kim");
}

/// A PC whose clock was a day ahead, and then set right, keeps converging: its stamps were
/// within the bound, every PC took them, and every PC's later edits still win over them.
#[test]
fn a_pc_whose_clock_was_a_day_ahead_and_then_set_right_keeps_converging() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    with_rita(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let b = &pc_b.core;
    let p = registered(
        a.patient_register(patient("Day", "Ahead", "1990-05-05"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(b)).unwrap();

    // A's clock jumps a day ahead; A edits p and registers another.
    a_clinic.clock.advance(Duration::days(1));
    let a = rita(a_clinic.dir.path(), &a_clinic.clock);
    a.patient_update(p.id.clone(), patient("Day", "Ahead-1", "1990-05-05"))
        .unwrap();
    let q = registered(
        a.patient_register(patient("Made", "Tomorrow", "1991-06-06"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(status(&a).own_refused, 0);
    sync::sync_once(&db(b)).unwrap();
    assert_eq!(b.patient_get(q.id.clone()).unwrap().family_name, "Tomorrow");
    // B, with the right time, edits p after seeing A's version: B's edit wins everywhere
    // although A's stamp is a day later than B's clock.
    b.patient_update(p.id.clone(), patient("Day", "From-B", "1990-05-05"))
        .unwrap();
    // A's clock is set right again (a day back) and A edits q.
    a_clinic.clock.advance(Duration::days(-1));
    let a = rita(a_clinic.dir.path(), &a_clinic.clock);
    a.patient_update(q.id.clone(), patient("Made", "Today", "1991-06-06"))
        .unwrap();
    for pc in [b, &a, b, &a] {
        sync::sync_once(&db(pc)).unwrap();
    }
    for pc in [&a, b] {
        assert_eq!(pc.patient_get(p.id.clone()).unwrap().family_name, "From-B");
        assert_eq!(pc.patient_get(q.id.clone()).unwrap().family_name, "Today");
    }
    assert_same_everywhere(&[&db(&a), &db(b)]);
    assert_eq!(
        count(
            &db(b),
            "SELECT count(*) FROM sync_conflicts WHERE kind = 'concurrent'"
        ),
        0,
        "edits made after seeing each other are no conflict"
    );
}

/// A change stamped too far ahead that reaches a PC anyway (a server that passes it on, or a
/// PC whose own clock is far behind) is held back: not applied, its stamp not observed, the
/// rest of the page applied, and the count shown. Once this PC's clock comes within three
/// days of it, it is applied.
#[test]
fn a_far_stamp_that_reaches_a_pc_is_held_until_its_clock_gets_there() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    with_rita(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let pc_c = join_new_pc(&server, &a_clinic, &a, "C");
    let b = &pc_b.core;
    a_clinic.clock.advance(Duration::days(5));
    let a5 = rita(a_clinic.dir.path(), &a_clinic.clock);
    let far = registered(
        a5.patient_register(patient("Five", "Days", "1970-01-01"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&a)).unwrap();
    // The server refused it; a server that passes it on anyway:
    let n = server_db(&server)
        .execute(
            "UPDATE changes SET refused = NULL WHERE refused IS NOT NULL",
            [],
        )
        .unwrap();
    assert!(n >= 1);
    // Another PC's change comes after it.
    let near = registered(
        pc_c.core
            .patient_register(patient("Same", "Day", "1970-01-02"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&pc_c.core)).unwrap();
    let report = sync::sync_once(&db(b)).unwrap();
    assert!(report.refused >= 1, "{report:?}");
    assert!(
        b.patient_get(far.id.clone()).is_err(),
        "a held change was applied"
    );
    assert!(
        b.patient_get(near.id.clone()).is_ok(),
        "the change after it was held back"
    );
    assert!(status(b).held >= 1);
    let seen = db(b)
        .read(|c| Ok(sync::link(c)?.unwrap().hlc_seen))
        .unwrap();
    assert!(
        clinic_sync_proto::stamp_ms(&seen).unwrap()
            < pc_b.clock.now().timestamp_millis() + MAX_STAMP_AHEAD_MS,
        "B observed the held stamp: {seen}"
    );
    // B's own stamps stay near its clock: its next change is taken by the server.
    b.patient_update(near.id.clone(), patient("Same", "Edited", "1970-01-02"))
        .unwrap();
    sync::sync_once(&db(b)).unwrap();
    assert_eq!(status(b).own_refused, 0);
    // Three days on, B's clock is within the bound of the stamp: it is applied, once.
    pc_b.clock.advance(Duration::days(3));
    sync::sync_once(&db(b)).unwrap();
    let b = rita(pc_b.dir.path(), &pc_b.clock);
    assert_eq!(b.patient_get(far.id.clone()).unwrap().family_name, "Days");
    assert_eq!(status(&b).held, 0);
    sync::sync_once(&db(&b)).unwrap();
    assert_eq!(
        count(
            &db(&b),
            &format!(
                "SELECT count(*) FROM sync_inbox WHERE entity_id = '{}'",
                far.id
            )
        ),
        1
    );
}

/// A stamp at the very top of the clock: the server refuses it, and a PC whose clock has no
/// stamp left fails the write loudly (`clock_exhausted`) rather than repeat a stamp, which
/// is what stopped replication for the whole clinic before.
#[test]
fn the_top_of_the_clock_fails_a_write_loudly_and_never_repeats_a_stamp() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    sync::sync_once(&db(&a)).unwrap();
    db(&a)
        .raw_writer(|c| {
            c.execute("UPDATE sync_state SET hlc_seen = '9999999999999-99990'", [])?;
            Ok(())
        })
        .unwrap();
    // A few stamps are left: writes take them one by one until none is left.
    let mut written = 0;
    let e = loop {
        match a.patient_register(
            patient(&format!("Last{written}"), "Stamp", "1970-01-01"),
            false,
        ) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 20, "the clock never ran out");
    };
    assert_eq!(e.code(), "clock_exhausted");
    assert!(written >= 1);
    let (stamped, distinct, top): (i64, i64, String) = db(&a)
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(hlc), count(DISTINCT hlc), max(hlc) FROM change_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!(stamped, distinct, "a stamp was repeated");
    assert_eq!(top, "9999999999999-99999");
    // Nothing of the refused write was kept.
    assert_eq!(
        count(
            &db(&a),
            "SELECT count(*) FROM patients WHERE family_name = 'Stamp'"
        ),
        written
    );
    // The server refuses the change stamped at the top (far ahead of its clock).
    sync::sync_once(&db(&a)).unwrap();
    assert!(status(&a).own_refused >= 1);
}

/// The download trusts nothing the pull wouldn't: a tombstone the server made up (no sealed
/// marker, or one that doesn't open) deletes nothing on a PC joining with its own data, and
/// its stamp is not observed.
#[test]
fn a_forged_tombstone_deletes_nothing_on_a_joining_pc() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let kim = registered(
        a.patient_register(patient("Kim", "Kept", "1960-06-06"), false)
            .unwrap(),
    );
    let lee = registered(
        a.patient_register(patient("Lee", "Kept", "1961-06-06"), false)
            .unwrap(),
    );
    // A server without the key puts tombstones for A's rows in its copy, stamped after them.
    let s = server_db(&server);
    let clinic: String = s
        .query_row("SELECT id FROM clinics", [], |r| r.get(0))
        .unwrap();
    let stamp = format!(
        "{:013}-00000",
        a_clinic.clock.now().timestamp_millis() + 3_600_000
    );
    for (id, after) in [(&kim.id, None), (&lee.id, Some("s3:AAAA"))] {
        s.execute(
            "INSERT INTO rows (clinic_id, entity, entity_id, after, hlc, device_id, deleted, size)
             VALUES (?1, 'patients', ?2, ?3, ?4, 'forger', 1, 10)",
            rusqlite::params![clinic, id, after, stamp],
        )
        .unwrap();
    }
    join_first_pc(&server, &db(&a), "A");
    assert_eq!(a.patient_get(kim.id.clone()).unwrap().family_name, "Kept");
    assert_eq!(a.patient_get(lee.id.clone()).unwrap().family_name, "Kept");
    assert_eq!(
        count(
            &db(&a),
            "SELECT count(*) FROM sync_conflicts WHERE kind = 'refused' AND entity = 'patients'"
        ),
        2
    );
    let seen = db(&a)
        .read(|c| Ok(sync::link(c)?.unwrap().hlc_seen))
        .unwrap();
    assert!(
        seen < stamp,
        "a forged stamp was observed: {seen} >= {stamp}"
    );
}

/// No row is larger than a push, for every synced table: the write path refuses a row over
/// `MAX_ROW_BYTES` (whatever the table), and a row of every synced table at that limit, sealed,
/// goes in a push the server takes, each push within its byte budget and body limit.
#[test]
fn no_row_of_any_synced_table_is_larger_than_a_push() {
    use clinic_sync_proto::{sealed_len, MAX_BODY_BYTES, MAX_PUSH_BYTES, MAX_ROW_BYTES};
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let d = db(&a);
    let p = registered(
        a.patient_register(patient("Big", "Row", "1970-01-01"), false)
            .unwrap(),
    );
    // The write path: one byte over is refused, and nothing of that write is kept.
    let actor = clinic_core::store::Actor {
        id: "test".into(),
        name: "test".into(),
    };
    let over = "x".repeat(MAX_ROW_BYTES);
    let e = d
        .write(&actor, |w| {
            w.update_row(
                clinic_core::patients::Table::Patients,
                &p.id,
                &[("notes", &over)],
            )
        })
        .unwrap_err();
    assert_eq!(e.code(), "row_too_large");
    assert!(
        a.patient_get(p.id.clone())
            .unwrap()
            .notes
            .unwrap_or_default()
            .is_empty(),
        "a refused write was kept"
    );
    join_first_pc(&server, &d, "A");
    // Every synced table: a change at the limit, as the change log would carry it.
    let tables = d.read(apply::dependency_order).unwrap();
    assert!(tables.len() >= 30, "{tables:?}");
    let pushed_before = d.read(|c| Ok(sync::link(c)?.unwrap().pushed_seq)).unwrap();
    d.raw_writer(|c| {
        for t in &tables {
            let mut row = serde_json::json!({ "id": format!("big-{t}"), "pad": "" });
            let room = MAX_ROW_BYTES - row.to_string().len();
            row["pad"] = serde_json::Value::String("y".repeat(room));
            let text = row.to_string();
            assert_eq!(text.len(), MAX_ROW_BYTES);
            c.execute(
                "INSERT INTO change_log (id, device_id, entity, entity_id, op, after, at,
                                         created_at, created_by, updated_at, updated_by)
                 SELECT ?1, id, ?2, ?3, 'insert', ?4, ?5, ?5, 'test', ?5, 'test' FROM device",
                rusqlite::params![
                    format!("big-{t}"),
                    t,
                    format!("big-{t}"),
                    text,
                    clinic_core::ids::ts(a_clinic.clock.now())
                ],
            )?;
        }
        Ok(())
    })
    .unwrap();
    const { assert!(sealed_len(MAX_ROW_BYTES) <= MAX_PUSH_BYTES) };
    // Pushed in pushes of at most one full row and within the body limit (the server
    // refuses a body over it); every change arrives.
    sync::sync_once(&d).unwrap();
    let l = d.read(|c| Ok(sync::link(c)?.unwrap())).unwrap();
    let logged = count(&d, "SELECT max(seq) FROM change_log");
    assert_eq!(l.pushed_seq, logged);
    let s = server_db(&server);
    let (n, largest): (i64, i64) = s
        .query_row(
            "SELECT count(*), max(length(after)) FROM changes WHERE entity_id LIKE 'big-%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n as usize, tables.len());
    assert_eq!(largest as usize, sealed_len(MAX_ROW_BYTES));
    const { assert!(2 * sealed_len(MAX_ROW_BYTES) > MAX_PUSH_BYTES && MAX_PUSH_BYTES < MAX_BODY_BYTES) };
    assert!(l.pushed_seq - pushed_before >= tables.len() as i64);
}

// ---------------------------------------------------------------------------------------
// Files: blobs outside the change log.

/// Bytes that look like a PDF, `len` long, from a seed (incompressible, so no line shortcut).
pub fn pdf_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = b"%PDF-1.4\n".to_vec();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A doctor (no second factor asked in this clinic) signed in on `core_dir`'s PC.
pub fn doctor(dir: &std::path::Path, clock: &TestClock, pw: &str) -> Core {
    let core = Core::with_clock(dir, clock.clock());
    core.login("dana".into(), pw.into()).unwrap();
    core
}

pub const DANA_FIRST: &str = "amber-Fox-lantern9";
pub const DANA: &str = "quiet-Harbor-maple4";

/// The clinic asks no second factor of doctors here, and has a doctor, Dana, whose own
/// password is `DANA`. Returns Dana signed in on A.
pub fn with_dana(a_clinic: &Clinic, a: &Core) -> Core {
    use clinic_core::perm::Role;
    let mut s = a.settings_get().unwrap();
    s.security.totp_required_roles = vec![Role::Admin];
    a.settings_update(s).unwrap();
    a.staff_create(new_staff("dana", vec![Role::Doctor], DANA_FIRST))
        .unwrap();
    let dana = doctor(a_clinic.dir.path(), &a_clinic.clock, DANA_FIRST);
    dana.change_password(DANA_FIRST.into(), DANA.into())
        .unwrap();
    dana
}

/// A record of a new patient's, by Dana, with one attachment of `bytes`.
pub fn attach(dana: &Core, a: &Core, bytes: &[u8], name: &str, day: String) -> (String, String) {
    use clinic_core::clinical::records::{RecordInput, RecordKind};
    let p = registered(
        a.patient_register(patient("File", name, "1975-07-07"), false)
            .unwrap(),
    );
    let rec = dana
        .record_add(RecordInput {
            patient_id: p.id.clone(),
            encounter_id: None,
            kind: RecordKind::Imaging,
            title: format!("Scan {name}"),
            description: String::new(),
            recorded_on: day,
        })
        .unwrap();
    let info = dana
        .record_attach(rec.id.clone(), format!("{name}.pdf"), b64(bytes))
        .unwrap();
    (rec.id, info.id)
}

fn sha(bytes: &[u8]) -> String {
    clinic_core::store::blobs::sha256_hex(bytes)
}

/// A 20 MiB scan made on one PC opens on another: its row travels in the change log (small),
/// its bytes as a sealed blob in 1 MiB chunks, a few MiB a round, which the server can't read;
/// the other PC fetches it in the background, or when someone opens it.
#[test]
fn a_20_mib_scan_travels_as_a_blob_and_opens_on_another_pc() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let dana_a = with_dana(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let bytes = pdf_bytes(clinic_core::clinical::records::MAX_ATTACHMENT, 1);
    let (_, att) = attach(&dana_a, &a, &bytes, "big", clinic_date(&a_clinic, 0));
    let logged: i64 = count(
        &db(&a),
        "SELECT max(length(after)) FROM change_log WHERE entity = 'attachments'",
    );
    assert!(
        logged < 2_000,
        "the change log carries the file: {logged} bytes"
    );
    // Rounds until the server has it: a few MiB each, the rows first.
    let mut rounds = 0;
    while status(&a).files_to_upload > 0 {
        let r = sync::sync_once(&db(&a)).unwrap();
        assert!(r.files_error.is_none(), "{r:?}");
        rounds += 1;
        assert!(rounds < 20);
    }
    assert!(rounds >= 5, "20 MiB went in {rounds} rounds");
    let s = server_db(&server);
    let (chunks, largest): (i64, i64) = s
        .query_row(
            "SELECT count(*), max(length(data)) FROM blob_chunks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(chunks, 20);
    assert_eq!(largest as usize, clinic_sync_proto::BLOB_CHUNK_BYTES + 40);
    let plain_seen: i64 = s
        .query_row(
            "SELECT count(*) FROM blob_chunks WHERE instr(data, ?1) > 0",
            [&bytes[1_000_000..1_000_032]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plain_seen, 0, "the server holds the file readable");
    // B takes the row and the file in its rounds.
    let dana_b = doctor(pc_b.dir.path(), &pc_b.clock, DANA);
    let _ = dana_b.logout();
    for _ in 0..3 {
        sync::sync_once(&db(&pc_b.core)).unwrap();
    }
    assert_eq!(status(&pc_b.core).files_to_fetch, 0);
    let dana_b = doctor(pc_b.dir.path(), &pc_b.clock, DANA);
    let url = dana_b.attachment_view(att.clone()).unwrap();
    let got = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(url.strip_prefix("data:application/pdf;base64,").unwrap())
            .unwrap()
    };
    assert_eq!(sha(&got), sha(&bytes));
    // Fetched when opened: B without the bytes gets them at once.
    db(&pc_b.core)
        .raw_writer(|c| {
            c.execute("DELETE FROM blobs", [])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(status(&pc_b.core).files_to_fetch, 1);
    let (name, again) = dana_b.attachment_export(&att).unwrap();
    assert_eq!((name.as_str(), sha(&again)), ("big.pdf", sha(&bytes)));
    sync::sync_once(&db(&a)).unwrap();
    assert_same_everywhere(&[&db(&a), &db(&pc_b.core)]);
}

/// An upload cut off part way resumes from the chunks the server has: nothing is sent twice.
/// And a file whose bytes haven't arrived yet says so, in words the window translates.
#[test]
fn an_upload_cut_off_resumes_from_what_the_server_has() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let dana_a = with_dana(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let bytes = pdf_bytes(7 * clinic_sync_proto::BLOB_CHUNK_BYTES + 123, 2);
    let (_, att) = attach(&dana_a, &a, &bytes, "scan", clinic_date(&a_clinic, 0));
    sync::sync_once(&db(&a)).unwrap();
    // The rows are there, the file only in part (a round's budget, as if the line broke).
    let t = db(&a)
        .read(|c| Ok(sync::link(c)?.unwrap()))
        .unwrap()
        .transport()
        .unwrap();
    let served: i64 = server_db(&server)
        .query_row("SELECT count(*) FROM blob_chunks", [], |r| r.get(0))
        .unwrap();
    assert!((1..8).contains(&served), "{served}");
    sync::sync_once(&db(&pc_b.core)).unwrap();
    let dana_b = doctor(pc_b.dir.path(), &pc_b.clock, DANA);
    let e = dana_b.attachment_view(att.clone()).unwrap_err();
    assert_eq!(e.code(), "file_not_here");
    assert_eq!(
        e.params().get("file_name").map(String::as_str),
        Some("scan.pdf")
    );
    // The rest: only the missing chunks go.
    let moved = sync::blobs::upload(&db(&a), &t, usize::MAX).unwrap();
    let rest = bytes.len() as u64 - served as u64 * clinic_sync_proto::BLOB_CHUNK_BYTES as u64;
    assert_eq!(moved.uploaded_bytes, rest);
    assert_eq!(moved.uploaded_files, 1);
    assert!(dana_b.attachment_view(att).is_ok());
}

// ---------------------------------------------------------------------------------------
// A client that trusts the server for nothing but delivery.

/// A server of the test's own making on loopback (for answers no real server gives), with
/// the given certificate, on the real server's connection layer.
pub struct FakeServer {
    pub url: String,
    handle: clinic_server::net::Handle,
    _rt: tokio::runtime::Runtime,
}

impl FakeServer {
    pub fn start(app: axum::Router, cert: &str, key: &str) -> FakeServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let tls = clinic_server::tls::server_config(cert, key).unwrap();
        let (url, handle) = rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let (h, _) = clinic_server::net::spawn(l, tls, app, Default::default());
            (format!("https://localhost:{port}"), h)
        });
        FakeServer {
            url,
            handle,
            _rt: rt,
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Points a linked PC at another server (and certificate).
fn relink(d: &Db, url: &str, cert: &str) {
    d.raw_writer(|c| {
        c.execute(
            "UPDATE sync_state SET server_url = ?1, server_cert = ?2",
            [url, cert],
        )?;
        Ok(())
    })
    .unwrap();
}

fn sync_error(d: &Db) -> clinic_core::Error {
    sync::sync_once(d).expect_err("the round should fail")
}

/// A server that redirects, one whose pages never move on, and one that floods a PC with
/// changes it can't accept: each ends the round with an error the Sync screen says in words,
/// and nothing is written beyond the round's bounds. A plain-HTTP address is refused.
#[test]
fn a_server_that_redirects_loops_or_floods_only_ends_its_round() {
    use axum::routing::{get, post};
    use clinic_sync_proto::*;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let d = db(&a);
    sync::sync_once(&d).unwrap();
    let (cert, key) = clinic_server::tls::self_signed(&["localhost".into()]).unwrap();
    let ok_push = post(|axum::Json(req): axum::Json<PushRequest>| async move {
        axum::Json(PushResponse {
            stored: req.changes.len() as u32,
            duplicates: 0,
            // An empty push (the audit head only): "everything you sent", whatever it was.
            last_seq: req.changes.last().map_or(i64::MAX, |c| c.seq),
            refused: vec![],
        })
    });

    // Plain HTTP is refused before anything is sent.
    assert!(matches!(
        sync::Transport::new("http://localhost:1", &cert, None),
        Err(sync::Error::NotHttps)
    ));

    // A redirect is not followed.
    let redirecting = FakeServer::start(
        axum::Router::new().route(
            "/v1/push",
            post(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, "https://localhost:9/v1/push")],
                )
            }),
        ),
        &cert,
        &key,
    );
    relink(&d, &redirecting.url, &cert);
    a.patient_register(patient("Push", "Me", "1970-01-01"), false)
        .unwrap();
    let e = sync_error(&d);
    assert_eq!(e.code(), "network");
    assert!(e.to_string().contains("redirect"), "{e}");

    // A pull that says "more" and never moves on.
    let looping = FakeServer::start(
        axum::Router::new()
            .route("/v1/push", ok_push.clone())
            .route(
                "/v1/pull",
                get(
                    |axum::extract::Query(q): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| async move {
                        let after: i64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
                        axum::Json(PullResponse {
                            changes: vec![],
                            next: after,
                            more: true,
                        })
                    },
                ),
            ),
        &cert,
        &key,
    );
    relink(&d, &looping.url, &cert);
    let e = sync_error(&d);
    assert_eq!(e.code(), "server_misbehaves");
    let st = status(&a);
    assert_eq!(
        st.last_error.map(|e| e.code).as_deref(),
        Some("server_misbehaves")
    );

    // A flood of changes that don't open: the round stops past its bound of refusals.
    let before = count(&d, "SELECT count(*) FROM sync_conflicts");
    let flooding = FakeServer::start(
        axum::Router::new().route("/v1/push", ok_push).route(
            "/v1/pull",
            get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    let after: i64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
                    let changes = (1..=MAX_BATCH as i64)
                        .map(|i| PulledChange {
                            server_seq: after + i,
                            device_id: "forger".into(),
                            device_code: "ZZZ".into(),
                            change: Change {
                                seq: after + i,
                                entity: "patients".into(),
                                entity_id: format!("p{}", after + i),
                                op: Op::Update,
                                after: Some("s3:junk".into()),
                                hlc: "0000000001000-00000".into(),
                                base: None,
                                at: "2026-03-10T03:00:00.000000Z".into(),
                            },
                        })
                        .collect();
                    axum::Json(PullResponse {
                        changes,
                        next: after + MAX_BATCH as i64,
                        more: true,
                    })
                },
            ),
        ),
        &cert,
        &key,
    );
    relink(&d, &flooding.url, &cert);
    let e = sync_error(&d);
    assert_eq!(e.code(), "too_many_refused", "{e}");
    let added = count(&d, "SELECT count(*) FROM sync_conflicts") - before;
    assert!(
        (1..=(apply::MAX_REFUSED_PER_ROUND as i64 + MAX_BATCH as i64)).contains(&added),
        "{added}"
    );
    // The next round starts where that one stopped and is bounded the same way.
    let pulled_to = d.read(|c| Ok(sync::link(c)?.unwrap().pulled_to)).unwrap();
    assert!(pulled_to >= MAX_BATCH as i64);
    let e = sync_error(&d);
    assert_eq!(e.code(), "too_many_refused");
}

/// Names and sizes from elsewhere are checked like a person's input: an attachment row a
/// folder holder sealed with a path or a disguised extension in its name is refused on the
/// other PC (kept as a conflict), so it never reaches a Save dialog.
#[test]
fn an_attachment_name_from_another_pc_is_checked_like_an_upload() {
    use clinic_sync_proto::*;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let dana_a = with_dana(&a_clinic, &a);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let (rec, _) = attach(
        &dana_a,
        &a,
        &pdf_bytes(5000, 3),
        "fine",
        clinic_date(&a_clinic, 0),
    );
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    // Someone with A's folder and a password seals rows of their own and pushes them.
    let d = db(&a);
    let l = d.read(|c| Ok(sync::link(c)?.unwrap())).unwrap();
    let sealer = sync::seal::Sealer::new(&d.key());
    let bad_names = [
        "..\\..\\Startup\\evil.pdf",
        "invoice\u{202E}fdp.exe",
        "report.pdf\u{0}.exe",
        ".hidden.pdf",
    ];
    let changes: Vec<Change> = bad_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let id = format!("forged-{i}");
            let hlc = format!("{:013}-{i:05}", a_clinic.clock.now().timestamp_millis());
            let row = serde_json::json!({
                "id": id, "record_id": rec, "file_name": name, "mime": "application/pdf",
                "size": 5000, "sha256": "ab".repeat(32),
                "created_at": "2026-03-10T03:00:00.000000Z", "created_by": "x",
                "updated_at": "2026-03-10T03:00:00.000000Z", "updated_by": "x",
            });
            let at = sync::seal::Bound {
                entity: "attachments",
                id: &id,
                hlc: &hlc,
                device: &l.device_id,
                base: None,
            };
            Change {
                seq: l.pushed_seq + 1 + i as i64,
                entity: "attachments".into(),
                entity_id: id.clone(),
                op: Op::Insert,
                after: Some(sealer.seal(at, &row.to_string())),
                hlc,
                base: None,
                at: "2026-03-10T03:00:00.000000Z".into(),
            }
        })
        .collect();
    l.transport()
        .unwrap()
        .push(&PushRequest {
            changes,
            audit_head: None,
        })
        .unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    let b = db(&pc_b.core);
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM attachments WHERE id LIKE 'forged-%'"
        ),
        0
    );
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM sync_conflicts WHERE kind = 'refused' AND entity_id LIKE 'forged-%'"
        ),
        bad_names.len() as i64
    );
    // What an upload makes of the same names: only the last part, nothing disguised.
    use clinic_core::clinical::records::safe_name;
    assert_eq!(
        safe_name(bad_names[0], "application/pdf").as_deref(),
        Some("evil.pdf")
    );
    assert_eq!(
        safe_name(bad_names[1], "application/pdf").as_deref(),
        Some("invoicefdp.exe.pdf")
    );
    assert_eq!(
        safe_name(bad_names[2], "application/pdf").as_deref(),
        Some("report.pdf.exe.pdf")
    );
    assert_eq!(
        safe_name(bad_names[3], "application/pdf").as_deref(),
        Some("hidden.pdf")
    );
    assert_eq!(safe_name("...", "image/png"), None);
    assert_eq!(
        safe_name("con.pdf", "application/pdf").as_deref(),
        Some("_con.pdf")
    );
    assert_eq!(
        safe_name("LPT1.pdf", "application/pdf").as_deref(),
        Some("_LPT1.pdf")
    );
    assert_eq!(
        safe_name("scan\u{200B}\u{061C}\u{FEFF}.pdf", "application/pdf").as_deref(),
        Some("scan.pdf")
    );
    assert_eq!(
        safe_name("photo.JPEG", "image/jpeg").as_deref(),
        Some("photo.JPEG")
    );
}

/// One change no PC can take (a row of 3 MiB with a column no table has, sealed and pushed by
/// someone with A's folder and a password) refuses itself only: B records it (without keeping
/// all of it) and goes on, and a change after it from another PC arrives. Before, recording
/// the refusal outgrew a row and every round on every PC failed on it for good.
#[test]
fn a_change_no_pc_can_take_refuses_only_itself() {
    use clinic_sync_proto::*;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let pc_c = join_new_pc(&server, &a_clinic, &a, "C");
    let d = db(&a);
    sync::sync_once(&d).unwrap();
    let l = d.read(|c| Ok(sync::link(c)?.unwrap())).unwrap();
    let sealer = sync::seal::Sealer::new(&d.key());
    let id = "wedge-1";
    let hlc = format!("{:013}-00000", a_clinic.clock.now().timestamp_millis());
    let mut row = serde_json::json!({ "id": id, "zzz": "" });
    row["zzz"] = serde_json::Value::String("z".repeat(MAX_ROW_BYTES - 40));
    let text = row.to_string();
    assert!(text.len() <= MAX_ROW_BYTES);
    let at = sync::seal::Bound {
        entity: "patients",
        id,
        hlc: &hlc,
        device: &l.device_id,
        base: None,
    };
    l.transport()
        .unwrap()
        .push(&PushRequest {
            changes: vec![Change {
                seq: l.pushed_seq + 1,
                entity: "patients".into(),
                entity_id: id.into(),
                op: Op::Insert,
                after: Some(sealer.seal(at, &text)),
                hlc,
                base: None,
                at: "2026-03-10T03:00:00.000000Z".into(),
            }],
            audit_head: None,
        })
        .unwrap();
    let after = registered(
        pc_c.core
            .patient_register(patient("After", "Wedge", "1970-01-01"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&pc_c.core)).unwrap();
    let b = db(&pc_b.core);
    let r = sync::sync_once(&b).expect("one change wedged the round");
    assert!(r.refused >= 1, "{r:?}");
    assert!(pc_b.core.patient_get(after.id.clone()).is_ok());
    let (detail, kept): (String, Option<String>) = b
        .read(|c| {
            Ok(c.query_row(
                "SELECT detail, loser_after FROM sync_conflicts WHERE entity_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert!(
        kept.is_none(),
        "a 3 MiB losing version was kept in the conflict"
    );
    assert!(
        detail.len() <= 700 && detail.contains("too large to keep"),
        "{detail}"
    );
    // B's record of it travels like any row and wedges nobody either.
    sync::sync_once(&b).unwrap();
    sync::sync_once(&db(&pc_c.core)).unwrap();
    sync::sync_once(&d).unwrap();
}

/// A server that answers a joining PC the same real rows again and again, each time under a
/// cursor a little further on (every row still after it), would keep the download going for
/// ever: the PC takes a page's cursor only when it names the page's last row.
#[test]
fn a_download_whose_cursor_does_not_follow_its_rows_stops() {
    use axum::routing::get;
    use clinic_sync_proto::*;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    for n in 0..3 {
        a.patient_register(patient("Row", &format!("Real{n}"), "1970-01-01"), false)
            .unwrap();
    }
    join_first_pc(&server, &db(&a), "A");
    let code = clinic_core::sync::join::invite(&db(&a), a_clinic.dir.path(), 60).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // B joins and is switched off at once: its download waits to be resumed.
    let (b, link) = clinic_core::sync::join::join_new(
        dir.path(),
        a_clinic.clock.clock(),
        &server.url,
        &server.cert,
        &code,
        "B",
        &|_, _| false,
    )
    .unwrap();
    assert!(!link.ready);
    // The real, sealed patient rows, as the server keeps them.
    let real: Vec<SnapshotRow> = server_db(&server)
        .prepare(
            "SELECT entity, entity_id, after, hlc, device_id, base FROM rows
             WHERE entity = 'patients' AND NOT deleted ORDER BY entity_id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(SnapshotRow {
                entity: r.get(0)?,
                entity_id: r.get(1)?,
                after: r.get(2)?,
                hlc: r.get(3)?,
                device_id: r.get(4)?,
                base: r.get(5)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(real.len(), 3);
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (cert, key) = clinic_server::tls::self_signed(&["localhost".into()]).unwrap();
    let counting = answered.clone();
    let repeating = FakeServer::start(
        axum::Router::new().route(
            "/v1/snapshot",
            get(
                move |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| {
                    let (real, counting) = (real.clone(), counting.clone());
                    async move {
                        let page = |rows, next| {
                            axum::Json(SnapshotPage {
                                rows,
                                next,
                                as_of: 1,
                                total: 3,
                            })
                        };
                        if q.get("entity").map(String::as_str) != Some("patients") {
                            return page(vec![], None);
                        }
                        // "patients/0", "patients/00", …: each after the last, all before the
                        // rows' ids. (Bounded here, so a PC that never stops ends the test.)
                        let n = counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let next = (n < 50).then(|| format!("patients/{}", "0".repeat(n + 1)));
                        page(real, next)
                    }
                },
            ),
        ),
        &cert,
        &key,
    );
    relink(&b, &repeating.url, &cert);
    let e = apply::download(&b, &|_, _| true).expect_err("the download should stop");
    assert_eq!(e.code(), "server_misbehaves", "{e}");
    // It stopped at the first such page (the next may be on its way: pages are fetched ahead).
    assert!(answered.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    assert!(!b.read(|c| Ok(sync::link(c)?.unwrap().ready)).unwrap());
}
