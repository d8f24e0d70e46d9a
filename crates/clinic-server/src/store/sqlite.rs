//! The embedded backend: one SQLite file in the server's folder. One writer connection (SQLite
//! runs one write at a time, which gives the server order for free) and a few readers beside
//! it (WAL): a clinic's long read (a download page, a digest) never waits for another
//! clinic's push, and no read waits for a write. Calls run on tokio's blocking pool.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use clinic_sync_proto::{
    Change, Device, ErrorCode, HeadRecord, Op, PullResponse, PulledChange, PushRequest,
    PushResponse, SnapshotPage, SnapshotRow,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    page_cut, split_push, ts, BlobInfo, BlobPut, DeviceAuth, Joined, NewDevice, Store, StoreError,
    StoreResult,
};

#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    /// A reader of its own for token lookups: every request's first step never queues
    /// behind a clinic's pages.
    auth: Arc<Mutex<Connection>>,
}

/// Readers beside the writer: enough for the blocking pool's share of concurrent reads on a
/// small server; more only queue for the disk.
const READERS: usize = 4;

fn lock(m: &Mutex<Connection>) -> StoreResult<std::sync::MutexGuard<'_, Connection>> {
    m.lock()
        .map_err(|_| StoreError::Db("connection lock poisoned".into()))
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(include_str!("schema_sqlite.sql"))?;
        upgrade(&conn)?;
        let reader = || -> StoreResult<Connection> {
            let r = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            Ok(r)
        };
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(reader()?));
        }
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            auth: Arc::new(Mutex::new(reader()?)),
        })
    }

    /// A write, on the one writer connection.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || f(&mut *lock(&conn)?))
            .await
            .map_err(|e| StoreError::Db(e.to_string()))?
    }

    /// A read, on a free reader connection (or the next one's queue when all are busy).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (readers, next) = (self.readers.clone(), self.next_reader.clone());
        tokio::task::spawn_blocking(move || {
            for r in readers.iter() {
                if let Ok(mut c) = r.try_lock() {
                    return f(&mut c);
                }
            }
            let i = next.fetch_add(1, Ordering::Relaxed) % readers.len();
            f(&mut *lock(&readers[i])?)
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))?
    }
}

/// Brings a server file made by an earlier version up to this schema (columns added since).
fn upgrade(c: &Connection) -> StoreResult<()> {
    let has = |table: &str, col: &str| -> StoreResult<bool> {
        Ok(
            c.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
                .exists([table, col])?,
        )
    };
    if !has("changes", "size")? {
        c.execute_batch(
            "BEGIN;
             ALTER TABLE changes ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE changes ADD COLUMN refused TEXT;
             UPDATE changes SET size = coalesce(length(after), 0) + coalesce(length(base), 0);
             COMMIT;",
        )?;
    }
    if !has("rows", "deleted")? {
        // Tombstones kept no content before: they get their sealed marker back from the
        // change that made them (a PC refuses a tombstone without one).
        c.execute_batch(
            "BEGIN;
             ALTER TABLE rows ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE rows ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
             UPDATE rows SET deleted = 1, after = (
                 SELECT c.after FROM changes c
                 WHERE c.clinic_id = rows.clinic_id AND c.entity = rows.entity
                   AND c.entity_id = rows.entity_id AND c.hlc = rows.hlc
                   AND c.device_id = rows.device_id AND c.op = 'delete')
             WHERE after IS NULL;
             UPDATE rows SET size = coalesce(length(after), 0);
             COMMIT;",
        )?;
    }
    if !has("devices", "joined_via")? {
        c.execute_batch("ALTER TABLE devices ADD COLUMN joined_via TEXT;")?;
    }
    if !has("rows", "base")? {
        c.execute_batch(
            "BEGIN;
             ALTER TABLE rows ADD COLUMN base TEXT;
             UPDATE rows SET base = (
                 SELECT c.base FROM changes c
                 WHERE c.clinic_id = rows.clinic_id AND c.entity = rows.entity
                   AND c.entity_id = rows.entity_id AND c.hlc = rows.hlc
                   AND c.device_id = rows.device_id);
             COMMIT;",
        )?;
    }
    // Pages are cut by size before any content is read: these indexes cover that scan.
    c.execute_batch(
        "CREATE INDEX IF NOT EXISTS changes_page ON changes (clinic_id, server_seq, size, device_id, refused);
         CREATE INDEX IF NOT EXISTS rows_page ON rows (clinic_id, entity, entity_id, size);
         CREATE INDEX IF NOT EXISTS join_codes_waiting ON join_codes (clinic_id, expires_at) WHERE used_at IS NULL;",
    )?;
    Ok(())
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
    "id, code, name, joined_at, last_seen_at, revoked_at, last_seq, joined_via FROM devices";

fn device_row(r: &rusqlite::Row) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        joined_at: r.get(3)?,
        last_seen_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_seq: r.get(6)?,
        joined_via: r.get(7)?,
    })
}

/// Whether the device exists in the clinic and is not revoked.
fn active(tx: &Connection, clinic: &str, device: &str) -> StoreResult<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM devices WHERE id = ?1 AND clinic_id = ?2 AND revoked_at IS NULL",
        )?
        .exists(params![device, clinic])?)
}

impl Store for SqliteStore {
    async fn create_clinic(&self, name: &str, now: DateTime<Utc>) -> StoreResult<String> {
        let (id, name) = (uuid::Uuid::now_v7().to_string(), name.to_string());
        self.write(move |c| {
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
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let args = (
            code_hash.to_string(),
            clinic_id.to_string(),
            sealed.map(str::to_string),
            ts(expires_at),
            by_device.map(str::to_string),
            ts(now),
        );
        self.write(move |c| {
            // In one transaction with the check: a device revoked meanwhile makes no code
            // (revoking takes the same writer, so it lands wholly before or after).
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(by) = &args.4 {
                if !active(&tx, &args.1, by)? {
                    return Err(StoreError::api(
                        ErrorCode::Revoked,
                        "this device was revoked",
                    ));
                }
            }
            let waiting: i64 = tx.query_row(
                "SELECT count(*) FROM join_codes
                 WHERE clinic_id = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![args.1, args.5],
                |r| r.get(0),
            )?;
            if waiting >= super::MAX_LIVE_JOIN_CODES {
                return Err(super::too_many_codes());
            }
            tx.execute(
                "INSERT INTO join_codes (code_hash, clinic_id, sealed, expires_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![args.0, args.1, args.2, args.3, args.4],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn forget_expired_invitations(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = ts(now);
        self.write(move |c| {
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
        // Looked up on a reader first: a guessed code costs no write lock.
        let (probe, probe_now) = (code_hash.clone(), ts(now));
        let live = self
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT 1 FROM join_codes WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                )?
                .exists(params![probe, probe_now])?)
            })
            .await?;
        if !live {
            return Err(StoreError::api(
                ErrorCode::JoinCodeInvalid,
                "unknown, used or expired join code",
            ));
        }
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_ts = ts(now);
            // A code made by a device revoked since joins nobody.
            let found: Option<(String, Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT j.clinic_id, j.sealed, j.created_by FROM join_codes j
                     LEFT JOIN devices d ON d.id = j.created_by
                     WHERE j.code_hash = ?1 AND j.used_at IS NULL AND j.expires_at > ?2
                       AND (j.created_by IS NULL OR (d.id IS NOT NULL AND d.revoked_at IS NULL))",
                    params![code_hash, now_ts],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((clinic_id, sealed, maker)) = found else {
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
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM devices WHERE clinic_id = ?1 AND revoked_at IS NULL",
                [&clinic_id],
                |r| r.get(0),
            )?;
            if live >= super::MAX_DEVICES {
                return Err(super::too_many_devices());
            }
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
                "INSERT INTO devices (id, clinic_id, code, name, token_hash, joined_at, joined_via)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    device.id,
                    clinic_id,
                    code,
                    device.name,
                    device.token_hash,
                    now_ts,
                    maker
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
        let (token_hash, auth) = (token_hash.to_string(), self.auth.clone());
        tokio::task::spawn_blocking(move || {
            let c = lock(&auth)?;
            let found = c.prepare_cached(
                "SELECT id, clinic_id, code, revoked_at IS NOT NULL FROM devices WHERE token_hash = ?1",
            )?
            .query_row([token_hash], |r| {
                Ok(DeviceAuth {
                    device_id: r.get(0)?,
                    clinic_id: r.get(1)?,
                    code: r.get(2)?,
                    revoked: r.get(3)?,
                })
            })
            .optional()?;
            Ok(found)
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))?
    }

    async fn push(
        &self,
        device: &DeviceAuth,
        req: &PushRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<PushResponse> {
        let (device, req) = (device.clone(), req.clone());
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_ts = ts(now);
            // Read inside the write: a device revoked since the request was let in pushes
            // nothing.
            let found: Option<(i64, bool)> = tx
                .query_row(
                    "SELECT last_seq, revoked_at IS NOT NULL FROM devices WHERE id = ?1",
                    [&device.device_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let last_seq = match found {
                Some((_, true)) | None => {
                    return Err(StoreError::api(ErrorCode::Revoked, "this device was revoked"))
                }
                Some((s, false)) => s,
            };
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
            let mut refused = vec![];
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO changes (clinic_id, server_seq, device_id, seq, entity, entity_id, op, after, hlc, at, base, size, refused)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                let mut row = tx.prepare_cached(
                    "INSERT INTO rows (clinic_id, entity, entity_id, after, hlc, device_id, deleted, size, base)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (clinic_id, entity, entity_id) DO UPDATE
                     SET after = excluded.after, hlc = excluded.hlc, device_id = excluded.device_id,
                         deleted = excluded.deleted, size = excluded.size, base = excluded.base
                     WHERE (rows.hlc, rows.device_id) < (excluded.hlc, excluded.device_id)",
                )?;
                for (i, ch) in fresh.iter().enumerate() {
                    let server_seq = top - n + 1 + i as i64;
                    let why = super::refusal(ch, now);
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
                        ch.base,
                        super::change_size(ch) as i64,
                        why,
                    ])?;
                    if why.is_some() {
                        refused.push(ch.seq);
                        continue;
                    }
                    if clinic_sync_proto::NOT_REPLICATED.contains(&ch.entity.as_str()) {
                        continue;
                    }
                    row.execute(params![
                        device.clinic_id,
                        ch.entity,
                        ch.entity_id,
                        ch.after,
                        ch.hlc,
                        device.device_id,
                        ch.op == Op::Delete,
                        ch.after.as_ref().map_or(0, String::len) as i64,
                        ch.base,
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
                refused,
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
        let dev = device.clone();
        let page = self
            .read(move |c| {
                let tx = c.transaction()?;
                // First the sizes only (from an index), then the content of what fits.
                let heads: Vec<(i64, String, i64, bool)> = tx
                    .prepare_cached(
                        "SELECT server_seq, device_id, size, refused IS NOT NULL FROM changes
                         WHERE clinic_id = ?1 AND server_seq > ?2 ORDER BY server_seq LIMIT ?3",
                    )?
                    .query_map(params![dev.clinic_id, after, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<Result<_, _>>()?;
                let cut = page_cut(
                    heads.iter().map(|(seq, from, size, refused)| {
                        (*seq, *refused || *from == dev.device_id, *size as usize)
                    }),
                    after,
                    limit,
                );
                let mut changes = Vec::with_capacity(cut.taken);
                if cut.taken > 0 {
                    let mut stmt = tx.prepare_cached(
                        "SELECT c.server_seq, c.device_id, d.code, c.seq, c.entity, c.entity_id, c.op, c.after, c.hlc, c.at, c.base
                         FROM changes c JOIN devices d ON d.id = c.device_id
                         WHERE c.clinic_id = ?1 AND c.server_seq > ?2 AND c.server_seq <= ?3
                           AND c.device_id <> ?4 AND c.refused IS NULL
                         ORDER BY c.server_seq",
                    )?;
                    let mut rows =
                        stmt.query(params![dev.clinic_id, after, cut.next, dev.device_id])?;
                    while let Some(r) = rows.next()? {
                        let op: String = r.get(6)?;
                        changes.push(PulledChange {
                            server_seq: r.get(0)?,
                            device_id: r.get(1)?,
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
                Ok(PullResponse {
                    changes,
                    next: cut.next,
                    more: cut.more,
                })
            })
            .await?;
        self.seen(device, now).await?;
        Ok(page)
    }

    async fn snapshot(
        &self,
        device: &DeviceAuth,
        after: Option<(String, String)>,
        only: Option<String>,
        limit: u32,
    ) -> StoreResult<SnapshotPage> {
        let clinic = device.clinic_id.clone();
        self.read(move |c| {
            let tx = c.transaction()?;
            let as_of: i64 = tx.query_row(
                "SELECT last_seq FROM clinics WHERE id = ?1",
                [&clinic],
                |r| r.get(0),
            )?;
            // Counted only for a table's first page (a count is a scan of the clinic).
            let total: i64 = if after.is_none() {
                tx.query_row(
                    "SELECT count(*) FROM rows WHERE clinic_id = ?1",
                    [&clinic],
                    |r| r.get(0),
                )?
            } else {
                0
            };
            let (e, i) = after.unwrap_or_else(|| (only.clone().unwrap_or_default(), String::new()));
            let keys: Vec<(String, String, i64)> = tx
                .prepare_cached(
                    "SELECT entity, entity_id, size FROM rows
                     WHERE clinic_id = ?1 AND (entity, entity_id) > (?2, ?3) AND (?5 IS NULL OR entity = ?5)
                     ORDER BY entity, entity_id LIMIT ?4",
                )?
                .query_map(params![clinic, e, i, limit, only], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let n = super::fitting(keys.iter().map(|k| k.2 as usize));
            let rows = match keys.get(n.saturating_sub(1)) {
                None => vec![],
                Some((last_e, last_i, _)) => tx
                    .prepare_cached(
                        "SELECT entity, entity_id, after, hlc, device_id, base FROM rows
                         WHERE clinic_id = ?1 AND (entity, entity_id) > (?2, ?3)
                           AND (entity, entity_id) <= (?4, ?5) AND (?6 IS NULL OR entity = ?6)
                         ORDER BY entity, entity_id",
                    )?
                    .query_map(params![clinic, e, i, last_e, last_i, only], |r| {
                        Ok(SnapshotRow {
                            entity: r.get(0)?,
                            entity_id: r.get(1)?,
                            after: r.get(2)?,
                            hlc: r.get(3)?,
                            device_id: r.get(4)?,
                            base: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let next = (n < keys.len() || keys.len() as u32 == limit)
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
        self.read(move |c| {
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
        self.write(move |c| {
            // One transaction: the device and every code it made die together, so no code of
            // a device being revoked slips between the two.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?3)
                 WHERE id = ?1 AND clinic_id = ?2",
                params![id, clinic, ts(now)],
            )?;
            tx.execute(
                "UPDATE join_codes SET expires_at = min(expires_at, ?3), sealed = NULL
                 WHERE created_by = ?1 AND clinic_id = ?2 AND used_at IS NULL",
                params![id, clinic, ts(now)],
            )?;
            let d = tx
                .query_row(
                    &format!("SELECT {DEVICE_COLUMNS} WHERE id = ?1 AND clinic_id = ?2"),
                    params![id, clinic],
                    device_row,
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::api(ErrorCode::NotFound, "no such device in this clinic")
                })?;
            tx.commit()?;
            Ok(d)
        })
        .await
    }

    async fn audit_heads(&self, clinic_id: &str, device_id: &str) -> StoreResult<Vec<HeadRecord>> {
        let (clinic, id) = (clinic_id.to_string(), device_id.to_string());
        self.read(move |c| {
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
        self.read(move |c| {
            let mut h = clinic_sync_proto::RowDigest::default();
            let mut stmt = c.prepare_cached(
                "SELECT entity, entity_id, after FROM rows
                 WHERE clinic_id = ?1 AND deleted = 0 AND after IS NOT NULL ORDER BY entity, entity_id",
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

    async fn blob_put(&self, device: &DeviceAuth, put: BlobPut) -> StoreResult<BlobInfo> {
        let device = device.clone();
        let now_ts = ts(put.now);
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !active(&tx, &device.clinic_id, &device.device_id)? {
                return Err(StoreError::api(
                    ErrorCode::Revoked,
                    "this device was revoked",
                ));
            }
            let known: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT size, chunks FROM blobs WHERE clinic_id = ?1 AND device_id = ?2 AND id = ?3",
                    params![device.clinic_id, device.device_id, put.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match known {
                Some((size, chunks)) if size != put.size as i64 || chunks != put.chunks as i64 => {
                    return Err(StoreError::api(
                        ErrorCode::BadRequest,
                        "this blob was announced with another size",
                    ))
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO blobs (clinic_id, device_id, id, size, chunks, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            device.clinic_id,
                            device.device_id,
                            put.id,
                            put.size as i64,
                            put.chunks as i64,
                            now_ts
                        ],
                    )?;
                }
            }
            // A chunk is written once: the same id is the same content (the PC seals it
            // deterministically), so a second copy changes nothing and costs nothing.
            let have_it = tx
                .prepare_cached(
                    "SELECT 1 FROM blob_chunks
                     WHERE clinic_id = ?1 AND device_id = ?2 AND blob_id = ?3 AND idx = ?4",
                )?
                .exists(params![
                    device.clinic_id,
                    device.device_id,
                    put.id,
                    put.index as i64
                ])?;
            if !have_it {
                let used: i64 = tx
                    .query_row(
                        "SELECT bytes FROM blob_usage WHERE clinic_id = ?1",
                        [&device.clinic_id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0);
                if used.saturating_add(put.data.len() as i64) > put.quota as i64 {
                    return Err(StoreError::api(
                        ErrorCode::QuotaExceeded,
                        "the clinic's file storage on this server is full",
                    ));
                }
                tx.execute(
                    "INSERT INTO blob_chunks (clinic_id, device_id, blob_id, idx, data)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        device.clinic_id,
                        device.device_id,
                        put.id,
                        put.index as i64,
                        put.data
                    ],
                )?;
                tx.execute(
                    "INSERT INTO blob_usage (clinic_id, bytes) VALUES (?1, ?2)
                     ON CONFLICT (clinic_id) DO UPDATE SET bytes = bytes + excluded.bytes",
                    params![device.clinic_id, put.data.len() as i64],
                )?;
            }
            let have = chunks_of(&tx, &device.clinic_id, &device.device_id, &put.id)?;
            if have.len() as u32 == put.chunks {
                tx.execute(
                    "UPDATE blobs SET complete_at = coalesce(complete_at, ?4)
                     WHERE clinic_id = ?1 AND device_id = ?2 AND id = ?3",
                    params![device.clinic_id, device.device_id, put.id, now_ts],
                )?;
            }
            tx.commit()?;
            Ok(BlobInfo {
                size: put.size,
                chunks: put.chunks,
                have,
            })
        })
        .await
    }

    async fn blob_info(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
    ) -> StoreResult<Option<BlobInfo>> {
        let (clinic, device, id) = (clinic_id.to_string(), device_id.to_string(), id.to_string());
        self.read(move |c| {
            let Some((size, chunks)) = c
                .prepare_cached(
                    "SELECT size, chunks FROM blobs WHERE clinic_id = ?1 AND device_id = ?2 AND id = ?3",
                )?
                .query_row(params![clinic, device, id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?
            else {
                return Ok(None);
            };
            Ok(Some(BlobInfo {
                size: size as u64,
                chunks: chunks as u32,
                have: chunks_of(c, &clinic, &device, &id)?,
            }))
        })
        .await
    }

    async fn blob_chunk(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
        index: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        let (clinic, device, id) = (clinic_id.to_string(), device_id.to_string(), id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT data FROM blob_chunks
                 WHERE clinic_id = ?1 AND device_id = ?2 AND blob_id = ?3 AND idx = ?4",
            )?
            .query_row(params![clinic, device, id, index as i64], |r| r.get(0))
            .optional()?)
        })
        .await
    }
}

fn chunks_of(c: &Connection, clinic: &str, device: &str, id: &str) -> StoreResult<Vec<u32>> {
    Ok(c
        .prepare_cached(
            "SELECT idx FROM blob_chunks WHERE clinic_id = ?1 AND device_id = ?2 AND blob_id = ?3 ORDER BY idx",
        )?
        .query_map(params![clinic, device, id], |r| r.get::<_, i64>(0))?
        .map(|r| r.map(|i| i as u32))
        .collect::<Result<_, _>>()?)
}

impl SqliteStore {
    /// Notes that a device was seen, at most once a minute (a pull is a read otherwise).
    async fn seen(&self, device: &DeviceAuth, now: DateTime<Utc>) -> StoreResult<()> {
        let id = device.device_id.clone();
        let (now_ts, stale) = (ts(now), ts(now - chrono::Duration::seconds(60)));
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE devices SET last_seen_at = ?2
                 WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at < ?3)",
            )?
            .execute(params![id, now_ts, stale])?;
            Ok(())
        })
        .await
    }
}
