//! The embedded backend: one SQLite file in the server's folder, one connection, calls on
//! tokio's blocking pool. SQLite runs one write at a time, which gives the server order for
//! free.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use clinic_sync_proto::{
    Change, Device, ErrorCode, HeadRecord, Op, PullResponse, PulledChange, PushRequest,
    PushResponse, SnapshotPage, SnapshotRow,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{split_push, ts, DeviceAuth, Joined, NewDevice, Store, StoreError, StoreResult};

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(include_str!("schema_sqlite.sql"))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn
                .lock()
                .map_err(|_| StoreError::Db("connection lock poisoned".into()))?;
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))?
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

pub(crate) fn op_from(s: &str) -> StoreResult<Op> {
    match s {
        "insert" => Ok(Op::Insert),
        "update" => Ok(Op::Update),
        "delete" => Ok(Op::Delete),
        other => Err(StoreError::Db(format!("unknown op {other}"))),
    }
}

const DEVICE_COLUMNS: &str =
    "id, code, name, joined_at, last_seen_at, revoked_at, last_seq FROM devices";

fn device_row(r: &rusqlite::Row) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        joined_at: r.get(3)?,
        last_seen_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_seq: r.get(6)?,
    })
}

impl Store for SqliteStore {
    async fn create_clinic(&self, name: &str, now: DateTime<Utc>) -> StoreResult<String> {
        let (id, name) = (uuid::Uuid::now_v7().to_string(), name.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO clinics (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id, name, ts(now)],
            )?;
            Ok(id)
        })
        .await
    }

    async fn add_join_code(
        &self,
        clinic_id: &str,
        code_hash: &str,
        sealed: Option<&str>,
        expires_at: DateTime<Utc>,
        by_device: Option<&str>,
    ) -> StoreResult<()> {
        let args = (
            code_hash.to_string(),
            clinic_id.to_string(),
            sealed.map(str::to_string),
            ts(expires_at),
            by_device.map(str::to_string),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO join_codes (code_hash, clinic_id, sealed, expires_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![args.0, args.1, args.2, args.3, args.4],
            )?;
            Ok(())
        })
        .await
    }

    async fn forget_expired_invitations(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = ts(now);
        self.run(move |c| {
            Ok(c.execute(
                "UPDATE join_codes SET sealed = NULL WHERE sealed IS NOT NULL AND expires_at <= ?1",
                [now],
            )? as u64)
        })
        .await
    }

    async fn redeem(
        &self,
        code_hash: &str,
        device: NewDevice,
        now: DateTime<Utc>,
    ) -> StoreResult<Joined> {
        let code_hash = code_hash.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_ts = ts(now);
            let found: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT clinic_id, sealed FROM join_codes
                     WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                    params![code_hash, now_ts],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((clinic_id, sealed)) = found else {
                return Err(StoreError::api(
                    ErrorCode::JoinCodeInvalid,
                    "unknown, used or expired join code",
                ));
            };
            let clinic_name: String = tx.query_row(
                "SELECT name FROM clinics WHERE id = ?1",
                [&clinic_id],
                |r| r.get(0),
            )?;
            let taken = |code: &str| -> StoreResult<bool> {
                Ok(tx
                    .query_row(
                        "SELECT 1 FROM devices WHERE clinic_id = ?1 AND code = ?2",
                        params![clinic_id, code],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some())
            };
            let devices: i64 = tx.query_row(
                "SELECT count(*) FROM devices WHERE clinic_id = ?1",
                [&clinic_id],
                |r| r.get(0),
            )?;
            if device.code.is_some() && devices > 0 {
                return Err(StoreError::api(
                    ErrorCode::ClinicHasDevices,
                    "this clinic has PCs already: a PC with data of its own can't join it",
                ));
            }
            let code = match &device.code {
                Some(code) if taken(code)? => {
                    return Err(StoreError::api(
                        ErrorCode::DeviceCodeTaken,
                        format!("device code {code} is taken in this clinic"),
                    ))
                }
                Some(code) => code.clone(),
                None => {
                    let mut n = 0;
                    loop {
                        let code = crate::new_device_code(n);
                        if !taken(&code)? {
                            break code;
                        }
                        n += 1;
                    }
                }
            };
            tx.execute(
                "INSERT INTO devices (id, clinic_id, code, name, token_hash, joined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device.id,
                    clinic_id,
                    code,
                    device.name,
                    device.token_hash,
                    now_ts
                ],
            )?;
            tx.execute(
                // The sealed invitation is handed over once and kept no longer: a copy of
                // the server's files taken later can't open it with the code.
                "UPDATE join_codes SET used_at = ?2, used_by = ?3, sealed = NULL WHERE code_hash = ?1",
                params![code_hash, now_ts, device.id],
            )?;
            let device_number: u32 = tx.query_row(
                "SELECT count(*) FROM devices WHERE clinic_id = ?1",
                [&clinic_id],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(Joined {
                clinic_id,
                clinic_name,
                device_code: code,
                device_number,
                sealed,
            })
        })
        .await
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        let token_hash = token_hash.to_string();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT id, clinic_id, code, revoked_at IS NOT NULL FROM devices WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(DeviceAuth {
                        device_id: r.get(0)?,
                        clinic_id: r.get(1)?,
                        code: r.get(2)?,
                        revoked: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn push(
        &self,
        device: &DeviceAuth,
        req: &PushRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<PushResponse> {
        let (device, req) = (device.clone(), req.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_ts = ts(now);
            let last_seq: i64 = tx.query_row(
                "SELECT last_seq FROM devices WHERE id = ?1",
                [&device.device_id],
                |r| r.get(0),
            )?;
            let (fresh, duplicates) = {
                let mut stmt = tx.prepare_cached(
                    "SELECT seq, entity, entity_id, op, after, hlc, at, base FROM changes
                     WHERE device_id = ?1 AND seq = ?2",
                )?;
                split_push(&req, last_seq, |seq| {
                    stmt.query_row(params![device.device_id, seq], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ))
                    })
                    .optional()?
                    .map(|(seq, entity, entity_id, op, after, hlc, at, base)| {
                        Ok(Change {
                            seq,
                            entity,
                            entity_id,
                            op: op_from(&op)?,
                            after,
                            hlc,
                            at,
                            base,
                        })
                    })
                    .transpose()
                })?
            };
            let n = fresh.len() as i64;
            let top: i64 = tx.query_row(
                "UPDATE clinics SET last_seq = last_seq + ?2 WHERE id = ?1 RETURNING last_seq",
                params![device.clinic_id, n],
                |r| r.get(0),
            )?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO changes (clinic_id, server_seq, device_id, seq, entity, entity_id, op, after, hlc, at, base)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                let mut row = tx.prepare_cached(
                    "INSERT INTO rows (clinic_id, entity, entity_id, after, hlc, device_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (clinic_id, entity, entity_id) DO UPDATE
                     SET after = excluded.after, hlc = excluded.hlc, device_id = excluded.device_id
                     WHERE (rows.hlc, rows.device_id) < (excluded.hlc, excluded.device_id)",
                )?;
                for (i, ch) in fresh.iter().enumerate() {
                    let server_seq = top - n + 1 + i as i64;
                    ins.execute(params![
                        device.clinic_id,
                        server_seq,
                        device.device_id,
                        ch.seq,
                        ch.entity,
                        ch.entity_id,
                        op_text(ch.op),
                        ch.after,
                        ch.hlc,
                        ch.at,
                        ch.base
                    ])?;
                    if clinic_sync_proto::NOT_REPLICATED.contains(&ch.entity.as_str()) {
                        continue;
                    }
                    // A deleted row's version stays as a tombstone without content.
                    let content = (ch.op != Op::Delete).then_some(&ch.after);
                    row.execute(params![
                        device.clinic_id,
                        ch.entity,
                        ch.entity_id,
                        content.cloned().flatten(),
                        ch.hlc,
                        device.device_id
                    ])?;
                }
            }
            let new_last = fresh.last().map(|c| c.seq).unwrap_or(last_seq);
            tx.execute(
                "UPDATE devices SET last_seq = ?2, last_seen_at = ?3 WHERE id = ?1",
                params![device.device_id, new_last, now_ts],
            )?;
            if let Some(head) = &req.audit_head {
                tx.execute(
                    "INSERT INTO audit_heads (device_id, seq, hash, received_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (device_id, seq) DO NOTHING",
                    params![device.device_id, head.seq, head.hash, now_ts],
                )?;
            }
            tx.commit()?;
            Ok(PushResponse {
                stored: fresh.len() as u32,
                duplicates,
                last_seq: new_last,
            })
        })
        .await
    }

    async fn pull(
        &self,
        device: &DeviceAuth,
        after: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<PullResponse> {
        let device = device.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let mut scanned = 0u32;
            let mut next = after;
            let mut changes = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT c.server_seq, c.device_id, d.code, c.seq, c.entity, c.entity_id, c.op, c.after, c.hlc, c.at, c.base
                     FROM changes c JOIN devices d ON d.id = c.device_id
                     WHERE c.clinic_id = ?1 AND c.server_seq > ?2
                     ORDER BY c.server_seq LIMIT ?3",
                )?;
                let mut rows = stmt.query(params![device.clinic_id, after, limit])?;
                while let Some(r) = rows.next()? {
                    scanned += 1;
                    next = r.get(0)?;
                    let from: String = r.get(1)?;
                    if from == device.device_id {
                        continue;
                    }
                    let op: String = r.get(6)?;
                    changes.push(PulledChange {
                        server_seq: next,
                        device_id: from,
                        device_code: r.get(2)?,
                        change: Change {
                            seq: r.get(3)?,
                            entity: r.get(4)?,
                            entity_id: r.get(5)?,
                            op: op_from(&op)?,
                            after: r.get(7)?,
                            hlc: r.get(8)?,
                            at: r.get(9)?,
                            base: r.get(10)?,
                        },
                    });
                }
            }
            tx.execute(
                "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1",
                params![device.device_id, ts(now)],
            )?;
            tx.commit()?;
            Ok(PullResponse {
                changes,
                next,
                more: scanned == limit,
            })
        })
        .await
    }

    async fn snapshot(
        &self,
        device: &DeviceAuth,
        after: Option<(String, String)>,
        only: Option<String>,
        limit: u32,
    ) -> StoreResult<SnapshotPage> {
        let clinic = device.clinic_id.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let as_of: i64 = tx.query_row(
                "SELECT last_seq FROM clinics WHERE id = ?1",
                [&clinic],
                |r| r.get(0),
            )?;
            let total: i64 = tx.query_row(
                "SELECT count(*) FROM rows WHERE clinic_id = ?1",
                [&clinic],
                |r| r.get(0),
            )?;
            let (e, i) = after.unwrap_or_else(|| (only.clone().unwrap_or_default(), String::new()));
            let mut stmt = tx.prepare_cached(
                "SELECT entity, entity_id, after, hlc, device_id FROM rows
                 WHERE clinic_id = ?1 AND (entity, entity_id) > (?2, ?3) AND (?5 IS NULL OR entity = ?5)
                 ORDER BY entity, entity_id LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(params![clinic, e, i, limit, only], |r| {
                    Ok(SnapshotRow {
                        entity: r.get(0)?,
                        entity_id: r.get(1)?,
                        after: r.get(2)?,
                        hlc: r.get(3)?,
                        device_id: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let next = (rows.len() as u32 == limit)
                .then(|| rows.last().map(|r| crate::cursor(&r.entity, &r.entity_id)))
                .flatten();
            Ok(SnapshotPage {
                rows,
                next,
                as_of,
                total,
            })
        })
        .await
    }

    async fn devices(&self, clinic_id: &str) -> StoreResult<Vec<Device>> {
        let clinic = clinic_id.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} WHERE clinic_id = ?1 ORDER BY joined_at, id"
            ))?;
            let v = stmt
                .query_map([clinic], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }

    async fn revoke(
        &self,
        clinic_id: &str,
        device_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Device> {
        let (clinic, id) = (clinic_id.to_string(), device_id.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?3)
                 WHERE id = ?1 AND clinic_id = ?2",
                params![id, clinic, ts(now)],
            )?;
            // Its join codes not yet used die with it: a device about to be revoked can't
            // keep a way back in.
            c.execute(
                "UPDATE join_codes SET expires_at = ?3, sealed = NULL
                 WHERE created_by = ?1 AND clinic_id = ?2 AND used_at IS NULL AND expires_at > ?3",
                params![id, clinic, ts(now)],
            )?;
            c.query_row(
                &format!("SELECT {DEVICE_COLUMNS} WHERE id = ?1 AND clinic_id = ?2"),
                params![id, clinic],
                device_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::api(ErrorCode::NotFound, "no such device in this clinic"))
        })
        .await
    }

    async fn audit_heads(&self, clinic_id: &str, device_id: &str) -> StoreResult<Vec<HeadRecord>> {
        let (clinic, id) = (clinic_id.to_string(), device_id.to_string());
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT h.seq, h.hash, h.received_at FROM audit_heads h
                 JOIN devices d ON d.id = h.device_id
                 WHERE h.device_id = ?1 AND d.clinic_id = ?2 ORDER BY h.seq",
            )?;
            let v = stmt
                .query_map(params![id, clinic], |r| {
                    Ok(HeadRecord {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        received_at: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
    }

    async fn digest(&self, clinic_id: &str) -> StoreResult<String> {
        let clinic = clinic_id.to_string();
        self.run(move |c| {
            let mut h = clinic_sync_proto::RowDigest::default();
            let mut stmt = c.prepare_cached(
                "SELECT entity, entity_id, after FROM rows WHERE clinic_id = ?1 AND after IS NOT NULL ORDER BY entity, entity_id",
            )?;
            let mut rows = stmt.query([clinic])?;
            while let Some(r) = rows.next()? {
                let (e, i, a): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                h.add(&e, &i, &a);
            }
            Ok(h.finish())
        })
        .await
    }
}
