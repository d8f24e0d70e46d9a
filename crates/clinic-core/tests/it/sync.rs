//! Sync against the real server (SQLite backend) on loopback HTTPS: two PCs, each a real
//! SQLCipher file, joined to one clinic.

use std::sync::mpsc;
use std::sync::Arc;

use chrono::Duration;
use clinic_core::store::Db;
use clinic_core::sync::{self, apply, join};
use clinic_core::Core;
use clinic_server::limit::RateLimiter;
use clinic_server::store::sqlite::SqliteStore;
use clinic_server::{bootstrap_clinic, tls, AppState};

use crate::reception::{patient, registered};
use crate::support::*;

/// The sync server in a thread of its own, stopped on drop.
pub struct TestServer {
    pub url: String,
    pub cert: String,
    pub first_code: String,
    /// A PC's test clock the server's clock follows (`follow`); none: it runs from the
    /// instant test clocks start at.
    follows: Arc<parking_lot::Mutex<Option<TestClock>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let follows: Arc<parking_lot::Mutex<Option<TestClock>>> = Arc::default();
        let followed = follows.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let store = SqliteStore::open(&path).unwrap();
                // The server's clock runs from the instant the PCs' test clocks start at (or
                // with the PC clock it follows), so their stamps are never far ahead of it
                // whatever the date the tests run.
                let (start, began) = (start_instant(), std::time::Instant::now());
                let clock = move || match followed.lock().as_ref() {
                    Some(c) => c.now(),
                    None => start + chrono::Duration::from_std(began.elapsed()).unwrap_or_default(),
                };
                let (_, code) = bootstrap_clinic(&store, "Riverside", clock())
                    .await
                    .unwrap();
                let (cert, key) = tls::self_signed(&["localhost".into()]).unwrap();
                let state = std::sync::Arc::new(AppState::new(
                    store,
                    RateLimiter::new(10_000.0, 100_000),
                    std::sync::Arc::new(clock),
                ));
                let (addr, handle, _task) = clinic_server::serve(
                    state,
                    "127.0.0.1:0".parse().unwrap(),
                    tls::server_config(&cert, &key).unwrap(),
                )
                .await
                .unwrap();
                tx.send((format!("https://localhost:{}", addr.port()), cert, code))
                    .unwrap();
                let _ = stop_rx.await;
                handle.shutdown();
            });
        });
        let (url, cert, first_code) = rx.recv().unwrap();
        TestServer {
            url,
            cert,
            first_code,
            follows,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
        }
    }
}

impl TestServer {
    /// The server's clock reads `clock` from now on (a test whose PCs live in another year).
    pub fn follow(&self, clock: &TestClock) {
        *self.follows.lock() = Some(clock.clone());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn db(core: &Core) -> std::sync::Arc<Db> {
    core.dev_db().unwrap()
}

/// A new PC with nothing on it, joined with a code from `a` (signed in as admin there):
/// the clinic's admin signs in on it with the same password and second factor.
pub struct NewPc {
    pub dir: tempfile::TempDir,
    pub clock: TestClock,
    pub core: Core,
}

/// Connects the clinic's first PC (`db`) to the server with the server's first join code.
pub fn join_first_pc(server: &TestServer, db: &Db, name: &str) {
    apply::join(
        db,
        &server.url,
        &server.cert,
        &server.first_code,
        name,
        &|_, _| true,
    )
    .unwrap();
}

pub fn join_new_pc(server: &TestServer, a_clinic: &Clinic, a: &Core, name: &str) -> NewPc {
    join_new_pc_at(&server.url, &server.cert, a_clinic, a, name)
}

pub fn join_new_pc_at(url: &str, cert: &str, a_clinic: &Clinic, a: &Core, name: &str) -> NewPc {
    let code = join::invite(&db(a), a_clinic.dir.path(), 60).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    clock.advance(a_clinic.clock.now() - clock.now());
    let seen = std::cell::RefCell::new(vec![]);
    let (_db, link) = join::join_new(
        dir.path(),
        clock.clock(),
        url,
        cert,
        &code,
        name,
        &|d, t| {
            seen.borrow_mut().push((d, t));
            true
        },
    )
    .unwrap();
    assert!(link.ready);
    let (done, total) = *seen.borrow().last().unwrap();
    assert_eq!(done, total);
    let core = Core::with_clock(dir.path(), clock.clock());
    match core.login(ADMIN.into(), ADMIN_PW.into()).unwrap() {
        clinic_core::session::LoginStep::Totp => {}
        other => panic!("expected a TOTP step, got {other:?}"),
    }
    let totp =
        clinic_core::session::auth::totp_code(&a_clinic.admin_totp, clock.now().timestamp() as u64)
            .unwrap();
    core.login_totp(totp)
        .expect("the admin's second factor works on the new PC");
    clock.advance(Duration::seconds(30));
    NewPc { dir, clock, core }
}

/// Every PC's digest of its synced rows equals the server's.
pub fn assert_same_everywhere(pcs: &[&Db]) {
    let server = pcs[0]
        .read(|c| Ok(sync::link(c)?.unwrap()))
        .unwrap()
        .transport()
        .unwrap()
        .digest()
        .unwrap();
    for (i, pc) in pcs.iter().enumerate() {
        if sync::digest(pc).unwrap() != server {
            panic!("PC {i} differs from the server: {:#?}", differences(pc));
        }
    }
}

/// What a PC holds that the server doesn't, and the other way round (entity, id, text).
fn differences(pc: &Db) -> Vec<String> {
    use std::collections::BTreeMap;
    let t = pc
        .read(|c| Ok(sync::link(c)?.unwrap()))
        .unwrap()
        .transport()
        .unwrap();
    let mut server = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = t.snapshot(after.as_deref(), None, 5000).unwrap();
        for r in page.rows {
            if let Some(a) = r.after {
                server.insert((r.entity, r.entity_id), (r.hlc, r.device_id, r.base, a));
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // The server's copy is sealed: opened with the clinic's key to compare.
    let sealer = sync::seal::Sealer::new(&pc.key());
    let mut mine = BTreeMap::new();
    let mut stamps = BTreeMap::new();
    pc.read(|c| {
        let mut st = c.prepare("SELECT entity, entity_id, hlc FROM sync_versions")?;
        let keys = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (e, i, h) in keys {
            if sync::synced_table(&e).is_none() {
                continue;
            }
            if let Some(text) = clinic_core::store::row_text(c, &e, &i)? {
                stamps.insert((e.clone(), i.clone()), h);
                mine.insert((e, i), text);
            }
        }
        Ok(())
    })
    .unwrap();
    let server: BTreeMap<(String, String), String> = server
        .into_iter()
        .filter(|((e, i), (h, d, b, a))| {
            // Tombstones keep their sealed marker: deleted rows are on no PC.
            let version = sync::seal::Bound {
                entity: e,
                id: i,
                hlc: h,
                device: d,
                base: b.as_deref(),
            };
            sealer.open(version, a).as_deref() != Some("deleted")
        })
        .map(|((e, i), (h, d, b, a))| {
            let version = sync::seal::Bound {
                entity: &e,
                id: &i,
                hlc: &h,
                device: &d,
                base: b.as_deref(),
            };
            let open = sealer
                .open(version, &a)
                .unwrap_or_else(|| format!("UNOPENED {a}"));
            let note = match stamps.get(&(e.clone(), i.clone())) {
                Some(mine) if *mine != h => format!(" (server version {h}, PC {mine})"),
                _ => String::new(),
            };
            ((e, i), format!("{open}{note}"))
        })
        .collect();
    let mut out = vec![];
    for (k, v) in &mine {
        match server.get(k) {
            None => out.push(format!("only on the PC: {k:?}")),
            Some(sv) if sv != v => out.push(format!("differs {k:?}:\n  pc     {v}\n  server {sv}")),
            _ => {}
        }
    }
    for k in server.keys() {
        if !mine.contains_key(k) {
            out.push(format!("only on the server: {k:?}"));
        }
    }
    out
}

/// Syncs the PCs in turn until a whole round moves nothing: what a pull settles (findings,
/// derived columns) travels in the next round.
pub fn sync_until_still(pcs: &[&Core]) {
    for round in 1.. {
        let mut moved = 0;
        for pc in pcs {
            let r = sync::sync_once(&db(pc)).unwrap();
            moved += r.pushed + r.pulled;
        }
        if moved == 0 {
            return;
        }
        assert!(round < 8, "still moving after {round} rounds");
    }
}

fn count(db: &Db, sql: &str) -> i64 {
    db.read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[test]
fn two_pcs_share_records_without_echo_or_loss() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let anna = registered(
        a.patient_register(patient("Anna", "Sato", "1980-02-01"), false)
            .unwrap(),
    );

    // The first PC joins with the server's code and pushes what it has.
    let progress = std::cell::RefCell::new(vec![]);
    let link = apply::join(
        &db(&a),
        &server.url,
        &server.cert,
        &server.first_code,
        "Front desk",
        &|d, t| {
            progress.borrow_mut().push((d, t));
            true
        },
    )
    .unwrap();
    assert!(link.ready);
    assert_eq!(link.device_code, db(&a).device().code);
    let r = sync::sync_once(&db(&a)).unwrap();
    assert!(r.pushed > 0);
    assert_eq!(db(&a).read(sync::waiting).unwrap(), 0);

    // A second PC with nothing on it joins with a code the first made, downloads the clinic,
    // and the admin signs in there with the same password and second factor.
    let pc_b = join_new_pc(&server, &a_clinic, &a, "Room 1");
    let b = &pc_b.core;
    let b_clinic = &pc_b;
    let link_b = db(b).read(|c| Ok(sync::link(c)?.unwrap())).unwrap();
    assert_ne!(link_b.device_id, link.device_id);
    assert_ne!(link_b.device_code, link.device_code);
    let seen = b.patient_get(anna.id.clone()).unwrap();
    assert_eq!(seen.family_name, "Sato");
    assert_eq!(seen.mrn, anna.mrn, "record numbers travel as they are");

    // B edits; A sees it after both sync. Nothing comes back to B (no echo).
    let mut input = patient("Anna", "Sato-Ito", "1980-02-01");
    input.phones = vec![];
    b.patient_update(anna.id.clone(), input).unwrap();
    let rb = sync::sync_once(&db(b)).unwrap();
    assert!(rb.pushed >= 1);
    let log_before = count(&db(&a), "SELECT count(*) FROM change_log");
    let ra = sync::sync_once(&db(&a)).unwrap();
    assert!(ra.applied >= 1, "{ra:?}");
    assert_eq!(
        a.patient_get(anna.id.clone()).unwrap().family_name,
        "Sato-Ito"
    );
    let own = count(
        &db(&a),
        &format!("SELECT count(*) FROM change_log WHERE seq > {log_before}"),
    );
    assert_eq!(own, 0, "applied changes went into A's own change log");
    assert_eq!(count(&db(&a), "SELECT count(*) FROM sync_conflicts"), 0);
    let applied_audit = count(
        &db(&a),
        "SELECT count(*) FROM audit_log WHERE action = 'sync_update' AND entity = 'patients' AND actor_name LIKE 'applied from device %'",
    );
    assert_eq!(applied_audit, 1);
    let rb2 = sync::sync_once(&db(b)).unwrap();
    assert_eq!(rb2.applied, 0, "B got its own change back: {rb2:?}");

    // A pull repeated after a lost answer (the cursor rewound) changes nothing.
    db(&a)
        .raw_writer(|c| {
            c.execute("UPDATE sync_state SET pulled_to = 0", [])?;
            Ok(())
        })
        .unwrap();
    let again = sync::sync_once(&db(&a)).unwrap();
    assert_eq!(again.applied, 0);
    assert!(again.pulled > 0);
    assert_eq!(
        a.patient_get(anna.id.clone()).unwrap().family_name,
        "Sato-Ito"
    );

    // Both change the same record while apart: the same winner everywhere, the loser kept.
    a_clinic.clock.advance(Duration::minutes(1));
    b_clinic.clock.advance(Duration::minutes(2));
    a.patient_update(anna.id.clone(), patient("Anna", "From-A", "1980-02-01"))
        .unwrap();
    b.patient_update(anna.id.clone(), patient("Anna", "From-B", "1980-02-01"))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(b)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    let on_a = a.patient_get(anna.id.clone()).unwrap().family_name;
    let on_b = b.patient_get(anna.id.clone()).unwrap().family_name;
    assert_eq!(on_a, on_b, "the PCs disagree");
    assert_eq!(on_a, "From-B", "B's clock is later, so B's version wins");
    for pc in [&a, b] {
        let lost: String = db(pc)
            .read(|c| {
                Ok(c.query_row(
                    "SELECT loser_after FROM sync_conflicts WHERE entity = 'patients' AND entity_id = ?1 AND kind = 'concurrent'",
                    [&anna.id],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(
            lost.contains("From-A"),
            "the losing version is kept: {lost}"
        );
    }
    // Once each has synced twice more (each pushes the conflict it found), A, B and the
    // server hold the same data.
    for pc in [&a, b, &a, b] {
        sync::sync_once(&db(pc)).unwrap();
    }
    assert_same_everywhere(&[&db(&a), &db(b)]);
    assert_eq!(count(&db(&a), "SELECT count(*) FROM sync_conflicts"), 1);
}

/// PC A's clock runs ten minutes ahead of B's. B edits a record after it has seen A's edit:
/// B's edit wins everywhere although B's wall clock says it is older, and no conflict is
/// recorded (B saw A's version).
#[test]
fn a_later_edit_wins_even_with_a_clock_ten_minutes_behind() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    a_clinic.clock.advance(Duration::minutes(10));
    let a = admin_core(&a_clinic);
    let p = registered(
        a.patient_register(patient("Mali", "Chai", "1975-05-05"), false)
            .unwrap(),
    );
    join_first_pc(&server, &db(&a), "Ahead");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "Behind");
    pc_b.clock.advance(Duration::minutes(-10));
    let (b, b_clinic) = (&pc_b.core, &pc_b);

    a.patient_update(p.id.clone(), patient("Mali", "First", "1975-05-05"))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(b)).unwrap();
    assert_eq!(b.patient_get(p.id.clone()).unwrap().family_name, "First");
    b_clinic.clock.advance(Duration::seconds(5));
    b.patient_update(p.id.clone(), patient("Mali", "Second", "1975-05-05"))
        .unwrap();
    sync::sync_once(&db(b)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(a.patient_get(p.id.clone()).unwrap().family_name, "Second");
    assert_eq!(b.patient_get(p.id.clone()).unwrap().family_name, "Second");
    let conflicts = count(
        &db(&a),
        &format!(
            "SELECT count(*) FROM sync_conflicts WHERE entity_id = '{}'",
            p.id
        ),
    );
    assert_eq!(conflicts, 0, "a sequential edit was taken for a conflict");
}

/// A PC set up on its own (its own key, its own admin) can't join a clinic that has PCs
/// already: what it holds is sealed under another key. It is told so in words, and keeps
/// its data; a PC joins such a clinic empty, from its set-up screen.
#[test]
fn a_pc_set_up_on_its_own_cannot_join_a_clinic_that_has_pcs() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let code = join::invite(&db(&a), a_clinic.dir.path(), 60).unwrap();
    let b_clinic = new_clinic_named("Set up alone");
    let b = admin_core(&b_clinic);
    let refused =
        apply::join(&db(&b), &server.url, &server.cert, &code, "B", &|_, _| true).unwrap_err();
    assert_eq!(refused.code(), "server");
    assert_eq!(
        refused.params().get("code").map(String::as_str),
        Some("clinic_has_devices")
    );
    assert!(db(&b).read(sync::link).unwrap().is_none(), "half connected");
    // The code is not used up: an empty PC joins with it.
    let pc = join_new_pc_at(&server.url, &server.cert, &a_clinic, &a, "C");
    assert!(sync::sync_once(&db(&pc.core)).is_ok());
}

fn code_of<T: std::fmt::Debug>(r: clinic_core::Result<T>) -> String {
    r.expect_err("expected an error").code()
}

/// A password change, or a disabled account, on one PC takes effect on the others at their
/// next sync: the account's key slot travels with it.
#[test]
fn a_password_change_or_a_disabled_account_reaches_every_pc_at_its_next_sync() {
    use clinic_core::perm::Role;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let first = "amber-Fox-lantern9";
    let second = "quiet-Harbor-maple4";
    let nina = a
        .staff_create(new_staff("nina", vec![Role::Nurse], first))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();

    // Nina signs in on B with the password the admin gave her on A, and changes it there.
    let nina_b = Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    nina_b
        .login("nina".into(), first.into())
        .expect("A's new account signs in on B");
    nina_b.change_password(first.into(), second.into()).unwrap();
    nina_b.logout().unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();

    let nina_a = Core::with_clock(a_clinic.dir.path(), a_clinic.clock.clock());
    assert_eq!(
        code_of(nina_a.login("nina".into(), second.into())),
        "bad_credentials",
        "A knew the new password before it synced"
    );
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(
        code_of(nina_a.login("nina".into(), first.into())),
        "bad_credentials",
        "the old password still opens A"
    );
    let nina_a = Core::with_clock(a_clinic.dir.path(), a_clinic.clock.clock());
    nina_a
        .login("nina".into(), second.into())
        .expect("B's new password opens A after sync");
    nina_a.logout().unwrap();

    // The admin disables her on A; B refuses her after its next sync.
    a.staff_set_active(clinic_core::staff::SetActive {
        id: nina.id.clone(),
        active: false,
        initial_password: None,
    })
    .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    let again = Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    assert!(
        again.login("nina".into(), second.into()).is_err(),
        "a disabled account signs in on B"
    );

    // The admin changes their password on B while still signed in on A: what A's window would
    // sign with the old slot, other PCs would refuse, so A asks them to sign in again.
    let new_admin_pw = "granite-Owl-harbor3";
    pc_b.core
        .change_password(ADMIN_PW.into(), new_admin_pw.into())
        .unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(
        code_of(a.staff_create(new_staff("omar", vec![Role::Cashier], first))),
        "signer_outdated"
    );
    a_clinic.clock.advance(Duration::seconds(30));
    let a = Core::with_clock(a_clinic.dir.path(), a_clinic.clock.clock());
    login_with_totp(&a_clinic, &a, ADMIN, new_admin_pw, &a_clinic.admin_totp);
    a.staff_create(new_staff("omar", vec![Role::Cashier], first))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    Core::with_clock(pc_b.dir.path(), pc_b.clock.clock())
        .login("omar".into(), first.into())
        .expect("an account the admin made after signing in again reaches B");
}

/// Someone with one PC's folder and a receptionist's password opens that PC's database,
/// which holds the clinic's key: they can write any synced row and push it. They give the
/// admin account a slot of their own (with a grant the new slot and the receptionist sign),
/// make the receptionist an admin, and disable the doctor. The other PC takes none of it: the
/// admin still signs in there with the real password, the forged one opens nothing, the
/// receptionist has her own role, and the doctor still signs in.
#[test]
fn account_changes_forged_with_a_receptionists_password_are_not_taken_by_other_pcs() {
    use clinic_core::perm::Role;
    use clinic_core::session::keyslots::KeySlots;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    a_clinic.clock.advance(Duration::seconds(30));
    let pc_c = join_new_pc(&server, &a_clinic, &a, "C");
    let (rita_pw, drew_pw) = ("amber-Fox-lantern9", "quiet-Harbor-maple4");
    let rita = a
        .staff_create(new_staff("rita", vec![Role::Receptionist], rita_pw))
        .unwrap();
    let drew = a
        .staff_create(new_staff("drew", vec![Role::Doctor], drew_pw))
        .unwrap();
    let admin_id = a.session_info().unwrap().staff_id;
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();

    // What an admin signs does travel: Rita also takes payments, on B too.
    a.staff_update(clinic_core::staff::StaffUpdate {
        id: rita.id.clone(),
        full_name: rita.full_name.clone(),
        email: String::new(),
        phone: String::new(),
        roles: vec![Role::Receptionist, Role::Cashier],
        language: rita.language,
    })
    .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    let r = Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    r.login("rita".into(), rita_pw.into()).unwrap();
    let mut roles = r.session_info().unwrap().roles;
    roles.sort_by_key(|r| r.as_str());
    assert_eq!(roles, vec![Role::Cashier, Role::Receptionist]);
    r.logout().unwrap();

    // On B, with Rita's password: her slot's signer, and the database it opens.
    let b_dir = pc_b.dir.path();
    let b_db = db(&pc_b.core);
    let rita_signer = KeySlots::modify(b_dir, |s| {
        s.check_password(&rita.id, rita_pw, a_clinic.clock.now())
    })
    .unwrap()
    .signer
    .unwrap();
    let forged_pw = "stolen-Admin-pass7";
    let forged_public = KeySlots::modify(b_dir, |s| {
        let (public, own) = s.set_staff(
            &admin_id,
            ADMIN,
            forged_pw,
            &b_db.key(),
            &[Role::Admin],
            None,
        )?;
        // Signed by Rita, and by the new slot itself: neither is an admin's trusted slot.
        s.grant(&admin_id, &[Role::Admin], &rita_signer)?;
        // Ranked far above anything real, to hold back the admin's next grant for her.
        for _ in 0..5 {
            s.grant(&rita.id, &[Role::Admin, Role::Receptionist], &rita_signer)?;
        }
        s.revoke(&drew.id, "drew", &[Role::Doctor], &own)?;
        Ok(public)
    })
    .unwrap();
    let forger = clinic_core::store::Actor {
        id: rita.id.clone(),
        name: "Rita".into(),
    };
    b_db.write(&forger, |w| {
        let staff = clinic_core::staff::Table::Staff;
        w.update(
            staff,
            &admin_id,
            "UPDATE staff SET slot_public_key = ?2, active = 0 WHERE id = ?1",
            (&admin_id, &forged_public),
        )?;
        w.update(
            staff,
            &rita.id,
            "UPDATE staff SET roles = '[\"admin\",\"receptionist\"]' WHERE id = ?1",
            [&rita.id],
        )?;
        w.update(
            staff,
            &drew.id,
            "UPDATE staff SET active = 0 WHERE id = ?1",
            [&drew.id],
        )
    })
    .unwrap();
    let pushed = sync::sync_once(&b_db).unwrap().pushed;
    assert!(pushed >= 6, "the forged rows left B ({pushed})");
    sync::sync_once(&db(&a)).unwrap();
    let forged_rows: i64 = db(&a)
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM key_slots WHERE public_key = ?1",
                [&forged_public],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(forged_rows, 1, "A received the forged slot");

    // A's slot file took none of it: the admin's slot is the one A had, Drew keeps his.
    let slots_a = KeySlots::load(a_clinic.dir.path()).unwrap();
    assert_ne!(
        slots_a.public_key_of(&admin_id).as_deref(),
        Some(forged_public.as_str()),
        "the forged admin slot was taken"
    );
    assert!(
        slots_a.public_key_of(&drew.id).is_some(),
        "the forged disabling removed Drew's slot"
    );
    assert_eq!(
        count(
            &db(&a),
            "SELECT count(*) FROM sync_conflicts WHERE entity = 'key_slots' AND kind = 'refused'"
        ),
        3,
        "the admin sees the three refused account changes"
    );
    assert!(slots_a
        .grant_of(&rita.id)
        .unwrap()
        .same_roles(&[Role::Receptionist, Role::Cashier]));

    // On A: the forged password opens nothing; the real ones still work, with real roles.
    let on_a = || Core::with_clock(a_clinic.dir.path(), a_clinic.clock.clock());
    assert_eq!(
        code_of(on_a().login(ADMIN.into(), forged_pw.into())),
        "bad_credentials",
        "the forged admin password opens A"
    );
    let r = on_a();
    r.login("rita".into(), rita_pw.into()).unwrap();
    let mut roles = r.session_info().unwrap().roles;
    roles.sort_by_key(|r| r.as_str());
    assert_eq!(
        roles,
        vec![Role::Cashier, Role::Receptionist],
        "Rita made herself an admin"
    );
    r.logout().unwrap();
    // Her row on A says admin, her grant doesn't: the recovery key doesn't reset her.
    assert_eq!(
        code_of(on_a().recover_account(
            a_clinic.recovery_key.clone(),
            "rita".into(),
            "Recovered-pass-78".into()
        )),
        "not_found",
        "the recovery key reset Rita's password for a forged row"
    );
    a_clinic.clock.advance(Duration::seconds(30));
    let admin_a = on_a();
    login_with_totp(&a_clinic, &admin_a, ADMIN, ADMIN_PW, &a_clinic.admin_totp);
    // The admin's screen shows the roles Rita's grant gives, not her forged row's, so an
    // edit of her account keeps them.
    let mut listed = admin_a
        .staff_accounts()
        .unwrap()
        .into_iter()
        .find(|p| p.id == rita.id)
        .unwrap()
        .roles;
    listed.sort_by_key(|r| r.as_str());
    assert_eq!(listed, vec![Role::Cashier, Role::Receptionist]);

    // The forged row ranks above the admin's next grant for Rita, yet doesn't hold it back:
    // A publishes it over the forgery, and C takes it.
    admin_a
        .staff_update(clinic_core::staff::StaffUpdate {
            id: rita.id.clone(),
            full_name: rita.full_name.clone(),
            email: String::new(),
            phone: String::new(),
            roles: vec![Role::Receptionist],
            language: rita.language,
        })
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_c.core)).unwrap();
    let r = Core::with_clock(pc_c.dir.path(), pc_c.clock.clock());
    r.login("rita".into(), rita_pw.into()).unwrap();
    assert_eq!(r.session_info().unwrap().roles, vec![Role::Receptionist]);

    // The admin's row on A says disabled too, and signing in there wrote it (the recorded
    // key): still not a disabling this PC made, so nothing revoked the admin.
    assert!(
        KeySlots::load(a_clinic.dir.path())
            .unwrap()
            .grant_of(&admin_id)
            .unwrap()
            .body
            .active
    );
    // Grants have rows of their own: publishing again adds nothing.
    assert_eq!(sync::slots::publish(&db(&a)).unwrap(), 0);
    // Drew's row on A says disabled, his grant doesn't: he signs in there. The sign-ins on A
    // removed no slot for the forged disabling (a row another PC sent decides nothing).
    on_a()
        .login("drew".into(), drew_pw.into())
        .expect("a forged row locked Drew out");
    assert!(
        KeySlots::load(a_clinic.dir.path())
            .unwrap()
            .public_key_of(&drew.id)
            .is_some(),
        "a sign-in removed Drew's slot for a forged row"
    );
}

/// An administrator resets a password and then changes their own while another PC is off:
/// that PC takes both (the reset is checked against the slot it was signed with), and the two
/// PCs then have nothing more to publish.
#[test]
fn a_reset_signed_before_the_admins_own_password_change_reaches_a_pc_that_was_off() {
    use clinic_core::perm::Role;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let nina = a
        .staff_create(new_staff("nina", vec![Role::Nurse], "amber-Fox-lantern9"))
        .unwrap();
    a.staff_reset_password(nina.id.clone(), "quiet-Harbor-maple4".into())
        .unwrap();
    a.change_password(ADMIN_PW.into(), "Another-admin-pass-42".into())
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    Core::with_clock(pc_b.dir.path(), pc_b.clock.clock())
        .login("nina".into(), "quiet-Harbor-maple4".into())
        .expect("the reset reached B");
    assert_eq!(
        code_of(
            Core::with_clock(pc_b.dir.path(), pc_b.clock.clock())
                .login(ADMIN.into(), ADMIN_PW.into())
        ),
        "bad_credentials",
        "the admin's old password still opens B"
    );
    assert_eq!(sync::slots::publish(&db(&pc_b.core)).unwrap(), 0);
    sync::sync_once(&db(&pc_b.core)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(sync::slots::publish(&db(&a)).unwrap(), 0);

    // Someone rewrites the reset's row (as a forged row arriving would): every PC holding the
    // grant puts it back at its next round.
    let forger = clinic_core::store::Actor {
        id: nina.id.clone(),
        name: "Nina".into(),
    };
    let rows_of_nina = format!("{}/%", nina.id);
    let reset_row: String = db(&pc_b.core)
        .read(|c| {
            Ok(c.query_row(
                "SELECT id FROM key_slots WHERE id LIKE ?1 ORDER BY updated_at DESC LIMIT 1",
                [&rows_of_nina],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    db(&pc_b.core)
        .write(&forger, |w| {
            w.update(
                clinic_core::sync::Table::KeySlots,
                &reset_row,
                "UPDATE key_slots SET slot = '{}' WHERE id = ?1",
                [&reset_row],
            )
        })
        .unwrap();
    assert_eq!(
        sync::slots::publish(&db(&pc_b.core)).unwrap(),
        1,
        "B put the row back"
    );
    let slot_there = |core: &Core| -> String {
        db(core)
            .read(|c| {
                Ok(c.query_row(
                    "SELECT slot FROM key_slots WHERE id = ?1",
                    [&reset_row],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    };
    assert_eq!(slot_there(&pc_b.core), slot_there(&a));
}

/// A PC whose accounts were made before grants (slots without one) connects: the admin
/// connecting signs a grant for each, so a later change by one of those people on another PC
/// is taken here.
#[test]
fn accounts_from_before_grants_get_one_when_the_pc_connects() {
    use clinic_core::perm::Role;
    use clinic_core::session::keyslots::KeySlots;
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let (first, second) = ("amber-Fox-lantern9", "quiet-Harbor-maple4");
    let nina = a
        .staff_create(new_staff("nina", vec![Role::Nurse], first))
        .unwrap();
    // The slot file as a version before grants wrote it.
    let path = a_clinic.dir.path().join("keyslots.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for slot in file["slots"].as_array_mut().unwrap() {
        slot.as_object_mut().unwrap().remove("grant");
    }
    std::fs::write(&path, file.to_string()).unwrap();
    assert!(KeySlots::load(a_clinic.dir.path())
        .unwrap()
        .grant_of(&nina.id)
        .is_none());

    a.sync_connect(clinic_core::sync::ConnectInput {
        server_url: server.url.clone(),
        server_cert: server.cert.clone(),
        join_code: server.first_code.clone(),
        device_name: "A".into(),
    })
    .unwrap();
    let slots = KeySlots::load(a_clinic.dir.path()).unwrap();
    let admin_id = a.session_info().unwrap().staff_id;
    assert!(slots
        .grant_of(&admin_id)
        .unwrap()
        .same_roles(&[Role::Admin]));
    assert!(slots.grant_of(&nina.id).unwrap().same_roles(&[Role::Nurse]));

    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let nina_b = Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    nina_b.login("nina".into(), first.into()).unwrap();
    nina_b.change_password(first.into(), second.into()).unwrap();
    sync::sync_once(&db(&pc_b.core)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    Core::with_clock(a_clinic.dir.path(), a_clinic.clock.clock())
        .login("nina".into(), second.into())
        .expect("Nina's new password, set on B, opens A");
}

/// The admin's connect and the background's rounds take turns: the background thread tries
/// round after round while the window connects a PC that already holds records (join,
/// download, push, pull). None runs while the connect does; the connect answers with the
/// state it left (synced, nothing waiting, no error); the rounds after it work.
#[test]
fn a_connect_and_the_background_rounds_take_turns() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    for i in 0..60 {
        registered(
            a.patient_register(patient(&format!("Turn{i}"), "Taker", "1970-01-01"), true)
                .unwrap(),
        );
    }
    let (connected, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (status, rounds) = std::thread::scope(|s| {
        let background = s.spawn(|| {
            // Each turn: whether it began and ended before the connect had returned.
            let mut rounds = vec![];
            while !stop.load(SeqCst) {
                let before = !connected.load(SeqCst);
                let round = a.sync_background().map(|r| r.map(drop));
                rounds.push((before && !connected.load(SeqCst), round));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            rounds
        });
        let status = a.sync_connect(clinic_core::sync::ConnectInput {
            server_url: server.url.clone(),
            server_cert: server.cert.clone(),
            join_code: server.first_code.clone(),
            device_name: "Front desk".into(),
        });
        connected.store(true, SeqCst);
        // A few rounds after the connect too.
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, SeqCst);
        (status.unwrap(), background.join().unwrap())
    });
    assert!(status.ready && status.linked, "{status:?}");
    assert!(status.last_sync_at.is_some(), "{status:?}");
    assert_eq!(status.last_error, None);
    assert_eq!(status.waiting, 0, "{status:?}");
    let during = rounds.iter().filter(|(d, r)| *d && r.is_some()).count();
    assert_eq!(during, 0, "background rounds ran during the connect");
    let failed: Vec<_> = rounds
        .iter()
        .filter(|(_, r)| matches!(r, Some(Err(_))))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        rounds.iter().any(|(_, r)| matches!(r, Some(Ok(())))),
        "the background ran no round after the connect: {} turns",
        rounds.len()
    );
    let after = a.sync_status().unwrap();
    assert_eq!((after.waiting, after.last_error), (0, None));
    // The same, one step at a time: while a command holds the round, the background skips.
    let held = a.dev_sync_round();
    assert!(
        a.sync_background().is_none(),
        "a round ran beside a command's"
    );
    drop(held);
    assert!(matches!(a.sync_background(), Some(Ok(_))));

    // An error kept in a form the window can't read still shows as an error.
    db(&a)
        .raw_writer(|c| {
            c.execute("UPDATE sync_state SET last_error = 'not json'", [])?;
            Ok(())
        })
        .unwrap();
    let e = a.sync_status().unwrap().last_error.expect("an error");
    assert_eq!(e.code, "internal");
    assert!(e.message.contains("not json"), "{e:?}");
}

/// A page of sync runs first with no savepoint per row (`Db::write_batch`); a row refused then
/// rolls the page back and it runs again with them. What is written is the same: the rows
/// beside the refused one once each, the refused one undone, its refusal the page's answer.
#[test]
fn a_page_with_a_refused_row_is_written_as_with_a_savepoint_per_row() {
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let d = db(&a);
    d.raw_writer(|c| {
        c.execute_batch("CREATE TABLE page_rows (id INTEGER PRIMARY KEY)")?;
        Ok(())
    })
    .unwrap();
    let page = |ids: &'static [&'static [i64]]| {
        let runs = std::cell::Cell::new(0);
        let out = d
            .write_batch(&sync::actor(), |w| {
                runs.set(runs.get() + 1);
                let mut refused = vec![];
                for (i, rows) in ids.iter().enumerate() {
                    let r = w.attempt(|w| {
                        for id in *rows {
                            w.conn()
                                .execute("INSERT INTO page_rows (id) VALUES (?1)", [id])?;
                        }
                        Ok(())
                    })?;
                    if r.is_err() {
                        refused.push(i);
                    }
                }
                Ok(refused)
            })
            .unwrap();
        (out, runs.get())
    };
    // The second "row" writes 2, then breaks the key on 1: refused, 2 undone with it.
    assert_eq!(page(&[&[1], &[2, 1], &[3]]), (vec![1], 2));
    assert_eq!(count(&d, "SELECT count(*) FROM page_rows"), 2);
    assert_eq!(
        count(&d, "SELECT count(*) FROM page_rows WHERE id IN (1, 3)"),
        2
    );
    // Nothing refused: one run.
    assert_eq!(page(&[&[4], &[5]]), (vec![], 1));
    assert_eq!(count(&d, "SELECT count(*) FROM page_rows"), 4);
}

/// Convergence: three PCs make random registrations, edits, bookings, dispensings and
/// payments (two PCs apart may book one slot, fill one prescription, give the last units of a
/// batch or take payments on one bill), go offline and online in a random order, then all
/// sync. Every PC and the server hold the same data (one digest over every synced row), for
/// each seed. The first PC's records from before sync was on (a visit opened and closed in
/// one millisecond) reach the others as they are.
#[test]
fn three_pcs_converge_after_random_work_offline_and_online() {
    // Ten seeds in every run; CLINICDESK_SYNC_SEEDS=200 tries more (3 s each).
    let seeds = std::env::var("CLINICDESK_SYNC_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10u64);
    let dispensed: u32 = (1..=seeds).map(converge).sum();
    assert!(dispensed > 0, "no seed dispensed anything");
}

/// One run; returns how many dispensings succeeded.
fn converge(seed: u64) -> u32 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let server = TestServer::start();
    // A clinic with a doctor who works around the clock in 15-minute slots, a pharmacist,
    // 40 units of one medication and six signed prescriptions for 10 each (more than the
    // stock: PCs apart may dispense the same units, or the same prescription twice).
    let r = crate::clinical::room();
    let doctor = r.admin.doctor_list().unwrap()[0].id.clone();
    let (a_clinic, a) = (&r.c, &r.admin);
    let phil_a = crate::clinical::signed_in(&r, "phil");
    let item = crate::pharmacy::stock_item(&phil_a, "Amoxicillin");
    crate::pharmacy::receive(&phil_a, &item.id, "LOT-1", clinic_date(a_clinic, 400), 40);
    let prescriptions: Vec<_> = (0..6)
        .map(|n| {
            crate::pharmacy::signed_rx(&r, &format!("Rx{n}"), "Conv", &[("Amoxicillin", 10, 5)])
        })
        .collect();
    join_first_pc(&server, &db(a), "A");
    let b = join_new_pc(&server, a_clinic, a, "B");
    let c = join_new_pc(&server, a_clinic, a, "C");
    let pharmacist = |pc: &NewPc| {
        let core = Core::with_clock(pc.dir.path(), pc.clock.clock());
        assert!(matches!(
            core.login("phil".into(), "Second-pass-22".into()).unwrap(),
            clinic_core::session::LoginStep::Done { .. }
        ));
        core
    };
    let dispensary = [phil_a, pharmacist(&b), pharmacist(&c)];
    let mut dispensed = 0;
    // Clocks that disagree by up to ten minutes.
    b.clock.advance(Duration::seconds(rnd(1200) as i64 - 600));
    c.clock.advance(Duration::seconds(rnd(1200) as i64 - 600));
    let pcs: [(&Core, &TestClock); 3] = [
        (a, &a_clinic.clock),
        (&b.core, &b.clock),
        (&c.core, &c.clock),
    ];
    let mut online = [true; 3];
    let mut patients: Vec<String> = vec![];
    let mut invoices: Vec<String> = vec![];
    for step in 0..48 {
        let i = rnd(3) as usize;
        let (core, clock) = pcs[i];
        clock.advance(Duration::seconds(1 + rnd(5) as i64));
        match rnd(13) {
            0..=2 => {
                let p = registered(
                    core.patient_register(
                        patient(
                            &format!("P{seed}x{step}"),
                            &format!("Fam{}", rnd(1000)),
                            "1990-01-01",
                        ),
                        true,
                    )
                    .unwrap(),
                );
                patients.push(p.id);
            }
            3..=5 if !patients.is_empty() => {
                let id = &patients[rnd(patients.len() as u64) as usize];
                // Only a patient this PC has (another PC's may not have arrived yet).
                if core.patient_get(id.clone()).is_ok() {
                    core.patient_update(
                        id.clone(),
                        patient("Edited", &format!("By{i}n{}", rnd(1000)), "1990-01-01"),
                    )
                    .unwrap();
                }
            }
            6 if !patients.is_empty() => {
                // A booking in one of the day's 32 slots: two PCs apart may take the same one.
                let id = &patients[rnd(patients.len() as u64) as usize];
                if core.patient_get(id.clone()).is_ok() {
                    let slot = chrono::DateTime::parse_from_rfc3339("2030-01-07T02:00:00Z")
                        .unwrap()
                        + Duration::minutes(15 * rnd(32) as i64);
                    let starts = slot
                        .to_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    // Refused here when this PC already has the slot taken.
                    let _ = core
                        .appointment_book(crate::reception::book_input(id, &doctor, &starts, 15));
                }
            }
            7 if !patients.is_empty() => {
                // A payment: on an invoice this PC has with something still due (two desks
                // apart may take the same bill), or on a new one.
                use clinic_core::billing::invoices::LineInput;
                use clinic_core::billing::payments::{Method, PaymentInput};
                let open = invoices.iter().find_map(|id: &String| {
                    core.invoice_get(id.clone())
                        .ok()
                        .filter(|inv| inv.balance > 0)
                });
                let inv = match open {
                    Some(inv) => inv,
                    None => {
                        let id = &patients[rnd(patients.len() as u64) as usize];
                        let Ok(draft) = core.invoice_new(id.clone()) else {
                            continue;
                        };
                        core.invoice_line_add(LineInput {
                            invoice_id: draft.id.clone(),
                            price_id: None,
                            kind: clinic_core::billing::LineKind::Service,
                            description: "Dressing".into(),
                            quantity: 1,
                            unit_price: 30_000,
                        })
                        .unwrap();
                        let issued = core.invoice_issue(draft.id.clone()).unwrap();
                        invoices.push(issued.id.clone());
                        issued
                    }
                };
                core.payment_take(PaymentInput {
                    invoice_id: inv.id.clone(),
                    method: Method::Cash,
                    amount: inv.balance.min(10_000 + 1_000 * rnd(20) as i64),
                    tendered: None,
                    reason: String::new(),
                })
                .unwrap();
            }
            8 => {
                // A dispensing of part of a prescription, from what this PC thinks is left.
                let rx = &prescriptions[rnd(prescriptions.len() as u64) as usize];
                let done = dispensary[i].dispense(clinic_core::pharmacy::dispense::DispenseInput {
                    prescription_id: rx.id.clone(),
                    lines: vec![clinic_core::pharmacy::dispense::DispenseLine {
                        prescription_item_id: rx.items[0].id.clone(),
                        quantity: 1 + rnd(6) as i64,
                        ..Default::default()
                    }],
                });
                match done {
                    Ok(_) => dispensed += 1,
                    // This PC has the prescription filled (in part or whole), or its stock gone.
                    Err(e) => assert!(
                        ["over_dispense", "insufficient_stock", "not_signed"]
                            .contains(&e.code().as_str()),
                        "seed {seed}: {e:?}"
                    ),
                }
            }
            9 => online[i] = !online[i],
            _ => {
                if online[i] {
                    sync::sync_once(&db(core)).unwrap();
                }
            }
        }
    }
    // Everyone back online.
    sync_until_still(&[a, &b.core, &c.core]);
    assert_same_everywhere(&[&db(a), &db(&b.core), &db(&c.core)]);
    // Stock dispensed twice while apart is reported on every PC, and otherwise balances.
    let short = |core: &Core| {
        (
            db(core)
                .read(clinic_core::pharmacy::ledger::out_of_balance)
                .unwrap(),
            count(
                &db(core),
                "SELECT count(*) FROM sync_conflicts WHERE kind = 'stock_short'",
            ),
        )
    };
    assert_eq!(short(a), short(&b.core));
    assert_eq!(short(a), short(&c.core));
    assert_eq!(short(a).0.is_empty(), short(a).1 == 0, "seed {seed}");
    let booked = |core: &Core| count(&db(core), "SELECT count(*) FROM appointments");
    assert_eq!(
        (booked(a), booked(&b.core)),
        (booked(&c.core), booked(&c.core))
    );
    for (core, _) in pcs {
        for id in &patients {
            assert!(
                core.patient_get(id.clone()).is_ok(),
                "seed {seed}: a patient is missing"
            );
        }
    }
    dispensed
}

/// Every push carries this PC's audit head; the server keeps them. A trail cut after a push
/// still verifies as a chain, but no longer matches the heads the server kept.
#[test]
fn a_trail_cut_after_a_push_is_reported_against_the_server_heads() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    registered(
        a.patient_register(patient("Kit", "Tan", "1970-07-07"), false)
            .unwrap(),
    );
    sync::sync_once(&db(&a)).unwrap();
    let ok = a.audit_verify().unwrap();
    assert!(ok.anchors_checked >= 1, "{ok:?}");
    assert_eq!((ok.first_broken_seq, ok.anchor_broken_seq), (None, None));

    // Someone with the key drops the trigger and cuts the newest entries off the end.
    db(&a)
        .raw_writer(|c| {
            c.execute_batch(
                "DROP TRIGGER audit_log_no_delete;
                 DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 3 FROM audit_log);",
            )?;
            Ok(())
        })
        .unwrap();
    let cut = a.audit_verify().unwrap();
    assert_eq!(
        cut.first_broken_seq, None,
        "a cut tail leaves the chain itself intact"
    );
    assert!(
        cut.anchor_broken_seq.is_some(),
        "the cut was not noticed: {cut:?}"
    );
}

/// The same slot booked on two PCs while they were apart: after sync both bookings are
/// there, and the pair is a `double_booking` finding on every PC, never silently merged.
#[test]
fn a_slot_booked_on_two_pcs_while_apart_shows_as_a_double_booking() {
    use crate::reception::{book_input, desk, new_patient};
    let server = TestServer::start();
    let d = desk(1);
    let a = &d.core;
    join_first_pc(&server, &db(a), "Desk 1");
    // The desk lives in 2030: the server's clock goes with it.
    server.follow(&d.c.clock);
    let pc_b = join_new_pc(&server, &d.c, a, "Desk 2");
    let b = &pc_b.core;
    let doctor = d.doctors[0].id.clone();
    let p = new_patient(a, "Ada", "One");
    sync::sync_once(&db(a)).unwrap();
    sync::sync_once(&db(b)).unwrap();
    let q = new_patient(b, "Bo", "Two");
    // Both offline: each books the doctor at 10:00 local.
    a.appointment_book(book_input(&p, &doctor, "2030-01-07T03:00:00Z", 30))
        .unwrap();
    b.appointment_book(book_input(&q, &doctor, "2030-01-07T03:00:00Z", 30))
        .unwrap();
    // Each finds the pair when the other's booking arrives; a round more brings each the
    // other's record of it.
    for pc in [a, b, a, b, a, b] {
        sync::sync_once(&db(pc)).unwrap();
    }
    for pc in [a, b] {
        assert_eq!(
            count(
                &db(pc),
                "SELECT count(*) FROM appointments WHERE status = 'scheduled'"
            ),
            2,
            "a booking was lost"
        );
        assert_eq!(
            count(
                &db(pc),
                "SELECT count(*) FROM sync_conflicts WHERE kind = 'double_booking'"
            ),
            1
        );
    }
    assert_same_everywhere(&[&db(a), &db(b)]);
}

/// Two desks of one department hand out tickets without colliding once sync is on: each
/// ticket carries its desk's number.
#[test]
fn two_desks_of_one_department_never_hand_out_the_same_ticket() {
    use crate::reception::{desk, new_patient};
    use clinic_core::queue::CheckIn;
    let server = TestServer::start();
    let d = desk(1);
    let a = &d.core;
    join_first_pc(&server, &db(a), "Desk 1");
    // The desk lives in 2030: the server's clock goes with it.
    server.follow(&d.c.clock);
    let pc_b = join_new_pc(&server, &d.c, a, "Desk 2");
    let b = &pc_b.core;
    let walk_in = |core: &Core, who: &str| {
        let p = new_patient(core, who, "Walkin");
        core.queue_check_in(CheckIn {
            appointment_id: None,
            patient_id: Some(p),
            specialization_id: Some(d.spec.id.clone()),
            doctor_id: None,
            priority: None,
        })
        .unwrap()
        .number
    };
    let from_a = walk_in(a, "Ann");
    let from_b = walk_in(b, "Ben");
    assert_eq!(from_a, "C1-001");
    assert_eq!(from_b, "C2-001");
    for pc in [a, b, a] {
        sync::sync_once(&db(pc)).unwrap();
    }
    let numbers: Vec<String> = db(a)
        .read(|c| {
            let mut st = c.prepare("SELECT number FROM queue_tickets ORDER BY number")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(numbers, ["C1-001", "C2-001"]);
}

/// Two PCs take from one batch while apart: each wrote the balance it saw, so after sync the
/// batch's on-hand is its ledger's sum again on every PC. When together they took more than
/// there was, on-hand stays at 0 and the shortfall is a finding for the pharmacist.
#[test]
fn stock_taken_on_two_pcs_while_apart_balances_and_a_shortfall_is_reported() {
    use crate::pharmacy::{receive, stock_item};
    use clinic_core::pharmacy::ledger::{self, MoveKind};
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "Dispensary");
    // The pharmacist, set up on A; the same account signs in on B.
    let (pw0, pw) = ("first-Pharm-pass1", "steady-Pharm-pass2");
    a.staff_create(new_staff(
        "phil",
        vec![clinic_core::perm::Role::Pharmacist],
        pw0,
    ))
    .unwrap();
    let phil_a = a_clinic.core();
    login_any(&a_clinic, &phil_a, "phil", pw0);
    phil_a.change_password(pw0.into(), pw.into()).unwrap();
    let item = stock_item(&phil_a, "Amoxicillin");
    let batch = receive(&phil_a, &item.id, "LOT-1", clinic_date(&a_clinic, 400), 10);
    let pc_b = join_new_pc(&server, &a_clinic, &a, "Ward");
    let b = &Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    b.login("phil".into(), pw.into()).unwrap();
    let a = phil_a;
    let on_hand = |core: &Core| {
        core.stock_batches(item.id.clone(), true)
            .unwrap()
            .into_iter()
            .find(|x| x.id == batch)
            .unwrap()
            .on_hand
    };
    assert_eq!(on_hand(b), 10);

    a.stock_move(
        batch.clone(),
        MoveKind::Destroyed,
        -3,
        "broken vials".into(),
    )
    .unwrap();
    b.stock_move(
        batch.clone(),
        MoveKind::Destroyed,
        -4,
        "dropped tray".into(),
    )
    .unwrap();
    for pc in [&a, b, &a, b, &a, b] {
        sync::sync_once(&db(pc)).unwrap();
    }
    for pc in [&a, b] {
        assert_eq!(on_hand(pc), 3);
        assert!(db(pc).read(ledger::out_of_balance).unwrap().is_empty());
    }
    assert_same_everywhere(&[&db(&a), &db(b)]);

    // Together they take 4 of the 3 left.
    a.stock_move(
        batch.clone(),
        MoveKind::Destroyed,
        -2,
        "expired early".into(),
    )
    .unwrap();
    b.stock_move(
        batch.clone(),
        MoveKind::Destroyed,
        -2,
        "contaminated".into(),
    )
    .unwrap();
    for pc in [&a, b, &a, b, &a, b] {
        sync::sync_once(&db(pc)).unwrap();
    }
    for pc in [&a, b] {
        assert_eq!(on_hand(pc), 0);
        assert_eq!(
            db(pc).read(ledger::out_of_balance).unwrap(),
            std::slice::from_ref(&batch)
        );
        assert_eq!(
            count(
                &db(pc),
                "SELECT count(*) FROM sync_conflicts WHERE kind = 'stock_short' AND detail = '-1'"
            ),
            1
        );
    }
    assert_same_everywhere(&[&db(&a), &db(b)]);
}

/// One prescription dispensed on two PCs while apart: both dispensings stay, its fill status
/// is settled from both, and what was given beyond the prescription is reported on each PC.
#[test]
fn a_prescription_filled_on_two_pcs_while_apart_is_settled_and_the_excess_reported() {
    use clinic_core::pharmacy::dispense::{DispenseInput, DispenseLine, FillStatus};
    let server = TestServer::start();
    let r = crate::clinical::room();
    let phil_a = crate::clinical::signed_in(&r, "phil");
    let item = crate::pharmacy::stock_item(&phil_a, "Amoxicillin");
    crate::pharmacy::receive(&phil_a, &item.id, "LOT-1", clinic_date(&r.c, 400), 100);
    let rx = crate::pharmacy::signed_rx(&r, "Ann", "Apart", &[("Amoxicillin", 10, 5)]);
    join_first_pc(&server, &db(&r.admin), "Dispensary");
    let pc_b = join_new_pc(&server, &r.c, &r.admin, "Ward");
    let phil_b = Core::with_clock(pc_b.dir.path(), pc_b.clock.clock());
    phil_b
        .login("phil".into(), "Second-pass-22".into())
        .unwrap();
    let give = |core: &Core, quantity| {
        core.dispense(DispenseInput {
            prescription_id: rx.id.clone(),
            lines: vec![DispenseLine {
                prescription_item_id: rx.items[0].id.clone(),
                quantity,
                ..Default::default()
            }],
        })
        .unwrap()
        .status
    };
    assert_eq!(give(&phil_a, 6), FillStatus::Partial);
    assert_eq!(give(&phil_b, 7), FillStatus::Partial);
    sync_until_still(&[&phil_a, &phil_b]);
    for pc in [&phil_a, &phil_b] {
        // 13 given of 10: filled (off the queue), and 3 too many reported.
        assert!(pc
            .dispense_queue()
            .unwrap()
            .iter()
            .all(|q| q.prescription_id != rx.id));
        assert_eq!(count(&db(pc), "SELECT count(*) FROM dispensings"), 2);
        assert_eq!(
            count(
                &db(pc),
                "SELECT count(*) FROM prescription_fills WHERE status = 'done'"
            ),
            1
        );
        assert_eq!(
            count(
                &db(pc),
                "SELECT count(*) FROM sync_conflicts WHERE kind = 'over_dispensed' AND detail = '3'"
            ),
            1
        );
    }
    assert_same_everywhere(&[&db(&phil_a), &db(&phil_b)]);
}

/// A server that tampers with what it holds (moves a sealed version to another record, or
/// replays an old one as newer, or makes one up) gets nothing applied: the seal opens only for
/// its record and version, under the clinic's key. The change is kept as a refused conflict.
#[test]
fn a_server_that_forges_moves_or_replays_a_change_gets_nothing_applied() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    join_first_pc(&server, &db(&a), "A");
    let kim = registered(
        a.patient_register(patient("Kim", "Original", "1960-06-06"), false)
            .unwrap(),
    );
    let lee = registered(
        a.patient_register(patient("Lee", "Other", "1961-06-06"), false)
            .unwrap(),
    );
    let pc_b = join_new_pc(&server, &a_clinic, &a, "B");
    let b = &pc_b.core;
    a.patient_update(lee.id.clone(), patient("Lee", "Changed", "1961-06-06"))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();

    // The server puts Lee's new sealed version under Kim's record, with a newer stamp.
    let server_db = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let n = server_db
        .execute(
            "UPDATE changes SET entity_id = ?1, hlc = '9999999999999-00000'
             WHERE server_seq = (SELECT max(server_seq) FROM changes WHERE entity = 'patients')",
            [&kim.id],
        )
        .unwrap();
    assert_eq!(n, 1);
    sync::sync_once(&db(b)).unwrap();
    assert_eq!(
        b.patient_get(kim.id.clone()).unwrap().family_name,
        "Original",
        "a moved version was applied"
    );
    assert_eq!(
        count(&db(b), "SELECT count(*) FROM sync_conflicts WHERE kind = 'refused' AND detail LIKE '%does not open%'"),
        1
    );
    assert_eq!(
        count(
            &db(b),
            "SELECT count(*) FROM sync_inbox WHERE outcome = 'unreadable'"
        ),
        1
    );

    // The server credits A's next change to B: it opens for A only, so C refuses it.
    a_clinic.clock.advance(Duration::seconds(30));
    let pc_c = join_new_pc(&server, &a_clinic, &a, "C");
    a.patient_update(lee.id.clone(), patient("Lee", "Again", "1961-06-06"))
        .unwrap();
    sync::sync_once(&db(&a)).unwrap();
    let b_device = db(b)
        .read(|c| Ok(sync::link(c)?.unwrap().device_id))
        .unwrap();
    let n = server_db
        .execute(
            "UPDATE changes SET device_id = ?1
             WHERE server_seq = (SELECT max(server_seq) FROM changes WHERE entity = 'patients')",
            [&b_device],
        )
        .unwrap();
    assert_eq!(n, 1);
    sync::sync_once(&db(&pc_c.core)).unwrap();
    assert_eq!(
        pc_c.core.patient_get(lee.id.clone()).unwrap().family_name,
        "Changed",
        "a change credited to another PC was applied"
    );
    assert_eq!(
        count(
            &db(&pc_c.core),
            "SELECT count(*) FROM sync_inbox WHERE outcome = 'unreadable'"
        ),
        1
    );
}

/// A download cut off half way resumes where it stopped: nothing missing, nothing twice.
#[test]
fn a_cut_off_download_resumes_where_it_stopped() {
    let server = TestServer::start();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let actor = clinic_core::store::Actor {
        id: "gen".into(),
        name: "Generated".into(),
    };
    clinic_core::dev::generate::patients(&db(&a), &actor, 12_000, 5, |_| {}).unwrap();
    join_first_pc(&server, &db(&a), "A");
    let code = join::invite(&db(&a), a_clinic.dir.path(), 60).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = std::cell::Cell::new(0);
    // The PC is switched off after its second page.
    let (pc, link) = join::join_new(
        dir.path(),
        a_clinic.clock.clock(),
        &server.url,
        &server.cert,
        &code,
        "B",
        &|_, _| {
            pages.set(pages.get() + 1);
            pages.get() < 2
        },
    )
    .unwrap();
    assert!(!link.ready);
    let partial = count(&pc, "SELECT count(*) FROM patients");
    assert!(partial < 12_000, "{partial}");
    drop(pc);
    // Started again: the next sign-in opens it, and the download goes on from its cursor.
    let b = Core::with_clock(dir.path(), a_clinic.clock.clock());
    match b.login(ADMIN.into(), ADMIN_PW.into()).unwrap() {
        clinic_core::session::LoginStep::Totp => {}
        other => panic!("{other:?}"),
    }
    b.login_totp(code_at(&a_clinic)).unwrap();
    let again = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seen = again.clone();
    let link = apply::download(&db(&b), &move |done, _| {
        seen.store(done, std::sync::atomic::Ordering::SeqCst);
        true
    })
    .unwrap();
    assert!(link.ready);
    assert_eq!(count(&db(&b), "SELECT count(*) FROM patients"), 12_000);
    assert!(again.load(std::sync::atomic::Ordering::SeqCst) >= 12_000);
    sync::sync_once(&db(&b)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    assert_same_everywhere(&[&db(&a), &db(&b)]);
}

fn code_at(c: &Clinic) -> String {
    clinic_core::session::auth::totp_code(&c.admin_totp, c.clock.now().timestamp() as u64).unwrap()
}
