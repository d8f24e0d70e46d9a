//! The one write path, the audit trail and the change log.
//!
//! A `Write` wraps an immediate transaction. Its `insert`/`update`/`delete` run the
//! caller's SQL and, in the same transaction, read the row's image before and after,
//! append a hash-chained audit entry, and append the after-image to this device's
//! change log (what sync pushes). Domain code never executes SQL any other way.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Params, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use specta::Type;

use crate::db::Device;
use crate::error::{Error, Field, Result};
use crate::ids::{new_id, ts};

/// Who is writing. Denormalised into each audit entry so the trail stays readable
/// after an account is renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: String,
}

impl Actor {
    /// First-run setup, before any account exists.
    pub fn setup() -> Actor {
        Actor { id: "setup".into(), name: "setup".into() }
    }

    /// Account recovery with the recovery key.
    pub fn recovery_key() -> Actor {
        Actor { id: "recovery-key".into(), name: "recovery key".into() }
    }
}

/// Columns whose values never enter the audit trail (the row image shows `"[redacted]"`).
const REDACTED: &[(&str, &str)] = &[("staff", "totp_secret"), ("staff", "totp_recovery")];

/// Tables whose changes stay on this device: not audited, not synced.
/// Counters only feed numbers that appear, audited, in the records that use them.
const LOCAL_ONLY: &[&str] = &["counters"];

/// Tables a `Write` may touch. The table name is spliced into SQL, so it must come from here.
const TABLES: &[&str] = &[
    "device",
    "settings",
    "staff",
    "counters",
    "patients",
    "patient_photos",
    "specializations",
    "doctors",
    "working_hours",
    "schedule_exceptions",
    "appointments",
    "appointment_history",
    "queue_tickets",
];

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub struct Write<'c> {
    tx: Transaction<'c>,
    actor: Actor,
    now: DateTime<Utc>,
    now_ts: String,
    device_id: String,
    /// Hash and time of the newest audit entry, once this transaction has read or written it.
    last_hash: Option<(String, String)>,
}

impl<'c> Write<'c> {
    pub(crate) fn new(tx: Transaction<'c>, actor: Actor, now: DateTime<Utc>, device: &Device) -> Self {
        Write { tx, actor, now, now_ts: ts(now), device_id: device.id.clone(), last_hash: None }
    }

    pub(crate) fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }

    /// Reads inside this transaction.
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The transaction's time as stored text; all rows of one write share it.
    pub fn now_ts(&self) -> String {
        self.now_ts.clone()
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn actor_id(&self) -> String {
        self.actor.id.clone()
    }

    /// Inserts one row with `sql` and records it. Returns the row's image.
    pub fn insert<P: Params>(&mut self, table: &'static str, id: &str, sql: &str, params: P) -> Result<Value> {
        check_table(table)?;
        let n = self.tx.prepare_cached(sql)?.execute(params)?;
        if n != 1 {
            return Err(Error::Internal(format!("insert into {table} wrote {n} rows")));
        }
        let after = row_image(&self.tx, table, id)?.ok_or(Error::Internal(format!("{table} {id} vanished")))?;
        self.record(table, id, "insert", None, Some(&after))?;
        Ok(after)
    }

    /// Updates one row with `sql` and records before and after. A row that does not
    /// exist gives `NotFound`; an update that changes nothing records nothing.
    pub fn update<P: Params>(&mut self, table: &'static str, id: &str, sql: &str, params: P) -> Result<Value> {
        check_table(table)?;
        let before = row_image(&self.tx, table, id)?.ok_or(Error::NotFound { entity: table })?;
        let n = self.tx.prepare_cached(sql)?.execute(params)?;
        if n != 1 {
            return Err(Error::Internal(format!("update of {table} {id} touched {n} rows")));
        }
        let after = row_image(&self.tx, table, id)?.ok_or(Error::Internal(format!("{table} {id} vanished")))?;
        if before != after {
            self.record(table, id, "update", Some(&before), Some(&after))?;
        }
        Ok(after)
    }

    pub fn delete(&mut self, table: &'static str, id: &str) -> Result<()> {
        check_table(table)?;
        let before = row_image(&self.tx, table, id)?.ok_or(Error::NotFound { entity: table })?;
        self.tx.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?.execute([id])?;
        self.record(table, id, "delete", Some(&before), None)
    }

    /// An audit entry without a data change: a chart opened, a sign-in.
    pub fn record_event(&mut self, action: &str, entity: &str, entity_id: &str, details: Option<Value>) -> Result<()> {
        self.append_audit(action, entity, entity_id, None, details.map(|d| d.to_string()))
    }

    /// Next value of a per-device counter (`name`, `scope`), starting at 1.
    pub fn next_number(&mut self, name: &str, scope: &str) -> Result<i64> {
        let v: i64 = self
            .tx
            .prepare_cached(
                "INSERT INTO counters (id, name, scope, value, created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4, ?5)
                 ON CONFLICT (name, scope) DO UPDATE SET value = value + 1, updated_at = ?4, updated_by = ?5
                 RETURNING value",
            )?
            .query_row((new_id(), name, scope, &self.now_ts, &self.actor.id), |r| r.get(0))?;
        Ok(v)
    }

    fn record(&mut self, table: &str, id: &str, op: &str, before: Option<&Value>, after: Option<&Value>) -> Result<()> {
        if LOCAL_ONLY.contains(&table) {
            return Ok(());
        }
        let after_json = after.map(Value::to_string);
        if REDACTED.iter().any(|(t, _)| *t == table) {
            let redact = |v: Option<&Value>| v.map(|v| redacted(table, v).to_string());
            self.append_audit(op, table, id, redact(before), redact(after))?;
        } else {
            self.append_audit(op, table, id, before.map(Value::to_string), after_json.clone())?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO change_log (id, device_id, entity, entity_id, op, after, at,
                                         created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?7, ?8)",
            )?
            .execute((
                new_id(),
                &self.device_id,
                table,
                id,
                op,
                after_json,
                &self.now_ts,
                &self.actor.id,
            ))?;
        Ok(())
    }

    fn append_audit(
        &mut self,
        action: &str,
        entity: &str,
        entity_id: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<()> {
        let (prev, prev_at) = match self.last_hash.take() {
            Some(h) => h,
            None => self
                .tx
                .prepare_cached("SELECT hash, at FROM audit_log ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .optional()?
                .unwrap_or_else(|| (GENESIS.to_string(), String::new())),
        };
        let entry = AuditEntry {
            seq: 0,
            id: new_id(),
            // Never earlier than the entry before, even if the clock stepped back:
            // date ranges are searched along seq (see `seq_bound`).
            at: if prev_at > self.now_ts { prev_at } else { self.now_ts.clone() },
            actor_id: self.actor.id.clone(),
            actor_name: self.actor.name.clone(),
            action: action.to_string(),
            entity: entity.to_string(),
            entity_id: entity_id.to_string(),
            before,
            after,
        };
        let hash = entry.hash(&prev);
        self.tx
            .prepare_cached(
                "INSERT INTO audit_log (id, at, actor_id, actor_name, action, entity, entity_id, before, after,
                                        prev_hash, hash, created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?2, ?3, ?2, ?3)",
            )?
            .execute(rusqlite::params![
                entry.id,
                entry.at,
                entry.actor_id,
                entry.actor_name,
                entry.action,
                entry.entity,
                entry.entity_id,
                entry.before,
                entry.after,
                prev,
                hash,
            ])?;
        self.last_hash = Some((hash, entry.at));
        Ok(())
    }
}

fn check_table(table: &str) -> Result<()> {
    if TABLES.contains(&table) {
        Ok(())
    } else {
        Err(Error::Internal(format!("table {table} is not registered with the write path")))
    }
}

fn redacted(table: &str, v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        for (t, col) in REDACTED {
            if *t == table {
                if let Some(x) = obj.get_mut(*col) {
                    if !x.is_null() {
                        *x = Value::String("[redacted]".into());
                    }
                }
            }
        }
    }
    v
}

/// The row as a JSON object, column by column. BLOBs appear as their SHA-256.
pub(crate) fn row_image(conn: &Connection, table: &str, id: &str) -> Result<Option<Value>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    stmt.query_row([id], |r| {
        let mut m = Map::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::String(format!("sha256:{}", hex::encode(Sha256::digest(b)))),
            };
            m.insert(name.clone(), v);
        }
        Ok(Value::Object(m))
    })
    .optional()
    .map_err(Into::into)
}

// ---------------------------------------------------------------------------------
// Reading the trail.

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct AuditEntry {
    pub seq: i64,
    pub id: String,
    pub at: String,
    pub actor_id: String,
    pub actor_name: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

const ENTRY_COLUMNS: &str = "seq, id, at, actor_id, actor_name, action, entity, entity_id, before, after";

impl AuditEntry {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
        Ok(AuditEntry {
            seq: r.get(0)?,
            id: r.get(1)?,
            at: r.get(2)?,
            actor_id: r.get(3)?,
            actor_name: r.get(4)?,
            action: r.get(5)?,
            entity: r.get(6)?,
            entity_id: r.get(7)?,
            before: r.get(8)?,
            after: r.get(9)?,
        })
    }

    /// The chain link: SHA-256 over the previous hash and every field but `seq`, each
    /// length-prefixed so no two different entries hash alike.
    fn hash(&self, prev: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            prev,
            &self.id,
            &self.at,
            &self.actor_id,
            &self.actor_name,
            &self.action,
            &self.entity,
            &self.entity_id,
            self.before.as_deref().unwrap_or("\u{0}"),
            self.after.as_deref().unwrap_or("\u{0}"),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// Inclusive UTC bounds (RFC 3339).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries older than this sequence number (for paging backwards); newest first.
    pub before_seq: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_seq` for the next page; null at the end.
    pub next_before_seq: Option<i64>,
}

/// The first seq whose `at` is at or after `t` (one past the end if none). Binary
/// search on the primary key: `at` never decreases along seq.
fn seq_bound(conn: &Connection, t: &str) -> Result<i64> {
    let (mut lo, mut hi): (i64, i64) =
        conn.query_row("SELECT coalesce(min(seq), 1), coalesce(max(seq), 0) + 1 FROM audit_log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut at_of = conn.prepare_cached("SELECT at FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: Option<String> = at_of.query_row([mid], |r| r.get(0)).optional()?;
        match at {
            Some(at) if at.as_str() < t => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

pub fn list(conn: &Connection, f: &AuditFilter) -> Result<AuditPage> {
    let limit = f.limit.unwrap_or(50).clamp(1, 500) as i64;
    let from = f.from.as_deref().map(|t| crate::ids::stored_ts(t, Field::StartsAt)).transpose()?;
    let to = f.to.as_deref().map(|t| crate::ids::stored_ts(t, Field::EndsAt)).transpose()?;
    let low = from.map(|t| seq_bound(conn, &t)).transpose()?;
    // `to` is inclusive: everything before the first entry after it.
    let high = to.map(|t| seq_bound(conn, &format!("{t}\u{10ffff}"))).transpose()?;
    let before = match (f.before_seq, high) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Only the filters given go into the SQL, so the planner can use the entity index.
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE 1");
    let mut args: Vec<rusqlite::types::Value> = vec![];
    let mut add = |clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(a) = &f.actor_id {
        add("actor_id =", a.clone().into());
    }
    if let Some(e) = &f.entity {
        add("entity =", e.clone().into());
    }
    if let Some(e) = &f.entity_id {
        add("entity_id =", e.clone().into());
    }
    if let Some(l) = low {
        add("seq >=", l.into());
    }
    if let Some(b) = before {
        add("seq <", b.into());
    }
    args.push((limit + 1).into());
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut entries =
        stmt.query_map(rusqlite::params_from_iter(args), AuditEntry::from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    let next_before_seq = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage { entries, next_before_seq })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ChainStatus {
    pub entries: i64,
    /// The first entry whose hash does not follow from its predecessor; null if intact.
    pub first_broken_seq: Option<i64>,
    pub first_broken_id: Option<String>,
}

/// Recomputes the whole chain and names the first broken link.
pub fn verify(conn: &Connection) -> Result<ChainStatus> {
    let mut stmt = conn.prepare(&format!("SELECT {ENTRY_COLUMNS}, prev_hash, hash FROM audit_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    while let Some(r) = rows.next()? {
        n += 1;
        let e = AuditEntry::from_row(r)?;
        let seq = e.seq;
        let stored_prev: String = r.get(10)?;
        let stored_hash: String = r.get(11)?;
        if stored_prev != prev || e.hash(&prev) != stored_hash {
            let total: i64 = conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?;
            return Ok(ChainStatus { entries: total, first_broken_seq: Some(seq), first_broken_id: Some(e.id) });
        }
        prev = stored_hash;
    }
    Ok(ChainStatus { entries: n, first_broken_seq: None, first_broken_id: None })
}
