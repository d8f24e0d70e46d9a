//! Sync under faults: the real server binary, killed and restarted mid-push and mid-pull; a
//! TCP proxy (loopback only) that stalls or cuts the connection mid-way; a PC that was
//! offline for a week with 10,000 changes. After each, nothing is lost or doubled: every PC
//! and the server hold the same data.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use clinic_core::sync::{self, apply};
use clinic_core::Core;

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

/// A loopback TCP proxy in front of the server. TLS goes through it untouched; it can stall
/// a connection after so many bytes in either direction (the test then kills the server),
/// or cut it there.
pub struct Proxy {
    pub port: u16,
    /// Bytes client→server a connection may send before it stalls (-1: never).
    pub stall_up_after: Arc<AtomicI64>,
    /// Bytes server→client a connection may receive before it stalls (-1: never).
    pub stall_down_after: Arc<AtomicI64>,
    /// Cut instead of stall.
    pub cut: Arc<AtomicBool>,
    /// Cuts the answer to a request once the connection has sent more than this many bytes
    /// up (the request reached the server whole; its answer never arrives). -1: never.
    pub cut_answer_after_up: Arc<AtomicI64>,
    /// Set once a connection stalled or was cut.
    pub tripped: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Proxy {
            port: listener.local_addr().unwrap().port(),
            stall_up_after: Arc::new(AtomicI64::new(-1)),
            stall_down_after: Arc::new(AtomicI64::new(-1)),
            cut: Arc::new(AtomicBool::new(false)),
            cut_answer_after_up: Arc::new(AtomicI64::new(-1)),
            tripped: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (up, down, cut, tripped, stop, answer) = (
            p.stall_up_after.clone(),
            p.stall_down_after.clone(),
            p.cut.clone(),
            p.tripped.clone(),
            p.stop.clone(),
            p.cut_answer_after_up.clone(),
        );
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        // Bytes this connection has sent up, for cutting its answers.
                        let uploaded = Arc::new(AtomicI64::new(0));
                        let conn = Conn {
                            cut: cut.clone(),
                            tripped: tripped.clone(),
                            uploaded: uploaded.clone(),
                            answer_after_up: answer.clone(),
                        };
                        let c2 = conn.clone();
                        let (c_in, s_in) =
                            (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let lim_up = up.clone();
                        std::thread::spawn(move || pump(c_in, server, lim_up, conn, true));
                        let lim_down = down.clone();
                        std::thread::spawn(move || pump(s_in, client, lim_down, c2, false));
                    }
                    Err(_) => std::thread::sleep(StdDuration::from_millis(5)),
                }
            }
        });
        p
    }

    pub fn calm(&self) {
        self.stall_up_after.store(-1, Ordering::SeqCst);
        self.stall_down_after.store(-1, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
        self.cut_answer_after_up.store(-1, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
    }

    pub fn wait_tripped(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(60);
        while !self.tripped.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the proxy never tripped");
            std::thread::sleep(StdDuration::from_millis(5));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Conn {
    cut: Arc<AtomicBool>,
    tripped: Arc<AtomicBool>,
    uploaded: Arc<AtomicI64>,
    answer_after_up: Arc<AtomicI64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, limit: Arc<AtomicI64>, conn: Conn, upward: bool) {
    let mut sent: i64 = 0;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let answer_after = conn.answer_after_up.load(Ordering::SeqCst);
        if !upward && answer_after >= 0 && conn.uploaded.load(Ordering::SeqCst) > answer_after {
            // The request went up whole; whatever the server sends now (its answer) is
            // dropped, then the connection is cut.
            conn.tripped.store(true, Ordering::SeqCst);
            let _ = from.set_read_timeout(Some(StdDuration::from_secs(2)));
            let mut sink = [0u8; 8192];
            while matches!(from.read(&mut sink), Ok(k) if k > 0) {}
            break;
        }
        let lim = limit.load(Ordering::SeqCst);
        let allowed = if lim >= 0 {
            (lim - sent).clamp(0, n as i64) as usize
        } else {
            n
        };
        if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed as i64;
        if upward {
            conn.uploaded.fetch_add(allowed as i64, Ordering::SeqCst);
        }
        if allowed < n {
            conn.tripped.store(true, Ordering::SeqCst);
            if conn.cut.load(Ordering::SeqCst) {
                break;
            }
            // Stalled: hold the connection until the other side goes away.
            let mut sink = [0u8; 8192];
            while matches!(from.read(&mut sink), Ok(k) if k > 0) {}
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
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
    let server = ServerProcess::start();
    let url = format!("https://localhost:{}", server.port);
    let cert = server.cert();
    let a_clinic = new_clinic();
    let a = admin_core(&a_clinic);
    apply::join(&db(&a), &url, &cert, &server.first_code, "A", &|_, _| true).unwrap();
    let b = join_new_pc_at(&url, &cert, &a_clinic, &a, "B");
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
