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
        }
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
        self.tx
            .prepare_cached(
                "INSERT INTO change_log (id, device_id, entity, entity_id, op, after, at,
                                         created_at, created_by, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?7, ?8)",
            )?
            .execute((
                new_id(),
                &self.device_id,
                table.name(),
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
