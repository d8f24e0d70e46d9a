//! The one write path: the audit trail and the change log are written here.
//!
//! A `Write` wraps an immediate transaction. Its `insert`/`update`/`delete` run the
//! caller's SQL and, in the same transaction, read the row's image before and after,
//! append a hash-chained audit entry, and append the after-image to this device's
//! change log (what sync pushes). Domain code never executes SQL any other way.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Params, ToSql, Transaction};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::audit::{AuditEntry, GENESIS};
use super::hlc::{Hlc, Version};
use super::Table;
use crate::error::{Error, Result};
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
        Actor {
            id: "setup".into(),
            name: "setup".into(),
        }
    }

    /// Account recovery with the recovery key.
    pub fn recovery_key() -> Actor {
        Actor {
            id: "recovery-key".into(),
            name: "recovery key".into(),
        }
    }
}

pub struct Write<'c> {
    tx: Transaction<'c>,
    actor: Actor,
    now: DateTime<Utc>,
    now_ts: String,
    device_id: String,
    /// Hash and time of the newest audit entry, once this transaction has read or written it.
    last_hash: Option<(String, String)>,
    /// Sync's clock, once this transaction has looked: `Some(None)` when sync is off.
    sync: Option<Option<SyncClock>>,
    /// Whether `attempt` opens a savepoint (off for `Db::write_batch`'s first try).
    savepoints: bool,
    /// The columns of tables rows from elsewhere went into, checked once per transaction.
    columns: std::collections::HashMap<String, Vec<String>>,
    /// The statement putting a row from elsewhere in place, per table and column list.
    upserts: std::collections::HashMap<(String, String), String>,
}

/// This PC's identity on the sync server and the greatest clock stamp made or seen.
#[derive(Debug, Clone)]
struct SyncClock {
    device_id: String,
    last: Hlc,
}

/// Where a change applied from another PC came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub device_id: String,
    pub device_code: String,
    pub hlc: String,
    /// The version the change was made on top of (`Version::text`).
    pub base: Option<String>,
}

impl<'c> Write<'c> {
    pub(crate) fn new(
        tx: Transaction<'c>,
        actor: Actor,
        now: DateTime<Utc>,
        device_id: &str,
    ) -> Self {
        Write {
            tx,
            actor,
            now,
            now_ts: ts(now),
            device_id: device_id.to_string(),
            last_hash: None,
            sync: None,
            savepoints: true,
            columns: Default::default(),
            upserts: Default::default(),
        }
    }

    /// `attempt` without a savepoint: a failure then fails the whole transaction
    /// (`Db::write_batch`, which runs it again with them).
    pub(crate) fn without_savepoints(&mut self) {
        self.savepoints = false;
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

    /// Writes a working copy (a table that is not `journaled`): no audit entry, no change-log
    /// entry. Returns the rows changed. Refused for any journaled table.
    pub fn keep_draft<P: Params>(
        &mut self,
        table: impl Table,
        sql: &str,
        params: P,
    ) -> Result<usize> {
        if table.journaled() {
            return Err(Error::Internal(format!(
                "{} is audited: it is not written as a draft",
                table.name()
            )));
        }
        Ok(self.tx.prepare_cached(sql)?.execute(params)?)
    }

    /// Inserts one row with `sql` and records it. Returns the row's image.
    pub fn insert<P: Params>(
        &mut self,
        table: impl Table,
        id: &str,
        sql: &str,
        params: P,
    ) -> Result<Value> {
        let n = self.tx.prepare_cached(sql)?.execute(params)?;
        if n != 1 {
            return Err(Error::Internal(format!(
                "insert into {} wrote {n} rows",
                table.name()
            )));
        }
        let after = row_image(&self.tx, table.name(), id)?
            .ok_or(Error::Internal(format!("{} {id} vanished", table.name())))?;
        self.record(table, id, "insert", None, Some(&after))?;
        Ok(after)
    }

    /// Updates one row with `sql` and records before and after. A row that does not
    /// exist gives `NotFound`; an update that changes nothing records nothing.
    pub fn update<P: Params>(
        &mut self,
        table: impl Table,
        id: &str,
        sql: &str,
        params: P,
    ) -> Result<Value> {
        let name = table.name();
        let before = row_image(&self.tx, name, id)?.ok_or(Error::NotFound { entity: name })?;
        let n = self.tx.prepare_cached(sql)?.execute(params)?;
        if n != 1 {
            return Err(Error::Internal(format!(
                "update of {name} {id} touched {n} rows"
            )));
        }
        let after = row_image(&self.tx, name, id)?
            .ok_or(Error::Internal(format!("{name} {id} vanished")))?;
        if before != after {
            self.record(table, id, "update", Some(&before), Some(&after))?;
        }
        Ok(after)
    }

    /// Inserts a row given as (column, value) pairs, adding `id` and the four
    /// created/updated columns: for entities with many columns, listed once by the caller.
    pub fn insert_row(
        &mut self,
        table: impl Table,
        id: &str,
        columns: &[(&str, &dyn ToSql)],
    ) -> Result<Value> {
        let n = columns.len();
        let names: String = columns.iter().map(|(c, _)| format!(", {c}")).collect();
        let marks: String = (2..n + 2).map(|i| format!(", ?{i}")).collect();
        let (at, by) = (n + 2, n + 3);
        let sql = format!(
            "INSERT INTO {} (id{names}, created_at, created_by, updated_at, updated_by) VALUES (?1{marks}, ?{at}, ?{by}, ?{at}, ?{by})",
            table.name()
        );
        let (now, actor) = (self.now_ts.clone(), self.actor.id.clone());
        let mut params: Vec<&dyn ToSql> = vec![&id];
        params.extend(columns.iter().map(|(_, v)| *v));
        params.extend([&now as &dyn ToSql, &actor]);
        self.insert(table, id, &sql, &params[..])
    }

    /// Updates the given (column, value) pairs of one row and its updated columns.
    pub fn update_row(
        &mut self,
        table: impl Table,
        id: &str,
        columns: &[(&str, &dyn ToSql)],
    ) -> Result<Value> {
        let n = columns.len();
        let sets: String = columns
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = ?{}, ", i + 2))
            .collect();
        let sql = format!(
            "UPDATE {} SET {sets}updated_at = ?{}, updated_by = ?{} WHERE id = ?1",
            table.name(),
            n + 2,
            n + 3
        );
        let (now, actor) = (self.now_ts.clone(), self.actor.id.clone());
        let mut params: Vec<&dyn ToSql> = vec![&id];
        params.extend(columns.iter().map(|(_, v)| *v));
        params.extend([&now as &dyn ToSql, &actor]);
        self.update(table, id, &sql, &params[..])
    }

    pub fn delete(&mut self, table: impl Table, id: &str) -> Result<()> {
        let name = table.name();
        let before = row_image(&self.tx, name, id)?.ok_or(Error::NotFound { entity: name })?;
        self.tx
            .prepare_cached(&format!("DELETE FROM {name} WHERE id = ?1"))?
            .execute([id])?;
        self.record(table, id, "delete", Some(&before), None)
    }

    /// An audit entry without a data change: a chart opened, a sign-in.
    pub fn record_event(
        &mut self,
        action: &str,
        entity: impl Table,
        entity_id: &str,
        details: Option<Value>,
    ) -> Result<()> {
        self.append_audit(
            action,
            entity.name(),
            entity_id,
            None,
            details.map(|d| d.to_string()),
        )
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

    fn record(
        &mut self,
        table: impl Table,
        id: &str,
        op: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<()> {
        if !table.journaled() {
            // Rolls the write back: a draft table is written with `keep_draft` only.
            return Err(Error::Internal(format!(
                "{} holds drafts: write it with keep_draft",
                table.name()
            )));
        }
        let after_json = after.map(Value::to_string);
        let hidden = table.redacted();
        if hidden.is_empty() {
            self.append_audit(
                op,
                table.name(),
                id,
                before.map(Value::to_string),
                after_json.clone(),
            )?;
        } else {
            let redact = |v: Option<&Value>| v.map(|v| redacted(hidden, v).to_string());
            self.append_audit(op, table.name(), id, redact(before), redact(after))?;
        }
        if !table.synced() {
            return Ok(());
        }
        let (hlc, base) = match self.stamp()? {
            Some((hlc, device)) => {
                let base = self.version_of(table.name(), id)?.map(|v| v.text());
                self.tx
                    .prepare_cached(
                        "INSERT INTO sync_versions (entity, entity_id, hlc, device_id, base) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (entity, entity_id) DO UPDATE
                         SET hlc = excluded.hlc, device_id = excluded.device_id, base = excluded.base",
                    )?
                    .execute((table.name(), id, &hlc, &device, &base))?;
                (Some(hlc), base)
            }
            None => (None, None),
        };
        // The change log carries BLOBs themselves (the other PCs need them), the audit
        // trail only their hashes.
        let full = match after {
            Some(_) if table_has_blobs(&self.tx, table.name())? => {
                row_image_full(&self.tx, table.name(), id)?.map(|v| v.to_string())
            }
            Some(Value::Object(m)) if m.contains_key(LOCAL_ROWID) => {
                let mut m = m.clone();
                m.remove(LOCAL_ROWID);
                Some(Value::Object(m).to_string())
            }
            _ => after_json,
        };
        // Every row that syncs fits in one push (files travel as blobs, `sync::blobs`).
        if full
            .as_ref()
            .is_some_and(|f| f.len() > clinic_sync_proto::MAX_ROW_BYTES)
        {
            return Err(Error::RowTooLarge {
                limit: clinic_sync_proto::MAX_ROW_BYTES as i64,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO change_log (id, device_id, entity, entity_id, op, after, at,
                                         created_at, created_by, updated_at, updated_by, hlc, base)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?7, ?8, ?9, ?10)",
            )?
            .execute((
                new_id(),
                &self.device_id,
                table.name(),
                id,
                op,
                full,
                &self.now_ts,
                &self.actor.id,
                hlc,
                base,
            ))?;
        Ok(())
    }

    /// Sync's clock for this transaction, loaded once; none while sync is off.
    fn sync_clock(&mut self) -> Result<Option<&mut SyncClock>> {
        if self.sync.is_none() {
            let found: Option<(String, String)> = self
                .tx
                .prepare_cached("SELECT device_id, hlc_seen FROM sync_state")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let clock = match found {
                None => None,
                Some((device_id, seen)) => {
                    // After the greatest stamp seen (`hlc_seen`: the join set it past the
                    // stamps of changes made before sync was on, `sync::PresyncClock`) and
                    // the newest this PC made (its last change-log entry).
                    let logged: Option<String> = self
                        .tx
                        .prepare_cached("SELECT hlc FROM change_log ORDER BY seq DESC LIMIT 1")?
                        .query_row([], |r| r.get(0))
                        .optional()?
                        .flatten();
                    let last = [Some(seen), logged]
                        .iter()
                        .flatten()
                        .filter_map(|h| Hlc::parse(h))
                        .max()
                        .unwrap_or_default();
                    Some(SyncClock { device_id, last })
                }
            };
            self.sync = Some(clock);
        }
        Ok(self.sync.as_mut().and_then(|s| s.as_mut()))
    }

    /// A new stamp for a change made now, and this PC's device id; none while sync is off.
    fn stamp(&mut self) -> Result<Option<(String, String)>> {
        let now_ms = self.now.timestamp_millis();
        let Some(c) = self.sync_clock()? else {
            return Ok(None);
        };
        c.last = c.last.tick(now_ms).map_err(|_| Error::ClockExhausted)?;
        Ok(Some((c.last.to_string(), c.device_id.clone())))
    }

    /// Foreign keys of this transaction are checked at commit, not row by row: rows from
    /// another PC may come child first.
    pub fn defer_foreign_keys(&mut self) -> Result<()> {
        self.tx.pragma_update(None, "defer_foreign_keys", true)?;
        Ok(())
    }

    /// Runs `f` in a savepoint: its error undoes only what `f` wrote, and the transaction
    /// goes on. Returns `f`'s result either way.
    pub fn attempt<T>(&mut self, f: impl FnOnce(&mut Write<'c>) -> Result<T>) -> Result<Result<T>> {
        if !self.savepoints {
            return f(self).map(Ok);
        }
        let saved = self.last_hash.clone();
        self.tx.execute_batch("SAVEPOINT attempt")?;
        match f(self) {
            Ok(v) => {
                self.tx.execute_batch("RELEASE attempt")?;
                Ok(Ok(v))
            }
            Err(e) => {
                self.tx
                    .execute_batch("ROLLBACK TO attempt; RELEASE attempt")?;
                self.last_hash = saved;
                Ok(Err(e))
            }
        }
    }

    /// Moves this PC's clock past a stamp seen from another PC (the clock persists in
    /// `sync_state.hlc_seen`, which the sync engine writes at the end of a batch). Only a
    /// stamp whose seal opened and that is not too far ahead of this PC's clock
    /// (`clinic_sync_proto::stamp_too_far_ahead`) may be observed: anything else is an error.
    pub fn observe(&mut self, hlc: &str) -> Result<()> {
        let now_ms = self.now.timestamp_millis();
        if clinic_sync_proto::stamp_too_far_ahead(hlc, now_ms) {
            return Err(Error::Internal(format!(
                "a clock stamp too far ahead was about to be observed: {hlc}"
            )));
        }
        if let (Some(seen), Some(c)) = (Hlc::parse(hlc), self.sync_clock()?) {
            c.last = c.last.max(seen);
        }
        Ok(())
    }

    /// The greatest stamp this transaction's clock holds (made or seen), as text.
    pub fn clock_text(&mut self) -> Result<Option<String>> {
        Ok(self.sync_clock()?.map(|c| c.last.to_string()))
    }

    /// The current version of a synced row, if sync has stamped it.
    pub fn version_of(&self, entity: &str, id: &str) -> Result<Option<Version>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT hlc, device_id, base FROM sync_versions WHERE entity = ?1 AND entity_id = ?2",
            )?
            .query_row((entity, id), |r| {
                Ok(Version {
                    hlc: r.get(0)?,
                    device: r.get(1)?,
                    base: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Writes another PC's version of a row (`after` none: the row was deleted), audited as
    /// applied from that device and never added to this PC's change log (no echo). The
    /// entity must be a table the sync engine has checked (`sync::apply::synced_table`).
    /// A rule of this database that refuses the row (a trigger, a constraint) is an error;
    /// the caller runs this inside a savepoint.
    pub fn apply_remote(
        &mut self,
        entity: &str,
        id: &str,
        after: Option<&Map<String, Value>>,
        origin: &Origin,
        redact: &[&str],
    ) -> Result<()> {
        self.check_remote(entity, id, after)?;
        let before = row_image(&self.tx, entity, id)?;
        self.put_remote(entity, id, after, origin)?;
        let after_image = row_image(&self.tx, entity, id)?;
        let action = match (&before, &after_image) {
            (None, Some(_)) => "sync_insert",
            (Some(_), None) => "sync_delete",
            _ => "sync_update",
        };
        // The trail names the PC the change came from.
        let actor = std::mem::replace(
            &mut self.actor,
            Actor {
                id: format!("device:{}", origin.device_id),
                name: format!("applied from device {}", origin.device_code),
            },
        );
        let image = |v: Option<Value>| v.map(|v| redacted(redact, &v).to_string());
        let out = self.append_audit(action, entity, id, image(before), image(after_image));
        self.actor = actor;
        out
    }

    /// Like `apply_remote`, without an audit entry for the row: a new PC's download, whose
    /// pages are each audited once (`sync_download`, with a digest of the rows) rather than
    /// copying a whole clinic into this PC's trail.
    pub fn apply_downloaded(
        &mut self,
        entity: &str,
        id: &str,
        after: Option<&Map<String, Value>>,
        origin: &Origin,
    ) -> Result<()> {
        self.check_remote(entity, id, after)?;
        self.put_remote(entity, id, after, origin)
    }

    /// A row from elsewhere names a synced table, its own id, and only columns this table has.
    fn check_remote(
        &mut self,
        entity: &str,
        id: &str,
        after: Option<&Map<String, Value>>,
    ) -> Result<()> {
        if !self.columns.contains_key(entity) {
            check_synced_table(&self.tx, entity)?;
            let cols = table_columns(&self.tx, entity)?;
            self.columns.insert(entity.to_string(), cols);
        }
        if let Some(cols) = after {
            if cols.contains_key(LOCAL_ROWID) {
                return Err(Error::Internal(format!("{entity}: a row number travelled")));
            }
            let known = &self.columns[entity];
            if let Some(bad) = cols.keys().find(|k| !known.contains(*k)) {
                return Err(Error::Internal(format!(
                    "{entity} has no column {bad}: the other PC runs a newer version"
                )));
            }
            if cols.get("id").and_then(Value::as_str) != Some(id) {
                return Err(Error::Internal(format!(
                    "{entity} {id}: the row names another id"
                )));
            }
        }
        Ok(())
    }

    /// Puts a checked row from elsewhere in place, with its version.
    fn put_remote(
        &mut self,
        entity: &str,
        id: &str,
        after: Option<&Map<String, Value>>,
        origin: &Origin,
    ) -> Result<()> {
        match after {
            Some(cols) => {
                // The statement for this table and these columns, made once per transaction
                // (a page of a download is thousands of rows of one shape).
                let shape: String = cols
                    .keys()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                let key = (entity.to_string(), shape);
                if !self.upserts.contains_key(&key) {
                    let names: Vec<&String> = cols.keys().collect();
                    let list = names
                        .iter()
                        .map(|n| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let marks = (1..=names.len())
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sets = names
                        .iter()
                        .filter(|n| n.as_str() != "id")
                        .map(|n| format!("\"{n}\" = excluded.\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = if sets.is_empty() {
                        format!("INSERT INTO {entity} ({list}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING")
                    } else {
                        format!("INSERT INTO {entity} ({list}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {sets}")
                    };
                    self.upserts.insert(key.clone(), sql);
                }
                let values: Vec<rusqlite::types::Value> =
                    cols.values().map(sql_value).collect::<Result<_>>()?;
                self.tx
                    .prepare_cached(&self.upserts[&key])?
                    .execute(rusqlite::params_from_iter(values))?;
            }
            None => {
                self.tx
                    .prepare_cached(&format!("DELETE FROM {entity} WHERE id = ?1"))?
                    .execute([id])?;
            }
        }
        self.tx
            .prepare_cached(
                "INSERT INTO sync_versions (entity, entity_id, hlc, device_id, base) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (entity, entity_id) DO UPDATE
                 SET hlc = excluded.hlc, device_id = excluded.device_id, base = excluded.base",
            )?
            .execute((entity, id, &origin.hlc, &origin.device_id, &origin.base))?;
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
            at: if prev_at > self.now_ts {
                prev_at
            } else {
                self.now_ts.clone()
            },
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

fn redacted(columns: &[&str], v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        for col in columns {
            if let Some(x) = obj.get_mut(*col) {
                if !x.is_null() {
                    *x = Value::String("[redacted]".into());
                }
            }
        }
    }
    v
}

/// A JSON value of a row image as SQL: text, integer, real, null, or a BLOB written as
/// `{"b64": "…"}` by `row_image_full`.
fn sql_value(v: &Value) -> Result<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    Ok(match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::Integer(i),
            None => V::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => V::Text(s.clone()),
        Value::Object(o) => match o.get("b64").and_then(Value::as_str) {
            Some(b) => {
                use base64::Engine;
                V::Blob(
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| Error::Internal(format!("a synced BLOB: {e}")))?,
                )
            }
            None => return Err(Error::Internal("a synced column holds an object".into())),
        },
        Value::Array(_) => return Err(Error::Internal("a synced column holds a list".into())),
    })
}

/// Tables that never sync: the logs themselves, sync's bookkeeping, this PC's identity,
/// its counters and drafts. Everything else a domain writes does.
pub const LOCAL_ONLY: &[&str] = &[
    "audit_log",
    "change_log",
    "counters",
    "device",
    "note_drafts",
    "sync_state",
    "sync_versions",
    "sync_inbox",
    "sync_held",
    "blobs",
    "refinery_schema_history",
];

/// An entity name from another PC: a table of this database that syncs. Checked before the
/// name reaches SQL.
pub fn check_synced_table(conn: &Connection, entity: &str) -> Result<()> {
    let shape = !entity.is_empty()
        && entity.len() <= 64
        && entity
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let exists = shape
        && conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([entity])?;
    if !exists || LOCAL_ONLY.contains(&entity) {
        return Err(Error::Internal(format!("{entity:?} is not a synced table")));
    }
    Ok(())
}

fn table_columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM pragma_table_info(?1)")?;
    let v = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(v)
}

fn table_has_blobs(conn: &Connection, table: &str) -> Result<bool> {
    // Declared types: STRICT tables name BLOB columns exactly.
    Ok(conn
        .prepare_cached("SELECT 1 FROM pragma_table_info(?1) WHERE type = 'BLOB'")?
        .exists([table])?)
}

/// The row as the change log carries it, as text (none: no such row).
pub fn row_text(conn: &Connection, table: &str, id: &str) -> Result<Option<String>> {
    Ok(row_image_full(conn, table, id)?.map(|v| v.to_string()))
}

/// The row as the change log carries it: BLOBs in full, as `{"b64": "…"}`.
pub(crate) fn row_image_full(conn: &Connection, table: &str, id: &str) -> Result<Option<Value>> {
    image(conn, table, id, true)
}

/// The row as a JSON object, column by column. BLOBs appear as their SHA-256.
pub(crate) fn row_image(conn: &Connection, table: &str, id: &str) -> Result<Option<Value>> {
    image(conn, table, id, false)
}

/// A column named `pk` is always this PC's own row number (an `INTEGER PRIMARY KEY` that a
/// full-text index keys on): it never leaves the PC, and rows from other PCs get their own.
pub const LOCAL_ROWID: &str = "pk";

fn image(conn: &Connection, table: &str, id: &str, for_sync: bool) -> Result<Option<Value>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    stmt.query_row([id], |r| {
        let mut m = Map::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if for_sync && name == LOCAL_ROWID {
                continue;
            }
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) if for_sync => {
                    use base64::Engine;
                    serde_json::json!({ "b64": base64::engine::general_purpose::STANDARD.encode(b) })
                }
                ValueRef::Blob(b) => {
                    Value::String(format!("sha256:{}", hex::encode(Sha256::digest(b))))
                }
            };
            m.insert(name.clone(), v);
        }
        Ok(Value::Object(m))
    })
    .optional()
    .map_err(Into::into)
}
