//! Sync under faults: the real server binary, killed and restarted mid-push and mid-pull; a
//! TCP proxy (loopback only) that stalls or cuts the connection mid-way; a PC that was
//! offline for a week with 10,000 changes. After each, nothing is lost or doubled: every PC
//! and the server hold the same data.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use clinic_core::sync::{self, apply};
use clinic_core::Core;

pub use crate::proxy::Proxy;
use crate::reception::{patient, registered};
use crate::support::*;
use crate::sync::{assert_same_everywhere, join_new_pc_at};

fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLINICDESK_SERVER_BIN") {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug/clinicdesk-server");
    if !bin.exists() {
        let ok = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "clinic-server",
                "--bin",
                "clinicdesk-server",
            ])
            .current_dir(&root)
            .status()
            .unwrap()
            .success();
        assert!(ok, "building clinicdesk-server failed");
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary on a loopback port, its data in a temp folder.
pub struct ServerProcess {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub first_code: String,
}

impl ServerProcess {
    pub fn start() -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ServerProcess {
            child: None,
            dir,
            port: free_port(),
            first_code: String::new(),
        };
        let lines = s.spawn();
        s.first_code = lines
            .iter()
            .find_map(|l| {
                l.split("join code for its first PC (valid 7 days): ")
                    .nth(1)
            })
            .expect("the first start prints a join code")
            .trim()
            .to_string();
        s
    }

    pub fn cert(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.crt")).unwrap()
    }

    /// Starts the process and waits for "listening on"; returns what it printed.
    fn spawn(&mut self) -> Vec<String> {
        let mut child = Command::new(server_bin())
            .args(["serve", "--data"])
            .arg(self.dir.path())
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--rate", "100000", "--burst", "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = vec![];
        let deadline = Instant::now() + StdDuration::from_secs(60);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server did not start in time");
            let done = line.starts_with("listening on");
            lines.push(line);
            if done {
                break;
            }
        }
        self.child = Some(child);
        lines
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn db(core: &Core) -> std::sync::Arc<clinic_core::store::Db> {
    core.dev_db().unwrap()
}

fn register_many(core: &Core, n: usize, tag: &str) {
    for i in 0..n {
        registered(
            core.patient_register(patient(&format!("{tag}{i}"), "Faulty", "1985-03-03"), true)
                .unwrap(),
        );
    }
}

fn count(core: &Core, sql: &str) -> i64 {
    db(core)
        .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

/// Runs one sync round on a thread (it may block on a stalled proxy).
fn sync_in_background(core: &Core) -> std::thread::JoinHandle<clinic_core::Result<sync::Report>> {
    let db = db(core);
    std::thread::spawn(move || sync::sync_once(&db))
}

#[test]
fn a_server_killed_mid_push_and_mid_pull_loses_and_doubles_nothing() {
    let mut server = ServerProcess::start();
    let proxy = Proxy::start(server.port);
    let url = format!("https://localhost:{}", proxy.port);
    let cert = server.cert();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let mut s = a.settings_get().unwrap();
    s.security.idle_lock_minutes = 240;
    a.settings_update(s).unwrap();
    register_many(&a, 1500, "A");
    apply::join(&db(&a), &url, &cert, &server.first_code, "A", &|_, _| true).unwrap();

    // Killed while a push is on the wire: the server has part of the request body.
    proxy.stall_up_after.store(40_000, Ordering::SeqCst);
    let round = sync_in_background(&a);
    proxy.wait_tripped();
    server.kill();
    assert!(
        round.join().unwrap().is_err(),
        "a push through a killed server succeeded"
    );
    proxy.calm();
    server.restart();
    let r = sync::sync_once(&db(&a)).unwrap();
    assert!(r.pushed > 1500, "{r:?}");
    assert_eq!(db(&a).read(sync::waiting).unwrap(), 0);

    // A second PC; then killed while a pull's answer is on the wire.
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
    register_many(&a, 800, "A2-");
    sync::sync_once(&db(&a)).unwrap();
    proxy.stall_down_after.store(60_000, Ordering::SeqCst);
    let round = sync_in_background(&b.core);
    proxy.wait_tripped();
    server.kill();
    assert!(
        round.join().unwrap().is_err(),
        "a pull through a killed server succeeded"
    );
    proxy.calm();
    server.restart();
    sync::sync_once(&db(&b.core)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    let patients = "SELECT count(*) FROM patients";
    assert_eq!(count(&a, patients), 2300);
    assert_eq!(
        count(&b.core, patients),
        2300,
        "a patient was lost or doubled on B"
    );
    assert_same_everywhere(&[&db(&a), &db(&b.core)]);
}

#[test]
fn a_connection_cut_mid_answer_is_retried_without_doubling() {
    let server = ServerProcess::start();
    let proxy = Proxy::start(server.port);
    let url = format!("https://localhost:{}", proxy.port);
    let cert = server.cert();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    apply::join(&db(&a), &url, &cert, &server.first_code, "A", &|_, _| true).unwrap();
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
    register_many(&a, 300, "Cut");

    // The push is stored, but its answer is cut: the retry finds it all there.
    proxy.cut_answer_after_up.store(50_000, Ordering::SeqCst);
    assert!(sync::sync_once(&db(&a)).is_err());
    assert!(proxy.tripped.load(Ordering::SeqCst));
    proxy.calm();
    let retry = sync::sync_once(&db(&a)).unwrap();
    assert_eq!(db(&a).read(sync::waiting).unwrap(), 0);
    assert!(
        retry.pushed < 300,
        "the retry stored everything again: {retry:?}"
    );

    // A pull whose answer is cut applies nothing twice.
    proxy.cut.store(true, Ordering::SeqCst);
    proxy.stall_down_after.store(20_000, Ordering::SeqCst);
    assert!(sync::sync_once(&db(&b.core)).is_err());
    proxy.calm();
    sync::sync_once(&db(&b.core)).unwrap();
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(count(&b.core, "SELECT count(*) FROM patients"), 300);
    assert_same_everywhere(&[&db(&a), &db(&b.core)]);
}

#[test]
fn a_pc_offline_for_a_week_with_10000_changes_catches_up() {
    // The server in this process, its clock following B's: the week passes for it too (a
    // server process would run on the machine's clock, and refuse stamps a week ahead of it).
    let server = crate::sync::TestServer::start();
    let (url, cert) = (server.url.clone(), server.cert.clone());
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    apply::join(&db(&a), &url, &cert, &server.first_code, "A", &|_, _| true).unwrap();
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
    server.follow(&b.clock);
    let mut s = b.core.settings_get().unwrap();
    s.security.idle_lock_minutes = 240;
    b.core.settings_update(s).unwrap();
    // B is offline for a week: a registration a minute, 10,000 changes in all.
    for day in 0..7 {
        for i in 0..1430 {
            b.clock.advance(Duration::seconds(60));
            if i % 200 == 0 {
                b.core.session_touch().unwrap();
            }
            registered(
                b.core
                    .patient_register(
                        patient(&format!("W{day}x{i}"), "Offline", "1999-09-09"),
                        true,
                    )
                    .unwrap(),
            );
        }
    }
    let waiting = db(&b.core).read(sync::waiting).unwrap();
    assert!(waiting >= 10_000, "{waiting}");
    let r = sync::sync_once(&db(&b.core)).unwrap();
    assert_eq!(r.pushed as i64, waiting);
    // The week passed for A too (a PC takes no stamp more than three days ahead of its clock).
    a_clinic.clock.advance(Duration::days(7));
    sync::sync_once(&db(&a)).unwrap();
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM patients WHERE family_name = 'Offline'"
        ),
        10_010
    );
    assert_same_everywhere(&[&db(&a), &db(&b.core)]);
}

/// 200 MiB of scans made offline on a PC behind a slow line (a loopback proxy that carries
/// bytes no faster than 40 MiB/s) reach the server a few MiB a round, and what the PC writes
/// after them is not held back: it reaches the other PC while the files are still going up.
/// Then the other PC fetches every file, whole.
#[test]
fn two_hundred_mib_of_files_on_a_slow_line_hold_back_no_change() {
    use crate::sync_bounds::{attach, pdf_bytes, with_dana};
    let server = ServerProcess::start();
    let url = format!("https://localhost:{}", server.port);
    let cert = server.cert();
    let proxy = Proxy::start(server.port);
    proxy.rate.store(40 << 20, Ordering::SeqCst);
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    let dana = with_dana(&a_clinic, &a);
    // Made offline, before this PC was ever connected.
    let mut made = vec![];
    for i in 0..10 {
        let bytes = pdf_bytes(clinic_core::clinical::records::MAX_ATTACHMENT, 100 + i);
        made.push(clinic_core::store::blobs::sha256_hex(&bytes));
        attach(
            &dana,
            &a,
            &bytes,
            &format!("scan{i}"),
            clinic_date(&a_clinic, 0),
        );
    }
    let slow = format!("https://localhost:{}", proxy.port);
    apply::join(&db(&a), &slow, &cert, &server.first_code, "A", &|_, _| true).unwrap();
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
    let after = registered(
        a.patient_register(patient("Made", "After", "1990-01-01"), false)
            .unwrap(),
    );
    let (da, db_b) = (db(&a), db(&b.core));
    let files_left =
        |d: &clinic_core::store::Db| d.read(sync::status::status).unwrap().files_to_upload;
    assert_eq!(files_left(&da), 10);
    // A's rounds run on their own, as the background does.
    let uploader = {
        let da = da.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + StdDuration::from_secs(180);
            let mut rounds = 0;
            while da.read(sync::status::status).unwrap().files_to_upload > 0 {
                assert!(Instant::now() < until, "the files never went up");
                let r = sync::sync_once(&da).unwrap();
                assert!(r.files_error.is_none(), "{r:?}");
                rounds += 1;
            }
            rounds
        })
    };
    let until = Instant::now() + StdDuration::from_secs(60);
    loop {
        sync::sync_once(&db_b).unwrap();
        if b.core.patient_get(after.id.clone()).is_ok() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the change made after the files never arrived"
        );
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let still_uploading = files_left(&da);
    assert!(
        still_uploading > 0,
        "the files were all up before the later change arrived: nothing shown"
    );
    let rounds = uploader.join().unwrap();
    assert!(rounds >= 10, "200 MiB went up in {rounds} rounds");
    // B fetches every file (straight from the server), whole and as made.
    let until = Instant::now() + StdDuration::from_secs(120);
    while db_b.read(sync::status::status).unwrap().files_to_fetch > 0 {
        assert!(Instant::now() < until, "B never had all the files");
        let r = sync::sync_once(&db_b).unwrap();
        assert!(r.files_error.is_none(), "{r:?}");
    }
    let mut held: Vec<String> = db_b
        .read(|c| {
            Ok(c.prepare("SELECT sha256 FROM blobs")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    held.sort();
    made.sort();
    assert_eq!(held, made);
}

/// A real PC syncs while strangers hold a thousand connections to the server (opened from
/// twenty loopback addresses, never starting TLS, opened again as the server closes them): the
/// caps and deadlines keep room for it.
#[test]
fn a_pc_syncs_while_strangers_hold_a_thousand_connections() {
    let server = ServerProcess::start();
    let url = format!("https://localhost:{}", server.port);
    let cert = server.cert();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    apply::join(&db(&a), &url, &cert, &server.first_code, "A", &|_, _| true).unwrap();
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicI64::new(0));
    let port = server.port;
    let holders: Vec<_> = (1..=20u8)
        .map(|k| {
            let (stop, held) = (stop.clone(), held.clone());
            std::thread::spawn(move || {
                let from = std::net::SocketAddr::from(([127, 0, 1, k], 0));
                let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let mut open: Vec<TcpStream> = vec![];
                while !stop.load(Ordering::SeqCst) {
                    // Keep 50 open from this address; drop the ones the server closed.
                    open.retain(|s| {
                        let mut b = [0u8; 1];
                        match s.peek(&mut b) {
                            Ok(0) => false, // the server closed it
                            Ok(_) => true,
                            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                        }
                    });
                    while open.len() < 50 {
                        let sock = socket2::Socket::new(
                            socket2::Domain::IPV4,
                            socket2::Type::STREAM,
                            None,
                        )
                        .unwrap();
                        sock.bind(&from.into()).unwrap();
                        if sock.connect(&to.into()).is_err() {
                            break;
                        }
                        let s: TcpStream = sock.into();
                        s.set_nonblocking(true).unwrap();
                        open.push(s);
                        held.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(StdDuration::from_millis(200));
                }
            })
        })
        .collect();
    // Wait until the thousand are open.
    let until = Instant::now() + StdDuration::from_secs(30);
    while held.load(Ordering::SeqCst) < 1000 {
        assert!(
            Instant::now() < until,
            "could not open the strangers' connections"
        );
        std::thread::sleep(StdDuration::from_millis(50));
    }
    for i in 0..10 {
        let p = registered(
            a.patient_register(patient(&format!("Busy{i}"), "Server", "1980-01-01"), false)
                .unwrap(),
        );
        sync::sync_once(&db(&a)).expect("the PC's round failed while strangers held connections");
        sync::sync_once(&db(&b.core)).unwrap();
        assert!(b.core.patient_get(p.id).is_ok());
    }
    stop.store(true, Ordering::SeqCst);
    for h in holders {
        h.join().unwrap();
    }
}
