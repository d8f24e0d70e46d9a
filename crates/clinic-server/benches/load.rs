//! The server under load (BENCHMARKS.md): 50 PCs push at once over HTTPS on loopback, each
//! 20 batches of 100 changes, then each pulls everything the others pushed. Throughput and
//! per-request latency, on the SQLite backend and on a throwaway PostgreSQL cluster.
//!
//! `cargo bench -p clinic-server --bench load` prints one JSON document.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use clinic_server::store::postgres::PgStore;
use clinic_server::store::sqlite::SqliteStore;
use clinic_server::store::Store;
use clinic_server::{bootstrap_clinic, limit::RateLimiter};
use clinic_sync_proto::*;
use common::{start, Api, TestClock};

const PCS: usize = 50;
const BATCHES: i64 = 20;
const PER_BATCH: i64 = 100;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

async fn run<S: Store + Clone>(name: &str, store: S) -> serde_json::Value {
    let clock = TestClock::default();
    let (_, code) = bootstrap_clinic(&store, "Load", clock.now()).await.unwrap();
    let server = start(
        store.clone(),
        clock.clone(),
        RateLimiter::new(100_000.0, 100_000),
    )
    .await;
    let anon = Api::new(&server);
    let first: JoinResponse = anon
        .post(
            "/v1/join",
            &JoinRequest {
                code: join_code_auth(&code),
                device_name: "admin".into(),
                device_code: None,
            },
        )
        .await
        .unwrap();
    let admin = anon.with_token(&first.token);
    let mut pcs = vec![];
    for i in 0..PCS {
        let code = clinic_server::random_join_code();
        let _: JoinCode = admin
            .post(
                "/v1/join-codes",
                &NewJoinCode {
                    code: join_code_auth(&code),
                    sealed: None,
                    valid_minutes: 60,
                },
            )
            .await
            .unwrap();
        let j: JoinResponse = anon
            .post(
                "/v1/join",
                &JoinRequest {
                    code: join_code_auth(&code),
                    device_name: format!("PC {i}"),
                    device_code: None,
                },
            )
            .await
            .unwrap();
        pcs.push(anon.with_token(&j.token));
    }
    let after = r#"{"id":"x","given_name":"Somchai","family_name":"Wongsakul","phones":"[\"+66 81 234 5678\"]","birth_date":"1980-02-01","address":"12 Sukhumvit Rd, Bangkok","notes":"allergic to penicillin"}"#;
    let started = Instant::now();
    let mut tasks = vec![];
    for (d, pc) in pcs.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            for b in 0..BATCHES {
                let changes = (1..=PER_BATCH)
                    .map(|k| {
                        let seq = b * PER_BATCH + k;
                        Change {
                            seq,
                            entity: "patients".into(),
                            entity_id: format!("pc{d}-{seq}"),
                            op: Op::Insert,
                            after: Some(after.into()),
                            hlc: format!("{:013}-{:05}", 1_773_111_600_000i64 + seq, 0),
                            base: None,
                            at: "2026-03-10T03:00:00.000000Z".into(),
                        }
                    })
                    .collect();
                let t = Instant::now();
                let r: PushResponse = pc
                    .post(
                        "/v1/push",
                        &PushRequest {
                            changes,
                            audit_head: None,
                        },
                    )
                    .await
                    .unwrap();
                lat.push(t.elapsed());
                assert_eq!(r.stored as i64, PER_BATCH);
            }
            lat
        }));
    }
    let mut push_lat = vec![];
    for t in tasks {
        push_lat.extend(t.await.unwrap());
    }
    let push_secs = started.elapsed().as_secs_f64();
    let total = (PCS as i64 * BATCHES * PER_BATCH) as f64;

    // Everyone pulls what the others pushed.
    let started = Instant::now();
    let mut tasks = vec![];
    for pc in pcs.clone() {
        tasks.push(tokio::spawn(async move {
            let (mut after, mut got, mut lat) = (0i64, 0usize, vec![]);
            loop {
                let t = Instant::now();
                let p: PullResponse = pc
                    .get(
                        "/v1/pull",
                        &[("after", after.to_string()), ("limit", "1000".into())],
                    )
                    .await
                    .unwrap();
                lat.push(t.elapsed());
                got += p.changes.len();
                after = p.next;
                if !p.more {
                    return (got, lat);
                }
            }
        }));
    }
    let mut pull_lat = vec![];
    let mut pulled = 0;
    for t in tasks {
        let (g, l) = t.await.unwrap();
        pulled += g;
        pull_lat.extend(l);
    }
    let pull_secs = started.elapsed().as_secs_f64();
    // Each PC gets every change but its own.
    assert_eq!(pulled as f64, total * (PCS as f64 - 1.0));
    server.handle.shutdown();
    serde_json::json!({
        "backend": name,
        "pcs": PCS,
        "changes_pushed": total,
        "push_changes_per_s": (total / push_secs).round(),
        "push_request_p50_ms": (pct(&mut push_lat, 0.50) * 10.0).round() / 10.0,
        "push_request_p95_ms": (pct(&mut push_lat, 0.95) * 10.0).round() / 10.0,
        "pull_changes_per_s": (pulled as f64 / pull_secs).round(),
        "pull_request_p95_ms": (pct(&mut pull_lat, 0.95) * 10.0).round() / 10.0,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = run(
        "sqlite",
        SqliteStore::open(&dir.path().join("server.db")).unwrap(),
    )
    .await;
    let cluster = common::pg::Cluster::start();
    let url = cluster.database("load").await;
    let pg = run("postgres", PgStore::connect(&url, 16).await.unwrap()).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "server_load": [sqlite, pg] })).unwrap()
    );
}
