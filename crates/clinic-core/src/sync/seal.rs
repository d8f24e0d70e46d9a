//! What leaves the PC is sealed: each row version's content is encrypted (XChaCha20-Poly1305)
//! under a key derived from the clinic's database key, which every PC of the clinic has and the
//! server never does. The seal is bound to the table, the row, the version's clock stamp, the
//! PC that made it and the version it was made on top of, so the server can't move a sealed row
//! to another record, present an old version as a newer one, credit a change to another PC
//! (whose audit trail then seems to lack it), or claim an edit was made on top of the version a
//! PC holds (which would hide a conflict). The nonce is derived from the key and the content
//! (as SIV does), so the same version always seals the same way: the server's copy and each
//! PC's can be compared by digest.
//!
//! Text form: `s4:` and the base64 of nonce (24 bytes) and ciphertext. Versions sealed by
//! earlier PCs as `s3:` (bound to all of that but the base) still open.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::DbKey;

const PREFIX: &str = "s4:";
/// The format before the base was bound: opened, never made.
const PREFIX_S3: &str = "s3:";

pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

/// What a version is: its table, row, clock stamp, the PC (device id) that made it, and the
/// version it was made on top of (`hlc@device`; none for a row's first version).
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    pub entity: &'a str,
    pub id: &'a str,
    pub hlc: &'a str,
    pub device: &'a str,
    pub base: Option<&'a str>,
}

/// What a seal is bound to: each part length-prefixed, so no two different versions read
/// the same whatever bytes a server puts in them; the base marked present or absent (`s4`).
fn bound(b: Bound<'_>, with_base: bool) -> Vec<u8> {
    let base = match b.base {
        Some(x) => format!("\u{1}{x}"),
        None => "\u{0}".to_string(),
    };
    let mut parts = vec![b.entity, b.id, b.hlc, b.device];
    if with_base {
        parts.push(&base);
    }
    let mut v = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        v.extend_from_slice(&(part.len() as u32).to_le_bytes());
        v.extend_from_slice(part.as_bytes());
    }
    v
}

impl Sealer {
    pub fn new(db_key: &DbKey) -> Sealer {
        let mut h = Sha256::new();
        h.update(b"clinicdesk sync rows v1\0");
        h.update(db_key.as_slice());
        Sealer {
            key: Zeroizing::new(h.finalize().into()),
        }
    }

    /// The sealed text of a row version.
    pub fn seal(&self, at: Bound<'_>, content: &str) -> String {
        self.seal_as(at, content, true)
    }

    /// `s4` (the base bound) or, for tests of old data, `s3`.
    fn seal_as(&self, at: Bound<'_>, content: &str, with_base: bool) -> String {
        let aad = bound(at, with_base);
        let mut h = Sha256::new();
        h.update(b"nonce\0");
        h.update(self.key.as_slice());
        h.update(&aad);
        h.update([0]);
        h.update(content.as_bytes());
        let nonce: [u8; 32] = h.finalize().into();
        let nonce = &nonce[..24];
        let ct = XChaCha20Poly1305::new(self.key.as_ref().into())
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: content.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        let prefix = if with_base { PREFIX } else { PREFIX_S3 };
        format!("{prefix}{}", B64.encode(out))
    }

    /// The content of a sealed version, if it opens for this table, row, stamp, PC and base.
    pub fn open(&self, at: Bound<'_>, sealed: &str) -> Option<String> {
        let (text, with_base) = match sealed.strip_prefix(PREFIX) {
            Some(t) => (t, true),
            None => (sealed.strip_prefix(PREFIX_S3)?, false),
        };
        let bytes = B64.decode(text).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let plain = XChaCha20Poly1305::new(self.key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&bytes[..24]),
                Payload {
                    msg: &bytes[24..],
                    aad: &bound(at, with_base),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(entity: &'a str, id: &'a str, hlc: &'a str, device: &'a str) -> Bound<'a> {
        Bound {
            entity,
            id,
            hlc,
            device,
            base: None,
        }
    }

    #[test]
    fn a_seal_opens_only_for_its_row_version_and_pc_and_is_repeatable() {
        let s = Sealer::new(&Zeroizing::new([7u8; 32]));
        let t = "0000000001000-00000";
        let a = s.seal(at("patients", "p1", t, "dA"), r#"{"id":"p1"}"#);
        assert_eq!(a, s.seal(at("patients", "p1", t, "dA"), r#"{"id":"p1"}"#));
        assert!(!a.contains("p1"));
        assert_eq!(
            s.open(at("patients", "p1", t, "dA"), &a).as_deref(),
            Some(r#"{"id":"p1"}"#)
        );
        assert_eq!(
            s.open(at("patients", "p2", t, "dA"), &a),
            None,
            "moved to another row"
        );
        assert_eq!(
            s.open(at("patients", "p1", "0000000009000-00000", "dA"), &a),
            None,
            "replayed as newer"
        );
        assert_eq!(s.open(at("staff", "p1", t, "dA"), &a), None);
        assert_eq!(
            s.open(at("patients", "p1", t, "dB"), &a),
            None,
            "credited to another PC"
        );
        // Parts can't slide into each other (a row id carrying a separator and a stamp).
        let b = s.seal(at("patients", "p1\0x", t, "dA"), "{}");
        let slid = format!("x\0{t}");
        assert_eq!(s.open(at("patients", "p1", &slid, "dA"), &b), None);
        // The base is bound: a server can't say an edit was made on the version a PC holds.
        let on = Bound {
            base: Some("0000000000500-00000@dA"),
            ..at("patients", "p1", t, "dA")
        };
        let c = s.seal(on, "{}");
        assert_eq!(s.open(on, &c).as_deref(), Some("{}"));
        assert_eq!(
            s.open(at("patients", "p1", t, "dA"), &c),
            None,
            "base dropped"
        );
        let other_base = Bound {
            base: Some("0000000000600-00000@dB"),
            ..on
        };
        assert_eq!(s.open(other_base, &c), None, "base changed");
        // A version an earlier PC sealed (`s3`, base not bound) still opens.
        let old = s.seal_as(on, "{}", false);
        assert!(old.starts_with("s3:"));
        assert_eq!(s.open(on, &old).as_deref(), Some("{}"));
        assert_eq!(s.open(at("patients", "p2", t, "dA"), &old), None);
        let other = Sealer::new(&Zeroizing::new([8u8; 32]));
        assert_eq!(
            other.open(at("patients", "p1", t, "dA"), &a),
            None,
            "another clinic's key"
        );
    }
}
