//! The server's behaviour, the same suite against each backend: SQLite in a temp folder and
//! a real PostgreSQL cluster this test starts. Everything goes over HTTPS on loopback.

mod common;

use std::collections::BTreeSet;

use chrono::Duration;
use clinic_server::bootstrap_clinic;
use clinic_server::limit::RateLimiter;
use clinic_server::store::postgres::PgStore;
use clinic_server::store::sqlite::SqliteStore;
use clinic_server::store::Store;
use clinic_sync_proto::*;
use common::{generous, start, Api, TestClock};

fn change(seq: i64, entity_id: &str, value: &str, hlc: &str) -> Change {
    Change {
        seq,
        entity: "patients".into(),
        entity_id: entity_id.into(),
        op: Op::Update,
        after: Some(format!(r#"{{"id":"{entity_id}","v":"{value}"}}"#)),
        hlc: hlc.into(),
        base: None,
        at: "2026-03-10T03:00:00.000000Z".into(),
    }
}

fn push_of(changes: Vec<Change>) -> PushRequest {
    PushRequest {
        changes,
        audit_head: None,
    }
}

async fn join(
    api: &Api,
    code: &str,
    name: &str,
    device_code: Option<&str>,
) -> Result<JoinResponse, ErrorCode> {
    api.post(
        "/v1/join",
        &JoinRequest {
            code: join_code_auth(code),
            device_name: name.into(),
            device_code: device_code.map(Into::into),
        },
    )
    .await
}

/// A join code made by a joined device (as an admin's PC does).
async fn invite(dev: &Api, minutes: u32) -> String {
    let code = clinic_server::random_join_code();
    let _: JoinCode = dev
        .post(
            "/v1/join-codes",
            &NewJoinCode {
                code: join_code_auth(&code),
                sealed: Some("sealed-for-the-new-pc".into()),
                valid_minutes: minutes,
            },
        )
        .await
        .unwrap();
    code
}

async fn pull_all(dev: &Api, mut after: i64) -> (Vec<PulledChange>, i64) {
    let mut out = vec![];
    loop {
        let p: PullResponse = dev
            .get(
                "/v1/pull",
                &[("after", after.to_string()), ("limit", "7".into())],
            )
            .await
            .unwrap();
        out.extend(p.changes);
        after = p.next;
        if !p.more {
            return (out, after);
        }
    }
}

/// Every row of the device's clinic, page by page.
async fn snapshot_all(dev: &Api) -> Vec<SnapshotRow> {
    let (mut rows, mut next) = (vec![], None::<String>);
    loop {
        let q: Vec<(&str, String)> = next.iter().map(|n| ("after", n.clone())).collect();
        let p: SnapshotPage = dev.get("/v1/snapshot", &q).await.unwrap();
        rows.extend(p.rows);
        next = p.next;
        if next.is_none() {
            return rows;
        }
    }
}

/// Runs the suite; returns a join code of a device it revoked (for the race check below).
async fn suite<S: Store + Clone>(store: S) -> String {
    let clock = TestClock::default();
    let server = start(store.clone(), clock.clone(), generous()).await;
    let anon = Api::new(&server);

    // --- Joining: one-time codes, device codes, tokens.
    let (_clinic, first_code) = bootstrap_clinic(&store, "North clinic", clock.now())
        .await
        .unwrap();
    assert_eq!(
        join(&anon, "AAAA-BBBB-CCCC-DDDD-EEEE", "Front desk", None)
            .await
            .unwrap_err(),
        ErrorCode::JoinCodeInvalid
    );
    let a = join(&anon, &first_code.to_lowercase(), "Front desk", Some("K3F"))
        .await
        .unwrap();
    assert_eq!(
        (a.device_code.as_str(), a.clinic_name.as_str()),
        ("K3F", "North clinic")
    );
    assert_eq!(
        join(&anon, &first_code, "Again", None).await.unwrap_err(),
        ErrorCode::JoinCodeInvalid,
        "a join code works once"
    );
    let dev_a = anon.with_token(&a.token);

    let code = invite(&dev_a, 60).await;
    // Only a clinic's first PC brings data (and a device code) of its own.
    assert_eq!(
        join(&anon, &code, "Room 1", Some("Q7Z")).await.unwrap_err(),
        ErrorCode::ClinicHasDevices
    );
    // The refused join did not use the code up.
    let b = join(&anon, &code, "Room 1", None).await.unwrap();
    assert_eq!(b.sealed.as_deref(), Some("sealed-for-the-new-pc"));
    assert_eq!(b.device_code.len(), 3);
    assert_ne!(b.device_code, "K3F");
    assert_eq!(b.clinic_id, a.clinic_id);
    let dev_b = anon.with_token(&b.token);

    let late = invite(&dev_a, 1).await;
    clock.advance(Duration::minutes(2));
    assert_eq!(
        join(&anon, &late, "Late", None).await.unwrap_err(),
        ErrorCode::JoinCodeInvalid,
        "an expired code is refused"
    );

    // --- Tokens.
    let none: Result<Vec<Device>, _> = anon.get("/v1/devices", &[]).await;
    assert_eq!(none.unwrap_err(), ErrorCode::Unauthorized);
    let bogus: Result<Vec<Device>, _> =
        anon.with_token("not-a-token").get("/v1/devices", &[]).await;
    assert_eq!(bogus.unwrap_err(), ErrorCode::Unauthorized);
    let devices: Vec<Device> = dev_a.get("/v1/devices", &[]).await.unwrap();
    assert_eq!(devices.len(), 2);

    // --- Push: idempotent on (device, seq), no gaps, no rewrites.
    let batch = vec![
        change(1, "p1", "a1", "0000000001000-00000"),
        change(2, "p2", "a1", "0000000001000-00001"),
        change(3, "p3", "a1", "0000000001000-00002"),
    ];
    let mut req = push_of(batch.clone());
    req.audit_head = Some(AuditHead {
        seq: 10,
        hash: "ab".repeat(32),
    });
    let r: PushResponse = dev_a.post("/v1/push", &req).await.unwrap();
    assert_eq!((r.stored, r.duplicates, r.last_seq), (3, 0, 3));
    let again: PushResponse = dev_a.post("/v1/push", &req).await.unwrap();
    assert_eq!(
        (again.stored, again.duplicates, again.last_seq),
        (0, 3, 3),
        "a repeated push changes nothing"
    );
    let overlap: PushResponse = dev_a
        .post(
            "/v1/push",
            &push_of(vec![
                batch[2].clone(),
                change(4, "p4", "a1", "0000000001000-00003"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        (overlap.stored, overlap.duplicates, overlap.last_seq),
        (1, 1, 4)
    );
    let rewrite: Result<PushResponse, _> = dev_a
        .post(
            "/v1/push",
            &push_of(vec![change(2, "p2", "EVIL", "0000000001000-00001")]),
        )
        .await;
    assert_eq!(rewrite.unwrap_err(), ErrorCode::SeqConflict);
    let gap: Result<PushResponse, _> = dev_a
        .post(
            "/v1/push",
            &push_of(vec![change(9, "p9", "x", "0000000001000-00009")]),
        )
        .await;
    assert_eq!(gap.unwrap_err(), ErrorCode::BadRequest);
    let mut bad_entity = change(5, "p5", "x", "0000000001000-00005");
    bad_entity.entity = "patients; DROP TABLE rows".into();
    let r: Result<PushResponse, _> = dev_a.post("/v1/push", &push_of(vec![bad_entity])).await;
    assert_eq!(r.unwrap_err(), ErrorCode::BadRequest);

    // --- Pull: others' changes in server order, never one's own.
    let (got, cursor_b) = pull_all(&dev_b, 0).await;
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|c| c.device_code == "K3F" && c.device_id == a.device_id));
    assert_eq!(
        got.iter().map(|c| c.change.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(got[1].change, batch[1]);
    let (own, cursor_a) = pull_all(&dev_a, 0).await;
    assert!(own.is_empty(), "no echo");
    assert_eq!(
        cursor_a, cursor_b,
        "the cursor moves past one's own changes"
    );

    // --- Both edit p1: every holder keeps the version with the greater (hlc, device).
    let _: PushResponse = dev_b
        .post(
            "/v1/push",
            &push_of(vec![change(1, "p1", "b-later", "0000000002000-00000")]),
        )
        .await
        .unwrap();
    let _: PushResponse = dev_a
        .post(
            "/v1/push",
            &push_of(vec![change(5, "p1", "a-earlier", "0000000001500-00000")]),
        )
        .await
        .unwrap();
    let snap: SnapshotPage = dev_a
        .get("/v1/snapshot", &[("limit", "100".into())])
        .await
        .unwrap();
    let p1 = snap.rows.iter().find(|r| r.entity_id == "p1").unwrap();
    assert!(p1.after.as_deref().unwrap().contains("b-later"), "{p1:?}");
    assert_eq!(snap.total, 4);
    let (from_a, _) = pull_all(&dev_b, cursor_b).await;
    assert_eq!(
        from_a.len(),
        1,
        "the losing version is still delivered and kept"
    );

    // --- Snapshot pages.
    let many: Vec<Change> = (6..31)
        .map(|s| {
            change(
                s,
                &format!("q{s:02}"),
                "bulk",
                &format!("0000000003000-{s:05}"),
            )
        })
        .collect();
    let _: PushResponse = dev_a.post("/v1/push", &push_of(many)).await.unwrap();
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "10".to_string())];
        if let Some(a) = &after {
            q.push(("after", a.clone()));
        }
        let first = after.is_none();
        let page: SnapshotPage = dev_b.get("/v1/snapshot", &q).await.unwrap();
        // Counted on a table's first page only (a count scans the clinic).
        assert_eq!(page.total, if first { 29 } else { 0 });
        pages += 1;
        for r in page.rows {
            assert!(seen.insert(r.entity_id), "a row twice");
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (29, 3));
    let d_a: String = dev_a.get("/v1/digest", &[]).await.unwrap();
    let d_b: String = dev_b.get("/v1/digest", &[]).await.unwrap();
    assert_eq!(d_a, d_b);
    assert_eq!(d_a.len(), 64);

    // --- Audit heads.
    let heads: Vec<HeadRecord> = dev_b
        .get("/v1/audit-heads", &[("device", a.device_id.clone())])
        .await
        .unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(
        (heads[0].seq, heads[0].hash.as_str()),
        (10, "ab".repeat(32).as_str())
    );

    // --- Another clinic on the same server sees nothing of this one, and can't touch it.
    let (_other, other_code) = bootstrap_clinic(&store, "South clinic", clock.now())
        .await
        .unwrap();
    let c = join(&anon, &other_code, "South desk", Some("K3F"))
        .await
        .unwrap();
    assert_eq!(c.device_code, "K3F", "device codes are per clinic");
    let dev_c = anon.with_token(&c.token);
    let (stolen, _) = pull_all(&dev_c, 0).await;
    assert!(
        stolen.is_empty(),
        "another clinic's changes leaked: {stolen:?}"
    );
    let snap_c: SnapshotPage = dev_c.get("/v1/snapshot", &[]).await.unwrap();
    assert_eq!((snap_c.total, snap_c.rows.len()), (0, 0));
    let devs_c: Vec<Device> = dev_c.get("/v1/devices", &[]).await.unwrap();
    assert_eq!(devs_c.len(), 1);
    let heads_c: Vec<HeadRecord> = dev_c
        .get("/v1/audit-heads", &[("device", a.device_id.clone())])
        .await
        .unwrap();
    assert!(heads_c.is_empty());
    let r: Result<Device, _> = dev_c
        .post(&format!("/v1/devices/{}/revoke", a.device_id), &())
        .await;
    assert_eq!(r.unwrap_err(), ErrorCode::NotFound);
    let _: PushResponse = dev_c
        .post(
            "/v1/push",
            &push_of(vec![change(1, "p1", "south", "0000000009000-00000")]),
        )
        .await
        .unwrap();
    let d_a2: String = dev_a.get("/v1/digest", &[]).await.unwrap();
    assert_eq!(
        d_a2, d_a,
        "another clinic's push changed this clinic's rows"
    );

    // --- No change is larger than a row may be (every row fits in a push).
    let mut huge_row = change(2, "b0", "", "0000000009100-00000");
    huge_row.after = Some("x".repeat(sealed_len(MAX_ROW_BYTES) + 1));
    let r: Result<PushResponse, _> = dev_c.post("/v1/push", &push_of(vec![huge_row])).await;
    assert_eq!(r.unwrap_err(), ErrorCode::BadRequest);

    // --- Pages stop at MAX_PAGE_BYTES whatever the rows hold (a PC reads answers of at most
    // MAX_RESPONSE_BYTES), cut from the sizes before content is read: three rows of 2.5 MiB
    // come two, then one.
    let big = |seq: i64, id: &str| {
        let mut c = change(seq, id, "", "0000000009100-00000");
        c.after = Some("x".repeat(5 << 19));
        c
    };
    let _: PushResponse = dev_c
        .post(
            "/v1/push",
            &push_of(vec![big(2, "b1"), big(3, "b2"), big(4, "b3")]),
        )
        .await
        .unwrap();
    let d = join(&anon, &invite(&dev_c, 60).await, "South ward", None)
        .await
        .unwrap();
    let dev_d = anon.with_token(&d.token);
    let (mut pages, mut after) = (vec![], 0);
    loop {
        let p: PullResponse = dev_d
            .get("/v1/pull", &[("after", after.to_string())])
            .await
            .unwrap();
        pages.push(
            p.changes
                .iter()
                .filter(|c| c.change.entity_id.starts_with('b'))
                .count(),
        );
        after = p.next;
        if !p.more {
            break;
        }
    }
    assert_eq!(pages, [2, 1]);
    let (mut pages, mut next) = (vec![], None::<String>);
    loop {
        let q: Vec<(&str, String)> = next.iter().map(|n| ("after", n.clone())).collect();
        let p: SnapshotPage = dev_d.get("/v1/snapshot", &q).await.unwrap();
        pages.push(
            p.rows
                .iter()
                .map(|r| r.entity_id.clone())
                .collect::<Vec<_>>(),
        );
        next = p.next;
        if next.is_none() {
            break;
        }
    }
    assert_eq!(pages, [vec!["b1", "b2"], vec!["b3", "p1"]]);

    // --- A made-up clock stamp (it would win over every real version) is refused.
    let r: Result<PushResponse, _> = dev_c
        .post(
            "/v1/push",
            &push_of(vec![change(5, "p1", "forever", "~~~~~~~~~~~~~~~~~~~")]),
        )
        .await;
    assert_eq!(r.unwrap_err(), ErrorCode::BadRequest);

    // --- A stamp more than three days ahead of the server's clock: kept (the device's later
    // changes go on), never applied, never sent, and the pusher is told.
    let d_before: String = dev_d.get("/v1/digest", &[]).await.unwrap();
    let ahead_ms = clock.now().timestamp_millis() + MAX_STAMP_AHEAD_MS + 60_000;
    let ahead = format!("{ahead_ms:013}-00000");
    let r: PushResponse = dev_c
        .post(
            "/v1/push",
            &push_of(vec![
                change(5, "p1", "from-the-future", &ahead),
                change(6, "p7", "next", "0000000009200-00000"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!((r.stored, r.last_seq, r.refused.clone()), (2, 6, vec![5]));
    let (got, _) = pull_all(&dev_d, 0).await;
    assert!(
        got.iter().all(|c| c.change.hlc != ahead),
        "a refused change was sent"
    );
    assert!(
        got.iter().any(|c| c.change.entity_id == "p7"),
        "the change after it was held back"
    );
    let snap = snapshot_all(&dev_d).await;
    assert!(snap.iter().any(|r| r.entity_id == "p1"));
    assert!(snap.iter().all(|r| r.hlc != ahead));
    let d_after: String = dev_d.get("/v1/digest", &[]).await.unwrap();
    assert_ne!(d_before, d_after, "p7 arrived");
    // The same push again is a duplicate, refused as before.
    let again: PushResponse = dev_c
        .post(
            "/v1/push",
            &push_of(vec![change(5, "p1", "from-the-future", &ahead)]),
        )
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));

    // --- A deleted row keeps its sealed marker: a joining PC deletes nothing on the
    // server's word alone. The digest leaves it out.
    let mut del = change(7, "p7", "", "0000000009300-00000");
    del.op = Op::Delete;
    del.after = Some("sealed-deleted-marker".into());
    let _: PushResponse = dev_c.post("/v1/push", &push_of(vec![del])).await.unwrap();
    let snap = snapshot_all(&dev_d).await;
    let p7 = snap.iter().find(|r| r.entity_id == "p7").unwrap();
    assert_eq!(p7.after.as_deref(), Some("sealed-deleted-marker"));
    let d_deleted: String = dev_d.get("/v1/digest", &[]).await.unwrap();
    assert_eq!(d_deleted, d_before, "a tombstone counted in the digest");

    // --- Blobs: sealed chunks of exact lengths, held per clinic, resumable.
    let id = "ab".repeat(32);
    let size = (clinic_sync_proto::BLOB_CHUNK_BYTES + 10) as u64;
    let put = |api: &Api, index: u32, len: usize| {
        let (api, id) = (api.clone(), id.clone());
        async move {
            let resp = api
                .http
                .put(format!("{}/v1/blobs/{id}/{index}?size={size}", api.base))
                .bearer_auth(api.token.clone().unwrap())
                .body(vec![index as u8; len])
                .send()
                .await
                .unwrap();
            let ok = resp.status().is_success();
            if ok {
                Ok(resp.json::<BlobInfo>().await.unwrap())
            } else {
                Err(resp.json::<ErrorBody>().await.unwrap().code)
            }
        }
    };
    let len0 = blob_chunk_len(size, 0).unwrap();
    assert_eq!(
        put(&dev_a, 0, len0 - 1).await.unwrap_err(),
        ErrorCode::BadRequest
    );
    assert_eq!(put(&dev_a, 2, 50).await.unwrap_err(), ErrorCode::BadRequest);
    let info = put(&dev_a, 1, blob_chunk_len(size, 1).unwrap())
        .await
        .unwrap();
    assert_eq!((info.chunks, info.have.clone()), (2, vec![1]));
    let held: BlobInfo = dev_a
        .get(&format!("/v1/devices/{}/blobs/{id}", a.device_id), &[])
        .await
        .unwrap();
    assert_eq!(
        held.have,
        vec![1],
        "an upload resumes from what the server has"
    );
    let info = put(&dev_a, 0, len0).await.unwrap();
    assert_eq!(info.have, vec![0, 1]);
    let chunk = dev_a
        .http
        .get(format!(
            "{}/v1/devices/{}/blobs/{id}/1",
            dev_a.base, a.device_id
        ))
        .bearer_auth(dev_a.token.clone().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(chunk.len(), 50);
    assert!(chunk.iter().all(|b| *b == 1));
    let theirs: Result<BlobInfo, _> = dev_c
        .get(&format!("/v1/devices/{}/blobs/{id}", a.device_id), &[])
        .await;
    assert_eq!(
        theirs.unwrap_err(),
        ErrorCode::NotFound,
        "another clinic's blob"
    );
    let r: Result<BlobInfo, _> = dev_a
        .get(
            &format!("/v1/devices/{}/blobs/..%2F..%2Fetc", a.device_id),
            &[],
        )
        .await;
    assert_eq!(r.unwrap_err(), ErrorCode::BadRequest);
    // Another device's chunks under the same id are its own: A's file is as A put it.
    let info_b = put(&dev_b, 0, len0).await.unwrap();
    assert_eq!(info_b.have, vec![0]);
    let still: BlobInfo = dev_b
        .get(&format!("/v1/devices/{}/blobs/{id}", a.device_id), &[])
        .await
        .unwrap();
    assert_eq!(still.have, vec![0, 1]);

    // --- A join body over its small limit is refused before it is read.
    // (The server answers 413 and may close the connection while the client still writes:
    // either is a refusal; a join the server read would answer 400 for the long name.)
    let huge = serde_json::json!({ "code": "0".repeat(64), "device_name": "x".repeat(1 << 20) });
    // On a connection of its own: the one it dies with is not the other calls' pooled one.
    let sent = common::http(&server.cert)
        .post(format!("{}/v1/join", anon.base))
        .json(&huge)
        .send()
        .await;
    match sent {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 413),
        Err(e) => assert!(e.is_request(), "{e:?}"),
    }

    // --- Revoking a device stops it at once, and its unused join codes with it.
    let b_code = invite(&dev_b, 60).await;
    let revoked: Device = dev_a
        .post(&format!("/v1/devices/{}/revoke", b.device_id), &())
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let r: Result<PushResponse, _> = dev_b
        .post(
            "/v1/push",
            &push_of(vec![change(2, "p2", "after-revoke", "0000000009000-00001")]),
        )
        .await;
    assert_eq!(r.unwrap_err(), ErrorCode::Revoked);
    let r: Result<PullResponse, _> = dev_b.get("/v1/pull", &[("after", "0".into())]).await;
    assert_eq!(r.unwrap_err(), ErrorCode::Revoked);
    assert_eq!(
        join(&anon, &b_code, "Back door", None).await.unwrap_err(),
        ErrorCode::JoinCodeInvalid,
        "a revoked device's join code still works"
    );
    // A revoked device makes no code, through the store or the API.
    let raced = clinic_server::random_join_code();
    let made = store
        .add_join_code(
            &a.clinic_id,
            &clinic_server::sha256_hex(&join_code_auth(&raced)),
            None,
            clock.now() + Duration::minutes(30),
            Some(&b.device_id),
            clock.now(),
        )
        .await;
    assert!(
        matches!(
            made,
            Err(clinic_server::store::StoreError::Api(ErrorCode::Revoked, _))
        ),
        "a revoked device made a join code: {made:?}"
    );
    let r: Result<JoinCode, _> = dev_b
        .post(
            "/v1/join-codes",
            &NewJoinCode {
                code: join_code_auth(&clinic_server::random_join_code()),
                sealed: None,
                valid_minutes: 60,
            },
        )
        .await;
    assert_eq!(r.unwrap_err(), ErrorCode::Revoked);

    // --- A clinic has only so many join codes waiting: one token can't fill the disk with
    // invitations nor mint PCs without end; codes that expire make room again.
    let mut made = 0;
    let refused = loop {
        let code = clinic_server::random_join_code();
        let r: Result<JoinCode, _> = dev_a
            .post(
                "/v1/join-codes",
                &NewJoinCode {
                    code: join_code_auth(&code),
                    sealed: Some("x".repeat(60_000)),
                    valid_minutes: 1,
                },
            )
            .await;
        match r {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        assert!(
            made <= clinic_server::store::MAX_LIVE_JOIN_CODES,
            "no limit"
        );
    };
    assert_eq!(refused, ErrorCode::QuotaExceeded);
    assert!(made > 0);
    clock.advance(Duration::minutes(2));
    invite(&dev_a, 60).await;

    // --- The client checks the certificate: one it was not told to trust is refused.
    let stranger = clinic_server::tls::self_signed(&["localhost".to_string()])
        .unwrap()
        .0;
    let wrong = Api {
        http: common::http(&stranger),
        ..dev_a.clone()
    };
    let err = wrong
        .http
        .get(format!("{}/v1/devices", wrong.base))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    server.handle.shutdown();

    // --- Rate limit: a server allowing 5 requests in a burst and nothing more.
    let tight = start(store.clone(), clock.clone(), RateLimiter::new(0.0, 5)).await;
    let dev_a_tight = Api::new(&tight).with_token(&a.token);
    let mut codes = vec![];
    for _ in 0..7 {
        let r: Result<Vec<Device>, _> = dev_a_tight.get("/v1/devices", &[]).await;
        codes.push(r.err());
    }
    assert_eq!(codes[..5], [None; 5]);
    assert_eq!(codes[5..], [Some(ErrorCode::RateLimited); 2]);
    let dev_c_tight = Api::new(&tight).with_token(&c.token);
    let r: Result<Vec<Device>, _> = dev_c_tight.get("/v1/devices", &[]).await;
    assert!(r.is_ok(), "the limit is per device");
    // Guessed tokens count against the address: after the burst, turned away unlooked.
    let guesser = Api::new(&tight).with_token("not-a-token");
    let mut codes = vec![];
    for _ in 0..7 {
        let r: Result<Vec<Device>, _> = guesser.get("/v1/devices", &[]).await;
        codes.push(r.unwrap_err());
    }
    assert_eq!(codes[..5], [ErrorCode::Unauthorized; 5]);
    assert_eq!(codes[5..], [ErrorCode::RateLimited; 2]);
    // A valid token from the same address is never refused for the guesser's traffic.
    for _ in 0..3 {
        let r: Result<Vec<Device>, _> = dev_c_tight.get("/v1/devices", &[]).await;
        assert!(
            r.is_ok(),
            "a valid token was refused for its address: {r:?}"
        );
    }
    // Likewise junk joins from an address don't stop a real join from it.
    let real = invite(&dev_c_tight, 60).await;
    let anon_tight = Api::new(&tight);
    for _ in 0..7 {
        let _ = join(&anon_tight, "AAAA-BBBB-CCCC-DDDD-EEEE", "Junk", None).await;
    }
    assert_eq!(
        join(&anon_tight, "AAAA-BBBB-CCCC-DDDD-EEEE", "Junk", None)
            .await
            .unwrap_err(),
        ErrorCode::RateLimited
    );
    join(&anon_tight, &real, "Real", None)
        .await
        .expect("a real join code joins whatever else its address sent");
    tight.handle.shutdown();
    b_code
}

/// A code of a revoked device that a race left alive (its expiry set back as if the revoke
/// had missed it) joins nobody: the join checks the code's maker.
async fn a_revoked_makers_code_joins_nobody<S: Store>(store: &S, code: &str) {
    let r = store
        .redeem(
            &clinic_server::sha256_hex(&join_code_auth(code)),
            clinic_server::store::NewDevice {
                id: "raced".into(),
                name: "Raced".into(),
                code: None,
                token_hash: "00".repeat(32),
            },
            TestClock::default().now(),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(clinic_server::store::StoreError::Api(
                ErrorCode::JoinCodeInvalid,
                _
            ))
        ),
        "{r:?}"
    );
}

const REVIVE_REVOKED_CODES: &str =
    "UPDATE join_codes SET expires_at = '2999-01-01T00:00:00.000000Z'
     WHERE used_at IS NULL AND created_by IN (SELECT id FROM devices WHERE revoked_at IS NOT NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let revoked_code = suite(store.clone()).await;
    let db = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    assert!(db.execute(REVIVE_REVOKED_CODES, []).unwrap() >= 1);
    a_revoked_makers_code_joins_nobody(&store, &revoked_code).await;
    db.execute("UPDATE join_codes SET expires_at = '2026-03-10T03:00:00.000000Z' WHERE expires_at LIKE '2999%'", [])
        .unwrap();
    let (done, kept): (i64, i64) = db
        .query_row(INVITATIONS_KEPT, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(done >= 4, "{done}");
    assert_eq!(kept, 0);
}

/// A sealed invitation is kept only until its code is used, cancelled or expired: a copy of
/// the server's files taken later can't open it with the code. (Codes done with, and how many
/// of them still hold one; the suite's clock starts at 03:00, and its late code expired at
/// 03:01 before a join came.)
const INVITATIONS_KEPT: &str = "SELECT count(*), count(sealed) FROM join_codes
     WHERE used_at IS NOT NULL
        OR created_by IN (SELECT id FROM devices WHERE revoked_at IS NOT NULL)
        OR expires_at <= '2026-03-10T03:01:00.000000Z'";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend() {
    let cluster = common::pg::Cluster::start();
    let url = cluster.database("suite").await;
    let store = PgStore::connect(&url, 8).await.unwrap();
    let revoked_code = suite(store.clone()).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    assert!(client.execute(REVIVE_REVOKED_CODES, &[]).await.unwrap() >= 1);
    a_revoked_makers_code_joins_nobody(&store, &revoked_code).await;
    client
        .execute("UPDATE join_codes SET expires_at = '2026-03-10T03:00:00.000000Z' WHERE expires_at LIKE '2999%'", &[])
        .await
        .unwrap();
    let row = client.query_one(INVITATIONS_KEPT, &[]).await.unwrap();
    let (done, kept): (i64, i64) = (row.get(0), row.get(1));
    assert!(done >= 4, "{done}");
    assert_eq!(kept, 0);
    drop(cluster);
}

/// Several server instances on one PostgreSQL, many devices pushing at once through all of
/// them: every change is stored once, and the server order has no gaps, so a puller that
/// follows it misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_share_one_database() {
    let cluster = common::pg::Cluster::start();
    let url = cluster.database("shared").await;
    let clock = TestClock::default();
    let s1 = PgStore::connect(&url, 8).await.unwrap();
    let s2 = PgStore::connect(&url, 8).await.unwrap();
    let (_, code) = bootstrap_clinic(&s1, "Shared", clock.now()).await.unwrap();
    let srv1 = start(s1, clock.clone(), generous()).await;
    let srv2 = start(s2, clock.clone(), generous()).await;
    let first = join(&Api::new(&srv1), &code, "Admin", None).await.unwrap();
    let admin = Api::new(&srv1).with_token(&first.token);

    let mut devices = vec![];
    for i in 0..6 {
        let srv = if i % 2 == 0 { &srv1 } else { &srv2 };
        let code = invite(&admin, 10).await;
        let j = join(&Api::new(srv), &code, &format!("PC {i}"), None)
            .await
            .unwrap();
        devices.push(Api::new(srv).with_token(&j.token));
    }
    let mut tasks = vec![];
    for (d, dev) in devices.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            for batch in 0..10i64 {
                let changes = (1..=20)
                    .map(|k| {
                        let seq = batch * 20 + k;
                        change(
                            seq,
                            &format!("d{d}-{seq}"),
                            "x",
                            &format!("0000000005000-{seq:05}"),
                        )
                    })
                    .collect();
                let r: PushResponse = dev.post("/v1/push", &push_of(changes)).await.unwrap();
                assert_eq!(r.stored, 20);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (all, last) = pull_all(&admin, 0).await;
    assert_eq!(all.len(), 6 * 200);
    let seqs: Vec<i64> = all.iter().map(|c| c.server_seq).collect();
    assert_eq!(
        seqs,
        (1..=1200).collect::<Vec<_>>(),
        "server order has gaps or repeats"
    );
    assert_eq!(last, 1200);
    srv1.handle.shutdown();
    srv2.handle.shutdown();
}

/// A TCP connection to the server from `from` (a loopback address of its own).
async fn tcp_from(from: &str, server: &common::Server) -> tokio::net::TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(server.addr).await.unwrap()
}

/// A TLS connection (trusting the server's certificate) from `from`.
async fn tls_from(
    from: &str,
    server: &common::Server,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(server.cert.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(clinic_server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            "localhost".try_into().unwrap(),
            tcp_from(from, server).await,
        )
        .await
        .unwrap()
}

/// Reads until the peer closes (or `within` passes: then false).
async fn closed_within<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    within: std::time::Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The server on the open network: a half-open connection, a half-sent header, a body sent a
/// byte at a time and a kept-alive connection left idle are each cut at their deadline; a
/// caller over the per-address cap, or over the total, is closed at once; and all the while a
/// device at another address is served. (Loopback only, short limits, bounded counts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_on_the_network_cannot_hold_the_server() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let clock = TestClock::default();
    let limits = clinic_server::net::Limits {
        handshake: Duration::from_secs(1),
        header: Duration::from_secs(1),
        body: Duration::from_secs(2),
        request: Duration::from_secs(3),
        idle: Duration::from_secs(4),
        max_connections: 40,
        per_address: 8,
    };
    let (_, code) = bootstrap_clinic(&store, "Open", clock.now()).await.unwrap();
    let server = common::start_with(store, clock, generous(), limits).await;
    let joined = join(&Api::new(&server), &code, "Desk", None).await.unwrap();
    let device = Api::new(&server).with_token(&joined.token);
    let served = || async {
        let r: Result<Vec<Device>, _> = device.get("/v1/devices", &[]).await;
        r.is_ok()
    };

    // A TCP connection that never starts TLS: cut at the handshake deadline.
    let t = Instant::now();
    let mut half_open = tcp_from("127.0.0.2", &server).await;
    assert!(closed_within(&mut half_open, Duration::from_secs(5)).await);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Half a request head: cut at the header deadline.
    let mut slow_head = tls_from("127.0.0.2", &server).await;
    let t = Instant::now();
    slow_head
        .write_all(b"GET /v1/devices HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut slow_head, Duration::from_secs(5)).await);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // A body a byte at a time: cut at the body deadline though bytes keep coming.
    let mut slow_body = tls_from("127.0.0.2", &server).await;
    let t = Instant::now();
    slow_body
        .write_all(
            format!(
                "POST /v1/push HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                joined.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        for _ in 0..40 {
            if slow_body.write_all(b" ").await.is_err() || slow_body.flush().await.is_err() {
                return (slow_body, true);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (slow_body, false)
    });
    let (mut slow_body, cut) = dripping.await.unwrap();
    assert!(cut || closed_within(&mut slow_body, Duration::from_secs(1)).await);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A kept-alive connection left idle after an answer: closed at the header deadline.
    let mut idle = tls_from("127.0.0.2", &server).await;
    idle.write_all(b"GET /v1/devices HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // Per address: 8 held from 127.0.0.3, the ninth closed at once; another address served.
    let mut held = vec![];
    for _ in 0..8 {
        held.push(tcp_from("127.0.0.3", &server).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ninth = tcp_from("127.0.0.3", &server).await;
    let t = Instant::now();
    assert!(closed_within(&mut ninth, Duration::from_millis(800)).await);
    assert!(t.elapsed() < Duration::from_millis(800));
    assert!(served().await, "a device at another address was refused");
    assert_eq!(
        server.handle.connections(),
        8 + 1,
        "the held ones and the device's"
    );

    // In all: 40 at most. When full, the oldest connection that has shown no device token is
    // closed to make room: strangers can't keep a device out, and a device's is kept.
    for i in 4..8 {
        for _ in 0..8 {
            held.push(tcp_from(&format!("127.0.0.{i}"), &server).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        server.handle.connections() <= 40,
        "{}",
        server.handle.connections()
    );
    assert!(
        closed_within(&mut held[0], Duration::from_millis(800)).await,
        "the oldest stranger was kept"
    );
    let mut newest = tcp_from("127.0.0.9", &server).await;
    assert!(
        !closed_within(&mut newest, Duration::from_millis(300)).await,
        "a new caller was turned away while strangers held the places"
    );
    assert!(served().await, "a device was kept out by strangers");
    assert!(server.handle.connections() <= 40);
    drop(held);
    server.handle.shutdown();
}

/// An IPv6 host holds a whole /64: its connections count together.
#[test]
fn an_ipv6_host_counts_by_its_64() {
    let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    let c: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
    let v4: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    use clinic_server::net::address_key as k;
    assert_eq!(k(a), k(b));
    assert_ne!(k(a), k(c));
    assert_eq!(k(v4), "192.0.2.7".parse::<std::net::IpAddr>().unwrap());
}

/// Shares of the server: memory for bodies is budgeted (a request whose answer could not fit
/// is told the server is busy), a device has a few requests in flight at most (one dripping
/// a body holds one place), and a clinic's files count against its quota in bytes stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_gives_nobody_more_than_their_share() {
    use std::time::Duration as D;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let clock = TestClock::default();
    let (_, code) = bootstrap_clinic(&store, "Shares", clock.now())
        .await
        .unwrap();
    let server = tuned_server(store, &clock, |state| {
        // Room for requests and small answers, not for a page of changes.
        state.set_memory(8 << 20, D::from_millis(300));
        state.device_gates = clinic_server::limit::Gates::new(1, D::from_millis(300));
        state.blob_quota = 3 * (BLOB_CHUNK_BYTES as u64 + BLOB_SEAL_BYTES as u64) / 2;
    })
    .await;
    let a = join(&Api::new(&server), &code, "Desk", None).await.unwrap();
    let dev = Api::new(&server).with_token(&a.token);

    // A pull could answer 16 MiB: more than the budget holds, so it is turned away.
    let r: Result<PullResponse, _> = dev.get("/v1/pull", &[("after", "0".into())]).await;
    assert_eq!(r.unwrap_err(), ErrorCode::RateLimited);
    let ok: Result<Vec<Device>, _> = dev.get("/v1/devices", &[]).await;
    assert!(ok.is_ok(), "a small answer fits: {ok:?}");

    // One place per device here: a push dripping its body holds it; the device's next
    // request waits, then hears the server is busy.
    let mut slow = tls_from("127.0.0.1", &server).await;
    slow.write_all(
        format!(
            "POST /v1/push HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
            a.token
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(D::from_millis(200)).await;
    let r: Result<Vec<Device>, _> = dev.get("/v1/devices", &[]).await;
    assert_eq!(r.unwrap_err(), ErrorCode::RateLimited);
    // Its place comes free once the dripping connection goes.
    drop(slow);
    let b_code = invite_when_free(&dev).await;
    let b = join(&Api::new(&server), &b_code, "Room", None)
        .await
        .unwrap();
    let ok: Result<Vec<Device>, _> = Api::new(&server)
        .with_token(&b.token)
        .get("/v1/devices", &[])
        .await;
    assert!(ok.is_ok());

    // The quota counts bytes stored: a chunk and a half fit, the second chunk doesn't.
    let size = (2 * BLOB_CHUNK_BYTES) as u64;
    let put = |index: u32| {
        let dev = dev.clone();
        async move {
            let resp = dev
                .http
                .put(format!(
                    "{}/v1/blobs/{}/{index}?size={size}",
                    dev.base,
                    "cd".repeat(32)
                ))
                .bearer_auth(dev.token.clone().unwrap())
                .body(vec![7u8; blob_chunk_len(size, index).unwrap()])
                .send()
                .await
                .unwrap();
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(resp.json::<ErrorBody>().await.unwrap().code)
            }
        }
    };
    put(0).await.unwrap();
    put(0).await.expect("a chunk held already costs nothing");
    assert_eq!(put(1).await.unwrap_err(), ErrorCode::QuotaExceeded);
    server.handle.shutdown();
}

/// A server on `store` (SQLite) following `clock`, with the limits `tune` sets (memory, places,
/// quota) in place of the defaults.
async fn tuned_server(
    store: SqliteStore,
    clock: &TestClock,
    tune: impl FnOnce(&mut clinic_server::AppState<SqliteStore>),
) -> common::Server {
    let names = vec!["localhost".to_string()];
    let (cert, key) = clinic_server::tls::self_signed(&names).unwrap();
    let mut state = clinic_server::AppState::new(store, generous(), {
        let c = clock.clone();
        std::sync::Arc::new(move || c.now())
    });
    tune(&mut state);
    let (addr, handle, _t) = clinic_server::serve(
        std::sync::Arc::new(state),
        "127.0.0.1:0".parse().unwrap(),
        clinic_server::tls::server_config(&cert, &key).unwrap(),
    )
    .await
    .unwrap();
    common::Server { addr, cert, handle }
}

/// A join code from `dev`, once its one place is free again.
async fn invite_when_free(dev: &Api) -> String {
    for _ in 0..50 {
        let code = clinic_server::random_join_code();
        let r: Result<JoinCode, _> = dev
            .post(
                "/v1/join-codes",
                &NewJoinCode {
                    code: join_code_auth(&code),
                    sealed: None,
                    valid_minutes: 60,
                },
            )
            .await;
        if r.is_ok() {
            return code;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the device's place never came free");
}

/// Memory goes to requests the server will serve, never to a queue or a stranger: a body is
/// given room only once its token is known and its places are had, a join (the one call
/// without a token) only room for a join, and one clinic at most its share. Here strangers
/// hold chunked bodies that never come (joins, pushes with made-up tokens) and one clinic's
/// device holds pushes that never end; the other clinic's page of 16 MiB still fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_goes_to_requests_the_server_will_serve() {
    use std::time::Duration as D;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let clock = TestClock::default();
    let (_, code_a) = bootstrap_clinic(&store, "Loud", clock.now()).await.unwrap();
    let (_, code_b) = bootstrap_clinic(&store, "Quiet", clock.now())
        .await
        .unwrap();
    let server = tuned_server(store, &clock, |state| {
        // 40 MiB in all; a clinic's share is then one push and one page (24 MiB).
        state.set_memory(40 << 20, D::from_millis(300));
    })
    .await;
    let loud = join(&Api::new(&server), &code_a, "Loud desk", None)
        .await
        .unwrap();
    let quiet = join(&Api::new(&server), &code_b, "Quiet desk", None)
        .await
        .unwrap();

    // Bodies of unknown length that never come: each would hold 8 MiB if room were taken on
    // arrival (five of them, the whole budget).
    let mut held = vec![];
    let hold = |from: &'static str, head: String| {
        let server = &server;
        async move {
            let mut c = tls_from(from, server).await;
            c.write_all(head.as_bytes()).await.unwrap();
            c.flush().await.unwrap();
            c
        }
    };
    for _ in 0..20 {
        held.push(
            hold(
                "127.0.0.7",
                "POST /v1/join HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
                    .into(),
            )
            .await,
        );
        held.push(
            hold(
                "127.0.0.8",
                "POST /v1/push HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer made-up\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .into(),
            )
            .await,
        );
    }
    // The loud clinic's device: four places, its clinic's share for two of them.
    for _ in 0..6 {
        held.push(
            hold(
                "127.0.0.9",
                format!(
                    "POST /v1/push HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    loud.token
                ),
            )
            .await,
        );
    }
    tokio::time::sleep(D::from_millis(800)).await;
    let quiet_dev = Api::new(&server).with_token(&quiet.token);
    let page: Result<PullResponse, _> = quiet_dev.get("/v1/pull", &[("after", "0".into())]).await;
    assert!(page.is_ok(), "the quiet clinic's page fits: {page:?}");
    let snap: Result<SnapshotPage, _> = quiet_dev.get("/v1/snapshot", &[]).await;
    assert!(snap.is_ok(), "{snap:?}");
    // The loud clinic holds its share, less than a page: a small answer fits, a page waits,
    // then hears the server is busy.
    let loud_dev = Api::new(&server).with_token(&loud.token);
    let r: Result<Vec<Device>, _> = loud_dev.get("/v1/devices", &[]).await;
    assert!(r.is_ok(), "{r:?}");
    let r: Result<PullResponse, _> = loud_dev.get("/v1/pull", &[("after", "0".into())]).await;
    assert_eq!(r.unwrap_err(), ErrorCode::RateLimited);
    drop(held);
    // Everything held comes free with the connections.
    tokio::time::sleep(D::from_millis(300)).await;
    let r: Result<PullResponse, _> = loud_dev.get("/v1/pull", &[("after", "0".into())]).await;
    assert!(r.is_ok(), "{r:?}");
    server.handle.shutdown();
}
