//! The PostgreSQL backend, for clinics and groups of clinics that outgrow one machine. The
//! server keeps no state of its own, so several instances can share one database: a push
//! orders itself by the clinic row's lock (`UPDATE clinics … RETURNING last_seq` holds it
//! until commit), and everything else is plain transactions.
//!
//! Text columns that are ordered use the "C" collation, so the order (and the snapshot
//! cursor and the digest) is the same bytewise order as SQLite's.

use chrono::{DateTime, Utc};
use clinic_sync_proto::{
    Change, Device, ErrorCode, HeadRecord, PullResponse, PulledChange, PushRequest, PushResponse,
    SnapshotPage, SnapshotRow,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::sqlite::op_from;
use super::{split_push, ts, DeviceAuth, Joined, NewDevice, Store, StoreError, StoreResult};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS clinics (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id           TEXT PRIMARY KEY,
    clinic_id    TEXT NOT NULL REFERENCES clinics (id),
    code         TEXT NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    joined_at    TEXT NOT NULL,
    last_seen_at TEXT,
    revoked_at   TEXT,
    last_seq     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (clinic_id, code)
);
CREATE TABLE IF NOT EXISTS join_codes (
    code_hash   TEXT PRIMARY KEY,
    clinic_id   TEXT NOT NULL REFERENCES clinics (id),
    sealed      TEXT,
    expires_at  TEXT NOT NULL,
    created_by  TEXT,
    used_at     TEXT,
    used_by     TEXT
);
CREATE TABLE IF NOT EXISTS changes (
    clinic_id   TEXT NOT NULL,
    server_seq  BIGINT NOT NULL,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         BIGINT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    op          TEXT NOT NULL,
    after       TEXT,
    hlc         TEXT NOT NULL,
    base        TEXT,
    at          TEXT NOT NULL,
    PRIMARY KEY (clinic_id, server_seq),
    UNIQUE (device_id, seq)
);
CREATE TABLE IF NOT EXISTS rows (
    clinic_id   TEXT NOT NULL,
    entity      TEXT COLLATE "C" NOT NULL,
    entity_id   TEXT COLLATE "C" NOT NULL,
    after       TEXT,
    hlc         TEXT COLLATE "C" NOT NULL,
    device_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (clinic_id, entity, entity_id)
);
CREATE TABLE IF NOT EXISTS audit_heads (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
"#;

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`, or `host=/socket/dir` forms) and creates
    /// the tables if they are missing. Several servers may do this at once.
    pub async fn connect(url: &str, max_connections: usize) -> StoreResult<Self> {
        let cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Db(e.to_string()))?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(max_connections)
            .build()
            .map_err(|e| StoreError::Db(e.to_string()))?;
        let store = PgStore { pool };
        let mut c = store.client().await?;
        let tx = c.transaction().await?;
        // Two instances starting together must not race on CREATE TABLE.
        tx.execute("SELECT pg_advisory_xact_lock(7261001)", &[])
            .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.commit().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Db(e.to_string()))
    }
}

fn op_text(op: clinic_sync_proto::Op) -> &'static str {
    match op {
        clinic_sync_proto::Op::Insert => "insert",
        clinic_sync_proto::Op::Update => "update",
        clinic_sync_proto::Op::Delete => "delete",
    }
}

fn device_row(r: &tokio_postgres::Row) -> Device {
    Device {
        id: r.get(0),
        code: r.get(1),
        name: r.get(2),
        joined_at: r.get(3),
        last_seen_at: r.get(4),
        revoked_at: r.get(5),
        last_seq: r.get(6),
    }
}

const DEVICE_COLUMNS: &str =
    "id, code, name, joined_at, last_seen_at, revoked_at, last_seq FROM devices";

impl Store for PgStore {
    async fn create_clinic(&self, name: &str, now: DateTime<Utc>) -> StoreResult<String> {
        let id = uuid::Uuid::now_v7().to_string();
        self.client()
            .await?
            .execute(
                "INSERT INTO clinics (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &name, &ts(now)],
            )
            .await?;
        Ok(id)
    }

    async fn add_join_code(
        &self,
        clinic_id: &str,
        code_hash: &str,
        sealed: Option<&str>,
        expires_at: DateTime<Utc>,
        by_device: Option<&str>,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO join_codes (code_hash, clinic_id, sealed, expires_at, created_by)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&code_hash, &clinic_id, &sealed, &ts(expires_at), &by_device],
            )
            .await?;
        Ok(())
    }

    async fn forget_expired_invitations(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE join_codes SET sealed = NULL WHERE sealed IS NOT NULL AND expires_at <= $1",
                &[&ts(now)],
            )
            .await?)
    }

    async fn redeem(
        &self,
        code_hash: &str,
        device: NewDevice,
        now: DateTime<Utc>,
    ) -> StoreResult<Joined> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now_ts = ts(now);
        // FOR UPDATE: two PCs typing the same code at once, one gets it.
        let found = tx
            .query_opt(
                "SELECT j.clinic_id, j.sealed, c.name FROM join_codes j JOIN clinics c ON c.id = j.clinic_id
                 WHERE j.code_hash = $1 AND j.used_at IS NULL AND j.expires_at > $2
                 FOR UPDATE OF j",
                &[&code_hash, &now_ts],
            )
            .await?;
        let Some(found) = found else {
            return Err(StoreError::api(
                ErrorCode::JoinCodeInvalid,
                "unknown, used or expired join code",
            ));
        };
        let (clinic_id, sealed, clinic_name): (String, Option<String>, String) =
            (found.get(0), found.get(1), found.get(2));
        // Serialises device-code choice within the clinic.
        tx.execute(
            "SELECT 1 FROM clinics WHERE id = $1 FOR UPDATE",
            &[&clinic_id],
        )
        .await?;
        let taken = tx
            .query(
                "SELECT code FROM devices WHERE clinic_id = $1",
                &[&clinic_id],
            )
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<std::collections::HashSet<_>>();
        if device.code.is_some() && !taken.is_empty() {
            return Err(StoreError::api(
                ErrorCode::ClinicHasDevices,
                "this clinic has PCs already: a PC with data of its own can't join it",
            ));
        }
        let code = match &device.code {
            Some(code) if taken.contains(code) => {
                return Err(StoreError::api(
                    ErrorCode::DeviceCodeTaken,
                    format!("device code {code} is taken in this clinic"),
                ))
            }
            Some(code) => code.clone(),
            None => (0..)
                .map(crate::new_device_code)
                .find(|c| !taken.contains(c))
                .unwrap_or_default(),
        };
        tx.execute(
            "INSERT INTO devices (id, clinic_id, code, name, token_hash, joined_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &device.id,
                &clinic_id,
                &code,
                &device.name,
                &device.token_hash,
                &now_ts,
            ],
        )
        .await?;
        tx.execute(
            // Handed over once, kept no longer (see the SQLite store).
            "UPDATE join_codes SET used_at = $2, used_by = $3, sealed = NULL WHERE code_hash = $1",
            &[&code_hash, &now_ts, &device.id],
        )
        .await?;
        let device_number = taken.len() as u32 + 1;
        tx.commit().await?;
        Ok(Joined {
            clinic_id,
            clinic_name,
            device_code: code,
            device_number,
            sealed,
        })
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT id, clinic_id, code, revoked_at IS NOT NULL FROM devices WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        Ok(row.map(|r| DeviceAuth {
            device_id: r.get(0),
            clinic_id: r.get(1),
            code: r.get(2),
            revoked: r.get(3),
        }))
    }

    async fn push(
        &self,
        device: &DeviceAuth,
        req: &PushRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<PushResponse> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now_ts = ts(now);
        // The device row's lock: two pushes of one device (a retry racing the original)
        // are taken one after the other.
        let last_seq: i64 = tx
            .query_one(
                "SELECT last_seq FROM devices WHERE id = $1 FOR UPDATE",
                &[&device.device_id],
            )
            .await?
            .get(0);
        let below: Vec<i64> = req
            .changes
            .iter()
            .map(|c| c.seq)
            .filter(|s| *s <= last_seq)
            .collect();
        let mut stored = std::collections::HashMap::new();
        if !below.is_empty() {
            for r in tx
                .query(
                    "SELECT seq, entity, entity_id, op, after, hlc, at, base FROM changes
                     WHERE device_id = $1 AND seq = ANY($2)",
                    &[&device.device_id, &below],
                )
                .await?
            {
                let op: String = r.get(3);
                stored.insert(
                    r.get::<_, i64>(0),
                    Change {
                        seq: r.get(0),
                        entity: r.get(1),
                        entity_id: r.get(2),
                        op: op_from(&op)?,
                        after: r.get(4),
                        hlc: r.get(5),
                        at: r.get(6),
                        base: r.get(7),
                    },
                );
            }
        }
        let (fresh, duplicates) = split_push(req, last_seq, |seq| Ok(stored.remove(&seq)))?;
        let n = fresh.len() as i64;
        let top: i64 = tx
            .query_one(
                "UPDATE clinics SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq",
                &[&device.clinic_id, &n],
            )
            .await?
            .get(0);
        if n > 0 {
            // One statement per table for the whole batch (arrays), not a round trip per row.
            let server_seqs: Vec<i64> = (0..n).map(|i| top - n + 1 + i).collect();
            let col =
                |f: &dyn Fn(&Change) -> String| fresh.iter().map(|c| f(c)).collect::<Vec<String>>();
            let opt = |f: &dyn Fn(&Change) -> Option<String>| {
                fresh.iter().map(|c| f(c)).collect::<Vec<Option<String>>>()
            };
            let seqs: Vec<i64> = fresh.iter().map(|c| c.seq).collect();
            tx.execute(
                "INSERT INTO changes (clinic_id, server_seq, device_id, seq, entity, entity_id, op, after, hlc, at, base)
                 SELECT $1, s, $2, q, e, i, o, a, h, t, b
                 FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
                             $9::text[], $10::text[], $11::text[]) AS x(s, q, e, i, o, a, h, t, b)",
                &[
                    &device.clinic_id,
                    &device.device_id,
                    &server_seqs,
                    &seqs,
                    &col(&|c| c.entity.clone()),
                    &col(&|c| c.entity_id.clone()),
                    &col(&|c| op_text(c.op).to_string()),
                    &opt(&|c| c.after.clone()),
                    &col(&|c| c.hlc.clone()),
                    &col(&|c| c.at.clone()),
                    &opt(&|c| c.base.clone()),
                ],
            )
            .await?;
            // Each row's greatest version in this batch (one statement can't touch a row twice).
            let mut latest: std::collections::BTreeMap<(&str, &str), &Change> = Default::default();
            for c in fresh
                .iter()
                .filter(|c| !clinic_sync_proto::NOT_REPLICATED.contains(&c.entity.as_str()))
            {
                let k = (c.entity.as_str(), c.entity_id.as_str());
                if latest
                    .get(&k)
                    .is_none_or(|old| old.hlc.as_str() <= c.hlc.as_str())
                {
                    latest.insert(k, c);
                }
            }
            let rows: Vec<&Change> = latest.into_values().collect();
            tx.execute(
                "INSERT INTO rows (clinic_id, entity, entity_id, after, hlc, device_id)
                 SELECT $1, e, i, a, h, $2 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS x(e, i, a, h)
                 ON CONFLICT (clinic_id, entity, entity_id) DO UPDATE
                 SET after = excluded.after, hlc = excluded.hlc, device_id = excluded.device_id
                 WHERE (rows.hlc, rows.device_id) < (excluded.hlc, excluded.device_id)",
                &[
                    &device.clinic_id,
                    &device.device_id,
                    &rows.iter().map(|c| c.entity.clone()).collect::<Vec<_>>(),
                    &rows.iter().map(|c| c.entity_id.clone()).collect::<Vec<_>>(),
                    // A deleted row's version stays as a tombstone without content.
                    &rows
                        .iter()
                        .map(|c| c.after.clone().filter(|_| c.op != clinic_sync_proto::Op::Delete))
                        .collect::<Vec<Option<String>>>(),
                    &rows.iter().map(|c| c.hlc.clone()).collect::<Vec<_>>(),
                ],
            )
            .await?;
        }
        let new_last = fresh.last().map(|c| c.seq).unwrap_or(last_seq);
        tx.execute(
            "UPDATE devices SET last_seq = $2, last_seen_at = $3 WHERE id = $1",
            &[&device.device_id, &new_last, &now_ts],
        )
        .await?;
        if let Some(head) = &req.audit_head {
            tx.execute(
                "INSERT INTO audit_heads (device_id, seq, hash, received_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device_id, seq) DO NOTHING",
                &[&device.device_id, &head.seq, &head.hash, &now_ts],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(PushResponse {
            stored: n as u32,
            duplicates,
            last_seq: new_last,
        })
    }

    async fn pull(
        &self,
        device: &DeviceAuth,
        after: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<PullResponse> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT c.server_seq, c.device_id, d.code, c.seq, c.entity, c.entity_id, c.op, c.after, c.hlc, c.at, c.base
                 FROM changes c JOIN devices d ON d.id = c.device_id
                 WHERE c.clinic_id = $1 AND c.server_seq > $2
                 ORDER BY c.server_seq LIMIT $3",
                &[&device.clinic_id, &after, &(limit as i64)],
            )
            .await?;
        let mut next = after;
        let mut changes = Vec::new();
        for r in &rows {
            next = r.get(0);
            let from: String = r.get(1);
            if from == device.device_id {
                continue;
            }
            let op: String = r.get(6);
            changes.push(PulledChange {
                server_seq: next,
                device_id: from,
                device_code: r.get(2),
                change: Change {
                    seq: r.get(3),
                    entity: r.get(4),
                    entity_id: r.get(5),
                    op: op_from(&op)?,
                    after: r.get(7),
                    hlc: r.get(8),
                    at: r.get(9),
                    base: r.get(10),
                },
            });
        }
        c.execute(
            "UPDATE devices SET last_seen_at = $2 WHERE id = $1",
            &[&device.device_id, &ts(now)],
        )
        .await?;
        Ok(PullResponse {
            changes,
            next,
            more: rows.len() as u32 == limit,
        })
    }

    async fn snapshot(
        &self,
        device: &DeviceAuth,
        after: Option<(String, String)>,
        only: Option<String>,
        limit: u32,
    ) -> StoreResult<SnapshotPage> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let clinic = &device.clinic_id;
        let as_of: i64 = tx
            .query_one("SELECT last_seq FROM clinics WHERE id = $1", &[clinic])
            .await?
            .get(0);
        let total: i64 = tx
            .query_one("SELECT count(*) FROM rows WHERE clinic_id = $1", &[clinic])
            .await?
            .get(0);
        let (e, i) = after.unwrap_or_else(|| (only.clone().unwrap_or_default(), String::new()));
        let rows: Vec<SnapshotRow> = tx
            .query(
                "SELECT entity, entity_id, after, hlc, device_id FROM rows
                 WHERE clinic_id = $1 AND (entity, entity_id) > ($2, $3) AND ($5::text IS NULL OR entity = $5)
                 ORDER BY entity, entity_id LIMIT $4",
                &[clinic, &e, &i, &(limit as i64), &only],
            )
            .await?
            .iter()
            .map(|r| SnapshotRow {
                entity: r.get(0),
                entity_id: r.get(1),
                after: r.get(2),
                hlc: r.get(3),
                device_id: r.get(4),
            })
            .collect();
        tx.commit().await?;
        let next = (rows.len() as u32 == limit)
            .then(|| rows.last().map(|r| crate::cursor(&r.entity, &r.entity_id)))
            .flatten();
        Ok(SnapshotPage {
            rows,
            next,
            as_of,
            total,
        })
    }

    async fn devices(&self, clinic_id: &str) -> StoreResult<Vec<Device>> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("SELECT {DEVICE_COLUMNS} WHERE clinic_id = $1 ORDER BY joined_at, id"),
                &[&clinic_id],
            )
            .await?
            .iter()
            .map(device_row)
            .collect())
    }

    async fn revoke(
        &self,
        clinic_id: &str,
        device_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Device> {
        let c = self.client().await?;
        c.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND clinic_id = $2",
            &[&device_id, &clinic_id, &ts(now)],
        )
        .await?;
        // Its join codes not yet used die with it (see the SQLite store).
        c.execute(
            "UPDATE join_codes SET expires_at = $3, sealed = NULL
             WHERE created_by = $1 AND clinic_id = $2 AND used_at IS NULL AND expires_at > $3",
            &[&device_id, &clinic_id, &ts(now)],
        )
        .await?;
        c.query_opt(
            &format!("SELECT {DEVICE_COLUMNS} WHERE id = $1 AND clinic_id = $2"),
            &[&device_id, &clinic_id],
        )
        .await?
        .map(|r| device_row(&r))
        .ok_or_else(|| StoreError::api(ErrorCode::NotFound, "no such device in this clinic"))
    }

    async fn audit_heads(&self, clinic_id: &str, device_id: &str) -> StoreResult<Vec<HeadRecord>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT h.seq, h.hash, h.received_at FROM audit_heads h
                 JOIN devices d ON d.id = h.device_id
                 WHERE h.device_id = $1 AND d.clinic_id = $2 ORDER BY h.seq",
                &[&device_id, &clinic_id],
            )
            .await?
            .iter()
            .map(|r| HeadRecord {
                seq: r.get(0),
                hash: r.get(1),
                received_at: r.get(2),
            })
            .collect())
    }

    async fn digest(&self, clinic_id: &str) -> StoreResult<String> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT entity, entity_id, after FROM rows WHERE clinic_id = $1 AND after IS NOT NULL ORDER BY entity, entity_id",
                &[&clinic_id],
            )
            .await?;
        let mut h = clinic_sync_proto::RowDigest::default();
        for r in &rows {
            h.add(r.get(0), r.get(1), r.get(2));
        }
        Ok(h.finish())
    }
}
