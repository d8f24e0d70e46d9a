//! The sync protocol: JSON over HTTPS, one request per call, every body a type from here.
//!
//! A device authenticates with `Authorization: Bearer {token}`; the server takes the
//! device (and so the clinic) from the token, never from a body. Every answer that is not
//! 2xx carries an [`ErrorBody`] whose `code` is one of [`ErrorCode`]'s serde names.
//!
//! | Call | Method and path | Body | Answer |
//! |---|---|---|---|
//! | join | `POST /v1/join` (no token) | [`JoinRequest`] | [`JoinResponse`] |
//! | push | `POST /v1/push` | [`PushRequest`] | [`PushResponse`] |
//! | pull | `GET /v1/pull?after=N&limit=M` | | [`PullResponse`] |
//! | snapshot | `GET /v1/snapshot?after=CURSOR&entity=E&limit=M` | | [`SnapshotPage`] |
//! | new join code | `POST /v1/join-codes` | [`NewJoinCode`] | [`JoinCode`] |
//! | devices | `GET /v1/devices` | | `Vec<`[`Device`]`>` |
//! | revoke | `POST /v1/devices/{id}/revoke` | | [`Device`] |
//! | audit heads | `GET /v1/audit-heads?device=ID` | | `Vec<`[`AuditHead`]`>` |
//! | digest | `GET /v1/digest` | | `String` |
//! | put a chunk of one's own blob | `PUT /v1/blobs/{id}/{index}?size=S` | the sealed chunk (bytes) | [`BlobInfo`] |
//! | a device's blob held | `GET /v1/devices/{device}/blobs/{id}` | | [`BlobInfo`] |
//! | a chunk of it | `GET /v1/devices/{device}/blobs/{id}/{index}` | | the sealed chunk (bytes) |
//!
//! Blobs are kept per device: each PC puts only its own files, and reads a file from the PC
//! that made its record, so nobody can put chunks into another PC's file first.

use serde::{Deserialize, Serialize};

pub const MAX_BATCH: usize = 1000;

/// How far ahead of a receiver's wall clock a version's clock stamp may be: three days.
///
/// Honest clocks are set by the network to within seconds. The mistakes people make by hand
/// are a wrong day (24 h), a wrong AM/PM (12 h) or a wrong time zone (UTC-12 to UTC+14, 26 h
/// at most); even together they stay under two and a half days. A stamp further ahead than
/// three days came from a clock nobody honest keeps (a year typed wrong) or was made up. The
/// bound also keeps every stamp the clinic holds within three days of real time, so no stamp
/// can come near the last millisecond the clock's text form holds (year 2286), and a made-up
/// stamp can move the clinic's clock forward by three days at most, not stop it.
pub const MAX_STAMP_AHEAD_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// Printable text of 1 to `max` bytes (no control characters).
pub fn is_printable(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// A character that shows nothing or turns the text around it (Unicode's default-ignorable
/// code points, direction marks and overrides, the Hangul fillers): a name people read that
/// holds one can pass for another. Names of PCs and of files are refused with them.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A table name as PCs send it: 1 to 64 lowercase letters, digits and underscores.
pub fn is_entity(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A device code: 2 to 8 capital letters and digits.
pub fn is_device_code(s: &str) -> bool {
    (2..=8).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A join's answer as a real server gives it: ids and a token of plain printable text, a
/// device code as servers make them, a place in the clinic. A PC checks it before it keeps
/// any of it (the server is not trusted with the shape of what a PC stores).
pub fn is_join_response(j: &JoinResponse) -> bool {
    let plain = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    plain(&j.clinic_id, 64)
        && plain(&j.device_id, 64)
        && plain(&j.token, 128)
        && is_printable(&j.clinic_name, 200)
        && is_device_code(&j.device_code)
        && (1..=1_000_000).contains(&j.device_number)
}

/// A change's fields other than its content, as a PC makes them: a table name, an id and a
/// base of printable text within their lengths, a clock stamp, a time. Both ends check it:
/// the server before it stores a push, a PC before it takes anything a server sends.
pub fn check_change_fields(c: &Change) -> Result<(), &'static str> {
    if c.seq < 1 {
        return Err("seq starts at 1");
    }
    if !is_entity(&c.entity) {
        return Err("entity must be a table name");
    }
    if !is_printable(&c.entity_id, 128) {
        return Err("entity_id must be 1 to 128 printable characters");
    }
    if stamp_ms(&c.hlc).is_none() {
        return Err("hlc must be a clock stamp (13 digits, '-', 5 digits)");
    }
    if c.base.as_deref().is_some_and(|b| !is_printable(b, 128)) {
        return Err("base must be 1 to 128 printable characters");
    }
    if !is_printable(&c.at, 64) {
        return Err("at must be 1 to 64 printable characters");
    }
    if c.after
        .as_ref()
        .is_some_and(|a| a.len() > sealed_len(MAX_ROW_BYTES))
    {
        return Err("a change's content is larger than a row may be");
    }
    Ok(())
}

/// The milliseconds of a clock stamp (`{ms:013}-{counter:05}`), if it is one.
pub fn stamp_ms(hlc: &str) -> Option<i64> {
    let b = hlc.as_bytes();
    let shaped = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| {
            if i == 13 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    hlc[..13].parse().ok()
}

/// Whether a stamp is one no honest clock could have made by `now_ms` (the receiver's wall
/// clock): more than `MAX_STAMP_AHEAD_MS` ahead of it, or not a stamp at all. The server
/// refuses such a change when it is pushed; a PC holds it back until its own clock gets there.
pub fn stamp_too_far_ahead(hlc: &str, now_ms: i64) -> bool {
    stamp_ms(hlc).is_none_or(|ms| ms > now_ms.saturating_add(MAX_STAMP_AHEAD_MS))
}

/// Entities a PC pushes (its change log is complete) that describe the PC itself: the
/// server keeps their changes but not in the clinic's rows, and other PCs skip them.
pub const NOT_REPLICATED: &[&str] = &["device"];
/// The largest content of one row version a PC writes (its after-image as JSON, before
/// sealing): 3 MiB. The write path refuses a larger row that syncs, so every row fits in a
/// push (a patient's photo of 2 MiB is the largest allowed today); files go as blobs.
pub const MAX_ROW_BYTES: usize = 3 * 1024 * 1024;

/// The sealed size of content of `n` bytes: `s3:` and the base64 of a 24-byte nonce, the
/// ciphertext and its 16-byte tag.
pub const fn sealed_len(n: usize) -> usize {
    3 + (24 + n + 16).div_ceil(3) * 4
}

/// The sealed content one push carries at most (one row always fits): about 5 s on a
/// 10 Mbit/s line, and well within the client's timeout on a line ten times slower.
pub const MAX_PUSH_BYTES: usize = 6 * 1024 * 1024;
/// A push body: its sealed content and at most `MAX_BATCH` changes' other fields.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// A pull or snapshot page stops adding rows once it holds this much content (it always holds
/// at least one, and one row fits), so a page stays under `MAX_RESPONSE_BYTES`.
pub const MAX_PAGE_BYTES: usize = MAX_PUSH_BYTES;
/// The largest answer a PC reads: a server that sends more (by mistake or to exhaust the PC's
/// memory) gets a network error, and the PC works on.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Largest number of bytes of one change besides its content, as a push body carries it.
pub const MAX_CHANGE_OVERHEAD: usize = 1024;

const _: () = assert!(sealed_len(MAX_ROW_BYTES) <= MAX_PUSH_BYTES);
const _: () = assert!(MAX_PUSH_BYTES + MAX_BATCH * MAX_CHANGE_OVERHEAD <= MAX_BODY_BYTES);
const _: () = assert!(MAX_PAGE_BYTES + MAX_BATCH * MAX_CHANGE_OVERHEAD <= MAX_RESPONSE_BYTES);

/// Files (attachments) travel apart from the change log, as blobs: the change carries the
/// file's hash and size, the bytes go sealed in chunks of this size (the last one shorter), so
/// an upload cut off resumes from the chunks the server has.
pub const BLOB_CHUNK_BYTES: usize = 1024 * 1024;
/// What sealing adds to a chunk: its 24-byte nonce and 16-byte tag.
pub const BLOB_SEAL_BYTES: usize = 40;
/// The largest blob (a file before sealing).
pub const MAX_BLOB_BYTES: u64 = 20 * 1024 * 1024;

/// How many chunks a blob of `size` bytes has (an empty one has none).
pub fn blob_chunks(size: u64) -> u32 {
    size.div_ceil(BLOB_CHUNK_BYTES as u64) as u32
}

/// The sealed length of chunk `index` of a blob of `size` bytes, none past its end.
pub fn blob_chunk_len(size: u64, index: u32) -> Option<usize> {
    let start = index as u64 * BLOB_CHUNK_BYTES as u64;
    (index < blob_chunks(size))
        .then(|| (size - start).min(BLOB_CHUNK_BYTES as u64) as usize + BLOB_SEAL_BYTES)
}

/// A blob id: 64 hex digits (a keyed hash the PCs compute; the server learns nothing from it).
pub fn is_blob_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What the server holds of a blob: its size, its chunk count and the chunks it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    pub size: u64,
    pub chunks: u32,
    pub have: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Insert,
    Update,
    Delete,
}

/// One change a device made: its change-log entry as the device recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The device's own change-log sequence: (device, seq) is unique in a clinic.
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
    pub op: Op,
    /// The row after the change as a JSON object (text); none for a delete.
    pub after: Option<String>,
    /// Hybrid logical clock stamp (`Hlc`'s text form): orders versions of one row.
    pub hlc: String,
    /// The version (`hlc@device`) the change was made on top of; none for a row's first
    /// version, or a change made before sync was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Wall-clock time of the change (UTC, RFC 3339), for people, never for ordering.
    pub at: String,
}

/// The newest entry of a device's audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub changes: Vec<Change>,
    pub audit_head: Option<AuditHead>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Changes stored now.
    pub stored: u32,
    /// Changes the server already had (a repeated push).
    pub duplicates: u32,
    /// The highest seq the server holds from this device.
    pub last_seq: i64,
    /// Seqs of this push the server keeps but refused to apply: their clock stamps were more
    /// than `MAX_STAMP_AHEAD_MS` ahead of the server's clock. Other PCs never receive them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<i64>,
}

/// A change as another device pushed it, with the server's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledChange {
    pub server_seq: i64,
    pub device_id: String,
    pub device_code: String,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Other devices' changes after the cursor, in server order. A device's own changes
    /// are never sent back to it.
    pub changes: Vec<PulledChange>,
    /// The cursor for the next pull (the last server_seq looked at).
    pub next: i64,
    pub more: bool,
}

/// The current version of one row, as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    pub entity: String,
    pub entity_id: String,
    /// The sealed content; for a deleted row its sealed "deleted" marker (none only from a
    /// server of an earlier version, and then refused).
    pub after: Option<String>,
    pub hlc: String,
    pub device_id: String,
    /// The version this one was made on top of, as its change carried it (the seal binds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub rows: Vec<SnapshotRow>,
    /// Where the next page starts (`entity/entity_id`), none on the last page.
    pub next: Option<String>,
    /// The server cursor to pull from once the snapshot is applied.
    pub as_of: i64,
    /// Rows in the whole snapshot, for a progress bar.
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The join code's server half (see the client's join-code split); the other half
    /// never leaves the PCs.
    pub code: String,
    pub device_name: String,
    /// The device code this PC already uses (the first PC of a clinic); none for a new PC.
    pub device_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    pub clinic_id: String,
    pub clinic_name: String,
    pub device_id: String,
    pub device_code: String,
    /// The device's place in the clinic, in joining order (1, 2, …): the desk number queue
    /// tickets carry once sync is on, so two desks never hand out the same ticket.
    pub device_number: u32,
    /// The device's secret: sent once, stored by the server only as a hash.
    pub token: String,
    /// Whatever the inviting PC sealed for the new one (opaque to the server).
    pub sealed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJoinCode {
    /// The join code's server half, made by the inviting PC.
    pub code: String,
    pub sealed: Option<String>,
    pub valid_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCode {
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub code: String,
    pub name: String,
    pub joined_at: String,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The highest change seq the server holds from it.
    pub last_seq: i64,
    /// The device whose join code it used (none for a clinic's first PC): revoking a lost PC
    /// doesn't revoke the PCs it let in, so the list shows who let each in.
    #[serde(default)]
    pub joined_via: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    pub seq: i64,
    pub hash: String,
    pub received_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No token, or one the server does not know.
    Unauthorized,
    /// The device was revoked by an admin.
    Revoked,
    /// Unknown, used or expired join code.
    JoinCodeInvalid,
    /// Another device of the clinic has this device code.
    DeviceCodeTaken,
    /// A PC with data of its own can only be a clinic's first: the others join empty (their
    /// data would be sealed under another key).
    ClinicHasDevices,
    /// A change with a seq the server has, but different content.
    SeqConflict,
    BadRequest,
    NotFound,
    RateLimited,
    /// The clinic's file storage on the server is full.
    QuotaExceeded,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// SHA-256 over a clinic's current rows, added in (entity, entity_id) byte order: the
/// server and every PC compute it the same way, so equal digests mean equal data.
#[derive(Default)]
pub struct RowDigest(sha2::Sha256);

impl RowDigest {
    pub fn add(&mut self, entity: &str, id: &str, after: &str) {
        use sha2::Digest;
        for part in [entity, id, after] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part.as_bytes());
        }
    }

    pub fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}

/// A join code as people type it: 20 letters and digits in groups of four
/// (`7KQ2-M9XD-…`), about 100 bits. Case, spaces and dashes don't matter.
pub fn normalize_join_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The half of a join code that goes to the server. The server stores only its hash and
/// cannot work back to the code, so it cannot derive [`join_code_seal_key`] either.
pub fn join_code_auth(code: &str) -> String {
    derive("clinicdesk join auth v1", code)
}

/// The key the inviting PC seals the clinic's secrets with; it never leaves the PCs.
pub fn join_code_seal_key(code: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"clinicdesk join seal v1\0");
    h.update(normalize_join_code(code).as_bytes());
    h.finalize().into()
}

fn derive(label: &str, code: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(normalize_join_code(code).as_bytes());
    hex::encode(h.finalize())
}

/// The alphabet of join codes: no 0/O or 1/I/L to confuse.
pub const JOIN_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A join code (20 symbols, ~99 bits) from random bytes, by rejection sampling so every
/// symbol is equally likely. None if the bytes run out first (64 random bytes are plenty:
/// each byte is rejected with probability 8/256).
pub fn join_code_from_random(bytes: &[u8]) -> Option<String> {
    let symbols: Vec<char> = bytes
        .iter()
        .filter(|b| **b < 248)
        .take(20)
        .map(|b| JOIN_ALPHABET[(*b % 31) as usize] as char)
        .collect();
    (symbols.len() == 20).then(|| {
        symbols
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_codes_read_the_same_however_typed() {
        let code = join_code_from_random(&[7u8; 64]).unwrap();
        assert_eq!(code.len(), 24);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(join_code_auth(&code), join_code_auth(&typed));
        assert_ne!(
            join_code_auth(&code),
            hex::encode(join_code_seal_key(&code))
        );
        assert_eq!(join_code_from_random(&[250u8; 64]), None);
    }

    #[test]
    fn names_that_pass_for_others_are_told_apart() {
        for hidden in [
            '\u{00AD}',
            '\u{034F}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{180E}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{202E}',
            '\u{200B}',
        ] {
            assert!(is_invisible(hidden), "{:X}", hidden as u32);
        }
        // Thai (with its vowel and tone marks), Cyrillic and plain text show what they hold.
        for seen in "ห้องตรวจ ๑ Приёмная Desk-2 é".chars() {
            assert!(!is_invisible(seen), "{seen}");
        }
    }

    #[test]
    fn a_join_answer_is_checked_before_a_pc_keeps_it() {
        let good = JoinResponse {
            clinic_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            clinic_name: "Sukhumvit Clinic".into(),
            device_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c".into(),
            device_code: "K7Q".into(),
            device_number: 2,
            token: "a-Z_09".into(),
            sealed: None,
        };
        assert!(is_join_response(&good));
        let bad = [
            JoinResponse {
                device_id: "../other".into(),
                ..good.clone()
            },
            JoinResponse {
                device_code: "k7q; drop".into(),
                ..good.clone()
            },
            JoinResponse {
                device_number: 0,
                ..good.clone()
            },
            JoinResponse {
                token: "a b".into(),
                ..good.clone()
            },
            JoinResponse {
                clinic_name: "\u{7}".into(),
                ..good.clone()
            },
        ];
        for b in bad {
            assert!(!is_join_response(&b), "{b:?}");
        }
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::*;

    #[test]
    fn a_stamp_more_than_three_days_ahead_is_too_far_and_junk_is_never_a_stamp() {
        let now = 1_800_000_000_000;
        let at = |ms: i64| format!("{ms:013}-00000");
        assert!(!stamp_too_far_ahead(&at(now), now));
        assert!(!stamp_too_far_ahead(&at(now - 86_400_000 * 400), now));
        assert!(!stamp_too_far_ahead(&at(now + MAX_STAMP_AHEAD_MS), now));
        assert!(stamp_too_far_ahead(&at(now + MAX_STAMP_AHEAD_MS + 1), now));
        assert!(stamp_too_far_ahead("9999999999999-99999", now));
        for junk in [
            "",
            "~~~~",
            "1800000000000_00000",
            "180000000000-000000",
            "+800000000000-00000",
        ] {
            assert!(stamp_too_far_ahead(junk, now), "{junk}");
            assert_eq!(stamp_ms(junk), None);
        }
        assert_eq!(stamp_ms(&at(now)), Some(now));
        // A receiver whose clock is at the very end of time can't overflow the check.
        assert!(!stamp_too_far_ahead(&at(now), i64::MAX));
    }
}
