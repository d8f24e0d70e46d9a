//! Where the server keeps a clinic: one trait, two backends with the same behaviour
//! (the test suite runs against both).
//!
//! What a backend must guarantee:
//! - **(device, seq) is stored once.** A change the server has is a duplicate if its content
//!   is the same and a `SeqConflict` if not; a push is all or nothing.
//! - **A device's seqs have no gaps**: the first new change of a push is the device's
//!   `last_seq + 1`, so nothing a device made can be skipped.
//! - **Server order commits in order.** A push takes its `server_seq` range from the clinic
//!   row while holding that row's lock until commit, so a pull never sees seq N+1 before N
//!   (with several server instances on one PostgreSQL too).
//! - **`rows` holds each record's winning version**: the one with the greatest (hlc,
//!   device_id), deletes as tombstones that keep their sealed "deleted" marker (a joining PC
//!   deletes nothing on the server's word alone). Every PC picks the same winner by the same
//!   rule. Entities in `NOT_REPLICATED` (a PC's own device row) are kept as changes only.
//! - **A change stamped too far ahead is kept, never applied or sent** (`refusal`): its seq
//!   stays taken, so the device's later changes go on, and the pusher is told.
//! - **Pages are cut by size before content is read** (`page_cut`, `fitting`).
//! - **Revoking a device and killing its join codes is one transaction**, and a code whose
//!   maker is revoked never joins anyone; a revoked device adds no code and pushes nothing.
//! - Every query is scoped by the clinic of the authenticated device.

pub mod postgres;
pub mod sqlite;

use std::future::Future;

use chrono::{DateTime, Utc};
use clinic_sync_proto::{
    Device, ErrorCode, HeadRecord, PullResponse, PushRequest, PushResponse, SnapshotPage,
};

/// The device a request's token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    pub device_id: String,
    pub clinic_id: String,
    pub code: String,
    pub revoked: bool,
}

/// A device being created by a join.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: String,
    pub name: String,
    /// The code it asks for (the first PC keeps its own); none: the server picks one.
    pub code: Option<String>,
    pub token_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub clinic_id: String,
    pub clinic_name: String,
    pub device_code: String,
    pub device_number: u32,
    pub sealed: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{1}")]
    Api(ErrorCode, String),
    #[error("database: {0}")]
    Db(String),
}

impl StoreError {
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Self {
        StoreError::Api(code, message.into())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A clinic's data on the server. Inputs are validated before they reach a store
/// (`crate::check`); a store enforces the guarantees in the module docs.
pub trait Store: Send + Sync + 'static {
    /// Creates a clinic and returns its id.
    fn create_clinic(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<String>> + Send;

    /// Stores a one-time join code (by the hash of its server half); `quota_exceeded` when the
    /// clinic has `MAX_LIVE_JOIN_CODES` unused ones alive at `now`.
    fn add_join_code(
        &self,
        clinic_id: &str,
        code_hash: &str,
        sealed: Option<&str>,
        expires_at: DateTime<Utc>,
        by_device: Option<&str>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Drops the sealed invitations of codes expired by `now` (used and cancelled ones drop
    /// theirs at once): a later copy of the server's files plus the code opens nothing.
    /// Returns how many.
    fn forget_expired_invitations(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Uses up a join code and creates the device, in one transaction.
    fn redeem(
        &self,
        code_hash: &str,
        device: NewDevice,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Joined>> + Send;

    fn device_by_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<DeviceAuth>>> + Send;

    fn push(
        &self,
        device: &DeviceAuth,
        req: &PushRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<PushResponse>> + Send;

    fn pull(
        &self,
        device: &DeviceAuth,
        after: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<PullResponse>> + Send;

    /// A page of the clinic's current rows, ordered by (entity, entity_id), after `after`;
    /// only those of entity `only` if given (a PC downloads parents before children).
    fn snapshot(
        &self,
        device: &DeviceAuth,
        after: Option<(String, String)>,
        only: Option<String>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<SnapshotPage>> + Send;

    fn devices(&self, clinic_id: &str) -> impl Future<Output = StoreResult<Vec<Device>>> + Send;

    /// Revokes a device of this clinic; another clinic's device is `NotFound`.
    fn revoke(
        &self,
        clinic_id: &str,
        device_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Device>> + Send;

    fn audit_heads(
        &self,
        clinic_id: &str,
        device_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<HeadRecord>>> + Send;

    /// `RowDigest` over the clinic's current rows (deleted ones left out): two holders of
    /// the same data have the same digest.
    fn digest(&self, clinic_id: &str) -> impl Future<Output = StoreResult<String>> + Send;

    /// Stores one chunk of a sealed blob of the device's own (announcing the blob with its first
    /// chunk), within the clinic's quota counted in bytes stored; a chunk already held is kept
    /// as it is. Refused for a revoked device. Returns what is held now.
    fn blob_put(
        &self,
        device: &DeviceAuth,
        put: BlobPut,
    ) -> impl Future<Output = StoreResult<BlobInfo>> + Send;

    /// What the clinic holds of a device's blob, if it was announced.
    fn blob_info(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<BlobInfo>>> + Send;

    /// One chunk of a device's blob, as it was put.
    fn blob_chunk(
        &self,
        clinic_id: &str,
        device_id: &str,
        id: &str,
        index: u32,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;
}

/// One chunk of a blob on its way in, checked against the blob's size by the caller.
#[derive(Debug, Clone)]
pub struct BlobPut {
    pub id: String,
    /// The blob's whole size (its content before sealing) and how many chunks it has.
    pub size: u64,
    pub chunks: u32,
    pub index: u32,
    pub data: Vec<u8>,
    /// The most a clinic may hold in blobs, in bytes stored.
    pub quota: u64,
    pub now: DateTime<Utc>,
}

pub use clinic_sync_proto::BlobInfo;

/// Why a change is kept but never applied or sent ('clock_ahead': its stamp is more than
/// `MAX_STAMP_AHEAD_MS` ahead of the server's clock); none for a change like any other.
pub fn refusal(c: &clinic_sync_proto::Change, now: DateTime<Utc>) -> Option<&'static str> {
    clinic_sync_proto::stamp_too_far_ahead(&c.hlc, now.timestamp_millis()).then_some(CLOCK_AHEAD)
}

pub const CLOCK_AHEAD: &str = "clock_ahead";

/// Join codes a clinic may have waiting at once: one device token can't fill the server's
/// disk with invitations (64 KiB each) nor mint devices without end.
pub const MAX_LIVE_JOIN_CODES: i64 = 50;
/// Devices (not revoked) a clinic may have: each has its own rate and places, so one token
/// that could make devices at will would have no limit.
pub const MAX_DEVICES: i64 = 500;

pub(crate) fn too_many_codes() -> StoreError {
    StoreError::api(
        ErrorCode::QuotaExceeded,
        format!("this clinic has {MAX_LIVE_JOIN_CODES} join codes waiting: use or let some expire first"),
    )
}

pub(crate) fn too_many_devices() -> StoreError {
    StoreError::api(
        ErrorCode::QuotaExceeded,
        format!("this clinic has {MAX_DEVICES} PCs: revoke one it no longer uses first"),
    )
}

/// The bytes a change takes in a page (content and base).
pub fn change_size(c: &clinic_sync_proto::Change) -> usize {
    c.after.as_ref().map_or(0, String::len) + c.base.as_ref().map_or(0, String::len)
}

/// How many of `sizes` fit in `MAX_PAGE_BYTES` (at least one).
pub fn fitting(sizes: impl Iterator<Item = usize>) -> usize {
    let mut total = 0usize;
    let mut n = 0;
    for size in sizes {
        if n > 0 && total.saturating_add(size) > clinic_sync_proto::MAX_PAGE_BYTES {
            break;
        }
        total = total.saturating_add(size);
        n += 1;
    }
    n
}

/// Where a pull page ends, decided from the changes' sizes before any content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCut {
    /// Changes the page carries.
    pub taken: usize,
    /// The last server seq the page covers (the next pull starts after it).
    pub next: i64,
    pub more: bool,
}

/// Cuts a pull page from `(server_seq, skipped, size)` in server order (`skipped`: the
/// caller's own changes and refused ones, passed over without content): content up to
/// `MAX_PAGE_BYTES` (at least one change), `more` when the page was cut or full.
pub fn page_cut(
    heads: impl Iterator<Item = (i64, bool, usize)>,
    after: i64,
    limit: u32,
) -> PageCut {
    let (mut next, mut total, mut taken, mut scanned, mut cut) =
        (after, 0usize, 0usize, 0u32, false);
    for (seq, skipped, size) in heads {
        if !skipped {
            if taken > 0 && total.saturating_add(size) > clinic_sync_proto::MAX_PAGE_BYTES {
                cut = true;
                break;
            }
            total = total.saturating_add(size);
            taken += 1;
        }
        next = seq;
        scanned += 1;
    }
    PageCut {
        taken,
        next,
        more: cut || scanned == limit,
    }
}

/// The wall-clock text the server stores (UTC, RFC 3339 with microseconds).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Which of a push's changes are new, after checking them against what the device has
/// already pushed. `have(seq)` gives the stored content of a seq the server holds.
/// Returns the changes to store (from `last_seq + 1`, no gaps) and the duplicate count.
pub fn split_push(
    req: &PushRequest,
    last_seq: i64,
    mut have: impl FnMut(i64) -> StoreResult<Option<clinic_sync_proto::Change>>,
) -> StoreResult<(Vec<&clinic_sync_proto::Change>, u32)> {
    let mut fresh = Vec::new();
    let mut duplicates = 0;
    let mut expect = last_seq + 1;
    for c in &req.changes {
        if c.seq <= last_seq {
            match have(c.seq)? {
                Some(stored) if stored == *c => duplicates += 1,
                Some(_) => {
                    return Err(StoreError::api(
                        ErrorCode::SeqConflict,
                        format!("change {} differs from the one stored", c.seq),
                    ))
                }
                None => {
                    return Err(StoreError::Db(format!(
                        "change {} is below last_seq {last_seq} but not stored",
                        c.seq
                    )))
                }
            }
        } else if c.seq != expect {
            return Err(StoreError::api(
                ErrorCode::BadRequest,
                format!("expected change {expect}, got {}", c.seq),
            ));
        } else {
            fresh.push(c);
            expect += 1;
        }
    }
    Ok((fresh, duplicates))
}
