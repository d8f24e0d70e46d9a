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
use super::{
    page_cut, split_push, ts, BlobInfo, BlobPut, DeviceAuth, Joined, NewDevice, Store, StoreError,
    StoreResult,
};

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
CREATE TABLE IF NOT EXISTS blobs (
    clinic_id   TEXT NOT NULL REFERENCES clinics (id),
    device_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    size        BIGINT NOT NULL,
    chunks      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    complete_at TEXT,
    PRIMARY KEY (clinic_id, device_id, id)
);
CREATE TABLE IF NOT EXISTS blob_chunks (
    clinic_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    blob_id     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (clinic_id, device_id, blob_id, idx),
    FOREIGN KEY (clinic_id, device_id, blob_id) REFERENCES blobs (clinic_id, device_id, id)
);
CREATE TABLE IF NOT EXISTS blob_usage (
    clinic_id   TEXT PRIMARY KEY REFERENCES clinics (id),
    bytes       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS join_codes_expiry ON join_codes (expires_at) WHERE sealed IS NOT NULL;
CREATE INDEX IF NOT EXISTS join_codes_waiting ON join_codes (clinic_id, expires_at) WHERE used_at IS NULL;
CREATE TABLE IF NOT EXISTS audit_heads (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
-- Added since the first version (see the SQLite schema for what they mean).
ALTER TABLE changes ADD COLUMN IF NOT EXISTS size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN IF NOT EXISTS refused TEXT;
ALTER TABLE rows ADD COLUMN IF NOT EXISTS deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE rows ADD COLUMN IF NOT EXISTS size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rows ADD COLUMN IF NOT EXISTS base TEXT;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS joined_via TEXT;
"#;

/// This schema's version: 2 added sizes, refusals, tombstones' markers, bases and blobs.
const SCHEMA_VERSION: i32 = 2;

/// Once, for a database made by an earlier version: sizes, tombstones' sealed markers, bases.
const UPGRADE: &str = r#"
UPDATE changes SET size = coalesce(length(after), 0) + coalesce(length(base), 0)
 WHERE size = 0 AND (after IS NOT NULL OR base IS NOT NULL);
UPDATE rows SET deleted = TRUE, after = (
    SELECT c.after FROM changes c
    WHERE c.clinic_id = rows.clinic_id AND c.entity = rows.entity AND c.entity_id = rows.entity_id
      AND c.hlc = rows.hlc AND c.device_id = rows.device_id AND c.op = 'delete' LIMIT 1)
 WHERE after IS NULL AND NOT deleted;
UPDATE rows SET size = coalesce(length(after), 0) WHERE size = 0 AND after IS NOT NULL;
UPDATE rows SET base = (
    SELECT c.base FROM changes c
    WHERE c.clinic_id = rows.clinic_id AND c.entity = rows.entity AND c.entity_id = rows.entity_id
      AND c.hlc = rows.hlc AND c.device_id = rows.device_id LIMIT 1)
 WHERE base IS NULL;
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
        // Once per database: what the first version left without sizes, markers or bases.
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (v INTEGER NOT NULL)")
            .await?;
        let v: i32 = tx
            .query_one("SELECT coalesce(max(v), 0) FROM schema_version", &[])
            .await?
            .get(0);
        if v < SCHEMA_VERSION {
            tx.batch_execute(UPGRADE).await?;
            tx.execute(
                "INSERT INTO schema_version (v) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await?;
        }
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
        joined_via: r.get(7),
    }
}

const DEVICE_COLUMNS: &str =
    "id, code, name, joined_at, last_seen_at, revoked_at, last_seq, joined_via FROM devices";

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
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The maker's row, locked against a revoke running now: a revoked device makes no
        // code, and a revoke waits for this one and then kills it.
        if let Some(by) = by_device {
            let ok = tx
                .query_opt(
                    "SELECT 1 FROM devices WHERE id = $1 AND clinic_id = $2 AND revoked_at IS NULL FOR SHARE",
                    &[&by, &clinic_id],
                )
                .await?
                .is_some();
            if !ok {
                return Err(StoreError::api(
                    ErrorCode::Revoked,
                    "this device was revoked",
                ));
            }
        }
        let waiting: i64 = tx
            .query_one(
                "SELECT count(*) FROM join_codes
                 WHERE clinic_id = $1 AND used_at IS NULL AND expires_at > $2",
                &[&clinic_id, &ts(now)],
            )
            .await?
            .get(0);
        if waiting >= super::MAX_LIVE_JOIN_CODES {
            return Err(super::too_many_codes());
        }
        tx.execute(
            "INSERT INTO join_codes (code_hash, clinic_id, sealed, expires_at, created_by)
             VALUES ($1, $2, $3, $4, $5)",
            &[&code_hash, &clinic_id, &sealed, &ts(expires_at), &by_device],
        )
        .await?;
        tx.commit().await?;
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
                "SELECT j.clinic_id, j.sealed, c.name, j.created_by FROM join_codes j
                 JOIN clinics c ON c.id = j.clinic_id
                 WHERE j.code_hash = $1 AND j.used_at IS NULL AND j.expires_at > $2
                 FOR UPDATE OF j",
                &[&code_hash, &now_ts],
            )
            .await?;
        let invalid = || {
            StoreError::api(
                ErrorCode::JoinCodeInvalid,
                "unknown, used or expired join code",
            )
        };
        let Some(found) = found else {
            return Err(invalid());
        };
        let (clinic_id, sealed, clinic_name, maker): (
            String,
            Option<String>,
            String,
            Option<String>,
        ) = (found.get(0), found.get(1), found.get(2), found.get(3));
        // The maker's row, locked (FOR SHARE): a revoke runs wholly before this (the code is
        // dead) or after it (the join came first); a code whose maker is revoked joins nobody.
        if let Some(maker) = &maker {
            let alive = tx
                .query_opt(
                    "SELECT 1 FROM devices WHERE id = $1 AND revoked_at IS NULL FOR SHARE",
                    &[&maker],
                )
                .await?
                .is_some();
            if !alive {
                return Err(invalid());
            }
        }
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
        let live: i64 = tx
            .query_one(
                "SELECT count(*) FROM devices WHERE clinic_id = $1 AND revoked_at IS NULL",
                &[&clinic_id],
            )
            .await?
            .get(0);
        if live >= super::MAX_DEVICES {
            return Err(super::too_many_devices());
        }
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
            "INSERT INTO devices (id, clinic_id, code, name, token_hash, joined_at, joined_via)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &device.id,
                &clinic_id,
                &code,
                &device.name,
                &device.token_hash,
                &now_ts,
                &maker,
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
        // Revoked since the request was let in: nothing is stored.
        let row = tx
            .query_opt(
                "SELECT last_seq, revoked_at IS NOT NULL FROM devices WHERE id = $1 FOR UPDATE",
                &[&device.device_id],
            )
            .await?;
        let last_seq: i64 = match row {
            Some(r) if !r.get::<_, bool>(1) => r.get(0),
            _ => {
                return Err(StoreError::api(
                    ErrorCode::Revoked,
                    "this device was revoked",
                ))
            }
        };
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
        let now_t = now;
        let why: Vec<Option<String>> = fresh
            .iter()
            .map(|c| super::refusal(c, now_t).map(str::to_string))
            .collect();
        let refused: Vec<i64> = fresh
            .iter()
            .zip(&why)
            .filter(|(_, w)| w.is_some())
            .map(|(c, _)| c.seq)
            .collect();
        if n > 0 {
            // One statement per table for the whole batch (arrays), not a round trip per row.
            let server_seqs: Vec<i64> = (0..n).map(|i| top - n + 1 + i).collect();
            let col =
                |f: &dyn Fn(&Change) -> String| fresh.iter().map(|c| f(c)).collect::<Vec<String>>();
            let opt = |f: &dyn Fn(&Change) -> Option<String>| {
                fresh.iter().map(|c| f(c)).collect::<Vec<Option<String>>>()
            };
            let seqs: Vec<i64> = fresh.iter().map(|c| c.seq).collect();
            let sizes: Vec<i64> = fresh.iter().map(|c| super::change_size(c) as i64).collect();
            tx.execute(
                "INSERT INTO changes (clinic_id, server_seq, device_id, seq, entity, entity_id, op, after, hlc, at, base, size, refused)
                 SELECT $1, s, $2, q, e, i, o, a, h, t, b, z, r
                 FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
                             $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[])
                      AS x(s, q, e, i, o, a, h, t, b, z, r)",
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
                    &sizes,
                    &why,
                ],
            )
            .await?;
            // Each row's greatest version in this batch (one statement can't touch a row twice).
            let mut latest: std::collections::BTreeMap<(&str, &str), &Change> = Default::default();
            for c in fresh
                .iter()
                .zip(&why)
                .filter(|(c, w)| {
                    w.is_none() && !clinic_sync_proto::NOT_REPLICATED.contains(&c.entity.as_str())
                })
                .map(|(c, _)| c)
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
                "INSERT INTO rows (clinic_id, entity, entity_id, after, hlc, device_id, deleted, size, base)
                 SELECT $1, e, i, a, h, $2, d, z, b
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::bigint[], $9::text[])
                      AS x(e, i, a, h, d, z, b)
                 ON CONFLICT (clinic_id, entity, entity_id) DO UPDATE
                 SET after = excluded.after, hlc = excluded.hlc, device_id = excluded.device_id,
                     deleted = excluded.deleted, size = excluded.size, base = excluded.base
                 WHERE (rows.hlc, rows.device_id) < (excluded.hlc, excluded.device_id)",
                &[
                    &device.clinic_id,
                    &device.device_id,
                    &rows.iter().map(|c| c.entity.clone()).collect::<Vec<_>>(),
                    &rows.iter().map(|c| c.entity_id.clone()).collect::<Vec<_>>(),
                    // A deleted row keeps its sealed marker: a PC deletes nothing without it.
                    &rows.iter().map(|c| c.after.clone()).collect::<Vec<Option<String>>>(),
                    &rows.iter().map(|c| c.hlc.clone()).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|c| c.op == clinic_sync_proto::Op::Delete)
                        .collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|c| c.after.as_ref().map_or(0, String::len) as i64)
                        .collect::<Vec<_>>(),
                    &rows.iter().map(|c| c.base.clone()).collect::<Vec<Option<String>>>(),
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
            refused,
        })
    }

    async fn pull(
        &self,
        device: &DeviceAuth,
        after: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<PullResponse> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // First the sizes only, then the content of what fits.
        let heads = tx
            .query(
                "SELECT server_seq, device_id, size, refused IS NOT NULL FROM changes
                 WHERE clinic_id = $1 AND server_seq > $2 ORDER BY server_seq LIMIT $3",
                &[&device.clinic_id, &after, &(limit as i64)],
            )
            .await?;
        let cut = page_cut(
            heads.iter().map(|r| {
                let from: &str = r.get(1);
                (
                    r.get::<_, i64>(0),
                    r.get::<_, bool>(3) || from == device.device_id,
                    r.get::<_, i64>(2) as usize,
                )
            }),
            after,
            limit,
        );
        let mut changes = Vec::with_capacity(cut.taken);
        if cut.taken > 0 {
            for r in tx
                .query(
                    "SELECT c.server_seq, c.device_id, d.code, c.seq, c.entity, c.entity_id, c.op, c.after, c.hlc, c.at, c.base
                     FROM changes c JOIN devices d ON d.id = c.device_id
                     WHERE c.clinic_id = $1 AND c.server_seq > $2 AND c.server_seq <= $3
                       AND c.device_id <> $4 AND c.refused IS NULL
                     ORDER BY c.server_seq",
                    &[&device.clinic_id, &after, &cut.next, &device.device_id],
                )
                .await?
            {
                let op: String = r.get(6);
                changes.push(PulledChange {
                    server_seq: r.get(0),
                    device_id: r.get(1),
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
        }
        tx.commit().await?;
        // Seen: noted at most once a minute (a pull is a read otherwise).
        c.execute(
            "UPDATE devices SET last_seen_at = $2 WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $3)",
            &[
                &device.device_id,
                &ts(now),
                &ts(now - chrono::Duration::seconds(60)),
            ],
        )
        .await?;
        Ok(PullResponse {
            changes,
            next: cut.next,
            more: cut.more,
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
        // Counted only for a table's first page (a count is a scan of the clinic).
        let total: i64 = if after.is_none() {
            tx.query_one("SELECT count(*) FROM rows WHERE clinic_id = $1", &[clinic])
                .await?
                .get(0)
        } else {
            0
        };
        let (e, i) = after.unwrap_or_else(|| (only.clone().unwrap_or_default(), String::new()));
        let keys = tx
            .query(
                "SELECT entity, entity_id, size FROM rows
                 WHERE clinic_id = $1 AND (entity, entity_id) > ($2, $3) AND ($5::text IS NULL OR entity = $5)
                 ORDER BY entity, entity_id LIMIT $4",
                &[clinic, &e, &i, &(limit as i64), &only],
            )
            .await?;
        let n = super::fitting(keys.iter().map(|r| r.get::<_, i64>(2) as usize));
        let rows: Vec<SnapshotRow> = match keys.get(n.saturating_sub(1)) {
            None => vec![],
            Some(last) => {
                let (le, li): (&str, &str) = (last.get(0), last.get(1));
                tx.query(
                    "SELECT entity, entity_id, after, hlc, device_id, base FROM rows
                     WHERE clinic_id = $1 AND (entity, entity_id) > ($2, $3)
                       AND (entity, entity_id) <= ($4, $5) AND ($6::text IS NULL OR entity = $6)
                     ORDER BY entity, entity_id",
                    &[clinic, &e, &i, &le, &li, &only],
                )
                .await?
                .iter()
                .map(|r| SnapshotRow {
                    entity: r.get(0),
                    entity_id: r.get(1),
                    after: r.get(2),
                    hlc: r.get(3),
                    device_id: r.get(4),
                    base: r.get(5),
                })
                .collect()
            }
        };
        tx.commit().await?;
        let next = (n < keys.len() || keys.len() as u32 == limit)
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
        let mut c = self.client().await?;
        // One transaction: the device and every code it made die together. The device row's
        // lock waits for a code being added or redeemed under it (they hold it FOR SHARE).
        // Locks are taken in a redeem's order, the codes before the device, so the two never
        // wait on each other (a deadlock); a code added meanwhile is caught by the update below.
        let tx = c.transaction().await?;
        tx.execute(
            "SELECT 1 FROM join_codes WHERE created_by = $1 AND clinic_id = $2 AND used_at IS NULL FOR UPDATE",
            &[&device_id, &clinic_id],
        )
        .await?;
        tx.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND clinic_id = $2",
            &[&device_id, &clinic_id, &ts(now)],
        )
        .await?;
        tx.execute(
            "UPDATE join_codes SET expires_at = least(expires_at, $3), sealed = NULL
             WHERE created_by = $1 AND clinic_id = $2 AND used_at IS NULL",
            &[&device_id, &clinic_id, &ts(now)],
        )
        .await?;
        let d = tx
            .query_opt(
                &format!("SELECT {DEVICE_COLUMNS} WHERE id = $1 AND clinic_id = $2"),
                &[&device_id, &clinic_id],
            )
            .await?
            .map(|r| device_row(&r))
            .ok_or_else(|| StoreError::api(ErrorCode::NotFound, "no such device in this clinic"))?;
        tx.commit().await?;
        Ok(d)
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
        use futures_util::TryStreamExt;
        let c = self.client().await?;
        // Streamed row by row: a clinic of millions of rows is never in memory at once.
        let stream = c
            .query_raw(
                "SELECT entity, entity_id, after FROM rows
                 WHERE clinic_id = $1 AND NOT deleted AND after IS NOT NULL ORDER BY entity, entity_id",
                [clinic_id],
            )
            .await?;
        futures_util::pin_mut!(stream);
        let mut h = clinic_sync_proto::RowDigest::default();
        while let Some(r) = stream.try_next().await? {
            h.add(r.get(0), r.get(1), r.get(2));
        }
        Ok(h.finish())
    }

    async fn blob_put(&self, device: &DeviceAuth, put: BlobPut) -> StoreResult<BlobInfo> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The device's row, locked against a revoke running now: a revoked device puts nothing.
        let alive = tx
            .query_opt(
                "SELECT 1 FROM devices WHERE id = $1 AND clinic_id = $2 AND revoked_at IS NULL FOR SHARE",
                &[&device.device_id, &device.clinic_id],
            )
            .await?
            .is_some();
        if !alive {
            return Err(StoreError::api(
                ErrorCode::Revoked,
                "this device was revoked",
            ));
        }
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&device.clinic_id, &device.device_id, &put.id];
        let known = tx
            .query_opt(
                "SELECT size, chunks FROM blobs WHERE clinic_id = $1 AND device_id = $2 AND id = $3",
                &key,
            )
            .await?;
        match known {
            Some(r) => {
                if r.get::<_, i64>(0) != put.size as i64 || r.get::<_, i32>(1) != put.chunks as i32
                {
                    return Err(StoreError::api(
                        ErrorCode::BadRequest,
                        "this blob was announced with another size",
                    ));
                }
            }
            None => {
                tx.execute(
                    "INSERT INTO blobs (clinic_id, device_id, id, size, chunks, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &device.clinic_id,
                        &device.device_id,
                        &put.id,
                        &(put.size as i64),
                        &(put.chunks as i32),
                        &ts(put.now),
                    ],
                )
                .await?;
            }
        }
        let have_it = tx
            .query_opt(
                "SELECT 1 FROM blob_chunks
                 WHERE clinic_id = $1 AND device_id = $2 AND blob_id = $3 AND idx = $4",
                &[
                    &device.clinic_id,
                    &device.device_id,
                    &put.id,
                    &(put.index as i32),
                ],
            )
            .await?
            .is_some();
        if !have_it {
            // The usage row's lock orders chunks of one clinic, so the quota holds under races.
            tx.execute(
                "INSERT INTO blob_usage (clinic_id, bytes) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&device.clinic_id],
            )
            .await?;
            let used: i64 = tx
                .query_one(
                    "SELECT bytes FROM blob_usage WHERE clinic_id = $1 FOR UPDATE",
                    &[&device.clinic_id],
                )
                .await?
                .get(0);
            if used.saturating_add(put.data.len() as i64) > put.quota as i64 {
                return Err(StoreError::api(
                    ErrorCode::QuotaExceeded,
                    "the clinic's file storage on this server is full",
                ));
            }
            let inserted = tx
                .execute(
                    "INSERT INTO blob_chunks (clinic_id, device_id, blob_id, idx, data)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &device.clinic_id,
                        &device.device_id,
                        &put.id,
                        &(put.index as i32),
                        &put.data,
                    ],
                )
                .await?;
            if inserted > 0 {
                tx.execute(
                    "UPDATE blob_usage SET bytes = bytes + $2 WHERE clinic_id = $1",
                    &[&device.clinic_id, &(put.data.len() as i64)],
                )
                .await?;
            }
        }
        let have: Vec<u32> = tx
            .query(
                "SELECT idx FROM blob_chunks WHERE clinic_id = $1 AND device_id = $2 AND blob_id = $3 ORDER BY idx",
                &key,
            )
            .await?
            .iter()
            .map(|r| r.get::<_, i32>(0) as u32)
            .collect();
        if have.len() as u32 == put.chunks {
            tx.execute(
                "UPDATE blobs SET complete_at = coalesce(complete_at, $4)
                 WHERE clinic_id = $1 AND device_id = $2 AND id = $3",
                &[&device.clinic_id, &device.device_id, &put.id, &ts(put.now)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(BlobInfo {
            size: put.size,
            chunks: put.chunks,
            have,
        })
    }

    async fn blob_info(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
    ) -> StoreResult<Option<BlobInfo>> {
        let c = self.client().await?;
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&clinic_id, &device_id, &id];
        let Some(r) = c
            .query_opt(
                "SELECT size, chunks FROM blobs WHERE clinic_id = $1 AND device_id = $2 AND id = $3",
                &key,
            )
            .await?
        else {
            return Ok(None);
        };
        let have = c
            .query(
                "SELECT idx FROM blob_chunks WHERE clinic_id = $1 AND device_id = $2 AND blob_id = $3 ORDER BY idx",
                &key,
            )
            .await?
            .iter()
            .map(|r| r.get::<_, i32>(0) as u32)
            .collect();
        Ok(Some(BlobInfo {
            size: r.get::<_, i64>(0) as u64,
            chunks: r.get::<_, i32>(1) as u32,
            have,
        }))
    }

    async fn blob_chunk(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
        index: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT data FROM blob_chunks
                 WHERE clinic_id = $1 AND device_id = $2 AND blob_id = $3 AND idx = $4",
                &[&clinic_id, &device_id, &id, &(index as i32)],
            )
            .await?
            .map(|r| r.get(0)))
    }
}
