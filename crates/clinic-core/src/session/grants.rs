//! Account grants: who may sign in on every PC of a clinic, with which roles, and with which
//! key slot. Every PC holds the clinic's database key, so anyone with one PC's folder and a
//! staff password can write any synced row, a `key_slots` row included. A slot from another
//! PC is therefore put into this PC's slot file only with a grant this PC can check
//! (`KeySlots::admits`):
//! - signed by an administrator, or by the recovery key, whose slot this PC already trusts;
//! - or signed by the account itself with the slot this PC trusts for it, changing nothing
//!   but the slot (a person changing their own password); a PC that missed the slots in
//!   between (a password changed twice while it was off, or at first sign-in before it ever
//!   saw the account) follows the chain of earlier grants the new one carries (`prev`, at most
//!   `MAX_CHAIN`) back to one it trusts;
//! - and newer (`gen`) than the grant this PC holds for the account, so an old grant can't be
//!   replayed to bring back an old password or a disabled account.
//!
//! Each slot has an Ed25519 signing key derived from its X25519 secret, so only the password
//! (or the recovery key) that opens the slot signs with it. Signing in takes the roles from
//! the grant, not from the `staff` row, which a forged change could rewrite.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::perm::Role;

/// What signs for the recovery key in `Grant::by`.
pub const RECOVERY: &str = "recovery";

/// Earlier grants a person's own change carries, at most.
pub const MAX_CHAIN: usize = 16;

/// A slot's signing secret (the Ed25519 seed derived from its X25519 secret).
#[derive(Clone)]
pub struct Signer {
    /// The staff id whose slot it is, or `RECOVERY`.
    pub by: String,
    seed: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.by)
    }
}

impl Signer {
    /// The signer of a slot whose X25519 secret is `slot_secret`.
    pub(crate) fn from_slot_secret(by: &str, slot_secret: &[u8; 32]) -> Signer {
        let mut h = Sha256::new();
        h.update(b"clinicdesk slot signing v1\0");
        h.update(slot_secret);
        Signer {
            by: by.to_string(),
            seed: Zeroizing::new(h.finalize().into()),
        }
    }

    /// The public half, base64, as slots and grants record it.
    pub fn verifying_key(&self) -> String {
        B64.encode(
            SigningKey::from_bytes(&self.seed)
                .verifying_key()
                .as_bytes(),
        )
    }

    /// A grant of `body`; `prev` (the grant it replaces) goes with it when a person signs for
    /// their own account, so a PC that missed it can still check the chain.
    pub fn sign(&self, body: GrantBody, prev: Option<&Grant>) -> Grant {
        let sig = SigningKey::from_bytes(&self.seed).sign(&message(&body));
        let prev = prev
            .filter(|p| self.by == body.staff_id && p.body.staff_id == body.staff_id)
            .map(|p| Box::new(p.truncated(MAX_CHAIN - 1)));
        Grant {
            body,
            by: self.by.clone(),
            sig: B64.encode(sig.to_bytes()),
            prev,
        }
    }
}

/// What a grant says about an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBody {
    pub staff_id: String,
    pub username: String,
    pub roles: Vec<Role>,
    /// False: the account is disabled, and no slot opens it.
    pub active: bool,
    /// The slot's X25519 public key (empty when disabled).
    pub public_key: String,
    /// The slot's Ed25519 verifying key (empty when disabled).
    pub signing_key: String,
    /// One more than the grant it replaces.
    pub gen: u64,
    /// The generation of the last grant in this account's line that someone else (an
    /// administrator, the recovery key) signed: `gen` itself for such a grant, the one before
    /// it for a person's own change. Grants rank by it first, so an administrator's grant
    /// outranks any number of the person's own changes from before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// A hash of what the password unwraps in the slot (its KDF, nonce and wrapped secret):
    /// a slot whose material someone changed under a real grant is not that grant's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub slot: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub body: GrantBody,
    /// The staff id of the signer, or `RECOVERY`.
    pub by: String,
    pub sig: String,
    /// For a person's own change: the grant it replaced (not signed over: each link is
    /// checked by its own signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Box<Grant>>,
}

fn message(body: &GrantBody) -> Vec<u8> {
    let mut m = b"clinicdesk account grant v1\0".to_vec();
    m.extend(serde_json::to_vec(body).unwrap_or_default());
    m
}

impl Grant {
    /// This grant with at most `links` earlier grants behind it.
    fn truncated(&self, links: usize) -> Grant {
        Grant {
            prev: match (&self.prev, links) {
                (Some(p), n) if n > 0 => Some(Box::new(p.truncated(n - 1))),
                _ => None,
            },
            ..self.clone()
        }
    }

    /// How many earlier grants it carries.
    pub(crate) fn links(&self) -> usize {
        let mut n = 0;
        let mut g = self;
        while let Some(p) = &g.prev {
            n += 1;
            g = p;
        }
        n
    }

    /// Whether it is a person's own grant (signed with their slot), not someone else's.
    pub fn is_own(&self) -> bool {
        self.by == self.body.staff_id
    }

    /// Whether `self` is its account's own change from `held`: signed by the account, the
    /// same person with the same roles, both active, in the same epoch.
    pub fn own_change_from(&self, held: &Grant) -> bool {
        self.is_own()
            && held.body.staff_id == self.body.staff_id
            && held.body.epoch == self.body.epoch
            && self.body.active
            && held.body.active
            && held.same_roles(&self.body.roles)
            && held.body.username == self.body.username
    }

    /// Whether the signature is `signing_key`'s (base64 Ed25519 verifying key).
    pub fn signed_with(&self, signing_key: &str) -> bool {
        let (Ok(k), Ok(s)) = (B64.decode(signing_key), B64.decode(&self.sig)) else {
            return false;
        };
        let (Ok(k), Ok(s)) = (<[u8; 32]>::try_from(k), <[u8; 64]>::try_from(s)) else {
            return false;
        };
        let Ok(k) = VerifyingKey::from_bytes(&k) else {
            return false;
        };
        k.verify(&message(&self.body), &Signature::from_bytes(&s))
            .is_ok()
    }

    /// Roles compared as sets.
    pub fn same_roles(&self, roles: &[Role]) -> bool {
        let mut a = self.body.roles.clone();
        let mut b = roles.to_vec();
        a.sort_by_key(|r| r.as_str());
        b.sort_by_key(|r| r.as_str());
        a.dedup();
        b.dedup();
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(gen: u64) -> GrantBody {
        GrantBody {
            staff_id: "s1".into(),
            username: "nina".into(),
            roles: vec![Role::Nurse],
            active: true,
            public_key: "pk".into(),
            signing_key: "vk".into(),
            gen,
            epoch: gen,
            slot: String::new(),
        }
    }

    #[test]
    fn a_grant_verifies_only_unchanged_and_with_its_signers_key() {
        let a = Signer::from_slot_secret("admin", &[1; 32]);
        let b = Signer::from_slot_secret("other", &[2; 32]);
        let g = a.sign(body(1), None);
        assert!(g.signed_with(&a.verifying_key()));
        assert!(!g.signed_with(&b.verifying_key()));
        let mut raised = g.clone();
        raised.body.roles = vec![Role::Admin];
        assert!(!raised.signed_with(&a.verifying_key()));
        let mut later = g.clone();
        later.body.gen = 2;
        assert!(!later.signed_with(&a.verifying_key()));
        assert!(!g.signed_with("not base64"));
    }
}
