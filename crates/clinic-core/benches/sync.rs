//! Sync figures (BENCHMARKS.md), against the real server (SQLite backend) in this process on
//! loopback HTTPS, with real SQLCipher files:
//! - steady state: a patient registered on one PC, seen on another, both running the app's
//!   background round (every 500 ms);
//! - 1,000 changes pushed by one PC and pulled and applied by another;
//! - a new PC joining a clinic of N patients (default 1,000,000; `CLINICDESK_BENCH_SYNC_PATIENTS`):
//!   the whole download, apply and search index, in a child process whose peak memory is
//!   reported;
//! - a PC that worked without sync (`CLINICDESK_BENCH_SYNC_HISTORY` patients, default 100,000)
//!   connecting: stamping its history and its first push;
//! - a 20 MiB file made on one PC, readable on another: on loopback, and with both PCs behind a
//!   line limited to 10 Mbit/s each way (a loopback proxy);
//! - a PC's sync round while strangers hold 1,000 idle connections to the server, against none.
//!
//! `cargo bench -p clinic-core --features dev-data --bench sync` prints one JSON document.

mod common;
#[path = "../tests/it/proxy.rs"]
mod proxy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic_core::dev::{demo, generate};
use clinic_core::session::LoginStep;
use clinic_core::store::{Actor, Db};
use clinic_core::sync::{self, apply, join};
use clinic_core::Core;
use common::Stats;

struct Server {
    url: String,
    port: u16,
    cert: String,
    first_code: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start_server() -> Server {
    use clinic_server::{
        bootstrap_clinic, limit::RateLimiter, store::sqlite::SqliteStore, tls, AppState,
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path = dir.path().join("server.db");
    let (url, cert, code) = rt.block_on(async move {
        let store = SqliteStore::open(&path).unwrap();
        let (_, code) = bootstrap_clinic(&store, "Bench", chrono::Utc::now())
            .await
            .unwrap();
        let (cert, key) = tls::self_signed(&["localhost".into()]).unwrap();
        let state = Arc::new(AppState::new(
            store,
            RateLimiter::new(100_000.0, 100_000),
            Arc::new(chrono::Utc::now),
        ));
        let (addr, _h, _t) = clinic_server::serve(
            state,
            "127.0.0.1:0".parse().unwrap(),
            tls::server_config(&cert, &key).unwrap(),
        )
        .await
        .unwrap();
        (format!("https://localhost:{}", addr.port()), cert, code)
    });
    Server {
        port: url.rsplit(':').next().unwrap().parse().unwrap(),
        url,
        cert,
        first_code: code,
        _rt: rt,
        _dir: dir,
    }
}

fn admin(dir: &std::path::Path) -> Core {
    let core = Core::new(dir);
    let LoginStep::Done { .. } = core
        .login("admin".into(), "clinic-admin-demo".into())
        .unwrap()
    else {
        panic!("demo accounts have no second factor");
    };
    core
}

/// A demo clinic of 200 patients in `dir`, for a PC to start from.
fn small_clinic(dir: &std::path::Path) {
    demo::create_sized(
        dir,
        demo::Size {
            doctors: 2,
            patients: 200,
            days: 1,
            max_appointments: 0,
        },
        |_| {},
    )
    .unwrap();
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0)
}

/// The child process: joins a new PC and reports time and peak memory.
fn join_child(url: &str, cert_path: &str, code: &str, dir: &str) {
    let cert = std::fs::read_to_string(cert_path).unwrap();
    let t = Instant::now();
    let (db, link) = join::join_new(
        std::path::Path::new(dir),
        clinic_core::ids::system_clock(),
        url,
        &cert,
        code,
        "Bench PC",
        &|done, total| {
            if done % 100_000 < 5000 {
                eprintln!("downloaded {done} of {total}");
            }
            true
        },
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let patients: i64 = db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM patients", [], |r| r.get(0))?))
        .unwrap();
    let indexed: i64 = db
        .read(|c| Ok(c.query_row("SELECT count(*) FROM patients_fts", [], |r| r.get(0))?))
        .unwrap();
    assert!(link.ready);
    let profile = apply::DOWNLOAD_PROFILE.lock().clone();
    println!(
        "{}",
        serde_json::json!({ "seconds": (secs * 10.0).round() / 10.0, "patients": patients, "search_index_rows": indexed, "peak_rss_mib": peak_rss_mib(), "rows": link.snapshot_done, "profile": profile })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("join-child") {
        join_child(&args[2], &args[3], &args[4], &args[5]);
        return;
    }
    let n_big: u64 = std::env::var("CLINICDESK_BENCH_SYNC_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let server = start_server();
    let actor = Actor {
        id: "bench".into(),
        name: "Generated".into(),
    };

    let a_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    small_clinic(a_dir.path());
    let a = admin(a_dir.path());
    let db_a: Arc<Db> = a.dev_db().unwrap();
    apply::join(
        &db_a,
        &server.url,
        &server.cert,
        &server.first_code,
        "A",
        &|_, _| true,
    )
    .unwrap();
    sync::sync_once(&db_a).unwrap();
    let b_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let code = join::invite(&db_a, a_dir.path(), 60).unwrap();
    join::join_new(
        b_dir.path(),
        clinic_core::ids::system_clock(),
        &server.url,
        &server.cert,
        &code,
        "B",
        &|_, _| true,
    )
    .unwrap();
    let b = admin(b_dir.path());
    let db_b: Arc<Db> = b.dev_db().unwrap();

    // `CLINICDESK_BENCH_SYNC_ONLY=join`: the join alone (for profiling it).
    let only_join = std::env::var("CLINICDESK_BENCH_SYNC_ONLY").as_deref() == Ok("join");

    // 1,000 changes: A pushes them, B pulls and applies them.
    let mut seed = 1;
    // Made before the clock starts: only moving them is measured.
    let mut moved = vec![];
    for _ in 0..if only_join { 1 } else { 5 } {
        seed += 1;
        generate::patients(&db_a, &actor, 1000, seed, |_| {}).unwrap();
        let t = Instant::now();
        sync::sync_once(&db_a).unwrap();
        let r = sync::sync_once(&db_b).unwrap();
        moved.push(t.elapsed());
        assert!(r.applied >= 1000, "{r:?}");
    }
    moved.sort();
    let thousand = Stats {
        name: "push_and_pull_1000_changes".into(),
        samples: moved,
    };

    // Steady state: both PCs run the app's background round; a change on A shows on B.
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = vec![];
    for db in [db_a.clone(), db_b.clone()] {
        let stop = stop.clone();
        loops.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = sync::sync_once(&db);
                std::thread::sleep(Duration::from_millis(500));
            }
        }));
    }
    let mut rng = 7u64;
    let samples = if only_join { 1 } else { 30 };
    let visible = Stats::measure(
        "change_visible_on_another_pc",
        2.min(samples),
        samples,
        |_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_millis(rng % 500));
            let ids = generate::patients(&db_a, &actor, 1, rng, |_| {}).unwrap();
            let id = ids[0].clone();
            loop {
                let there: bool = db_b
                    .read(|c| {
                        Ok(c.prepare_cached("SELECT 1 FROM patients WHERE id = ?1")?
                            .exists([&id])?)
                    })
                    .unwrap();
                if there {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        },
    );
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.join().unwrap();
    }

    // Files: a 20 MiB scan made on A, readable on B. Rounds back to back, as the background
    // runs them while a round reports more waiting.
    let (file_loopback, file_slow, idle_none, idle_held) = if only_join {
        let none = || Stats {
            name: "skipped".into(),
            samples: vec![Duration::ZERO],
        };
        (0.0, 0.0, none(), none())
    } else {
        let file_loopback = file_travel(&db_a, &db_b, 1);
        let proxy = proxy::Proxy::start(server.port);
        proxy.rate.store(10_000_000 / 8, Ordering::SeqCst);
        let slow_url = format!("https://localhost:{}", proxy.port);
        let (url_a, url_b) = (link_url(&db_a), link_url(&db_b));
        relink(&db_a, &slow_url);
        relink(&db_b, &slow_url);
        let file_slow = file_travel(&db_a, &db_b, 2);
        relink(&db_a, &url_a);
        relink(&db_b, &url_b);
        drop(proxy);

        // A's round (a change each) with strangers holding 1,000 idle connections, and without.
        let idle_none = rounds(&db_a, &db_b, &actor, "sync_round_no_idle_connections");
        let holders = hold_connections(server.port, 1000);
        let idle_held = rounds(&db_a, &db_b, &actor, "sync_round_1000_idle_connections");
        holders.stop();
        (file_loopback, file_slow, idle_none, idle_held)
    };

    // A clinic of n_big patients, and a new PC joining it in a process of its own.
    let t = Instant::now();
    generate::patients(&db_a, &actor, n_big, 99, |done| {
        if done % 100_000 == 0 {
            eprintln!("generated {done} patients");
        }
    })
    .unwrap();
    let generated_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    sync::sync_once(&db_a).unwrap();
    let pushed_s = t.elapsed().as_secs_f64();
    let code = join::invite(&db_a, a_dir.path(), 60).unwrap();
    let c_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cert_path = c_dir.path().join("server.crt");
    std::fs::write(&cert_path, &server.cert).unwrap();
    let pc_dir = c_dir.path().join("pc");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "join-child",
            &server.url,
            cert_path.to_str().unwrap(),
            &code,
            pc_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let joined: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // A clinic that worked without sync (n_history patients) connects
    // its PC to a new server: stamping its history (`PresyncClock`) and the first push.
    let n_history: u64 = std::env::var("CLINICDESK_BENCH_SYNC_HISTORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let other = start_server();
    let h_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    small_clinic(h_dir.path());
    let db_h: Arc<Db> = admin(h_dir.path()).dev_db().unwrap();
    for seed in [5, 6] {
        generate::patients(&db_h, &actor, n_history / 2, seed, |_| {}).unwrap();
    }
    let entries: i64 = db_h
        .read(|c| Ok(c.query_row("SELECT count(*) FROM change_log", [], |r| r.get(0))?))
        .unwrap();
    let t = Instant::now();
    apply::join(
        &db_h,
        &other.url,
        &other.cert,
        &other.first_code,
        "History",
        &|_, _| true,
    )
    .unwrap();
    let history_join_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    sync::sync_once(&db_h).unwrap();
    let history_push_s = t.elapsed().as_secs_f64();

    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "sync": [thousand.json(), visible.json(), idle_none.json(), idle_held.json()],
            "file_20_mib": { "loopback_s": file_loopback, "at_10_mbit_s": file_slow },
            "join": {
                "clinic_patients": n_big,
                "generated_s": (generated_s * 10.0).round() / 10.0,
                "first_pc_push_s": (pushed_s * 10.0).round() / 10.0,
                "new_pc": joined,
            },
            "connect_with_history": {
                "change_log_entries": entries,
                "join_s": (history_join_s * 10.0).round() / 10.0,
                "first_push_s": (history_push_s * 10.0).round() / 10.0,
            }
        }))
        .unwrap()
    );
}

fn link_url(d: &Db) -> String {
    d.read(|c| Ok(sync::link(c)?.unwrap().server_url)).unwrap()
}

fn relink(d: &Db, url: &str) {
    d.raw_writer(|c| {
        c.execute("UPDATE sync_state SET server_url = ?1", [url])?;
        Ok(())
    })
    .unwrap();
}

/// Seconds from a 20 MiB scan attached on A to its bytes held on B, both running rounds back
/// to back (`seed` makes each file new).
fn file_travel(db_a: &Arc<Db>, db_b: &Arc<Db>, seed: u64) -> f64 {
    use clinic_core::clinical::records;
    let size = records::MAX_ATTACHMENT;
    let mut bytes = b"%PDF-1.4\n".to_vec();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(size);
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    };
    let doctor = Actor {
        id: "bench-doctor".into(),
        name: "Bench doctor".into(),
    };
    let patient: String = db_a
        .read(|c| Ok(c.query_row("SELECT id FROM patients LIMIT 1", [], |r| r.get(0))?))
        .unwrap();
    let upload = records::decode("scan.pdf", &b64).unwrap();
    let sha = clinic_core::store::blobs::sha256_hex(&bytes);
    let t = Instant::now();
    db_a.write(&doctor, |w| {
        let today = w.now().date_naive();
        let rec = records::add(
            w,
            &records::RecordInput {
                patient_id: patient.clone(),
                encounter_id: None,
                kind: records::RecordKind::Imaging,
                title: format!("Scan {seed}"),
                description: String::new(),
                recorded_on: today.to_string(),
            },
            "Bench doctor",
            today,
        )?;
        records::attach(w, &rec.id, "bench-doctor", upload)
    })
    .unwrap();
    let held = |d: &Db| d.read(|c| clinic_core::store::blobs::has(c, &sha)).unwrap();
    let until = Instant::now() + Duration::from_secs(600);
    while !held(db_b) {
        assert!(Instant::now() < until, "the file never arrived");
        sync::sync_once(db_a).unwrap();
        sync::sync_once(db_b).unwrap();
    }
    (t.elapsed().as_secs_f64() * 100.0).round() / 100.0
}

/// 30 rounds of A (a new patient each), then B's, timed on A.
fn rounds(db_a: &Arc<Db>, db_b: &Arc<Db>, actor: &Actor, name: &str) -> Stats {
    let mut seed = 1000;
    Stats::measure(name, 2, 30, |_| {
        seed += 1;
        generate::patients(db_a, actor, 1, seed, |_| {}).unwrap();
        sync::sync_once(db_a).unwrap();
        sync::sync_once(db_b).unwrap();
    })
}

/// Strangers holding `n` idle connections to the server (50 from each of several loopback
/// addresses, never starting TLS, opened again as the server closes them).
struct Holders {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Holders {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn hold_connections(port: u16, n: usize) -> Holders {
    use std::net::{SocketAddr, TcpStream};
    let stop = Arc::new(AtomicBool::new(false));
    let open_now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads = (1..=n.div_ceil(50) as u8)
        .map(|k| {
            let (stop, open_now) = (stop.clone(), open_now.clone());
            std::thread::spawn(move || {
                let from = SocketAddr::from(([127, 0, 2, k], 0));
                let to = SocketAddr::from(([127, 0, 0, 1], port));
                let mut open: Vec<TcpStream> = vec![];
                while !stop.load(Ordering::SeqCst) {
                    let before = open.len();
                    open.retain(|s| {
                        let mut b = [0u8; 1];
                        match s.peek(&mut b) {
                            Ok(0) => false,
                            Ok(_) => true,
                            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                        }
                    });
                    open_now.fetch_sub(before - open.len(), Ordering::SeqCst);
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
                        open_now.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(30);
    while open_now.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < until, "could not hold {n} connections");
        std::thread::sleep(Duration::from_millis(20));
    }
    Holders { stop, threads }
}
