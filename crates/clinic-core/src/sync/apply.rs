//! Push, pull, apply, join: the engine's steps.

use clinic_sync_proto::{
    sealed_len, stamp_too_far_ahead, AuditHead, Change, JoinRequest, Op, PullResponse,
    PulledChange, PushRequest, SnapshotRow, MAX_BATCH, MAX_PUSH_BYTES, MAX_STAMP_AHEAD_MS,
    NOT_REPLICATED,
};
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::seal::{Bound, Sealer};
use super::{actor, link, Error, Link, PresyncClock, Table, Transport};
use crate::error::Result;
use crate::store::hlc::Version;
use crate::store::{Db, Origin, Table as _, Write};

/// Pushes everything after `pushed_seq`, a batch at a time: at most `MAX_BATCH` changes
/// and `MAX_PUSH_BYTES` of sealed content each (one row always fits: the write path keeps
/// every row under `MAX_ROW_BYTES`), so a push uploads in seconds even on a slow line. Files
/// go apart, as blobs. Returns the changes the server stored now.
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
            let mut rows = stmt.query((pushed, MAX_BATCH as i64))?;
            let mut changes = Vec::new();
            let mut bytes = 0usize;
            while let Some(r) = rows.next()? {
                let (seq, entity, entity_id, op): (i64, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let (after, hlc, at, base): (
                    Option<String>,
                    Option<String>,
                    String,
                    Option<String>,
                ) = (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
                let op = match op.as_str() {
                    "insert" => Op::Insert,
                    "update" => Op::Update,
                    _ => Op::Delete,
                };
                // Sealed: the server sees which row changed, never what it holds. A delete
                // carries a sealed marker, so a server can't make one up either.
                let content = match op {
                    Op::Delete => Some(DELETED.to_string()),
                    _ => without_local(&entity, after),
                };
                let size = content.as_ref().map_or(0, |c| sealed_len(c.len()));
                if !changes.is_empty() && bytes + size > MAX_PUSH_BYTES {
                    break;
                }
                bytes += size;
                let hlc = presync.stamp(hlc, &at)?;
                let version = Bound {
                    entity: &entity,
                    id: &entity_id,
                    hlc: &hlc,
                    device: &device,
                    base: base.as_deref(),
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
        // Refused for a clock stamp too far ahead of the server's: kept there, applied
        // nowhere. Counted here for the Sync screen (only seqs this push sent count).
        let refused = resp
            .refused
            .iter()
            .filter(|s| req.changes.iter().any(|c| c.seq == **s))
            .count() as i64;
        db.write(&actor(), |w| {
            w.keep_draft(
                Table::SyncState,
                "UPDATE sync_state SET pushed_seq = max(pushed_seq, ?1),
                        presync_hlc = CASE WHEN ?1 > pushed_seq THEN ?3 ELSE presync_hlc END,
                        own_refused = own_refused + ?4,
                        own_refused_at = CASE WHEN ?4 > 0 THEN ?2 ELSE own_refused_at END,
                        updated_at = ?2",
                (sent_to, w.now_ts(), presync.state(), refused),
            )
        })?;
        if req.changes.is_empty() {
            return Ok(stored);
        }
    }
}

/// What a delete's sealed content is.
const DELETED: &str = "deleted";

/// Whether a pulled change's fields are as PCs and the server make them (lengths, shapes).
fn well_formed(ch: &PulledChange) -> bool {
    clinic_sync_proto::check_change_fields(&ch.change).is_ok()
        && clinic_sync_proto::is_printable(&ch.device_id, 64)
        && clinic_sync_proto::is_device_code(&ch.device_code)
}

/// A page of pulled changes with each version's content opened (a delete's `after` becomes
/// none), and apart those whose seal does not open for their row and stamp: forged, moved or
/// replayed by someone without the clinic's key.
fn open_page(
    sealer: &Sealer,
    changes: Vec<PulledChange>,
) -> (Vec<PulledChange>, Vec<PulledChange>) {
    let (mut opened, mut unreadable) = (vec![], vec![]);
    for mut ch in changes {
        // Fields as a PC makes them, before anything is read of them.
        if !well_formed(&ch) {
            unreadable.push(ch);
            continue;
        }
        let c = &ch.change;
        let plain = c.after.as_deref().and_then(|a| {
            let at = Bound {
                entity: &c.entity,
                id: &c.entity_id,
                hlc: &c.hlc,
                device: &ch.device_id,
                base: c.base.as_deref(),
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

/// A change-log image as it travels: without this PC's own row number (entries logged
/// before sync existed carry it), and without an attachment's bytes (entries logged before
/// files travelled apart carried them; the file goes as a blob now).
fn without_local(entity: &str, after: Option<String>) -> Option<String> {
    let legacy_file =
        entity == "attachments" && after.as_deref().is_some_and(|a| a.contains("\"data\":"));
    match after {
        Some(a) if a.contains("\"pk\":") || legacy_file => {
            match serde_json::from_str::<Value>(&a) {
                Ok(Value::Object(mut m)) => {
                    m.remove(crate::store::LOCAL_ROWID);
                    if entity == "attachments" {
                        m.remove("data");
                    }
                    Some(Value::Object(m).to_string())
                }
                _ => Some(a),
            }
        }
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

/// What one round may take from the server, whatever it sends: pages and bytes (past them
/// the round ends and the next goes on where it stopped) and refused or held changes (past
/// them the round stops with `Error::TooManyRefused`). A server, honest or not, can't keep a
/// round going or fill this PC's disk in one.
pub const MAX_PAGES_PER_ROUND: u32 = 200;
pub const MAX_BYTES_PER_ROUND: usize = 256 * 1024 * 1024;
pub const MAX_REFUSED_PER_ROUND: u32 = 500;
/// Changes held back for their stamps at most; more are refused outright.
pub const MAX_HELD: i64 = 10_000;
/// Open `refused` conflicts kept at most: past it a refusal is counted in the inbox only.
pub const MAX_REFUSED_KEPT: i64 = 20_000;

/// What pulling did this round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pulled {
    pub pulled: u32,
    pub applied: u32,
    pub conflicts: u32,
    /// Refused or held back (unreadable, a rule broken, a stamp too far ahead).
    pub refused: u32,
    /// The round stopped at its page or byte bound with more waiting on the server.
    pub more: bool,
}

/// The text of the greatest stamp this PC takes now: `now` plus `MAX_STAMP_AHEAD_MS`.
fn horizon(now_ms: i64) -> String {
    format!(
        "{:013}-99999",
        now_ms
            .saturating_add(MAX_STAMP_AHEAD_MS)
            .clamp(0, crate::store::hlc::MAX_MS)
    )
}

/// Pulls and applies until the server has nothing newer, or the round's bounds are reached.
/// Changes held back earlier whose stamps this PC's clock has now come near go first.
pub fn pull_all(db: &Db, t: &Transport) -> Result<Pulled> {
    let sealer = Sealer::new(&db.key());
    let mut out = release_held(db)?;
    let (mut pages, mut bytes) = (0u32, 0usize);
    loop {
        let from = db.read(|c| Ok(link(c)?.ok_or(Error::NotConfigured)?.pulled_to))?;
        let page: PullResponse = t.pull(from, MAX_BATCH as u32)?;
        // The server's order moves on, page by page: a page that says "more" without moving
        // on (or moves back, or out of order) would keep the round going for ever.
        let ordered = page
            .changes
            .iter()
            .try_fold(from, |prev, c| {
                (c.server_seq > prev && c.server_seq <= page.next).then_some(c.server_seq)
            })
            .is_some();
        // Server seqs are dense: a page covers at most `MAX_BATCH` of them (a cursor thrown
        // far ahead would skip everything after it).
        if !ordered
            || page.next < from
            || page
                .next
                .checked_sub(from)
                .is_none_or(|d| d > MAX_BATCH as i64)
            || (page.more && page.next == from)
        {
            return Err(Error::ServerMisbehaves.into());
        }
        pages += 1;
        bytes += page
            .changes
            .iter()
            .map(|c| {
                let ch = &c.change;
                [
                    &ch.entity,
                    &ch.entity_id,
                    &ch.hlc,
                    &ch.at,
                    &c.device_id,
                    &c.device_code,
                ]
                .iter()
                .map(|f| f.len())
                .sum::<usize>()
                    + ch.after.as_ref().map_or(0, String::len)
                    + ch.base.as_ref().map_or(0, String::len)
                    + 128
            })
            .sum::<usize>();
        out.pulled += page.changes.len() as u32;
        let (opened, unreadable) = open_page(&sealer, page.changes);
        let counts = db.write_batch(&actor(), |w| {
            let mut n = Pulled::default();
            let horizon = horizon(w.now().timestamp_millis());
            for ch in &opened {
                if stamp_too_far_ahead(&ch.change.hlc, w.now().timestamp_millis()) {
                    n.refused += 1;
                    // Held, never dropped: past `MAX_HELD` the page waits (the cursor stays)
                    // until this PC's clock is set right and held changes go in.
                    if !hold(w, Some(ch.server_seq), ch)? {
                        return Err(Error::TooManyHeld { count: MAX_HELD }.into());
                    }
                    continue;
                }
                debug_assert!(ch.change.hlc <= horizon);
                // One change's failure, whatever it is, refuses that change only: the page
                // and the cursor go on.
                match w.attempt(|w| apply_pulled(w, ch))? {
                    Ok((outcome, c)) => {
                        n.applied += (outcome == "applied") as u32;
                        n.refused += (outcome == "refused") as u32;
                        n.conflicts += c;
                    }
                    Err(e) => {
                        n.refused += 1;
                        n.conflicts += refuse_pulled(w, ch, &e.to_string())?;
                    }
                }
            }
            for ch in &unreadable {
                n.refused += 1;
                n.conflicts += refuse_pulled(
                    w,
                    ch,
                    "its sealed content does not open with this clinic's key",
                )?;
            }
            n.conflicts += settle_after_pull(w, &opened)?;
            let clock = w.clock_text()?;
            w.keep_draft(
                Table::SyncState,
                "UPDATE sync_state SET pulled_to = max(pulled_to, ?1),
                        hlc_seen = max(hlc_seen, coalesce(?2, '')), updated_at = ?3",
                (page.next, clock, w.now_ts()),
            )?;
            Ok(n)
        })?;
        out.applied += counts.applied;
        out.conflicts += counts.conflicts;
        out.refused += counts.refused;
        if out.refused > MAX_REFUSED_PER_ROUND {
            return Err(Error::TooManyRefused { count: out.refused }.into());
        }
        if !page.more {
            return Ok(out);
        }
        if pages >= MAX_PAGES_PER_ROUND || bytes >= MAX_BYTES_PER_ROUND {
            out.more = true;
            return Ok(out);
        }
    }
}

/// Rules settled again after a pull from what arrived (double bookings, stock, invoices,
/// fills). Returns the findings recorded.
/// A rule that fails on what arrived (sums past what a number holds, say) is left as it
/// was: the rows are in, and the next pull settles again.
fn settle_after_pull(w: &mut Write<'_>, changes: &[PulledChange]) -> Result<u32> {
    let settled = w.attempt(|w| {
        Ok(flag_double_bookings(w, changes)?
            + rebalance_stock(w, changes)?
            + rebalance_invoices(w, changes)?
            + rebalance_fills(w, changes)?)
    })?;
    Ok(settled.unwrap_or(0))
}

/// Holds back a change whose stamp is too far ahead of this PC's clock: kept (content
/// opened, inside this encrypted file), never observed or applied until the clock comes near
/// it (`release_held`). `server_seq` none: a row of the download. False when `MAX_HELD` are
/// held already (the caller refuses it instead).
fn hold(w: &mut Write<'_>, server_seq: Option<i64>, ch: &PulledChange) -> Result<bool> {
    let held: i64 = w
        .conn()
        .prepare_cached("SELECT count(*) FROM sync_held")?
        .query_row([], |r| r.get(0))?;
    if held >= MAX_HELD {
        return Ok(false);
    }
    let key = match server_seq {
        Some(s) => format!("pull:{s}"),
        None => format!("download:{}/{}", ch.change.entity, ch.change.entity_id),
    };
    w.keep_draft(
        Table::SyncHeld,
        "INSERT INTO sync_held (key, server_seq, hlc, item, held_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO NOTHING",
        (
            &key,
            server_seq,
            &ch.change.hlc,
            serde_json::to_string(ch)?,
            w.now_ts(),
        ),
    )?;
    Ok(true)
}

/// Applies the held changes this PC's clock has come within `MAX_STAMP_AHEAD_MS` of (at most
/// `MAX_BATCH` a round), in the order they arrived.
fn release_held(db: &Db) -> Result<Pulled> {
    db.write(&actor(), |w| {
        let due: Vec<(String, Option<i64>, String)> = w
            .conn()
            .prepare_cached(
                "SELECT key, server_seq, item FROM sync_held WHERE hlc <= ?1
                 ORDER BY coalesce(server_seq, 0), key LIMIT ?2",
            )?
            .query_map(
                (horizon(w.now().timestamp_millis()), MAX_BATCH as i64),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        let mut n = Pulled::default();
        let mut pulled = vec![];
        for (key, server_seq, item) in due {
            let ch: PulledChange = serde_json::from_str(&item)?;
            let applied = match server_seq {
                Some(_) => w.attempt(|w| apply_pulled(w, &ch))?,
                None => w.attempt(|w| apply_downloaded(w, &ch.change, &ch.device_id))?,
            };
            match applied {
                Ok((outcome, c)) => {
                    n.applied += (outcome == "applied") as u32;
                    n.conflicts += c;
                    if server_seq.is_none() && outcome == "applied" {
                        let mut one = PageAudit::default();
                        one.add(&ch.change.entity_id, &ch.change.hlc);
                        one.audit(w, &ch.change.entity)?;
                    }
                }
                Err(e) => {
                    n.refused += 1;
                    let v = Version {
                        hlc: ch.change.hlc.clone(),
                        device: ch.device_id.clone(),
                        base: None,
                    };
                    let (entity, id) = (&ch.change.entity, &ch.change.entity_id);
                    let why = Some(e.to_string());
                    n.conflicts += record_conflict(w, entity, id, "refused", None, &v, None, why)?;
                }
            }
            if server_seq.is_some() {
                pulled.push(ch);
            }
            w.keep_draft(
                Table::SyncHeld,
                "DELETE FROM sync_held WHERE key = ?1",
                [&key],
            )?;
        }
        n.conflicts += settle_after_pull(w, &pulled)?;
        let clock = w.clock_text()?;
        w.keep_draft(
            Table::SyncState,
            "UPDATE sync_state SET hlc_seen = max(hlc_seen, coalesce(?1, ''))",
            [clock],
        )?;
        Ok(n)
    })
}

/// A pulled change this PC won't apply (its seal did not open; too many held): kept in the
/// inbox and as a `refused` conflict (without its content), once.
fn refuse_pulled(w: &mut Write<'_>, ch: &PulledChange, why: &str) -> Result<u32> {
    if in_inbox(w, ch.server_seq)? {
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
        Some(why.into()),
    )?;
    inbox(w, ch, "unreadable")?;
    Ok(n)
}

fn in_inbox(w: &Write<'_>, server_seq: i64) -> Result<bool> {
    Ok(w.conn()
        .prepare_cached("SELECT 1 FROM sync_inbox WHERE server_seq = ?1")?
        .exists([server_seq])?)
}

/// Applies one pulled change, once (a change already in the inbox is skipped). Its stamp is
/// observed only now: its seal opened and it is not too far ahead. Returns the outcome and
/// how many conflicts it recorded.
fn apply_pulled(w: &mut Write<'_>, ch: &PulledChange) -> Result<(&'static str, u32)> {
    if in_inbox(w, ch.server_seq)? {
        return Ok(("seen", 0));
    }
    w.observe(&ch.change.hlc)?;
    let incoming = Version {
        hlc: ch.change.hlc.clone(),
        device: ch.device_id.clone(),
        base: None,
    };
    let (outcome, _, conflicts) = if NOT_REPLICATED.contains(&ch.change.entity.as_str())
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
            Some(&ch.device_code),
        )?
    };
    inbox(w, ch, outcome)?;
    Ok((outcome, conflicts))
}

fn inbox(w: &mut Write<'_>, ch: &PulledChange, outcome: &str) -> Result<()> {
    w.keep_draft(
        Table::SyncInbox,
        "INSERT INTO sync_inbox (server_seq, device_id, device_code, seq, entity, entity_id, op, hlc, base, outcome, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        // Cut to their lengths: a change refused as malformed may carry anything.
        rusqlite::params![
            ch.server_seq,
            short(&ch.device_id),
            short(&ch.device_code),
            ch.change.seq,
            short(&ch.change.entity),
            short(&ch.change.entity_id),
            format!("{:?}", ch.change.op).to_lowercase(),
            short(&ch.change.hlc),
            ch.change.base.as_deref().map(short),
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
/// a concurrent pair as a conflict. Returns (outcome, written, conflicts recorded). A pulled
/// change is audited as applied from the PC `device_code` names; a row of the download
/// (`device_code` none) is not, its page is (`sync_download`).
fn apply_version(
    w: &mut Write<'_>,
    entity: &str,
    id: &str,
    after: Option<&str>,
    incoming: &Version,
    base: Option<&str>,
    device_code: Option<&str>,
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
        device_code: device_code.unwrap_or("server").to_string(),
        hlc: incoming.hlc.clone(),
        base: base.map(str::to_string),
    };
    let Some(synced) = super::synced_table(entity) else {
        return Ok(("skipped", false, n));
    };
    let put = |w: &mut Write<'_>| {
        if let Some(c) = cols.as_ref() {
            (synced.check)(c)?;
        }
        match device_code {
            Some(_) => w.apply_remote(entity, id, cols.as_ref(), &origin, synced.redacted),
            None => w.apply_downloaded(entity, id, cols.as_ref(), &origin),
        }
    };
    match w.attempt(put)? {
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
    // Refusals are what a hostile server can make without end: past `MAX_REFUSED_KEPT` open
    // ones, a refusal stays in the inbox only (the Sync screen counts them).
    if kind == "refused" {
        let open: i64 = w
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM sync_conflicts WHERE kind = 'refused' AND resolved_at IS NULL",
            )?
            .query_row([], |r| r.get(0))?;
        if open >= MAX_REFUSED_KEPT {
            return Ok(0);
        }
    }
    let now = w.now_ts();
    // The record is a synced row itself, so it stays within a row's size whatever it keeps:
    // a losing version too large to keep beside the rest is named by its size and hash (it
    // is still on the PC that made it, and in the server's log), and the words are short.
    let (loser_after, detail) = match loser_after {
        Some(a) if a.len() > MAX_LOSER_BYTES => (
            None,
            Some(format!(
                "{}the losing version ({} bytes, sha256 {}) is too large to keep here",
                detail
                    .map(|d| format!("{}; ", short(&d)))
                    .unwrap_or_default(),
                a.len(),
                hex::encode(Sha256::digest(a.as_bytes()))
            )),
        ),
        other => (other, detail.map(|d| short(&d))),
    };
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

/// A losing version kept in a conflict at most (the rest of the record is small).
const MAX_LOSER_BYTES: usize = clinic_sync_proto::MAX_ROW_BYTES - 64 * 1024;

/// Words about a refusal, at most 500 characters (they may quote what another PC sent).
fn short(text: &str) -> String {
    text.chars().take(500).collect()
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

/// What a page of the download put in place, audited once for the page: how many rows, the
/// first and last id, and a SHA-256 over each row's id and version (a new PC's trail records
/// what came from the server without copying the clinic into it).
#[derive(Default)]
struct PageAudit {
    rows: u32,
    first: Option<String>,
    last: Option<String>,
    digest: Sha256,
}

impl PageAudit {
    fn add(&mut self, id: &str, hlc: &str) {
        self.rows += 1;
        self.first.get_or_insert_with(|| id.to_string());
        self.last = Some(id.to_string());
        for part in [id, hlc] {
            self.digest.update((part.len() as u64).to_le_bytes());
            self.digest.update(part.as_bytes());
        }
    }

    fn audit(&self, w: &mut Write<'_>, entity: &str) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let details = serde_json::json!({
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "sha256": hex::encode(self.digest.clone().finalize()),
        });
        w.record_event("sync_download", Table::SyncState, entity, Some(details))
    }
}

/// One row of the download, its content opened (none: deleted): its stamp observed only now,
/// then put in place like any other PC's version.
fn apply_downloaded(
    w: &mut Write<'_>,
    ch: &Change,
    device_id: &str,
) -> Result<(&'static str, u32)> {
    w.observe(&ch.hlc)?;
    let v = Version {
        hlc: ch.hlc.clone(),
        device: device_id.to_string(),
        base: None,
    };
    let (outcome, _, n) = apply_version(
        w,
        &ch.entity,
        &ch.entity_id,
        ch.after.as_deref(),
        &v,
        ch.base.as_deref(),
        None,
    )?;
    Ok((outcome, n))
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
    if order.is_empty() {
        return Err(crate::Error::internal("no synced tables"));
    }
    // The resume point names the entity it is in; entities before it are done.
    let start = match l.snapshot_after.as_deref().and_then(|c| c.split_once('/')) {
        Some((e, _)) => (
            order.iter().position(|x| x == e).unwrap_or(0),
            l.snapshot_after.clone(),
        ),
        None => (0, None),
    };
    let mut done = l.snapshot_done;
    let mut total = l.snapshot_total;
    let mut refused_total = 0u32;
    let mut profile = DOWNLOAD_PROFILE.lock().clone();
    // Pages are fetched and opened on a thread of their own, a page ahead of the one being
    // written: the network and the seals overlap the writes.
    let result = std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Fetched>>(1);
        let (t, sealer, order) = (&t, &sealer, &order);
        scope.spawn(move || {
            // A panic there (a bug) ends the download with an error, not a panic here.
            let told = tx.clone();
            let run = std::panic::AssertUnwindSafe(|| fetch_pages(t, sealer, order, start, tx));
            if std::panic::catch_unwind(run).is_err() {
                let _ = told.send(Err(crate::Error::internal(
                    "fetching the download's pages failed",
                )));
            }
        });
        for fetched in rx {
            let f = fetched?;
            // This PC is new: no row of the clinic can be its own. One that is means the
            // server gave it another PC's identity.
            if f.rows.iter().any(|(r, _)| r.device_id == l.device_id) {
                return Err(Error::ServerMisbehaves.into());
            }
            profile.fetch_s += f.fetch_s;
            profile.open_s += f.open_s;
            let entity = &order[f.from_entity];
            let finished = f.next.is_none() && f.from_entity + 1 >= order.len();
            let applying = std::time::Instant::now();
            let refused = db.write_batch(&actor(), |w| {
                // Within a page a child may come before its parent (ids of one table).
                w.defer_foreign_keys()?;
                let mut refused = 0u32;
                let mut taken = PageAudit::default();
                for (r, ch) in &f.rows {
                    let v = Version {
                        hlc: r.hlc.clone(),
                        device: r.device_id.clone(),
                        base: None,
                    };
                    let Some(ch) = ch else {
                        refused += 1;
                        let why = Some("its sealed content does not open with this clinic's key".into());
                        record_conflict(w, &r.entity, &r.entity_id, "refused", None, &v, None, why)?;
                        continue;
                    };
                    if stamp_too_far_ahead(&r.hlc, w.now().timestamp_millis()) {
                        refused += 1;
                        if !hold(w, None, ch)? {
                            return Err(Error::TooManyHeld { count: MAX_HELD }.into());
                        }
                        continue;
                    }
                    match w.attempt(|w| apply_downloaded(w, &ch.change, &r.device_id))? {
                        Ok(("applied", _)) => taken.add(&r.entity_id, &r.hlc),
                        Ok(_) => {}
                        Err(e) => {
                            refused += 1;
                            let why = Some(e.to_string());
                            record_conflict(w, &r.entity, &r.entity_id, "refused", None, &v, None, why)?;
                        }
                    }
                }
                taken.audit(w, entity)?;
                let clock = w.clock_text()?;
                let resume = match (&f.next, order.get(f.from_entity + 1)) {
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
                            snapshot_done = ?3, snapshot_total = max(snapshot_total, ?4),
                            hlc_seen = max(hlc_seen, coalesce(?5, '')), updated_at = ?6",
                    rusqlite::params![
                        resume,
                        f.as_of,
                        done + f.count,
                        f.total,
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
                Ok(refused)
            })?;
            let spent = applying.elapsed().as_secs_f64();
            profile.apply_s += spent;
            *profile.by_entity.entry(entity.clone()).or_default() += spent;
            refused_total += refused;
            if refused_total > MAX_REFUSED_PER_ROUND {
                return Err(Error::TooManyRefused {
                    count: refused_total,
                }
                .into());
            }
            done += f.count;
            // The server counts the clinic on each table's first page only.
            total = total.max(f.total);
            let go_on = progress(done, total.max(done));
            if finished || !go_on {
                // The fetching thread stops at its next page (nobody takes it).
                return Ok(());
            }
        }
        Ok(())
    });
    *DOWNLOAD_PROFILE.lock() = profile;
    result?;
    db.read(link)?.ok_or_else(|| Error::NotConfigured.into())
}

/// A page of the download, fetched, checked and opened.
struct Fetched {
    from_entity: usize,
    next: Option<String>,
    as_of: i64,
    total: i64,
    /// Rows the page held (of its table or not).
    count: i64,
    /// Each row of its table with its content opened (none: refused).
    rows: Vec<(SnapshotRow, Option<PulledChange>)>,
    fetch_s: f64,
    open_s: f64,
}

/// Fetches the download's pages in order from `start` (table, cursor), checks and opens each,
/// and hands them on until the last or until nobody takes them. Errors end it, handed on.
fn fetch_pages(
    t: &Transport,
    sealer: &Sealer,
    order: &[String],
    start: (usize, Option<String>),
    tx: std::sync::mpsc::SyncSender<Result<Fetched>>,
) {
    let (mut from_entity, mut after) = start;
    loop {
        let f = fetch_page(t, sealer, order, from_entity, after.as_deref());
        let step = f.as_ref().ok().map(|f| f.next.clone());
        if tx.send(f).is_err() {
            return;
        }
        match step {
            None => return,
            Some(Some(n)) => after = Some(n),
            Some(None) if from_entity + 1 < order.len() => {
                from_entity += 1;
                after = None;
            }
            Some(None) => return,
        }
    }
}

fn fetch_page(
    t: &Transport,
    sealer: &Sealer,
    order: &[String],
    from_entity: usize,
    after: Option<&str>,
) -> Result<Fetched> {
    let entity = &order[from_entity];
    let fetching = std::time::Instant::now();
    let page = t.snapshot(after, Some(entity), 5000)?;
    let fetch_s = fetching.elapsed().as_secs_f64();
    // Rows as the server keeps them: of this table, in order after the cursor, fields in
    // shape; a page with no rows is the last of its table.
    let after_id = after
        .and_then(|a| a.split_once('/'))
        .map(|(_, i)| i.to_string());
    let shaped = page.rows.iter().all(|r| {
        &r.entity == entity
            && clinic_sync_proto::is_printable(&r.entity_id, 128)
            && clinic_sync_proto::stamp_ms(&r.hlc).is_some()
            && clinic_sync_proto::is_printable(&r.device_id, 64)
            && r.base
                .as_deref()
                .is_none_or(|b| clinic_sync_proto::is_printable(b, 128))
    });
    let increasing = page
        .rows
        .iter()
        .try_fold(after_id, |prev, r| {
            prev.is_none_or(|p| r.entity_id.as_str() > p.as_str())
                .then(|| Some(r.entity_id.clone()))
        })
        .is_some();
    if !shaped || !increasing || (page.rows.is_empty() && page.next.is_some()) || page.as_of < 0 {
        return Err(Error::ServerMisbehaves.into());
    }
    // The cursor moves on, to the page's last row and nowhere else: a server that answers the
    // same rows under ever larger cursors, or skips ahead, stops nothing (a table has only so
    // many sealed rows, so every download ends).
    if page.next.as_deref().is_some_and(|n| {
        page.rows
            .last()
            .is_none_or(|r| n != format!("{entity}/{}", r.entity_id))
    }) {
        return Err(Error::ServerMisbehaves.into());
    }
    // Trusted no more than a pulled change: the content, a delete's marker included, must
    // open for its row and version, or nothing is taken (not even its stamp).
    let opening = std::time::Instant::now();
    let count = page.rows.len() as i64;
    let rows = page
        .rows
        .into_iter()
        .map(|r| {
            let opened = r.after.as_deref().and_then(|a| {
                sealer.open(
                    Bound {
                        entity: &r.entity,
                        id: &r.entity_id,
                        hlc: &r.hlc,
                        device: &r.device_id,
                        base: r.base.as_deref(),
                    },
                    a,
                )
            });
            let ch = opened.map(|p| {
                let content = (p != DELETED).then_some(p);
                PulledChange {
                    server_seq: 0,
                    device_id: r.device_id.clone(),
                    device_code: "server".into(),
                    change: Change {
                        seq: 0,
                        entity: r.entity.clone(),
                        entity_id: r.entity_id.clone(),
                        op: if content.is_some() {
                            Op::Update
                        } else {
                            Op::Delete
                        },
                        after: content,
                        hlc: r.hlc.clone(),
                        base: r.base.clone(),
                        at: String::new(),
                    },
                }
            });
            (r, ch)
        })
        .collect();
    Ok(Fetched {
        from_entity,
        next: page.next,
        as_of: page.as_of,
        total: page.total,
        count,
        rows,
        fetch_s,
        open_s: opening.elapsed().as_secs_f64(),
    })
}

/// Where this process's downloads spent their time, in seconds (the sync bench prints it):
/// fetching pages (the network and the server), opening seals, and applying them (the
/// write path, search index included; by table too).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownloadProfile {
    pub fetch_s: f64,
    pub open_s: f64,
    pub apply_s: f64,
    pub by_entity: std::collections::BTreeMap<String, f64>,
}

pub static DOWNLOAD_PROFILE: parking_lot::Mutex<DownloadProfile> =
    parking_lot::Mutex::new(DownloadProfile {
        fetch_s: 0.0,
        open_s: 0.0,
        apply_s: 0.0,
        by_entity: std::collections::BTreeMap::new(),
    });
