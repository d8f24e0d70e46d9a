//! Push, pull, apply, join: the engine's steps.

use clinic_sync_proto::{
    AuditHead, Change, JoinRequest, Op, PullResponse, PulledChange, PushRequest, MAX_BATCH,
    NOT_REPLICATED,
};
use rusqlite::OptionalExtension;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::seal::{Bound, Sealer};
use super::{actor, link, Error, Link, PresyncClock, Table, Transport};
use crate::error::Result;
use crate::store::hlc::Version;
use crate::store::{Db, Origin, Table as _, Write};

/// Pushes everything after `pushed_seq`, a batch at a time. Returns the changes the server
/// stored now.
pub fn push_all(db: &Db, t: &Transport) -> Result<u32> {
    let sealer = Sealer::new(&db.key());
    let mut stored = 0;
    loop {
        let (req, pushed, presync) = db.read(|c| {
            let l = link(c)?.ok_or(Error::NotConfigured)?;
            let (pushed, device) = (l.pushed_seq, l.device_id);
            let mut presync = PresyncClock::resume(&c.query_row(
                "SELECT presync_hlc FROM sync_state",
                [],
                |r| r.get::<_, String>(0),
            )?);
            let mut stmt = c.prepare_cached(
                "SELECT seq, entity, entity_id, op, after, hlc, at, base FROM change_log
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map((pushed, MAX_BATCH as i64), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut changes = Vec::with_capacity(rows.len());
            for (seq, entity, entity_id, op, after, hlc, at, base) in rows {
                let op = match op.as_str() {
                    "insert" => Op::Insert,
                    "update" => Op::Update,
                    _ => Op::Delete,
                };
                let hlc = presync.stamp(hlc, &at)?;
                // Sealed: the server sees which row changed, never what it holds. A delete
                // carries a sealed marker, so a server can't make one up either.
                let content = match op {
                    Op::Delete => Some(DELETED.to_string()),
                    _ => without_rowid(after),
                };
                let version = Bound {
                    entity: &entity,
                    id: &entity_id,
                    hlc: &hlc,
                    device: &device,
                };
                let after = content.map(|c| sealer.seal(version, &c));
                changes.push(Change {
                    seq,
                    hlc,
                    entity,
                    entity_id,
                    after,
                    op,
                    at,
                    base,
                });
            }
            let audit_head = c
                .query_row(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| {
                        Ok(AuditHead {
                            seq: r.get(0)?,
                            hash: r.get(1)?,
                        })
                    },
                )
                .optional()?;
            Ok((
                PushRequest {
                    changes,
                    audit_head,
                },
                pushed,
                presync,
            ))
        })?;
        if req.changes.is_empty() && stored > 0 {
            return Ok(stored);
        }
        let sent_to = req.changes.last().map(|c| c.seq).unwrap_or(pushed);
        let resp = t.push(&req)?;
        stored += resp.stored;
        if resp.last_seq < sent_to {
            return Err(crate::Error::Internal(format!(
                "the server holds changes up to {} of {sent_to}",
                resp.last_seq
            )));
        }
        db.write(&actor(), |w| {
            w.keep_draft(
                Table::SyncState,
                "UPDATE sync_state SET pushed_seq = max(pushed_seq, ?1),
                        presync_hlc = CASE WHEN ?1 > pushed_seq THEN ?3 ELSE presync_hlc END,
                        updated_at = ?2",
                (sent_to, w.now_ts(), presync.state()),
            )
        })?;
        if req.changes.len() < MAX_BATCH {
            return Ok(stored);
        }
    }
}

/// What a delete's sealed content is.
const DELETED: &str = "deleted";

/// A page of pulled changes with each version's content opened (a delete's `after` becomes
/// none), and apart those whose seal does not open for their row and stamp: forged, moved or
/// replayed by someone without the clinic's key.
fn open_page(
    sealer: &Sealer,
    changes: Vec<PulledChange>,
) -> (Vec<PulledChange>, Vec<PulledChange>) {
    let (mut opened, mut unreadable) = (vec![], vec![]);
    for mut ch in changes {
        let c = &ch.change;
        let plain = c.after.as_deref().and_then(|a| {
            let at = Bound {
                entity: &c.entity,
                id: &c.entity_id,
                hlc: &c.hlc,
                device: &ch.device_id,
            };
            sealer.open(at, a)
        });
        match (c.op, plain) {
            (Op::Delete, Some(p)) if p == DELETED => {
                ch.change.after = None;
                opened.push(ch);
            }
            (Op::Insert | Op::Update, Some(p)) => {
                ch.change.after = Some(p);
                opened.push(ch);
            }
            _ => unreadable.push(ch),
        }
    }
    (opened, unreadable)
}

/// A pulled change whose seal did not open: kept in the inbox and as a `refused` conflict
/// (without its content), never applied.
fn refuse_unreadable(w: &mut Write<'_>, ch: &PulledChange) -> Result<u32> {
    let seen = w
        .conn()
        .prepare_cached("SELECT 1 FROM sync_inbox WHERE server_seq = ?1")?
        .exists([ch.server_seq])?;
    if seen {
        return Ok(0);
    }
    let v = Version {
        hlc: ch.change.hlc.clone(),
        device: ch.device_id.clone(),
        base: None,
    };
    let n = record_conflict(
        w,
        &ch.change.entity,
        &ch.change.entity_id,
        "refused",
        None,
        &v,
        None,
        Some("its sealed content does not open with this clinic's key".into()),
    )?;
    inbox(w, ch, "unreadable")?;
    Ok(n)
}

/// A `key_slots` row this PC does not admit (`slots::adopt`): kept as a `refused` conflict
/// (once per version, without its content).
pub(crate) fn refuse_account_change(w: &mut Write<'_>, row_id: &str) -> Result<u32> {
    let Some(v) = w.version_of(Table::KeySlots.name(), row_id)? else {
        return Ok(0);
    };
    record_conflict(
        w,
        Table::KeySlots.name(),
        row_id,
        "refused",
        None,
        &v,
        None,
        Some("an account change that no administrator this PC trusts signed: its key slot was not taken".into()),
    )
}

/// Entries logged before sync existed carry the PC's own row number; it never travels.
fn without_rowid(after: Option<String>) -> Option<String> {
    match after {
        Some(a) if a.contains("\"pk\":") => match serde_json::from_str::<Value>(&a) {
            Ok(Value::Object(mut m)) => {
                m.remove(crate::store::LOCAL_ROWID);
                Some(Value::Object(m).to_string())
            }
            _ => Some(a),
        },
        other => other,
    }
}

/// Downloaded before everything else (they reference nothing).
const FIRST: &[&str] = &["settings", "staff", "key_slots"];

/// The synced tables, parents before children (by their foreign keys; ties by name): the
/// order a new PC downloads them in.
pub fn dependency_order(c: &rusqlite::Connection) -> Result<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|t| super::synced_table(t).is_some())
        .collect();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &tables {
        let refs: Vec<String> = c
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([t], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        parents.insert(
            t.clone(),
            refs.into_iter()
                .filter(|p| p != t && tables.contains(p))
                .collect(),
        );
    }
    // Accounts and settings first: a PC whose download was cut off can be signed in to
    // (and so resume) only once it has them.
    let mut order: Vec<String> = FIRST
        .iter()
        .filter(|t| parents.contains_key(**t))
        .map(|t| t.to_string())
        .collect();
    for t in &order {
        parents.remove(t);
    }
    while !parents.is_empty() {
        let ready: Vec<String> = parents
            .iter()
            .filter(|(_, ps)| ps.iter().all(|p| order.contains(p)))
            .map(|(t, _)| t.clone())
            .collect();
        // A cycle (none today) is broken by name order rather than stopping the download.
        let take = if ready.is_empty() {
            vec![parents.keys().next().cloned().unwrap_or_default()]
        } else {
            ready
        };
        for t in take {
            parents.remove(&t);
            order.push(t);
        }
    }
    Ok(order)
}

/// Pulls and applies until the server has nothing newer. Returns (pulled, applied,
/// conflicts).
pub fn pull_all(db: &Db, t: &Transport) -> Result<(u32, u32, u32)> {
    let sealer = Sealer::new(&db.key());
    let (mut pulled, mut applied, mut conflicts) = (0, 0, 0);
    loop {
        let from = db.read(|c| Ok(link(c)?.ok_or(Error::NotConfigured)?.pulled_to))?;
        let page: PullResponse = t.pull(from, MAX_BATCH as u32)?;
        pulled += page.changes.len() as u32;
        let (opened, unreadable) = open_page(&sealer, page.changes);
        let (a, c) = db.write_batch(&actor(), |w| {
            let mut counts = (0, 0);
            for ch in &opened {
                let (a, c) = apply_pulled(w, ch)?;
                counts.0 += a as u32;
                counts.1 += c;
            }
            for ch in &unreadable {
                counts.1 += refuse_unreadable(w, ch)?;
            }
            counts.1 += flag_double_bookings(w, &opened)?;
            counts.1 += rebalance_stock(w, &opened)?;
            counts.1 += rebalance_invoices(w, &opened)?;
            counts.1 += rebalance_fills(w, &opened)?;
            let clock = w.clock_text()?;
            w.keep_draft(
                Table::SyncState,
                "UPDATE sync_state SET pulled_to = max(pulled_to, ?1),
                        hlc_seen = max(hlc_seen, coalesce(?2, '')), updated_at = ?3",
                (page.next, clock, w.now_ts()),
            )?;
            Ok(counts)
        })?;
        applied += a;
        conflicts += c;
        if !page.more {
            return Ok((pulled, applied, conflicts));
        }
    }
}

/// Applies one pulled change, once (a change already in the inbox is skipped). Returns
/// whether it was written and how many conflicts it recorded.
fn apply_pulled(w: &mut Write<'_>, ch: &PulledChange) -> Result<(bool, u32)> {
    let seen = w
        .conn()
        .prepare_cached("SELECT 1 FROM sync_inbox WHERE server_seq = ?1")?
        .exists([ch.server_seq])?;
    if seen {
        return Ok((false, 0));
    }
    w.observe(&ch.change.hlc)?;
    let incoming = Version {
        hlc: ch.change.hlc.clone(),
        device: ch.device_id.clone(),
        base: None,
    };
    let (outcome, written, conflicts) = if NOT_REPLICATED.contains(&ch.change.entity.as_str())
        || super::synced_table(&ch.change.entity).is_none()
    {
        ("skipped", false, 0)
    } else {
        apply_version(
            w,
            &ch.change.entity,
            &ch.change.entity_id,
            ch.change.after.as_deref(),
            &incoming,
            base_of(ch),
            &ch.device_code,
        )?
    };
    inbox(w, ch, outcome)?;
    Ok((written, conflicts))
}

fn inbox(w: &mut Write<'_>, ch: &PulledChange, outcome: &str) -> Result<()> {
    w.keep_draft(
        Table::SyncInbox,
        "INSERT INTO sync_inbox (server_seq, device_id, device_code, seq, entity, entity_id, op, hlc, base, outcome, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        rusqlite::params![
            ch.server_seq,
            ch.device_id,
            ch.device_code,
            ch.change.seq,
            ch.change.entity,
            ch.change.entity_id,
            format!("{:?}", ch.change.op).to_lowercase(),
            ch.change.hlc,
            ch.change.base,
            outcome,
            w.now_ts()
        ],
    )?;
    Ok(())
}

/// The base a pulled change was made on. The wire does not carry it yet for changes made
/// before sync was on; those have none.
fn base_of(ch: &PulledChange) -> Option<&str> {
    ch.change.base.as_deref()
}

/// Columns that change without anyone editing the record: when two versions differ only in
/// these, the greater simply wins (the same admin signing in on two PCs while they were
/// apart is not a conflict).
const BOOKKEEPING: &[&str] = &[
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "totp_last_step",
];

/// Columns each PC derives from other rows, recomputed after every pull (`rebalance_stock`,
/// `rebalance_invoices`, `rebalance_fills`): two versions differing only in these are not a
/// conflict either.
const DERIVED: &[(&str, &[&str])] = &[
    ("batches", &["on_hand"]),
    ("invoices", &["paid", "status"]),
    ("prescription_fills", &["status"]),
];

fn same_but_bookkeeping(entity: &str, a: Option<&str>, b: Option<&str>) -> bool {
    let derived = DERIVED
        .iter()
        .find(|(e, _)| *e == entity)
        .map(|(_, cols)| *cols)
        .unwrap_or_default();
    let strip = |t: Option<&str>| -> Option<Map<String, Value>> {
        match serde_json::from_str::<Value>(t?) {
            Ok(Value::Object(mut m)) => {
                for k in BOOKKEEPING.iter().chain(derived) {
                    m.remove(*k);
                }
                Some(m)
            }
            _ => None,
        }
    };
    match (strip(a), strip(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Tables whose concurrent versions are not a conflict for people to resolve: the greater
/// version wins and the other is dropped. A finding two PCs both recorded (same id), a key
/// slot both published (the same grant, `sync::slots`).
fn merges_silently(entity: &str) -> bool {
    matches!(entity, "sync_conflicts" | "key_slots")
}

/// Puts one version of a row in place if it is newer than the one held; keeps the loser of
/// a concurrent pair as a conflict. Returns (outcome, written, conflicts recorded).
fn apply_version(
    w: &mut Write<'_>,
    entity: &str,
    id: &str,
    after: Option<&str>,
    incoming: &Version,
    base: Option<&str>,
    device_code: &str,
) -> Result<(&'static str, bool, u32)> {
    let current = w.version_of(entity, id)?;
    let keep_losers = !merges_silently(entity);
    let newer = current.as_ref().is_none_or(|c| incoming.key() > c.key());
    if !newer {
        if current.as_ref().is_some_and(|c| c.key() == incoming.key()) {
            return Ok(("stale", false, 0));
        }
        // Older than what is held: concurrent unless the held version was made on it.
        let mut n = 0;
        if let Some(c) = current.as_ref().filter(|_| keep_losers) {
            let held = crate::store::row_text(w.conn(), entity, id)?;
            if c.base.as_deref() != Some(&incoming.text())
                && !same_but_bookkeeping(entity, held.as_deref(), after)
            {
                n = record_conflict(w, entity, id, "concurrent", Some(c), incoming, after, None)?;
            }
        }
        return Ok(("stale", false, n));
    }
    let cols: Option<Map<String, Value>> = match after {
        Some(a) => match serde_json::from_str::<Value>(a) {
            Ok(Value::Object(m)) => Some(m),
            _ => {
                let n = record_conflict(
                    w,
                    entity,
                    id,
                    "refused",
                    current.as_ref(),
                    incoming,
                    after,
                    Some("the row is not a JSON object".into()),
                )?;
                return Ok(("refused", false, n));
            }
        },
        None => None,
    };
    let mut n = 0;
    if let Some(c) = current.as_ref().filter(|_| keep_losers) {
        let held = crate::store::row_text(w.conn(), entity, id)?;
        if base != Some(c.text().as_str()) && !same_but_bookkeeping(entity, held.as_deref(), after)
        {
            // This PC's version (or another's it held) loses: keep it.
            n += record_conflict(
                w,
                entity,
                id,
                "concurrent",
                Some(incoming),
                c,
                held.as_deref(),
                None,
            )?;
        }
    }
    let origin = Origin {
        device_id: incoming.device.clone(),
        device_code: device_code.to_string(),
        hlc: incoming.hlc.clone(),
        base: base.map(str::to_string),
    };
    let hidden = super::synced_table(entity).unwrap_or_default();
    match w.attempt(|w| w.apply_remote(entity, id, cols.as_ref(), &origin, hidden))? {
        Ok(()) => Ok(("applied", true, n)),
        Err(e) => {
            n += record_conflict(
                w,
                entity,
                id,
                "refused",
                current.as_ref(),
                incoming,
                after,
                Some(e.to_string()),
            )?;
            Ok(("refused", false, n))
        }
    }
}

/// Appointments that arrived and now overlap another active one (booked on two PCs while
/// they were apart) are kept as `double_booking` findings, which reception sees; neither
/// booking is changed. One finding per pair, the same id on every PC.
fn flag_double_bookings(w: &mut Write<'_>, changes: &[PulledChange]) -> Result<u32> {
    let mut n = 0;
    for ch in changes.iter().filter(|c| c.change.entity == "appointments") {
        let id = &ch.change.entity_id;
        let Some(other) = crate::scheduling::appointments::double_booked(w.conn(), id)? else {
            continue;
        };
        let (first, second) = if *id < other {
            (id.clone(), other)
        } else {
            (other, id.clone())
        };
        let cid = hex::encode(
            &Sha256::digest(format!("double_booking\0{first}\0{second}").as_bytes())[..16],
        );
        let exists = w
            .conn()
            .prepare_cached("SELECT 1 FROM sync_conflicts WHERE id = ?1")?
            .exists([&cid])?;
        if exists {
            continue;
        }
        let now = w.now_ts();
        w.insert_row(
            Table::SyncConflicts,
            &cid,
            &[
                ("entity", &"appointments"),
                ("entity_id", &first),
                ("kind", &"double_booking"),
                ("loser_hlc", &ch.change.hlc),
                ("loser_device", &ch.device_id),
                ("detail", &second),
                ("detected_at", &now),
            ],
        )?;
        n += 1;
    }
    Ok(n)
}

/// Batches whose ledger got moves from another PC: on-hand becomes the ledger's sum again
/// (each PC wrote the balance it saw). A batch two PCs together took below zero is kept as a
/// `stock_short` finding for the pharmacist (one per batch and shortfall, same id
/// everywhere).
fn rebalance_stock(w: &mut Write<'_>, changes: &[PulledChange]) -> Result<u32> {
    let batches = touched(changes, "batches", "stock_moves", "batch_id");
    let mut n = 0;
    for batch in batches {
        let Some(short) = crate::pharmacy::ledger::rebalance(w, &batch)? else {
            continue;
        };
        n += record_finding(w, "batches", &batch, "stock_short", &short.to_string())?;
    }
    Ok(n)
}

/// Invoices paid on two PCs while apart: each wrote the total it saw, so after a pull an
/// invoice's paid amount and status are its payments' sum again. Paid beyond its total (the
/// same bill settled at two desks) is an `overpaid` finding for the cashier (one per invoice
/// and amount, the same id everywhere).
fn rebalance_invoices(w: &mut Write<'_>, changes: &[PulledChange]) -> Result<u32> {
    let invoices = touched(changes, "invoices", "payments", "invoice_id");
    let mut n = 0;
    for invoice in invoices {
        let Some(over) = crate::billing::payments::rebalance(w, &invoice)? else {
            continue;
        };
        n += record_finding(w, "invoices", &invoice, "overpaid", &over.to_string())?;
    }
    Ok(n)
}

/// Prescriptions dispensed on two PCs while apart: each wrote the fill status it saw, so after
/// a pull the status is settled again from all the dispensings. Units given beyond the
/// prescription are an `over_dispensed` finding for the pharmacist (one per prescription and
/// excess, the same id everywhere).
fn rebalance_fills(w: &mut Write<'_>, changes: &[PulledChange]) -> Result<u32> {
    let mut prescriptions = touched(changes, "", "dispensings", "prescription_id");
    prescriptions.extend(touched(
        changes,
        "",
        "prescription_fills",
        "prescription_id",
    ));
    let mut n = 0;
    for id in prescriptions {
        let Ok(rx) = crate::clinical::prescriptions::get(w.conn(), &id) else {
            continue; // not here yet: settled when it arrives with its dispensings
        };
        let (_, over) = crate::pharmacy::dispense::settle_fill(w, &rx)?;
        if over > 0 {
            n += record_finding(w, "prescriptions", &id, "over_dispensed", &over.to_string())?;
        }
    }
    Ok(n)
}

/// The records a page of changes touched: rows of `entity` itself, and the rows that changes
/// of `child` name in their `field` (a payment's invoice).
fn touched(
    changes: &[PulledChange],
    entity: &str,
    child: &str,
    field: &str,
) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for ch in changes {
        let e = ch.change.entity.as_str();
        if e == entity {
            ids.insert(ch.change.entity_id.clone());
        } else if e == child {
            let after: Option<Value> = ch
                .change
                .after
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok());
            if let Some(id) = after
                .as_ref()
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
            {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

/// A finding about a record (not a version): one per record and detail, the same id on every
/// PC that finds it.
fn record_finding(
    w: &mut Write<'_>,
    entity: &str,
    id: &str,
    kind: &str,
    detail: &str,
) -> Result<u32> {
    let cid = hex::encode(&Sha256::digest(format!("{kind}\0{id}\0{detail}").as_bytes())[..16]);
    let exists = w
        .conn()
        .prepare_cached("SELECT 1 FROM sync_conflicts WHERE id = ?1")?
        .exists([&cid])?;
    if exists {
        return Ok(0);
    }
    let now = w.now_ts();
    let clock = w.clock_text()?.unwrap_or_default();
    w.insert_row(
        Table::SyncConflicts,
        &cid,
        &[
            ("entity", &entity),
            ("entity_id", &id),
            ("kind", &kind),
            ("loser_hlc", &clock),
            ("loser_device", &""),
            ("detail", &detail),
            ("detected_at", &now),
        ],
    )?;
    Ok(1)
}

/// Keeps a losing version in `sync_conflicts`, once: the id comes from the loser, so every
/// PC that sees the same pair records the same row.
#[allow(clippy::too_many_arguments)]
fn record_conflict(
    w: &mut Write<'_>,
    entity: &str,
    id: &str,
    kind: &str,
    winner: Option<&Version>,
    loser: &Version,
    loser_after: Option<&str>,
    detail: Option<String>,
) -> Result<u32> {
    let cid = conflict_id(entity, id, loser);
    let exists = w
        .conn()
        .prepare_cached("SELECT 1 FROM sync_conflicts WHERE id = ?1")?
        .exists([&cid])?;
    if exists {
        return Ok(0);
    }
    let now = w.now_ts();
    w.insert_row(
        Table::SyncConflicts,
        &cid,
        &[
            ("entity", &entity),
            ("entity_id", &id),
            ("kind", &kind),
            ("winner_hlc", &winner.map(|v| v.hlc.clone())),
            ("winner_device", &winner.map(|v| v.device.clone())),
            ("loser_hlc", &loser.hlc),
            ("loser_device", &loser.device),
            ("loser_after", &loser_after),
            ("detail", &detail),
            ("detected_at", &now),
        ],
    )?;
    Ok(1)
}

pub fn conflict_id(entity: &str, id: &str, loser: &Version) -> String {
    let h = Sha256::digest(format!("{entity}\0{id}\0{}", loser.text()).as_bytes());
    hex::encode(&h[..16])
}

/// Joins this PC to a clinic on the server with a join code, then downloads the clinic's
/// rows (resuming where a cut-off download stopped) and marks the link ready. `progress`
/// gets (rows done, rows in all).
pub fn join(
    db: &Db,
    server_url: &str,
    server_cert: &str,
    code: &str,
    device_name: &str,
    progress: &dyn Fn(i64, i64) -> bool,
) -> Result<Link> {
    if db.read(link)?.is_some() {
        return Err(Error::AlreadyJoined.into());
    }
    let t = Transport::new(server_url, server_cert, None)?;
    let joined = t.join(&JoinRequest {
        code: clinic_sync_proto::join_code_auth(code),
        device_name: device_name.to_string(),
        device_code: Some(db.device().code.clone()),
    })?;
    db.write(&actor(), |w| {
        insert_link(w, server_url, server_cert, &joined)
    })?;
    download(db, progress)
}

/// Records the link a join made, and gives rows this PC made before sync was on their
/// versions (stamped as the push will stamp their changes: from their time), so the next
/// edit names them as its base.
pub(crate) fn insert_link(
    w: &mut Write<'_>,
    server_url: &str,
    server_cert: &str,
    joined: &clinic_sync_proto::JoinResponse,
) -> Result<()> {
    let now = w.now_ts();
    w.keep_draft(
            Table::SyncState,
            "INSERT INTO sync_state (id, server_url, server_cert, clinic_id, clinic_name, device_id,
                                     device_code, desk, token, phase, created_at, created_by, updated_at, updated_by)
             VALUES ('this', ?1, ?2, ?3, ?4, ?5, ?6, ?9, ?7, 'joining', ?8, 'sync', ?8, 'sync')",
            rusqlite::params![
                server_url,
                server_cert,
                joined.clinic_id,
                joined.clinic_name,
                joined.device_id,
                joined.device_code,
                joined.token,
                now,
                joined.device_number
            ],
        )?;
    // Rows this PC made before sync was on get their versions now, stamped as the push
    // will stamp their changes, so the next edit names them as its base; the clock goes on
    // from the last of those stamps.
    let mut presync = PresyncClock::default();
    let mut latest = vec![];
    {
        let mut st = w.conn().prepare(
            "SELECT entity, entity_id, hlc, at,
                    seq = max(seq) OVER (PARTITION BY entity, entity_id) AS latest
               FROM change_log ORDER BY seq",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (entity, entity_id): (String, String) = (r.get(0)?, r.get(1)?);
            let stamp = presync.stamp(r.get(2)?, &r.get::<_, String>(3)?)?;
            if r.get::<_, bool>(4)? && !NOT_REPLICATED.contains(&entity.as_str()) {
                latest.push((entity, entity_id, stamp));
            }
        }
    }
    for (entity, entity_id, stamp) in latest {
        w.keep_draft(
            Table::SyncVersions,
            "INSERT INTO sync_versions (entity, entity_id, hlc, device_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (entity, entity_id) DO NOTHING",
            (&entity, &entity_id, &stamp, &joined.device_id),
        )?;
    }
    w.keep_draft(
        Table::SyncState,
        "UPDATE sync_state SET hlc_seen = max(hlc_seen, ?1)",
        [presync.state()],
    )?;
    w.record_event(
            "sync_joined",
            Table::SyncState,
            &joined.device_id,
            Some(serde_json::json!({ "server": server_url, "clinic": joined.clinic_name, "device_code": joined.device_code })),
        )
}

/// Downloads the clinic's current rows page by page, each page one transaction, from the
/// saved resume point; marks the link ready when done. `progress` gets (rows done, rows in
/// all) after each page; false stops the download there (it resumes at the next call).
pub fn download(db: &Db, progress: &dyn Fn(i64, i64) -> bool) -> Result<Link> {
    let l = db.read(link)?.ok_or(Error::NotConfigured)?;
    if l.ready {
        return Ok(l);
    }
    let t = l.transport()?;
    let sealer = Sealer::new(&db.key());
    let order = db.read(dependency_order)?;
    // The resume point names the entity it is in; entities before it are done.
    let (mut from_entity, mut after) =
        match l.snapshot_after.as_deref().and_then(|c| c.split_once('/')) {
            Some((e, _)) => (
                order.iter().position(|x| x == e).unwrap_or(0),
                l.snapshot_after.clone(),
            ),
            None => (0, None),
        };
    let mut done = l.snapshot_done;
    if order.is_empty() {
        return Err(crate::Error::internal("no synced tables"));
    }
    loop {
        let entity = Some(order[from_entity].clone());
        let page = t.snapshot(after.as_deref(), entity.as_deref(), 5000)?;
        let next = page.next.clone();
        let finished = next.is_none() && from_entity + 1 >= order.len();
        db.write_batch(&actor(), |w| {
            // Within a page a child may come before its parent (ids of one table).
            w.defer_foreign_keys()?;
            for r in page.rows.iter().filter(|r| Some(&r.entity) == entity.as_ref()) {
                w.observe(&r.hlc)?;
                let v = Version {
                    hlc: r.hlc.clone(),
                    device: r.device_id.clone(),
                    base: None,
                };
                let content = match &r.after {
                    None => None,
                    Some(a) => match sealer.open(
                        Bound {
                            entity: &r.entity,
                            id: &r.entity_id,
                            hlc: &r.hlc,
                            device: &r.device_id,
                        },
                        a,
                    ) {
                        Some(p) => Some(p),
                        None => {
                            record_conflict(
                                w,
                                &r.entity,
                                &r.entity_id,
                                "refused",
                                None,
                                &v,
                                None,
                                Some("its sealed content does not open with this clinic's key".into()),
                            )?;
                            continue;
                        }
                    },
                };
                apply_version(w, &r.entity, &r.entity_id, content.as_deref(), &v, None, "server")?;
            }
            let clock = w.clock_text()?;
            let resume = match (&next, order.get(from_entity + 1)) {
                (Some(n), _) => Some(n.clone()),
                (None, Some(e)) => Some(format!("{e}/")),
                (None, None) => None,
            };
            // The first page's cursor is where pulling starts: rows changed while the
            // download ran come again as changes, and the newer version wins.
            w.keep_draft(
                Table::SyncState,
                "UPDATE sync_state SET snapshot_after = ?1,
                        snapshot_as_of = CASE WHEN snapshot_done = 0 AND snapshot_as_of = 0 THEN ?2 ELSE snapshot_as_of END,
                        snapshot_done = ?3, snapshot_total = ?4,
                        hlc_seen = max(hlc_seen, coalesce(?5, '')), updated_at = ?6",
                rusqlite::params![
                    resume,
                    page.as_of,
                    done + page.rows.len() as i64,
                    page.total,
                    clock,
                    w.now_ts()
                ],
            )?;
            if finished {
                w.keep_draft(
                    Table::SyncState,
                    "UPDATE sync_state SET phase = 'ready', pulled_to = snapshot_as_of",
                    [],
                )?;
            }
            Ok(())
        })?;
        done += page.rows.len() as i64;
        let go_on = progress(done, page.total.max(done));
        if finished || !go_on {
            break;
        }
        match next {
            Some(n) => after = Some(n),
            None => {
                from_entity += 1;
                after = None;
            }
        }
    }
    db.read(link)?.ok_or_else(|| Error::NotConfigured.into())
}
