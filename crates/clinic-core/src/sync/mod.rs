//! Sync with the clinic's server (optional: without a server nothing here runs).
//!
//! This PC pushes its change log from `sync_state.pushed_seq` and pulls the other PCs'
//! changes from `sync_state.pulled_to`; both cursors move only after the server (or this
//! database) has what they cover, so a push or pull repeated after a timeout changes
//! nothing. Pulled changes are applied in server order, a batch per transaction, through
//! `Write::apply_remote`: audited as "applied from device X", kept in `sync_inbox`, never
//! added to this PC's change log (no echo).
//!
//! Versions of a record are ordered by hybrid-logical-clock stamp, then device
//! (`store::hlc`); the greater wins on every PC and on the server. When the loser was not
//! an ancestor of the winner (both PCs changed the record while apart), the loser is kept
//! in `sync_conflicts` for an admin.

pub mod apply;
pub mod blobs;
pub mod join;
pub mod seal;
pub mod slots;
pub mod status;
pub mod transport;

use clinic_sync_proto::ErrorCode;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use specta::Type;

use crate::error::Result;
use crate::ids::parse_ts;
use crate::store::hlc::Hlc;
use crate::store::{Actor, Db};
use crate::Error as CrateError;

pub use status::{
    Conflict, ConflictKind, ConnectInput, DeviceRow, DoubleBooking, Invite, JoinProgress, Status,
};
pub use transport::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SyncTable")]
pub enum Table {
    /// This PC's link to the server (bookkeeping: not audited, not synced).
    SyncState,
    /// Other PCs' changes as they arrived (bookkeeping).
    SyncInbox,
    /// Other PCs' changes stamped too far ahead of this PC's clock, held back (bookkeeping).
    SyncHeld,
    /// Each synced row's current version (bookkeeping; the write path keeps it).
    SyncVersions,
    /// Versions that lost to another PC's: audited and synced like any record.
    SyncConflicts,
    /// Accounts' key slots as every PC of the clinic needs them (synced; `slots`).
    KeySlots,
}

impl crate::store::Table for Table {
    fn journaled(self) -> bool {
        matches!(self, Table::SyncConflicts | Table::KeySlots)
    }
    /// A losing version may be a staff row with its secrets: the trail names the conflict,
    /// the version itself stays in the (encrypted) table.
    fn redacted(self) -> &'static [&'static str] {
        match self {
            Table::SyncConflicts => &["loser_after"],
            Table::KeySlots => &["slot"],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case", rename = "SyncField")]
pub enum Field {
    ServerUrl,
    ServerCert,
    JoinCode,
    DeviceName,
    ValidMinutes,
    Note,
}
impl crate::error::FieldEnum for Field {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "SyncError"
)]
pub enum Error {
    #[error("this PC is not connected to a clinic server")]
    NotConfigured,
    #[error("the server address must start with https://")]
    NotHttps,
    #[error("the server certificate is not a PEM certificate")]
    BadCertificate,
    #[error("network: {message}")]
    Network { message: String },
    #[error("the server refused: {message}")]
    Server {
        #[specta(type = String)]
        code: ErrorCode,
        message: String,
    },
    #[error("this PC is already connected to a clinic server")]
    AlreadyJoined,
    #[error("the join code does not open what the inviting PC sent")]
    InvitationUnreadable,
    #[error("this conflict is already resolved")]
    AlreadyResolved,
    /// The server's answers don't move on (the same page again, or out of order): sync
    /// stops rather than loop.
    #[error("the server's answers do not move on; sync stopped")]
    ServerMisbehaves,
    /// More changes than a round takes were refused or held back (they could not be opened,
    /// broke a rule here, or were stamped too far ahead): the round stopped.
    #[error("{count} changes from the server were refused in one round; sync stopped for now")]
    TooManyRefused { count: u32 },
    /// As many changes as are ever held back wait for this PC's clock: pulling waits too.
    #[error(
        "{count} changes are held back for this PC's clock; sync waits until the clock is right"
    )]
    TooManyHeld { count: i64 },
}

impl From<Error> for CrateError {
    fn from(e: Error) -> Self {
        CrateError::domain(e)
    }
}

/// What sync needs to know of a table another PC sent rows of: the columns the audit trail
/// redacts, and the table's check of a row from another PC (`store::Table::remote_check`).
#[derive(Clone, Copy)]
pub struct Synced {
    pub redacted: &'static [&'static str],
    pub check: crate::store::RemoteCheck,
}

/// The entity another PC sent, if it names a table some domain writes and syncs; none
/// otherwise (the change is skipped). Every domain's `Table` enum is listed here
/// (ARCHITECTURE.md, "Adding a domain").
pub fn synced_table(entity: &str) -> Option<Synced> {
    // Asked for every row that arrives: each name is looked up once per process (a name
    // no enum knows makes serde build an error message each time).
    static KNOWN: std::sync::OnceLock<
        parking_lot::Mutex<std::collections::HashMap<String, Option<Synced>>>,
    > = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(found) = known.lock().get(entity) {
        return *found;
    }
    let found = lookup_synced_table(entity);
    let mut k = known.lock();
    if k.len() < 1024 {
        k.insert(entity.to_string(), found);
    }
    found
}

fn lookup_synced_table(entity: &str) -> Option<Synced> {
    fn as_table<T: crate::store::Table + serde::de::DeserializeOwned>(
        entity: &str,
    ) -> Option<Synced> {
        serde_json::from_value::<T>(serde_json::Value::String(entity.to_string()))
            .ok()
            .filter(|t| t.journaled() && t.synced())
            .map(|t| Synced {
                redacted: t.redacted(),
                check: t.remote_check(),
            })
    }
    as_table::<crate::settings::Table>(entity)
        .or_else(|| as_table::<crate::staff::Table>(entity))
        .or_else(|| as_table::<crate::patients::Table>(entity))
        .or_else(|| as_table::<crate::scheduling::Table>(entity))
        .or_else(|| as_table::<crate::queue::Table>(entity))
        .or_else(|| as_table::<crate::clinical::Table>(entity))
        .or_else(|| as_table::<crate::pharmacy::Table>(entity))
        .or_else(|| as_table::<crate::billing::Table>(entity))
        .or_else(|| as_table::<Table>(entity))
}

/// Who sync's own writes are by, in the audit trail.
pub fn actor() -> Actor {
    Actor {
        id: "sync".into(),
        name: "sync".into(),
    }
}

/// This PC's link to the server, as `sync_state` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub server_url: String,
    pub server_cert: String,
    pub clinic_id: String,
    pub clinic_name: String,
    pub device_id: String,
    pub device_code: String,
    pub token: String,
    pub ready: bool,
    pub snapshot_after: Option<String>,
    pub snapshot_as_of: i64,
    pub snapshot_done: i64,
    pub snapshot_total: i64,
    pub pushed_seq: i64,
    pub pulled_to: i64,
    pub hlc_seen: String,
    pub last_sync_at: Option<String>,
    /// The last round's error as an `ApiError` in JSON.
    pub last_error: Option<String>,
}

pub fn link(c: &Connection) -> Result<Option<Link>> {
    Ok(c.prepare_cached(
        "SELECT server_url, server_cert, clinic_id, clinic_name, device_id, device_code, token, phase,
                snapshot_after, snapshot_as_of, snapshot_done, snapshot_total, pushed_seq, pulled_to,
                hlc_seen, last_sync_at, last_error FROM sync_state",
    )?
    .query_row([], |r| {
        Ok(Link {
            server_url: r.get(0)?,
            server_cert: r.get(1)?,
            clinic_id: r.get(2)?,
            clinic_name: r.get(3)?,
            device_id: r.get(4)?,
            device_code: r.get(5)?,
            token: r.get(6)?,
            ready: r.get::<_, String>(7)? == "ready",
            snapshot_after: r.get(8)?,
            snapshot_as_of: r.get(9)?,
            snapshot_done: r.get(10)?,
            snapshot_total: r.get(11)?,
            pushed_seq: r.get(12)?,
            pulled_to: r.get(13)?,
            hlc_seen: r.get(14)?,
            last_sync_at: r.get(15)?,
            last_error: r.get(16)?,
        })
    })
    .optional()?)
}

impl Link {
    pub fn transport(&self) -> std::result::Result<Transport, Error> {
        Transport::new(&self.server_url, &self.server_cert, Some(&self.token))
    }
}

/// What one round of sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Type)]
pub struct Report {
    pub pushed: u32,
    pub pulled: u32,
    pub applied: u32,
    pub conflicts: u32,
    /// Changes refused or held back this round.
    pub refused: u32,
    /// More may be waiting: the round stopped at its bounds, or it moved files (the next
    /// round goes on at once rather than after the usual pause).
    pub more: bool,
    pub files_uploaded: u32,
    pub files_fetched: u32,
    /// Moving files failed this round (rows moved all the same).
    pub files_error: Option<crate::ApiError>,
}

/// Stamps for change-log entries: an entry's own, or, for one made before sync was on (it has
/// none), its time ticked in log order like a clock. So two versions of a record written in
/// one millisecond (a write that inserts a row and then updates it) still sort in the order
/// they were made. The push and the join walk the same entries from the same state, so they
/// stamp alike; the push keeps the state at `pushed_seq` (`sync_state.presync_hlc`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PresyncClock(Hlc);

impl PresyncClock {
    pub fn resume(state: &str) -> PresyncClock {
        PresyncClock(Hlc::parse(state).unwrap_or_default())
    }

    pub fn stamp(&mut self, hlc: Option<String>, at: &str) -> Result<String> {
        Ok(match hlc {
            Some(h) => {
                // Entries after it (there are none today: sync, once on, stays on) would
                // still sort after it.
                self.0 = self.0.max(Hlc::parse(&h).unwrap_or_default());
                h
            }
            None => {
                let t = parse_ts(at)
                    .ok_or_else(|| CrateError::Internal(format!("change-log time {at:?}")))?;
                self.0 = self
                    .0
                    .tick(t.timestamp_millis())
                    .map_err(|_| CrateError::ClockExhausted)?;
                self.0.to_string()
            }
        })
    }

    pub fn state(&self) -> String {
        self.0.to_string()
    }
}

/// `RowDigest` over every synced row this PC holds (rows sync has a version for: seeded
/// rows nobody changed are on every PC and never travel), sealed as they travel, as the
/// server computes it over its copy: equal digests, equal data.
pub fn digest(db: &crate::store::Db) -> Result<String> {
    let sealer = seal::Sealer::new(&db.key());
    db.read(|c| {
        let mut h = clinic_sync_proto::RowDigest::default();
        let mut st = c.prepare(
            "SELECT entity, entity_id, hlc, device_id, base FROM sync_versions ORDER BY entity, entity_id",
        )?;
        let keys = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (entity, id, hlc, device, base) in keys {
            if clinic_sync_proto::NOT_REPLICATED.contains(&entity.as_str())
                || synced_table(&entity).is_none()
            {
                continue;
            }
            if let Some(text) = crate::store::row_text(c, &entity, &id)? {
                let at = seal::Bound {
                    entity: &entity,
                    id: &id,
                    hlc: &hlc,
                    device: &device,
                    base: base.as_deref(),
                };
                h.add(&entity, &id, &sealer.seal(at, &text));
            }
        }
        Ok(h.finish())
    })
}

/// Changes waiting to be pushed.
pub fn waiting(c: &Connection) -> Result<i64> {
    let pushed: i64 = match link(c)? {
        Some(l) => l.pushed_seq,
        None => return Ok(0),
    };
    Ok(c.query_row(
        "SELECT count(*) FROM change_log WHERE seq > ?1",
        [pushed],
        |r| r.get(0),
    )?)
}

/// One round: push what is waiting, then pull and apply what the others pushed, then move
/// files (`blobs`) within their budget. Records the outcome (time or error in words) in
/// `sync_state`. A failure moving files is recorded and shown but doesn't fail the round:
/// rows moved, and the background keeps its pace.
pub fn sync_once(db: &Db) -> Result<Report> {
    let link = db.read(link)?.ok_or(Error::NotConfigured)?;
    let t = link.transport()?;
    let out = (|| -> Result<Report> {
        slots::publish(db)?;
        let pushed = apply::push_all(db, &t)?;
        let p = apply::pull_all(db, &t)?;
        slots::adopt(db)?;
        Ok(Report {
            pushed,
            pulled: p.pulled,
            applied: p.applied,
            conflicts: p.conflicts,
            refused: p.refused,
            more: p.more,
            ..Report::default()
        })
    })();
    let out = out.map(|mut r| {
        match blobs::exchange(db, &t, blobs::ROUND_BYTES) {
            Ok(m) => {
                r.files_uploaded = m.uploaded_files;
                r.files_fetched = m.fetched_files;
                r.more |= m.uploaded_bytes > 0 || m.fetched_files > 0;
            }
            Err(e) => r.files_error = Some(e.into()),
        }
        r
    });
    // Kept as the error the window translates (code and params), not English text.
    let error = match &out {
        Err(e) => Some(crate::ApiError {
            code: e.code(),
            message: e.to_string(),
            params: e.params(),
        }),
        Ok(r) => r.files_error.clone(),
    }
    .map(|e| serde_json::to_string(&e).unwrap_or_default());
    let rows_ok = out.is_ok();
    db.write(&actor(), |w| {
        let now = w.now_ts();
        w.keep_draft(
            Table::SyncState,
            "UPDATE sync_state SET last_sync_at = CASE WHEN ?3 THEN ?1 ELSE last_sync_at END,
                    last_error = ?2, updated_at = ?1",
            (&now, &error, rows_ok),
        )?;
        Ok(())
    })?;
    out
}
