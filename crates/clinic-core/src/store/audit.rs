//! Reading and verifying the audit trail (the write path appends to it, `write.rs`).

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use specta::Type;

use crate::error::{FieldEnum, Result};

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit screen's filter fields, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "AuditField")]
pub enum Field {
    From,
    To,
}
impl FieldEnum for Field {}

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

const ENTRY_COLUMNS: &str =
    "seq, id, at, actor_id, actor_name, action, entity, entity_id, before, after";

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
    pub(crate) fn hash(&self, prev: &str) -> String {
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
    let (mut lo, mut hi): (i64, i64) = conn.query_row(
        "SELECT coalesce(min(seq), 1), coalesce(max(seq), 0) + 1 FROM audit_log",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut at_of =
        conn.prepare_cached("SELECT at FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
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
    let from = f
        .from
        .as_deref()
        .map(|t| crate::ids::stored_ts(t, Field::From))
        .transpose()?;
    let to =
        f.to.as_deref()
            .map(|t| crate::ids::stored_ts(t, Field::To))
            .transpose()?;
    let low = from.map(|t| seq_bound(conn, &t)).transpose()?;
    // `to` is inclusive: everything before the first entry after it.
    let high = to
        .map(|t| seq_bound(conn, &format!("{t}\u{10ffff}")))
        .transpose()?;
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
    let mut entries = stmt
        .query_map(rusqlite::params_from_iter(args), AuditEntry::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next_before_seq = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage {
        entries,
        next_before_seq,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ChainStatus {
    pub entries: i64,
    /// The first entry whose hash does not follow from its predecessor; null if intact.
    pub first_broken_seq: Option<i64>,
    pub first_broken_id: Option<String>,
    /// The newest entry's sequence number and hash. The chain proves nothing was changed
    /// before the head; only a copy of the head kept away from this PC (written down, printed
    /// at the daily close, held by the sync server) shows that no entries were cut off the end.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// Heads this PC pushed to the sync server that were compared with the chain here (0
    /// without a server, or when it could not be reached).
    pub anchors_checked: i64,
    /// The first pushed head the chain here no longer has (cut off) or has with another hash
    /// (rewritten, even if every link was recomputed); null if all match.
    pub anchor_broken_seq: Option<i64>,
}

/// Recomputes the whole chain and names the first broken link, and the head.
pub fn verify(conn: &Connection) -> Result<ChainStatus> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENTRY_COLUMNS}, prev_hash, hash FROM audit_log ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    let mut head_seq = None;
    let mut broken = None;
    while let Some(r) = rows.next()? {
        n += 1;
        let e = AuditEntry::from_row(r)?;
        let stored_prev: String = r.get(10)?;
        let stored_hash: String = r.get(11)?;
        if broken.is_none() && (stored_prev != prev || e.hash(&prev) != stored_hash) {
            broken = Some((e.seq, e.id.clone()));
        }
        head_seq = Some(e.seq);
        prev = stored_hash;
    }
    let (first_broken_seq, first_broken_id) =
        broken.map_or((None, None), |(s, i)| (Some(s), Some(i)));
    Ok(ChainStatus {
        entries: n,
        first_broken_seq,
        first_broken_id,
        head_seq,
        head_hash: head_seq.map(|_| prev),
        anchors_checked: 0,
        anchor_broken_seq: None,
    })
}

/// Compares the chain with heads kept away from this PC ((seq, hash), as the sync server
/// holds them): the first whose entry is missing here or has another hash.
pub fn check_anchors(conn: &Connection, heads: &[(i64, String)]) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?;
    let mut sorted: Vec<&(i64, String)> = heads.iter().collect();
    sorted.sort();
    for (seq, hash) in sorted {
        let here: Option<String> = stmt.query_row([seq], |r| r.get(0)).optional()?;
        if here.as_deref() != Some(hash.as_str()) {
            return Ok(Some(*seq));
        }
    }
    Ok(None)
}
