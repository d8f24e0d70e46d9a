//! What leaves the PC is sealed: each row version's content is encrypted (XChaCha20-Poly1305)
//! under a key derived from the clinic's database key, which every PC of the clinic has and the
//! server never does. The seal is bound to the table, the row, the version's clock stamp and
//! the PC that made it, so the server can't move a sealed row to another record, present an old
//! version as a newer one, or credit a change to another PC (whose audit trail then seems to
//! lack it). The nonce is derived from the key and the content (as SIV does), so the same
//! version always seals the same way: the server's copy and each PC's can be compared by
//! digest.
//!
//! Text form: `s3:` and the base64 of nonce (24 bytes) and ciphertext.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::DbKey;

const PREFIX: &str = "s3:";

pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

/// What a version is: its table, row, clock stamp and the PC (device id) that made it.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    pub entity: &'a str,
    pub id: &'a str,
    pub hlc: &'a str,
    pub device: &'a str,
}

/// What a seal is bound to: each part length-prefixed, so no two different versions read
/// the same whatever bytes a server puts in them.
fn bound(b: Bound<'_>) -> Vec<u8> {
    let parts = [b.entity, b.id, b.hlc, b.device];
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
        let aad = bound(at);
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
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The content of a sealed version, if it opens for this table, row, stamp and PC.
    pub fn open(&self, at: Bound<'_>, sealed: &str) -> Option<String> {
        let bytes = B64.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let plain = XChaCha20Poly1305::new(self.key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&bytes[..24]),
                Payload {
                    msg: &bytes[24..],
                    aad: &bound(at),
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
        let other = Sealer::new(&Zeroizing::new([8u8; 32]));
        assert_eq!(
            other.open(at("patients", "p1", t, "dA"), &a),
            None,
            "another clinic's key"
        );
    }
}
