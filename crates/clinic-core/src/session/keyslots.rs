//! Key slots, as disk-encryption tools have them, with one twist that makes re-keying work.
//!
//! The database key is random. Each active account (and the recovery key) has a slot with
//! its own X25519 key pair: the secret half wrapped (XChaCha20-Poly1305) under a key derived
//! with argon2id from the person's password, and the database key sealed to the public half
//! (a sealed box). Signing in: password → secret key → database key.
//!
//! Because the database key is sealed to public keys, an administrator can give every active
//! account a *new* database key without knowing anyone's password: that is re-keying
//! (`session::rekey`). Old copies of the slot file then open nothing: their slots seal the old
//! key, and a disabled account or a changed password has no slot sealing the new one. A new
//! or changed password always gets a new key pair, so an old password never reaches a later
//! key.
//!
//! The slot file sits beside the database and holds usernames, salts, public keys, wrapped
//! secrets, sealed keys, failed-attempt counters and the failed sign-ins not yet audited, never
//! patient data. The counters live here, not in the database, because a wrong password cannot
//! open the database: so they survive restarts.
//!
//! Every change is a read-modify-write under an exclusive lock on `keyslots.lock`
//! (`KeySlots::modify`), written to a temporary file of its own and renamed into place, so two
//! app instances never lose each other's changes. No copy of an earlier version is kept.
//! Format 1 (the database key wrapped straight under the password) is still read; a slot is
//! upgraded the next time its owner signs in.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::grants::{Grant, GrantBody, Signer, MAX_CHAIN, RECOVERY};
use super::Error;
use crate::error::Result;
use crate::ids::random_bytes;
use crate::perm::Role;
use crate::store::DbKey;

pub const SLOT_FILE: &str = "keyslots.json";
const LOCK_FILE: &str = "keyslots.lock";
/// Left by versions that kept the previous slot file: it would still open the database with
/// a revoked password, so it is removed whenever the slot file is written.
const STALE_BACKUP: &str = "keyslots.json.bak";

const FORMAT: u32 = 2;

/// argon2id cost. OWASP's floor is m=19 MiB, t=2, p=1 (or m=46 MiB, t=1); this is stronger
/// on both counts and still unlocks in well under a second (see BENCHMARKS.md).
pub const KDF_M_KIB: u32 = 65_536;
pub const KDF_T: u32 = 3;
pub const KDF_P: u32 = 1;

/// Failed attempts allowed before each further attempt has to wait.
pub const FREE_ATTEMPTS: u32 = 5;
const FIRST_DELAY_SECS: i64 = 30;
const MAX_DELAY_SECS: i64 = 30 * 60;
/// Unknown usernames tried, and failed sign-ins waiting to be audited, kept at most.
const UNKNOWN_KEPT: usize = 1000;
const FAILURES_KEPT: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SlotFile {
    format: u32,
    /// Ties the slot file to its database; a slot file from another clinic is refused.
    database_id: String,
    slots: Vec<Slot>,
    /// Attempts on usernames that have no slot, so they wait exactly as real ones do.
    #[serde(default)]
    unknown: Vec<Attempts>,
    /// Failed sign-ins since the last successful one: the next sign-in writes them into the
    /// audit trail (a wrong password can't open the database to write them at once).
    #[serde(default)]
    failed_signins: Vec<FailedSignin>,
    /// Failed sign-ins beyond the list's limit: counted, never dropped unaudited.
    #[serde(default)]
    more_failed_signins: u64,
    /// The grants that disabled accounts (`grants`): kept so a replayed older grant can't
    /// bring an account back, and so other PCs receive them.
    #[serde(default)]
    revoked: Vec<Grant>,
    /// Disablings under way on this PC: the administrator's signed grant, noted before the
    /// account row says so and taken once it does. One still here after a crash can't sign
    /// in, and the next sign-in takes it (`signin::finish_login`). Only a grant this PC would
    /// take counts, so nobody can add one here for someone else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    disabling: Vec<Grant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kdf {
    pub alg: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Staff { staff_id: String, username: String },
    Recovery,
}

impl Owner {
    /// Who this slot signs grants as.
    fn signer_id(&self) -> String {
        match self {
            Owner::Staff { staff_id, .. } => staff_id.clone(),
            Owner::Recovery => RECOVERY.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Attempts {
    /// SHA-256 of the database id and the lower-cased username.
    who: String,
    failed_attempts: u32,
    last_failed_at: Option<DateTime<Utc>>,
}

/// A sign-in that failed, as the audit trail will record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedSignin {
    pub at: DateTime<Utc>,
    /// As typed (at most 64 characters): it may be nobody's.
    pub username: String,
    /// "password", "second_factor", "unlock", "recovery_key".
    pub step: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    pub owner: Owner,
    pub kdf: Kdf,
    nonce: String,
    /// Format 2: the slot's X25519 secret key, wrapped under the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    /// Format 2: the database key, sealed to `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_key: Option<String>,
    /// Format 2: the Ed25519 key that the slot's secret signs grants with (`grants`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_key: Option<String>,
    /// What lets the account sign in with this slot, with which roles (`grants`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// During a re-key: the new database key, sealed to `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_next: Option<String>,
    /// Format 1: the database key wrapped straight under the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<String>,
    #[serde(default)]
    pub failed_attempts: u32,
    #[serde(default)]
    pub last_failed_at: Option<DateTime<Utc>>,
}

/// What a password (or the recovery key) opened: the database key, and during an unfinished
/// re-key the new one too. The caller tries them in order.
pub struct Opened {
    pub staff_id: String,
    pub keys: Vec<DbKey>,
    /// The slot's signer (none for a format-1 slot).
    pub signer: Option<Signer>,
    /// A format-1 slot: re-create it (with the password just checked) to upgrade it.
    pub legacy: bool,
}

impl Slot {
    pub(crate) fn public_key_b64(&self) -> &str {
        self.public_key.as_deref().unwrap_or_default()
    }

    fn matches_username(&self, username: &str) -> bool {
        matches!(&self.owner, Owner::Staff { username: u, .. } if u.eq_ignore_ascii_case(username))
    }

    fn matches_staff(&self, id: &str) -> bool {
        matches!(&self.owner, Owner::Staff { staff_id, .. } if staff_id == id)
    }

    fn staff_id(&self) -> Option<&str> {
        match &self.owner {
            Owner::Staff { staff_id, .. } => Some(staff_id),
            Owner::Recovery => None,
        }
    }

    /// Seconds until another attempt is allowed, if it has to wait.
    pub fn wait_secs(&self, now: DateTime<Utc>) -> Option<u64> {
        wait_secs(self.failed_attempts, self.last_failed_at, now)
    }
}

fn wait_secs(failed: u32, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<u64> {
    if failed < FREE_ATTEMPTS {
        return None;
    }
    let until = last? + Duration::seconds(lockout_delay_secs(failed));
    (until > now).then(|| (until - now).num_seconds().max(1) as u64)
}

/// The wait after `failed` failures: 30 s after the fifth, doubling, at most 30 min.
pub fn lockout_delay_secs(failed: u32) -> i64 {
    if failed < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failed - FREE_ATTEMPTS).min(16);
    (FIRST_DELAY_SECS << doublings).min(MAX_DELAY_SECS)
}

fn corrupt(detail: impl Into<String>) -> crate::Error {
    Error::KeyslotCorrupt {
        detail: detail.into(),
    }
    .into()
}

fn aad(owner: &Owner, database_id: &str, format: u32) -> Vec<u8> {
    let who = match owner {
        Owner::Staff { staff_id, .. } => format!("staff:{staff_id}"),
        Owner::Recovery => "recovery".into(),
    };
    format!("clinicdesk-slot-v{format}|{database_id}|{who}").into_bytes()
}

fn derive(secret: &[u8], kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
    if kdf.alg != "argon2id" {
        return Err(corrupt(format!("unknown KDF {}", kdf.alg)));
    }
    let salt = B64.decode(&kdf.salt).map_err(|_| corrupt("bad salt"))?;
    let params =
        Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, &salt, out.as_mut())
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(out)
}

fn b64(s: &Option<String>, what: &str) -> Result<Vec<u8>> {
    B64.decode(s.as_deref().ok_or_else(|| corrupt(format!("no {what}")))?)
        .map_err(|_| corrupt(format!("bad {what}")))
}

fn key32(bytes: &[u8]) -> Result<DbKey> {
    if bytes.len() != 32 {
        return Err(corrupt("wrong key length"));
    }
    let mut key: DbKey = Zeroizing::new([0; 32]);
    key.copy_from_slice(bytes);
    Ok(key)
}

fn seal(public: &crypto_box::PublicKey, key: &DbKey) -> Result<String> {
    let sealed = public
        .seal(&mut crypto_box::aead::OsRng, key.as_slice())
        .map_err(|_| crate::Error::internal("sealing failed"))?;
    Ok(B64.encode(sealed))
}

fn unseal(secret: &crypto_box::SecretKey, sealed: &str) -> Result<DbKey> {
    let bytes = B64.decode(sealed).map_err(|_| corrupt("bad sealed key"))?;
    let plain = Zeroizing::new(
        secret
            .unseal(&bytes)
            .map_err(|_| corrupt("sealed key does not open"))?,
    );
    key32(&plain)
}

/// A new format-2 slot: a fresh key pair, its secret wrapped under `secret` (a password or
/// the recovery key), `key` sealed to it.
fn new_slot(owner: Owner, secret: &[u8], key: &DbKey, database_id: &str) -> Result<(Slot, Signer)> {
    let kdf = Kdf {
        alg: "argon2id".into(),
        m_kib: KDF_M_KIB,
        t: KDF_T,
        p: KDF_P,
        salt: B64.encode(random_bytes::<16>()),
    };
    let kek = derive(secret, &kdf)?;
    let pair = crypto_box::SecretKey::from(*Zeroizing::new(random_bytes::<32>()));
    let nonce = random_bytes::<24>();
    let wrapped = XChaCha20Poly1305::new(kek.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: Zeroizing::new(pair.to_bytes()).as_slice(),
                aad: &aad(&owner, database_id, FORMAT),
            },
        )
        .map_err(|_| crate::Error::internal("key wrapping failed"))?;
    let public = pair.public_key();
    let signer = Signer::from_slot_secret(&owner.signer_id(), &pair.to_bytes());
    let slot = Slot {
        signing_key: Some(signer.verifying_key()),
        grant: None,
        owner,
        kdf,
        nonce: B64.encode(nonce),
        wrapped_secret: Some(B64.encode(wrapped)),
        public_key: Some(B64.encode(public.as_bytes())),
        sealed_key: Some(seal(&public, key)?),
        sealed_next: None,
        wrapped_key: None,
        failed_attempts: 0,
        last_failed_at: None,
    };
    Ok((slot, signer))
}

/// What `secret` opens in a slot: the keys, and the slot's signer (none for format 1).
struct SlotOpened {
    keys: Vec<DbKey>,
    signer: Option<Signer>,
}

/// The keys `secret` opens in `slot`; `None` when the secret is wrong.
fn open_slot(slot: &Slot, secret: &[u8], database_id: &str) -> Result<Option<SlotOpened>> {
    let kek = derive(secret, &slot.kdf)?;
    let nonce = B64.decode(&slot.nonce).map_err(|_| corrupt("bad nonce"))?;
    if nonce.len() != 24 {
        return Err(corrupt("bad nonce length"));
    }
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let legacy = slot.wrapped_key.is_some();
    let (wrapped, format) = if legacy {
        (b64(&slot.wrapped_key, "wrapped key")?, 1)
    } else {
        (b64(&slot.wrapped_secret, "wrapped secret")?, FORMAT)
    };
    let Ok(plain) = cipher.decrypt(
        XNonce::from_slice(&nonce),
        Payload {
            msg: &wrapped,
            aad: &aad(&slot.owner, database_id, format),
        },
    ) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    if legacy {
        return Ok(Some(SlotOpened {
            keys: vec![key32(&plain)?],
            signer: None,
        }));
    }
    let mut secret_bytes: Zeroizing<[u8; 32]> = Zeroizing::new([0; 32]);
    if plain.len() != 32 {
        return Err(corrupt("wrong secret length"));
    }
    secret_bytes.copy_from_slice(&plain);
    let sk = crypto_box::SecretKey::from(*secret_bytes);
    let signer = Signer::from_slot_secret(&slot.owner.signer_id(), &secret_bytes);
    // A slot is its public key's (which its grant names) only if the secret inside is that
    // key's: a slot someone wrapped their own secret in, under a real grant, opens nothing.
    let public = B64.encode(sk.public_key().as_bytes());
    if slot.public_key.as_deref() != Some(public.as_str())
        || slot
            .signing_key
            .as_ref()
            .is_some_and(|k| *k != signer.verifying_key())
    {
        return Ok(None);
    }
    let mut keys = vec![unseal(
        &sk,
        slot.sealed_key
            .as_deref()
            .ok_or_else(|| corrupt("no sealed key"))?,
    )?];
    if let Some(next) = &slot.sealed_next {
        keys.push(unseal(&sk, next)?);
    }
    Ok(Some(SlotOpened {
        keys,
        signer: Some(signer),
    }))
}

/// The same work as a real slot, for a username that has none: the answer takes as long.
fn decoy(password: &str) {
    let _ = derive(
        password.as_bytes(),
        &Kdf {
            alg: "argon2id".into(),
            m_kib: KDF_M_KIB,
            t: KDF_T,
            p: KDF_P,
            salt: B64.encode([0u8; 16]),
        },
    );
}

/// Temporary slot files a crashed writer left (each a copy of the slot file as it was).
/// Called with the slot lock held, so no writer is using one.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("keyslots.json.") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A `key_slots` row's content: an account's slot, or the grant that disabled it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Shared {
    Revoked { revoked: Box<Grant> },
    Slot(Box<Slot>),
}

/// An account's grant as other PCs take it: a `key_slots` row.
pub(crate) struct SharedGrant {
    /// Its `key_slots` row: one per grant (`staff id/hash of its signature`), never rewritten.
    pub row_id: String,
    /// The slot's public key (empty for a disabling).
    pub public_key: String,
    /// The slot without this PC's attempt counters, or `{"revoked": grant}`.
    pub content: String,
}

/// How grants order: by epoch (`GrantBody::epoch`), so an administrator's grant outranks
/// any number of the person's own changes made from before it (a demotion or a disabling
/// stands against password changes made elsewhere meanwhile); then by generation; at the same
/// generation, someone else's grant above the person's own, and a disabling above the rest;
/// then by signature (any fixed order settles a tie).
pub(crate) type Rank = (u64, u64, bool, bool, String);

fn rank(g: &Grant) -> Rank {
    (
        g.body.epoch,
        g.body.gen,
        !g.is_own(),
        !g.body.active,
        g.sig.clone(),
    )
}

/// The generation and epoch of a grant about to be signed.
struct Next {
    gen: u64,
    epoch: u64,
}

/// How far past the generation held a grant may jump (a PC apart from the others signs a few
/// grants, not millions): no grant can run generations up to where none can follow.
const MAX_GEN_JUMP: u64 = 1 << 20;

/// The `key_slots` row of an account's grant.
fn row_id(staff_id: &str, g: &Grant) -> String {
    let h = Sha256::digest(g.sig.as_bytes());
    format!("{staff_id}/{}", hex::encode(&h[..16]))
}

/// A `key_slots` row as `adopt` weighs it: read once, its grant's rank known before any
/// signature is checked.
pub(crate) struct SharedRow {
    pub row_id: String,
    pub staff_id: String,
    pub rank: Rank,
    /// A person's own change (taken after others' grants: an administrator's grant signed
    /// before their own password change checks against the slot it was signed with).
    pub own: bool,
    /// Who signed it (`Grant::by`).
    pub by: String,
    /// What checking it may cost, in signature checks: the grant against its signer and
    /// against the grant held, each earlier grant it carries, and the last one's signer.
    pub cost: usize,
    pub content: String,
}

/// The grant a `key_slots` row's content holds.
fn shared_grant(shared: &str) -> Option<Grant> {
    match serde_json::from_str::<Shared>(shared).ok()? {
        Shared::Revoked { revoked } => Some(*revoked),
        Shared::Slot(s) => s.grant,
    }
}

/// Whether two `key_slots` rows say the same: the same grant in the same form, and the same
/// slot but for the database key sealed in it (each PC's copy of a slot is sealed afresh)
/// and the earlier grants carried with it (not signed over: a copy carrying others isn't
/// worth rewriting over). A row differing only there is left as it is, so no two PCs rewrite
/// each other's row over it.
pub(crate) fn same_grant(a: &str, b: &str) -> bool {
    let plain = |c: &str| -> Option<serde_json::Value> {
        let mut v: serde_json::Value = serde_json::from_str(c).ok()?;
        if let Some(o) = v.as_object_mut() {
            o.remove("sealed_key");
            for g in ["grant", "revoked"] {
                if let Some(g) = o.get_mut(g).and_then(|g| g.as_object_mut()) {
                    g.remove("prev");
                }
            }
        }
        Some(v)
    };
    match (plain(a), plain(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

impl SharedRow {
    /// `None` for a row that isn't a grant, or isn't named as its grant's row (`row_id`).
    pub(crate) fn read(row_id: String, content: String) -> Option<SharedRow> {
        let g = shared_grant(&content)?;
        if row_id != self::row_id(&g.body.staff_id, &g) || g.links() > MAX_CHAIN {
            return None;
        }
        Some(SharedRow {
            row_id,
            staff_id: g.body.staff_id.clone(),
            rank: rank(&g),
            own: g.is_own(),
            by: g.by.clone(),
            cost: 3 + g.links(),
            content,
        })
    }
}

/// What a grant records of a slot's password-wrapped material (`GrantBody::slot`).
fn slot_material(slot: &Slot) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&slot.kdf).unwrap_or_default());
    h.update(b"\0");
    h.update(slot.nonce.as_bytes());
    h.update(b"\0");
    h.update(
        slot.wrapped_secret
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    hex::encode(h.finalize())
}

/// Whether `next` is its account's own change from `p`: the next generation, signed by `p`'s
/// slot.
fn follows(next: &Grant, p: &Grant) -> bool {
    next.own_change_from(p)
        && p.body.gen.checked_add(1) == Some(next.body.gen)
        && next.signed_with(&p.body.signing_key)
}

/// The KDF this version makes slots with (`new_slot`), the only one taken from another PC.
fn standard_kdf(kdf: &Kdf) -> bool {
    kdf.alg == "argon2id"
        && (kdf.m_kib, kdf.t, kdf.p) == (KDF_M_KIB, KDF_T, KDF_P)
        && B64.decode(&kdf.salt).is_ok_and(|s| s.len() == 16)
}

/// The slot file of one data folder.
pub struct KeySlots {
    path: PathBuf,
    file: SlotFile,
}

/// An exclusive lock on the data folder's slot file, held while it is read, changed and
/// written back (released when dropped).
struct SlotLock(std::fs::File);

impl SlotLock {
    fn take(dir: &Path) -> Result<SlotLock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        f.lock()?;
        Ok(SlotLock(f))
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl KeySlots {
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(SLOT_FILE)
    }

    pub fn exists(dir: &Path) -> bool {
        Self::path_in(dir).exists()
    }

    /// A new, empty slot file (not yet written) for the database `database_id`, in `dir`.
    pub fn create(dir: &Path, database_id: &str) -> KeySlots {
        KeySlots {
            path: Self::path_in(dir),
            file: SlotFile {
                format: FORMAT,
                database_id: database_id.into(),
                slots: vec![],
                unknown: vec![],
                failed_signins: vec![],
                more_failed_signins: 0,
                revoked: vec![],
                disabling: vec![],
            },
        }
    }

    pub fn load(dir: &Path) -> Result<KeySlots> {
        let path = Self::path_in(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::KeyslotMissing {
                    path: path.display().to_string(),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        let file: SlotFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if !(1..=FORMAT).contains(&file.format) {
            return Err(corrupt(format!("unknown format {}", file.format)));
        }
        Ok(KeySlots { path, file })
    }

    /// Reads the slot file, lets `f` change it, and writes it back, all under the folder's
    /// slot lock: another instance's change in between is never lost. The file is written
    /// even when `f` fails (a failed attempt must be counted), but only if `f` changed it.
    pub fn modify<T>(dir: &Path, f: impl FnOnce(&mut KeySlots) -> Result<T>) -> Result<T> {
        let _lock = SlotLock::take(dir)?;
        remove_stale_temps(dir);
        let mut slots = KeySlots::load(dir)?;
        let before = serde_json::to_vec(&slots.file)?;
        let out = f(&mut slots);
        if serde_json::to_vec(&slots.file)? != before {
            slots.save_unlocked()?;
        }
        out
    }

    /// Writes a slot file that does not exist yet (set-up).
    pub fn save_new(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let _lock = SlotLock::take(dir)?;
        self.save_unlocked()
    }

    /// Temp file of this writer's own, fsync, rename, fsync of the folder.
    fn save_unlocked(&self) -> Result<()> {
        // Format 2 files may still hold format-1 slots (each says which it is).
        let mut file = self.file.clone();
        file.format = FORMAT;
        let json = serde_json::to_vec_pretty(&file)?;
        let tmp = self.path.with_extension(format!(
            "json.{}-{}.tmp",
            std::process::id(),
            hex::encode(random_bytes::<6>())
        ));
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_file(dir.join(STALE_BACKUP));
        }
        Ok(())
    }

    /// The slots another PC of the clinic needs to sign the same people in (it shares this
    /// database's key): the database id and every slot, without attempt counters or the
    /// failed sign-ins waiting to be audited, which are this PC's own.
    pub(crate) fn export_for_peer(&self) -> Result<String> {
        if self.rekey_pending() {
            return Err(crate::Error::Busy);
        }
        let mut file = self.file.clone();
        file.unknown.clear();
        file.failed_signins.clear();
        file.more_failed_signins = 0;
        file.disabling.clear();
        for s in &mut file.slots {
            s.failed_attempts = 0;
            s.last_failed_at = None;
        }
        Ok(serde_json::to_string(&file)?)
    }

    /// A slot file for `dir` from another PC's export (not yet written).
    pub(crate) fn from_peer(dir: &Path, exported: &str) -> Result<KeySlots> {
        let file: SlotFile = serde_json::from_str(exported).map_err(|e| corrupt(e.to_string()))?;
        if !(1..=FORMAT).contains(&file.format) {
            return Err(corrupt(format!("unknown format {}", file.format)));
        }
        Ok(KeySlots {
            path: Self::path_in(dir),
            file,
        })
    }

    pub fn database_id(&self) -> &str {
        &self.file.database_id
    }

    pub fn slot_for_username(&self, username: &str) -> Option<&Slot> {
        self.file
            .slots
            .iter()
            .find(|s| s.matches_username(username))
    }

    /// The account whose slot signs in with `username`.
    pub(crate) fn staff_id_for_username(&self, username: &str) -> Option<String> {
        self.slot_for_username(username)
            .and_then(|s| s.staff_id().map(String::from))
    }

    /// The accounts that have a slot.
    pub fn staff_ids(&self) -> Vec<String> {
        self.file
            .slots
            .iter()
            .filter_map(|s| s.staff_id().map(String::from))
            .collect()
    }

    /// Adds or replaces the slot of an account, with a new key pair, and signs its grant
    /// (`grants`) as `signer` (the acting person's slot; the new slot's own when `None`).
    /// The grant keeps the username and roles of the grant this PC holds for the account,
    /// whatever the caller read from the account row (another PC may have sent a row anyone
    /// with a PC's folder wrote); `username` and `roles` count only for an account it holds
    /// none for (a new one, or one from before grants). Returns the slot's public key, which
    /// the caller records on the account (re-keying seals only to recorded keys), and the new
    /// slot's signer.
    pub fn set_staff(
        &mut self,
        staff_id: &str,
        username: &str,
        password: &str,
        key: &DbKey,
        roles: &[Role],
        signer: Option<&Signer>,
    ) -> Result<(String, Signer)> {
        self.refuse_during_rekey()?;
        let (username, roles) = self.held_or(staff_id, username, roles);
        if self
            .file
            .slots
            .iter()
            .any(|s| s.matches_username(&username) && !s.matches_staff(staff_id))
        {
            return Err(crate::Error::Duplicate {
                field: crate::staff::Field::Username.into(),
            });
        }
        let owner = Owner::Staff {
            staff_id: staff_id.into(),
            username,
        };
        let next = self.next_gen(staff_id, signer.map_or(staff_id, |s| s.by.as_str()))?;
        let (slot, own) = new_slot(owner, password.as_bytes(), key, &self.file.database_id)?;
        let public = slot.public_key.clone().unwrap_or_default();
        let prior = self.slot_grant(staff_id).cloned();
        self.file.slots.retain(|s| !s.matches_staff(staff_id));
        self.file.slots.push(slot);
        self.sign_slot(staff_id, &roles, signer.unwrap_or(&own), next, prior)?;
        Ok((public, own))
    }

    /// A slot sealed now would hold only the old key of a re-key under way.
    fn refuse_during_rekey(&self) -> Result<()> {
        if self.rekey_pending() {
            return Err(crate::Error::Busy);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Grants (see `session::grants`).

    /// The key an account's slot signs grants with.
    pub(crate) fn signing_key_of(&self, staff_id: &str) -> Option<String> {
        self.file
            .slots
            .iter()
            .find(|s| s.matches_staff(staff_id))
            .and_then(|s| s.signing_key.clone())
    }

    /// The grant this PC holds for an account: its slot's, or the one that disabled it.
    pub fn grant_of(&self, staff_id: &str) -> Option<&Grant> {
        self.file
            .slots
            .iter()
            .find(|s| s.matches_staff(staff_id))
            .and_then(|s| s.grant.as_ref())
            .or_else(|| {
                self.file
                    .revoked
                    .iter()
                    .find(|g| g.body.staff_id == staff_id)
            })
    }

    /// Where a grant for an account stands among those this PC holds: a greater rank wins
    /// (a tie of two administrators' grants made apart is settled the same way everywhere).
    fn rank_of(&self, staff_id: &str) -> Rank {
        self.grant_of(staff_id).map(rank).unwrap_or_default()
    }

    /// The username and roles of the grant held for an account (not what its row says: a row
    /// another PC sent may be forged); `username` and `roles` for an account without one.
    fn held_or(&self, staff_id: &str, username: &str, roles: &[Role]) -> (String, Vec<Role>) {
        match self.grant_of(staff_id) {
            Some(g) => (g.body.username.clone(), g.body.roles.clone()),
            None => (username.to_string(), roles.to_vec()),
        }
    }

    /// The generation and epoch (`GrantBody::epoch`) of the next grant for an account, signed
    /// as `by`: one generation more than the one held; a new epoch unless the person signs for
    /// their own account.
    fn next_gen(&self, staff_id: &str, by: &str) -> Result<Next> {
        let held = self.grant_of(staff_id);
        let gen = held
            .map_or(0, |g| g.body.gen)
            .checked_add(1)
            .ok_or_else(|| corrupt("grant generation exhausted"))?;
        let epoch = if by == staff_id {
            held.map_or(0, |g| g.body.epoch)
        } else {
            gen
        };
        Ok(Next { gen, epoch })
    }

    /// Signs a grant with `roles` for an account, newer than any grant this PC holds for it:
    /// for its slot, or, for a disabled account, a new disabling (re-enabling it gives these
    /// roles). A format-1 slot gets none.
    pub fn grant(&mut self, staff_id: &str, roles: &[Role], signer: &Signer) -> Result<()> {
        if self.file.slots.iter().any(|s| s.matches_staff(staff_id)) {
            let next = self.next_gen(staff_id, &signer.by)?;
            let prior = self.slot_grant(staff_id).cloned();
            return self.sign_slot(staff_id, roles, signer, next, prior);
        }
        match self.grant_of(staff_id).filter(|g| !g.body.active) {
            Some(r) => {
                let username = r.body.username.clone();
                self.sign_revocation(staff_id, username, roles, signer)
            }
            None => Ok(()),
        }
    }

    fn slot_grant(&self, staff_id: &str) -> Option<&Grant> {
        self.file
            .slots
            .iter()
            .find(|s| s.matches_staff(staff_id))
            .and_then(|s| s.grant.as_ref())
    }

    fn sign_slot(
        &mut self,
        staff_id: &str,
        roles: &[Role],
        signer: &Signer,
        next: Next,
        prior: Option<Grant>,
    ) -> Result<()> {
        let slot = self
            .file
            .slots
            .iter_mut()
            .find(|s| s.matches_staff(staff_id))
            .ok_or_else(|| corrupt("no slot to grant"))?;
        let material = slot_material(slot);
        let (Some(public_key), Some(signing_key), Owner::Staff { username, .. }) =
            (&slot.public_key, &slot.signing_key, &slot.owner)
        else {
            return Ok(());
        };
        slot.grant = Some(signer.sign(
            GrantBody {
                staff_id: staff_id.into(),
                username: username.clone(),
                roles: roles.to_vec(),
                active: true,
                public_key: public_key.clone(),
                signing_key: signing_key.clone(),
                gen: next.gen,
                epoch: next.epoch,
                slot: material,
            },
            prior.as_ref(),
        ));
        self.file.revoked.retain(|g| g.body.staff_id != staff_id);
        self.cancel_disabling(staff_id);
        Ok(())
    }

    /// Removes an account's slot, keeping a signed grant that says it is disabled, with the
    /// username and roles of the grant held (as `set_staff`; `username` and `roles` count
    /// only for an account without one).
    pub fn revoke(
        &mut self,
        staff_id: &str,
        username: &str,
        roles: &[Role],
        signer: &Signer,
    ) -> Result<()> {
        let (username, roles) = self.held_or(staff_id, username, roles);
        self.sign_revocation(staff_id, username, &roles, signer)
    }

    fn sign_revocation(
        &mut self,
        staff_id: &str,
        username: String,
        roles: &[Role],
        signer: &Signer,
    ) -> Result<()> {
        let g = self.revocation(staff_id, username, roles, signer)?;
        self.take_revocation(g);
        Ok(())
    }

    /// The grant that would disable an account, signed, not yet taken.
    fn revocation(
        &self,
        staff_id: &str,
        username: String,
        roles: &[Role],
        signer: &Signer,
    ) -> Result<Grant> {
        let next = self.next_gen(staff_id, &signer.by)?;
        Ok(signer.sign(
            GrantBody {
                staff_id: staff_id.into(),
                username,
                roles: roles.to_vec(),
                active: false,
                public_key: String::new(),
                signing_key: String::new(),
                gen: next.gen,
                epoch: next.epoch,
                slot: String::new(),
            },
            None,
        ))
    }

    fn take_revocation(&mut self, g: Grant) {
        let staff_id = g.body.staff_id.clone();
        self.remove_staff(&staff_id);
        self.file.revoked.retain(|r| r.body.staff_id != staff_id);
        self.file.revoked.push(g);
    }

    /// Whether this PC takes `g` from another PC: newer than the grant it holds for the
    /// account, and vouched for (`vouched`).
    pub fn admits(&self, g: &Grant) -> bool {
        let held = self.rank_of(&g.body.staff_id);
        rank(g) > held
            && g.body.gen <= held.1.saturating_add(MAX_GEN_JUMP)
            && g.body.epoch <= g.body.gen
            && (g.is_own() || g.body.epoch == g.body.gen)
            && g.links() <= MAX_CHAIN
            && self.vouched(g)
    }

    /// Whether `g` is signed by a slot this PC trusts to grant anything: the recovery key's,
    /// or an administrator's (by the grant this PC holds for them).
    fn signed_by_trusted(&self, g: &Grant) -> bool {
        let signer = if g.by == RECOVERY {
            self.recovery_slot()
        } else {
            self.file.slots.iter().find(|s| s.matches_staff(&g.by))
        };
        let Some(signer) = signer else {
            return false;
        };
        (g.by == RECOVERY
            || signer
                .grant
                .as_ref()
                .is_some_and(|h| h.body.active && h.body.roles.contains(&Role::Admin)))
            && signer
                .signing_key
                .as_deref()
                .is_some_and(|k| g.signed_with(k))
    }

    /// Whether `g` is signed by a slot this PC trusts to grant anything, or is the account's
    /// own change (`own_chain`).
    fn vouched(&self, g: &Grant) -> bool {
        self.signed_by_trusted(g) || self.own_chain(g, 0)
    }

    /// Whether `g`, a person's own change (new password, same roles), follows link by link
    /// (`prev`: each one generation on, signed by the slot before it) from the grant this PC
    /// holds for the account, or from a grant a trusted slot signed that ranks above it (a
    /// reset this PC missed; any, for an account it holds nothing for). An older grant, or a
    /// disabling, is never a start: a chain can't undo what this PC already took.
    fn own_chain(&self, g: &Grant, depth: usize) -> bool {
        let id = &g.body.staff_id;
        if self.grant_of(id).is_some_and(|held| follows(g, held)) {
            return true;
        }
        let Some(p) = g.prev.as_deref() else {
            return false;
        };
        if depth >= MAX_CHAIN || !follows(g, p) {
            return false;
        }
        (!p.is_own()
            && p.body.epoch == p.body.gen
            && rank(p) > self.rank_of(id)
            && self.signed_by_trusted(p))
            || self.own_chain(p, depth + 1)
    }

    /// Whether a `key_slots` row's grant is newer than the one this PC holds for the account.
    pub(crate) fn newer_than_held(&self, row: &SharedRow) -> bool {
        row.rank > self.rank_of(&row.staff_id)
    }

    /// Whether a row newer than the grant held is worth a signature check: within the
    /// generation jump, and someone else's grant only if signed in the name of a slot this PC
    /// trusts to grant (a row that fails this costs nothing and is refused).
    pub(crate) fn worth_checking(&self, row: &SharedRow) -> bool {
        let Some(g) = shared_grant(&row.content) else {
            return false;
        };
        let held = self.rank_of(&row.staff_id);
        let trusted_name = g.by == RECOVERY
            || self.file.slots.iter().any(|s| {
                s.matches_staff(&g.by)
                    && s.grant
                        .as_ref()
                        .is_some_and(|h| h.body.active && h.body.roles.contains(&Role::Admin))
            });
        g.body.gen <= held.1.saturating_add(MAX_GEN_JUMP) && (g.is_own() || trusted_name)
    }

    /// What a `key_slots` row would put into this PC's slot file: its grant, with the slot for
    /// an active one. `None` unless this PC admits the grant for that account, and the slot is
    /// the one the grant names, under a username no other account's slot has, in the current
    /// format with the standard KDF (a slot with a huge KDF would stall every sign-in).
    fn admissible(&self, staff_id: &str, shared: &str) -> Option<(Grant, Option<Slot>)> {
        let (grant, slot) = match serde_json::from_str::<Shared>(shared).ok()? {
            Shared::Revoked { revoked } => (*revoked, None),
            Shared::Slot(s) => (s.grant.clone()?, Some(*s)),
        };
        if grant.body.staff_id != staff_id || !self.admits(&grant) {
            return None;
        }
        match slot {
            Some(slot) if grant.body.active => {
                let b = &grant.body;
                let fits = slot.matches_staff(staff_id)
                    && matches!(&slot.owner, Owner::Staff { username, .. } if *username == b.username)
                    && slot.public_key.as_deref() == Some(b.public_key.as_str())
                    && slot.signing_key.as_deref() == Some(b.signing_key.as_str())
                    && slot_material(&slot) == b.slot
                    && slot.wrapped_key.is_none()
                    && slot.wrapped_secret.is_some()
                    && slot.sealed_key.is_some()
                    && standard_kdf(&slot.kdf)
                    && !self
                        .file
                        .slots
                        .iter()
                        .any(|s| s.matches_username(&b.username) && !s.matches_staff(staff_id));
                fits.then_some((grant, Some(slot)))
            }
            None if !grant.body.active => Some((grant, None)),
            _ => None,
        }
    }

    /// Takes an account's slot, or its disabling, that another PC published (`shared`), if
    /// `admissible`. Returns whether anything changed.
    pub(crate) fn adopt_shared(&mut self, staff_id: &str, shared: &str) -> Result<bool> {
        self.refuse_during_rekey()?;
        let Some((grant, slot)) = self.admissible(staff_id, shared) else {
            return Ok(false);
        };
        self.file.slots.retain(|s| !s.matches_staff(staff_id));
        self.file.revoked.retain(|g| g.body.staff_id != staff_id);
        match slot {
            Some(mut slot) => {
                slot.failed_attempts = 0;
                slot.last_failed_at = None;
                slot.sealed_next = None;
                self.file.slots.push(slot);
            }
            None => self.file.revoked.push(grant),
        }
        Ok(true)
    }

    /// Each account's grant as other PCs take it.
    pub(crate) fn shared_grants(&self) -> Result<Vec<SharedGrant>> {
        let mut out = vec![];
        for s in &self.file.slots {
            if let (Some(id), Some(public), Some(g)) = (s.staff_id(), &s.public_key, &s.grant) {
                let mut shared = s.clone();
                shared.failed_attempts = 0;
                shared.last_failed_at = None;
                shared.sealed_next = None;
                out.push(SharedGrant {
                    row_id: row_id(id, g),
                    public_key: public.clone(),
                    content: serde_json::to_string(&shared)?,
                });
            }
        }
        for g in &self.file.revoked {
            out.push(SharedGrant {
                row_id: row_id(&g.body.staff_id, g),
                public_key: String::new(),
                content: serde_json::to_string(&serde_json::json!({ "revoked": g }))?,
            });
        }
        Ok(out)
    }

    /// The recovery slot's public key, to record on a PC's device row.
    pub(crate) fn recovery_public_key(&self) -> Option<String> {
        self.recovery_slot().and_then(|s| s.public_key.clone())
    }

    pub(crate) fn recovery_slot(&self) -> Option<&Slot> {
        self.file
            .slots
            .iter()
            .find(|s| matches!(s.owner, Owner::Recovery))
    }

    /// Puts in a recovery slot made elsewhere (`set_recovery` on a copy), replacing the old.
    pub(crate) fn put_recovery_slot(&mut self, slot: Slot) {
        self.file
            .slots
            .retain(|s| !matches!(s.owner, Owner::Recovery));
        self.file.slots.push(slot);
    }

    /// The public key of an account's slot (format 2), to record on the account.
    pub fn public_key_of(&self, staff_id: &str) -> Option<String> {
        self.file
            .slots
            .iter()
            .find(|s| s.matches_staff(staff_id))
            .and_then(|s| s.public_key.clone())
    }

    pub fn remove_staff(&mut self, staff_id: &str) {
        self.file.slots.retain(|s| !s.matches_staff(staff_id));
        self.cancel_disabling(staff_id);
    }

    /// Notes a disabling about to happen: the grant `revoke` would sign (with the held
    /// grant's username and roles), kept until `finish_disabling`.
    pub fn begin_disabling(
        &mut self,
        staff_id: &str,
        username: &str,
        roles: &[Role],
        signer: &Signer,
    ) -> Result<()> {
        let (username, roles) = self.held_or(staff_id, username, roles);
        let g = self.revocation(staff_id, username, &roles, signer)?;
        self.cancel_disabling(staff_id);
        self.file.disabling.push(g);
        Ok(())
    }

    /// The disabling didn't happen (its row was refused, or the account was given a slot
    /// since): the note goes.
    pub fn cancel_disabling(&mut self, staff_id: &str) {
        self.file.disabling.retain(|g| g.body.staff_id != staff_id);
    }

    /// Whether a disabling of the account is noted (and would be taken).
    pub fn is_disabling(&self, staff_id: &str) -> bool {
        self.file
            .disabling
            .iter()
            .any(|g| g.body.staff_id == staff_id && self.takes_note(g))
    }

    fn takes_note(&self, g: &Grant) -> bool {
        !g.body.active && rank(g) > self.rank_of(&g.body.staff_id) && self.signed_by_trusted(g)
    }

    /// Takes every noted disabling this PC would take (the account row already says so, or
    /// a crash cut the disabling off after noting it: either way an administrator signed it),
    /// and drops the notes.
    pub fn finish_disablings(&mut self) {
        for g in std::mem::take(&mut self.file.disabling) {
            if self.takes_note(&g) {
                self.take_revocation(g);
            }
        }
    }

    /// Replaces the recovery slot. Returns its public key, to record in the database.
    pub fn set_recovery(&mut self, recovery_key: &str, key: &DbKey) -> Result<String> {
        self.refuse_during_rekey()?;
        let (slot, _) = new_slot(
            Owner::Recovery,
            recovery_key.as_bytes(),
            key,
            &self.file.database_id,
        )?;
        let public = slot.public_key.clone().unwrap_or_default();
        self.file
            .slots
            .retain(|s| !matches!(s.owner, Owner::Recovery));
        self.file.slots.push(slot);
        Ok(public)
    }

    fn unknown_entry(&mut self, username: &str) -> &mut Attempts {
        let who = hex::encode(Sha256::digest(format!(
            "{}|{}",
            self.file.database_id,
            username.to_lowercase()
        )));
        if let Some(i) = self.file.unknown.iter().position(|a| a.who == who) {
            return &mut self.file.unknown[i];
        }
        if self.file.unknown.len() >= UNKNOWN_KEPT {
            self.file.unknown.remove(0);
        }
        self.file.unknown.push(Attempts {
            who,
            ..Default::default()
        });
        self.file.unknown.last_mut().expect("just pushed")
    }

    /// Notes a failed sign-in for the audit trail.
    pub fn note_failure(&mut self, username: &str, step: &str, now: DateTime<Utc>) {
        if self.file.failed_signins.len() >= FAILURES_KEPT {
            // Never dropped: past the limit they are counted, and the count is audited.
            self.file.more_failed_signins += 1;
            return;
        }
        self.file.failed_signins.push(FailedSignin {
            at: now,
            username: username.chars().take(64).collect(),
            step: step.into(),
        });
    }

    /// The failed sign-ins not yet audited.
    pub fn failed_signins(&self) -> &[FailedSignin] {
        &self.file.failed_signins
    }

    /// Failed sign-ins past the list's limit, counted only.
    pub fn more_failed_signins(&self) -> u64 {
        self.file.more_failed_signins
    }

    /// Forgets failed sign-ins once they are audited (others noted meanwhile stay).
    pub fn drop_failures(&mut self, audited: &[FailedSignin], more: u64) {
        self.file.failed_signins.retain(|f| !audited.contains(f));
        self.file.more_failed_signins = self.file.more_failed_signins.saturating_sub(more);
    }

    /// Opens an account's keys with its password. Refuses early, without the KDF, while the
    /// account has to wait; counts a failure otherwise. A username nobody has behaves the
    /// same way, with the same work, the same counting and the same waits.
    pub fn open_with_password(
        &mut self,
        username: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Opened> {
        let db_id = self.file.database_id.clone();
        let Some(idx) = self
            .file
            .slots
            .iter()
            .position(|s| s.matches_username(username))
        else {
            let entry = self.unknown_entry(username);
            if let Some(secs) = wait_secs(entry.failed_attempts, entry.last_failed_at, now) {
                return Err(Error::TooManyAttempts { seconds: secs }.into());
            }
            decoy(password);
            let entry = self.unknown_entry(username);
            entry.failed_attempts += 1;
            entry.last_failed_at = Some(now);
            let wait = wait_secs(entry.failed_attempts, entry.last_failed_at, now);
            self.note_failure(username, "password", now);
            return Err(match wait {
                Some(secs) => Error::TooManyAttempts { seconds: secs },
                None => Error::BadCredentials,
            }
            .into());
        };
        if let Some(secs) = self.file.slots[idx].wait_secs(now) {
            return Err(Error::TooManyAttempts { seconds: secs }.into());
        }
        let slot = &self.file.slots[idx];
        let staff_id = slot.staff_id().expect("matched by username").to_string();
        match open_slot(slot, password.as_bytes(), &db_id)? {
            Some(o) => {
                self.backfill_signing_key(idx, &o);
                Ok(Opened {
                    staff_id,
                    legacy: o.signer.is_none(),
                    keys: o.keys,
                    signer: o.signer,
                })
            }
            None => {
                self.note_failure(username, "password", now);
                Err(self.record_failure(&staff_id, now).into())
            }
        }
    }

    /// A slot made before slots had signing keys gets its own once it is opened, so it can
    /// sign and be granted (`grants`).
    fn backfill_signing_key(&mut self, idx: usize, opened: &SlotOpened) {
        if let Some(signer) = &opened.signer {
            self.file.slots[idx]
                .signing_key
                .get_or_insert_with(|| signer.verifying_key());
        }
    }

    /// Checks a password against an account's slot (unlocking, changing one's password).
    pub fn check_password(
        &mut self,
        staff_id: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Opened> {
        let db_id = self.file.database_id.clone();
        let slot = self
            .file
            .slots
            .iter()
            .find(|s| s.matches_staff(staff_id))
            .ok_or(Error::BadCredentials)?;
        if let Some(secs) = slot.wait_secs(now) {
            return Err(Error::TooManyAttempts { seconds: secs }.into());
        }
        let username = match &slot.owner {
            Owner::Staff { username, .. } => username.clone(),
            Owner::Recovery => String::new(),
        };
        match open_slot(slot, password.as_bytes(), &db_id)? {
            Some(o) => Ok(Opened {
                staff_id: staff_id.to_string(),
                legacy: o.signer.is_none(),
                keys: o.keys,
                signer: o.signer,
            }),
            None => {
                self.note_failure(&username, "unlock", now);
                Err(self.record_failure(staff_id, now).into())
            }
        }
    }

    /// Counts a failed attempt (wrong password or wrong 2FA code) and returns the error to
    /// show: a plain refusal, or the wait once the free attempts are used.
    pub fn record_failure(&mut self, staff_id: &str, now: DateTime<Utc>) -> Error {
        let Some(slot) = self
            .file
            .slots
            .iter_mut()
            .find(|s| s.matches_staff(staff_id))
        else {
            return Error::BadCredentials;
        };
        slot.failed_attempts += 1;
        slot.last_failed_at = Some(now);
        match slot.wait_secs(now) {
            Some(secs) => Error::TooManyAttempts { seconds: secs },
            None => Error::BadCredentials,
        }
    }

    pub fn reset_failures(&mut self, staff_id: &str) {
        if let Some(slot) = self
            .file
            .slots
            .iter_mut()
            .find(|s| s.matches_staff(staff_id))
        {
            slot.failed_attempts = 0;
            slot.last_failed_at = None;
        }
    }

    /// Opens the keys with the recovery key. Failures count and wait like a password's (the
    /// recovery slot has its own counter) and are noted for the audit trail.
    pub fn open_with_recovery_key(
        &mut self,
        recovery_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Opened> {
        let db_id = self.file.database_id.clone();
        let idx = self
            .file
            .slots
            .iter()
            .position(|s| matches!(s.owner, Owner::Recovery))
            .ok_or_else(|| corrupt("no recovery slot"))?;
        if let Some(secs) = self.file.slots[idx].wait_secs(now) {
            return Err(Error::TooManyAttempts { seconds: secs }.into());
        }
        match open_slot(&self.file.slots[idx], recovery_key.as_bytes(), &db_id)? {
            Some(o) => {
                self.backfill_signing_key(idx, &o);
                let slot = &mut self.file.slots[idx];
                slot.failed_attempts = 0;
                slot.last_failed_at = None;
                Ok(Opened {
                    staff_id: String::new(),
                    legacy: o.signer.is_none(),
                    keys: o.keys,
                    signer: o.signer,
                })
            }
            None => {
                self.note_failure("", "recovery_key", now);
                let slot = &mut self.file.slots[idx];
                slot.failed_attempts += 1;
                slot.last_failed_at = Some(now);
                Err(match slot.wait_secs(now) {
                    Some(secs) => Error::TooManyAttempts { seconds: secs },
                    None => Error::BadCredentials,
                }
                .into())
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Re-keying (see `session::rekey` for the order of the steps).

    /// Seals `next` beside the current key to the recipients the database records, and to no
    /// one else: each active account's slot whose public key is the one recorded on the account
    /// (`staff`), and the recovery slot whose public key the database records (`recovery`).
    /// Every other slot is removed: one planted in the file, one from before key pairs, one of
    /// an account recorded with another key. Returns the usernames of the accounts removed
    /// (an administrator gives them a new password). Without a recorded recovery key that
    /// matches, nothing changes: the recovery key must be made anew first.
    pub fn begin_rekey(
        &mut self,
        next: &DbKey,
        staff: &[(String, String)],
        recovery: Option<&str>,
    ) -> Result<Vec<String>> {
        let recovery_ok = self.file.slots.iter().any(|s| {
            matches!(s.owner, Owner::Recovery)
                && recovery.is_some()
                && s.public_key.as_deref() == recovery
        });
        if !recovery_ok {
            return Err(Error::RecoveryKeyOutdated.into());
        }
        let mut dropped = vec![];
        let mut kept: Vec<Slot> = vec![];
        for mut slot in std::mem::take(&mut self.file.slots) {
            let recipient = match (&slot.owner, slot.public_key.as_deref()) {
                (Owner::Recovery, Some(pk)) => {
                    Some(pk) == recovery && !kept.iter().any(|k| matches!(k.owner, Owner::Recovery))
                }
                (Owner::Staff { staff_id, .. }, Some(pk)) => staff
                    .iter()
                    .any(|(id, recorded)| id == staff_id && recorded == pk),
                _ => false,
            };
            if recipient {
                let pk = slot.public_key.as_deref().unwrap_or_default();
                let bytes: [u8; 32] = B64
                    .decode(pk)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("bad public key"))?;
                slot.sealed_next = Some(seal(&crypto_box::PublicKey::from(bytes), next)?);
                kept.push(slot);
            } else if let Owner::Staff { username, .. } = &slot.owner {
                dropped.push(username.clone());
            }
        }
        self.file.slots = kept;
        Ok(dropped)
    }

    /// Whether a re-key was begun and not finished or abandoned.
    pub fn rekey_pending(&self) -> bool {
        self.file.slots.iter().any(|s| s.sealed_next.is_some())
    }

    /// The new key opened the database: it becomes the only one.
    pub fn finish_rekey(&mut self) {
        for slot in &mut self.file.slots {
            if let Some(next) = slot.sealed_next.take() {
                slot.sealed_key = Some(next);
            }
        }
    }

    /// The old key still opens the database: the new one is forgotten.
    pub fn abandon_rekey(&mut self) {
        for slot in &mut self.file.slots {
            slot.sealed_next = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        assert_eq!(lockout_delay_secs(4), 0);
        assert_eq!(lockout_delay_secs(5), 30);
        assert_eq!(lockout_delay_secs(6), 60);
        assert_eq!(lockout_delay_secs(7), 120);
        assert_eq!(lockout_delay_secs(40), MAX_DELAY_SECS);
    }

    impl KeySlots {
        fn clone_for_test(&self) -> KeySlots {
            KeySlots {
                path: self.path.clone(),
                file: self.file.clone(),
            }
        }
    }

    fn staff(id: &str) -> Owner {
        Owner::Staff {
            staff_id: id.into(),
            username: format!("user-{id}"),
        }
    }

    #[test]
    fn a_slot_opens_with_its_password_only_and_only_for_its_database() {
        let key: DbKey = Zeroizing::new(random_bytes());
        let (slot, _) = new_slot(staff("s1"), b"correct horse battery", &key, "db1").unwrap();
        let o = open_slot(&slot, b"correct horse battery", "db1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.keys.len(), o.keys[0].as_slice(), o.signer.is_some()),
            (1, key.as_slice(), true)
        );
        assert!(open_slot(&slot, b"wrong horse battery", "db1")
            .unwrap()
            .is_none());
        assert!(
            open_slot(&slot, b"correct horse battery", "other-db")
                .unwrap()
                .is_none(),
            "slot bound to its database"
        );
    }

    #[test]
    fn failed_sign_ins_past_the_list_are_counted_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut slots = KeySlots::create(dir.path(), "db1");
        for i in 0..FAILURES_KEPT + 10 {
            slots.note_failure(&format!("u{i}"), "password", Utc::now());
        }
        assert_eq!(
            (slots.failed_signins().len(), slots.more_failed_signins()),
            (FAILURES_KEPT, 10)
        );
        assert_eq!(
            slots.failed_signins()[0].username,
            "u0",
            "the first are kept"
        );
        let audited = slots.failed_signins().to_vec();
        slots.drop_failures(&audited, 10);
        assert_eq!(
            (slots.failed_signins().len(), slots.more_failed_signins()),
            (0, 0)
        );
    }

    #[test]
    fn a_new_key_reaches_every_slot_without_their_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2): (DbKey, DbKey) = (
            Zeroizing::new(random_bytes()),
            Zeroizing::new(random_bytes()),
        );
        let mut slots = KeySlots::create(dir.path(), "db1");
        let a = slots
            .set_staff("a", "ann", "ann-password-1", &k1, &[Role::Admin], None)
            .unwrap()
            .0;
        let b = slots
            .set_staff("b", "bob", "bob-password-1", &k1, &[Role::Nurse], None)
            .unwrap()
            .0;
        let r = slots.set_recovery("RECOVERY", &k1).unwrap();
        let old = slots.file.clone();
        let recipients = [("a".to_string(), a), ("b".to_string(), b)];
        assert!(slots
            .begin_rekey(&k2, &recipients, Some(&r))
            .unwrap()
            .is_empty());
        let during = slots
            .open_with_password("bob", "bob-password-1", Utc::now())
            .unwrap()
            .keys;
        assert_eq!(
            during.iter().map(|k| k.to_vec()).collect::<Vec<_>>(),
            [k1.to_vec(), k2.to_vec()]
        );
        slots.finish_rekey();
        let after = slots
            .open_with_password("ann", "ann-password-1", Utc::now())
            .unwrap()
            .keys;
        assert_eq!(
            after.iter().map(|k| k.to_vec()).collect::<Vec<_>>(),
            [k2.to_vec()]
        );
        // A copy taken before holds the old key only.
        let mut copy = KeySlots {
            path: slots.path.clone(),
            file: old,
        };
        assert_eq!(
            copy.open_with_password("ann", "ann-password-1", Utc::now())
                .unwrap()
                .keys[0]
                .to_vec(),
            k1.to_vec()
        );
    }

    #[test]
    fn a_pc_admits_grants_from_admins_or_the_account_itself_and_never_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let key: DbKey = Zeroizing::new(random_bytes());
        // This PC's slot file: an admin and a nurse, as it trusts them.
        let mut here = KeySlots::create(dir.path(), "db1");
        let (_, admin) = here
            .set_staff("a", "ann", "ann-password-1", &key, &[Role::Admin], None)
            .unwrap();
        here.set_staff(
            "n",
            "nia",
            "nia-password-1",
            &key,
            &[Role::Nurse],
            Some(&admin),
        )
        .unwrap();
        let nurse = here
            .check_password("n", "nia-password-1", Utc::now())
            .unwrap()
            .signer
            .unwrap();
        // Another PC's copy, where grants are signed.
        let mut there = KeySlots {
            path: here.path.clone(),
            file: here.file.clone(),
        };
        let shared = |s: &KeySlots, id: &str| {
            s.shared_grants()
                .unwrap()
                .into_iter()
                .find(|g| row_staff_id(&g.row_id) == id)
                .unwrap()
                .content
        };

        // The nurse changes her own password: taken.
        let (_, second) = there
            .set_staff(
                "n",
                "nia",
                "nia-password-2",
                &key,
                &[Role::Nurse],
                Some(&nurse),
            )
            .unwrap();
        let own_change = shared(&there, "n");
        assert!(here
            .clone_for_test()
            .adopt_shared("n", &own_change)
            .unwrap());
        // And again, before this PC saw the first change: it follows the chain back to the
        // slot it trusts; so does a PC that never saw her account, back to the admin's grant.
        let mut twice = there.clone_for_test();
        twice
            .set_staff(
                "n",
                "nia",
                "nia-password-3",
                &key,
                &[Role::Nurse],
                Some(&second),
            )
            .unwrap();
        let twice = shared(&twice, "n");
        assert!(here.clone_for_test().adopt_shared("n", &twice).unwrap());
        let mut never = here.clone_for_test();
        never.remove_staff("n");
        assert!(never.adopt_shared("n", &twice).unwrap());
        // A chain whose first link no trusted slot signed: refused.
        let mut cut_slot: Slot = serde_json::from_str(&twice).unwrap();
        let mut cut = cut_slot.grant.clone().unwrap();
        cut.prev.as_mut().unwrap().prev = None;
        cut_slot.grant = Some(cut);
        let mut never = here.clone_for_test();
        never.remove_staff("n");
        assert!(!never
            .adopt_shared("n", &serde_json::to_string(&cut_slot).unwrap())
            .unwrap());
        // She makes herself an admin, or signs a new admin slot: refused.
        let mut raised = there.clone_for_test();
        raised.grant("n", &[Role::Admin], &nurse).unwrap();
        assert!(!here
            .clone_for_test()
            .adopt_shared("n", &shared(&raised, "n"))
            .unwrap());
        let mut planted = there.clone_for_test();
        planted
            .set_staff(
                "a",
                "ann",
                "stolen-pass-9",
                &key,
                &[Role::Admin],
                Some(&nurse),
            )
            .unwrap();
        assert!(!here
            .clone_for_test()
            .adopt_shared("a", &shared(&planted, "a"))
            .unwrap());
        // The admin disables her: taken. Then the old grant, replayed: refused.
        there.revoke("n", "nia", &[Role::Nurse], &admin).unwrap();
        let mut after = here.clone_for_test();
        assert!(after.adopt_shared("n", &shared(&there, "n")).unwrap());
        assert!(after.public_key_of("n").is_none());
        assert!(!after.adopt_shared("n", &own_change).unwrap(), "replayed");
        // A slot whose grant names another key: refused.
        let mut swapped: Slot = serde_json::from_str(&own_change).unwrap();
        swapped.public_key = here.public_key_of("a");
        assert!(!here
            .clone_for_test()
            .adopt_shared("n", &serde_json::to_string(&swapped).unwrap())
            .unwrap());
    }

    /// An admin, and a nurse with two roles, as a PC trusts them; the admin's and the nurse's
    /// signers; the database key.
    fn two_accounts() -> (KeySlots, Signer, Signer, DbKey, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let key: DbKey = Zeroizing::new(random_bytes());
        let mut here = KeySlots::create(dir.path(), "db1");
        let (_, admin) = here
            .set_staff("a", "ann", "ann-password-1", &key, &[Role::Admin], None)
            .unwrap();
        let (_, nurse) = here
            .set_staff(
                "n",
                "nia",
                "nia-password-1",
                &key,
                &[Role::Nurse, Role::Cashier],
                Some(&admin),
            )
            .unwrap();
        (here, admin, nurse, key, dir)
    }

    fn row_staff_id(row_id: &str) -> &str {
        row_id.split('/').next().unwrap()
    }

    fn row(s: &KeySlots, id: &str) -> String {
        s.shared_grants()
            .unwrap()
            .into_iter()
            .find(|g| row_staff_id(&g.row_id) == id)
            .unwrap()
            .content
    }

    #[test]
    fn a_slot_opens_only_with_the_secret_its_grant_names_and_comes_in_one_shape() {
        let (here, admin, _, key, _dir) = two_accounts();
        // Another PC: the admin resets Nia's password. Someone with that PC's folder puts
        // their own secret (and their own password) into the slot, under the real grant.
        let mut there = here.clone_for_test();
        there
            .set_staff("n", "nia", "nia-password-2", &key, &[], Some(&admin))
            .unwrap();
        let mut theirs = there.clone_for_test();
        theirs
            .set_staff("n", "nia", "attacker-pass-9", &key, &[], None)
            .unwrap();
        let real: Slot = serde_json::from_str(&row(&there, "n")).unwrap();
        let fake: Slot = serde_json::from_str(&row(&theirs, "n")).unwrap();
        let planted = Slot {
            kdf: fake.kdf.clone(),
            nonce: fake.nonce.clone(),
            wrapped_secret: fake.wrapped_secret.clone(),
            sealed_key: fake.sealed_key.clone(),
            ..real.clone()
        };
        // The grant names the slot's material: such a slot is not taken.
        let mut took = here.clone_for_test();
        assert!(!took
            .adopt_shared("n", &serde_json::to_string(&planted).unwrap())
            .unwrap());
        // And a slot file holding one anyway opens nothing with the other password: the
        // secret inside isn't the public key's.
        took.file.slots.retain(|s| !s.matches_staff("n"));
        took.file.slots.push(planted);
        assert!(
            took.open_with_password("nia", "attacker-pass-9", Utc::now())
                .is_err(),
            "a secret that isn't the grant's key opened the slot"
        );
        // The real slot opens with the real password.
        let mut took = here.clone_for_test();
        assert!(took.adopt_shared("n", &row(&there, "n")).unwrap());
        assert!(took
            .open_with_password("nia", "nia-password-2", Utc::now())
            .is_ok());
        // Only slots of this version's shape, with its KDF, are taken.
        let mut costly = real.clone();
        costly.kdf.m_kib = 4 * 1024 * 1024;
        let mut legacy = real.clone();
        legacy.wrapped_key = Some("AAAA".into());
        for bad in [costly, legacy] {
            assert!(!here
                .clone_for_test()
                .adopt_shared("n", &serde_json::to_string(&bad).unwrap())
                .unwrap());
        }
    }

    #[test]
    fn a_chain_starts_only_at_what_this_pc_holds_or_would_take() {
        let (here, admin, nurse, key, _dir) = two_accounts();
        // Before the admin takes her cashier role away, Nia keeps a copy of the slot file.
        // Later she signs two password changes from it, as if the demotion never happened.
        let mut kept = here.clone_for_test();
        let mut demoted = here.clone_for_test();
        demoted.grant("n", &[Role::Nurse], &admin).unwrap();
        let (_, second) = kept
            .set_staff("n", "nia", "nia-password-2", &key, &[], Some(&nurse))
            .unwrap();
        kept.set_staff("n", "nia", "nia-password-3", &key, &[], Some(&second))
            .unwrap();
        let replay = row(&kept, "n");
        // It ranks below the demotion (an administrator's grant starts a new epoch), and its
        // chain starts at a grant older than the one held.
        let mut g: Slot = serde_json::from_str(&replay).unwrap();
        assert!(rank(g.grant.as_ref().unwrap()) < demoted.rank_of("n"));
        assert!(!demoted.own_chain(g.grant.as_ref().unwrap(), 0));
        g.grant.as_mut().unwrap().prev = None;
        assert!(!demoted.own_chain(g.grant.as_ref().unwrap(), 0));
        assert!(
            !demoted.clone_for_test().adopt_shared("n", &replay).unwrap(),
            "a chain from before the demotion undid it"
        );
        // The same chain is taken where nothing newer is held.
        assert!(here.clone_for_test().adopt_shared("n", &replay).unwrap());

        // An own change must be the next generation: one that skips (ranking above a grant
        // the PC will receive) is refused.
        let held = demoted.grant_of("n").unwrap().clone();
        let second_signer = demoted
            .clone_for_test()
            .check_password("n", "nia-password-1", Utc::now())
            .unwrap()
            .signer
            .unwrap();
        let skipped = second_signer.sign(
            GrantBody {
                gen: held.body.gen + 2,
                ..held.body.clone()
            },
            Some(&held),
        );
        assert!(!demoted.admits(&skipped));
        let next = second_signer.sign(
            GrantBody {
                gen: held.body.gen + 1,
                ..held.body.clone()
            },
            Some(&held),
        );
        assert!(demoted.admits(&next));

        // An admin's grant and the person's own change made apart at the same generation:
        // the admin's stands everywhere.
        let mut own = here.clone_for_test();
        own.set_staff("n", "nia", "nia-password-4", &key, &[], Some(&nurse))
            .unwrap();
        assert_eq!(
            own.grant_of("n").unwrap().body.gen,
            demoted.grant_of("n").unwrap().body.gen
        );
        let mut took_own = here.clone_for_test();
        assert!(took_own.adopt_shared("n", &row(&own, "n")).unwrap());
        assert!(took_own.adopt_shared("n", &row(&demoted, "n")).unwrap());
        let mut took_admin = here.clone_for_test();
        assert!(took_admin.adopt_shared("n", &row(&demoted, "n")).unwrap());
        assert!(!took_admin.adopt_shared("n", &row(&own, "n")).unwrap());
        assert_eq!(took_own.grant_of("n"), took_admin.grant_of("n"));
    }

    #[test]
    fn generations_never_overflow_and_no_row_holds_back_a_grant() {
        let (here, admin, nurse, key, _dir) = two_accounts();
        // An admin signs the last generation: nothing can follow it, and nothing panics.
        let mut last = here.clone_for_test();
        let mut g = last.grant_of("n").unwrap().clone();
        g.body.gen = u64::MAX;
        let g = admin.sign(g.body, None);
        last.file
            .slots
            .iter_mut()
            .find(|s| s.matches_staff("n"))
            .unwrap()
            .grant = Some(g);
        assert!(last.grant("n", &[Role::Nurse], &admin).is_err());
        assert!(last.revoke("n", "nia", &[], &admin).is_err());

        // A grant is taken only for its own account: the admin's (real) grant under Nia's id
        // is not.
        assert!(!here
            .clone_for_test()
            .adopt_shared("n", &row(&here, "a"))
            .unwrap());
        // Each grant has a row of its own, the same on every PC that holds it.
        let ids = |s: &KeySlots| -> Vec<String> {
            s.shared_grants()
                .unwrap()
                .into_iter()
                .filter(|g| row_staff_id(&g.row_id) == "n")
                .map(|g| g.row_id)
                .collect()
        };
        let mut newer = here.clone_for_test();
        newer.grant("n", &[Role::Nurse], &admin).unwrap();
        // The same grant over a slot sealed afresh is the same row (PCs holding either copy
        // don't rewrite each other's row); another grant, or none, isn't.
        let own = row(&here, "n");
        let mut resealed: Slot = serde_json::from_str(&own).unwrap();
        resealed.sealed_key = Some(B64.encode([7u8; 80]));
        assert!(same_grant(&own, &serde_json::to_string(&resealed).unwrap()));
        // Anything else changed is not the same row: it is put back.
        let mut changed: Slot = serde_json::from_str(&own).unwrap();
        changed.nonce = B64.encode([7u8; 24]);
        assert!(!same_grant(&own, &serde_json::to_string(&changed).unwrap()));
        let mut changed_pw = here.clone_for_test();
        changed_pw
            .set_staff("n", "nia", "nia-password-6", &key, &[], Some(&nurse))
            .unwrap();
        let chained = row(&changed_pw, "n");
        let mut cut: Slot = serde_json::from_str(&chained).unwrap();
        cut.grant.as_mut().unwrap().prev = None;
        assert!(same_grant(&chained, &serde_json::to_string(&cut).unwrap()));
        let mut renamed: Slot = serde_json::from_str(&chained).unwrap();
        renamed.owner = Owner::Staff {
            staff_id: "n".into(),
            username: "NIA".into(),
        };
        let renamed = serde_json::to_string(&renamed).unwrap();
        assert!(!same_grant(&chained, &renamed));
        // Nor is a slot whose username differs from its grant's, even in case only, taken.
        assert!(!here.clone_for_test().adopt_shared("n", &renamed).unwrap());
        assert!(here.clone_for_test().adopt_shared("n", &chained).unwrap());
        assert!(!same_grant(&own, &row(&newer, "n")));
        assert!(!same_grant(&own, "{}"));
        assert_eq!(ids(&here), ids(&here.clone_for_test()));
        assert_ne!(ids(&here), ids(&newer));
        assert_eq!(row_staff_id(&ids(&newer)[0]), "n");
    }

    #[test]
    fn an_administrators_grant_outranks_own_changes_made_meanwhile_and_a_disabling_wins_ties() {
        let (here, admin, nurse, key, _dir) = two_accounts();
        // Apart: Nia changes her password twice; the admin disables her (one generation
        // behind her), and another admin's grant of new roles has the same generation.
        let mut own = here.clone_for_test();
        let (_, second) = own
            .set_staff("n", "nia", "nia-password-2", &key, &[], Some(&nurse))
            .unwrap();
        own.set_staff("n", "nia", "nia-password-3", &key, &[], Some(&second))
            .unwrap();
        let mut disabled = here.clone_for_test();
        disabled.revoke("n", "nia", &[], &admin).unwrap();
        let mut regranted = here.clone_for_test();
        regranted.grant("n", &[Role::Nurse], &admin).unwrap();
        let rows = [row(&own, "n"), row(&disabled, "n"), row(&regranted, "n")];
        // In whatever order a PC sees them, it ends with the disabling.
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]] {
            let mut pc = here.clone_for_test();
            for i in order {
                pc.adopt_shared("n", &rows[i]).unwrap();
            }
            assert_eq!(pc.grant_of("n"), disabled.grant_of("n"), "order {order:?}");
            assert!(pc.public_key_of("n").is_none());
        }
    }

    #[test]
    fn a_grant_carrying_more_earlier_grants_than_a_chain_has_is_refused() {
        let (here, _, nurse, key, _dir) = two_accounts();
        let mut there = here.clone_for_test();
        there
            .set_staff("n", "nia", "nia-password-2", &key, &[], Some(&nurse))
            .unwrap();
        // A real own change whose (unsigned) earlier grants are nested a hundred deep: once
        // in a slot file it would no longer load anywhere.
        let mut v: serde_json::Value = serde_json::from_str(&row(&there, "n")).unwrap();
        let base = v["grant"]["prev"].clone();
        let mut deep = base.clone();
        for _ in 0..100 {
            let mut link = base.clone();
            link["prev"] = deep;
            deep = link;
        }
        v["grant"]["prev"]["prev"] = deep;
        let mut pc = here.clone_for_test();
        assert!(!pc.adopt_shared("n", &v.to_string()).unwrap());
        assert!(pc.adopt_shared("n", &row(&there, "n")).unwrap());
    }

    #[test]
    fn only_a_disabling_an_administrator_signed_is_noted_and_a_new_slot_drops_it() {
        let (here, admin, nurse, key, _dir) = two_accounts();
        // Noted by someone with the folder, signed by the nurse: it counts for nothing.
        let mut pc = here.clone_for_test();
        let forged = pc
            .revocation("a", "ann".into(), &[Role::Admin], &nurse)
            .unwrap();
        pc.file.disabling.push(forged);
        assert!(!pc.is_disabling("a"));
        pc.finish_disablings();
        assert!(pc.public_key_of("a").is_some());
        // The admin's: the account can't sign in until it is taken, then it is disabled.
        pc.begin_disabling("n", "", &[], &admin).unwrap();
        assert!(pc.is_disabling("n"));
        pc.finish_disablings();
        assert!(pc.public_key_of("n").is_none());
        assert!(!pc.grant_of("n").unwrap().body.active);
        // A new slot for the account (a reset, re-enabling) drops a note left behind.
        let mut pc = here.clone_for_test();
        pc.begin_disabling("n", "", &[], &admin).unwrap();
        pc.set_staff("n", "nia", "nia-password-5", &key, &[], Some(&admin))
            .unwrap();
        assert!(!pc.is_disabling("n"));
        pc.finish_disablings();
        assert!(pc.public_key_of("n").is_some());
        // A PC joining from this one's slot file inherits no note.
        let mut pc = here.clone_for_test();
        pc.begin_disabling("n", "", &[], &admin).unwrap();
        assert!(!pc.export_for_peer().unwrap().contains("disabling"));
    }

    #[test]
    fn a_slot_from_before_signing_keys_gets_one_when_it_opens() {
        let (mut here, _, _, _, _dir) = two_accounts();
        let before = here.signing_key_of("n").unwrap();
        for s in &mut here.file.slots {
            s.signing_key = None;
        }
        assert!(here.signing_key_of("n").is_none());
        here.open_with_password("nia", "nia-password-1", Utc::now())
            .unwrap();
        assert_eq!(here.signing_key_of("n").unwrap(), before);
    }
}
