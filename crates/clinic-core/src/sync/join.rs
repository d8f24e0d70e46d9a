//! Joining a new PC to the clinic before it has any data: the admin's PC seals the clinic's
//! database key and key slots under the join code, the server passes the sealed text on
//! without being able to open it, and the new PC creates its database with that key and
//! downloads the clinic into it. The same people then sign in there with the same password
//! and second factor (their slots are the same slots).
//!
//! Only the join code opens the invitation. Its server half (`join_code_auth`) is all the
//! server sees; the seal key (`join_code_seal_key`) is derived from the whole code.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use clinic_sync_proto::{join_code_auth, join_code_seal_key, JoinRequest, NewJoinCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{actor, apply, link, Error, Link, Table, Transport};
use crate::error::Result;
use crate::ids::{random_bytes, Clock};
use crate::session::keys;
use crate::session::keyslots::KeySlots;
use crate::store::{Db, DbKey};

const AAD: &[u8] = b"clinicdesk-invitation-v1";

#[derive(Serialize, Deserialize)]
struct Invitation {
    /// The database key, base64.
    key: String,
    /// The slot file as `KeySlots::export_for_peer` gives it.
    slots: String,
}

fn seal(code: &str, inv: &Invitation) -> Result<String> {
    let plain = Zeroizing::new(serde_json::to_vec(inv)?);
    let nonce = random_bytes::<24>();
    let key = Zeroizing::new(join_code_seal_key(code));
    let ct = XChaCha20Poly1305::new(key.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: AAD,
            },
        )
        .map_err(|_| crate::Error::internal("sealing the invitation failed"))?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(B64.encode(out))
}

fn unseal(code: &str, sealed: &str) -> Result<Invitation> {
    let bad = || Error::InvitationUnreadable;
    let bytes = B64.decode(sealed).map_err(|_| bad())?;
    if bytes.len() < 24 {
        return Err(bad().into());
    }
    let key = Zeroizing::new(join_code_seal_key(code));
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&bytes[..24]),
                Payload {
                    msg: &bytes[24..],
                    aad: AAD,
                },
            )
            .map_err(|_| bad())?,
    );
    Ok(serde_json::from_slice(&plain).map_err(|_| bad())?)
}

/// A new join code for another PC of this clinic (or this one, restored), valid for
/// `valid_minutes`. The code is shown once, to the admin; it opens the invitation.
pub fn invite(db: &Db, data_dir: &Path, valid_minutes: u32) -> Result<String> {
    Ok(invite_until(db, data_dir, valid_minutes)?.0)
}

/// `invite`, with when the code expires.
pub fn invite_until(db: &Db, data_dir: &Path, valid_minutes: u32) -> Result<(String, String)> {
    let l = db.read(link)?.ok_or(Error::NotConfigured)?;
    let t = l.transport()?;
    // Everything this PC has goes first, so the new PC finds the accounts its slots open.
    super::slots::publish(db)?;
    apply::push_all(db, &t)?;
    let code = loop {
        if let Some(c) = clinic_sync_proto::join_code_from_random(&random_bytes::<64>()) {
            break c;
        }
    };
    let slots = KeySlots::load(data_dir)?.export_for_peer()?;
    let key = db.key();
    let sealed = seal(
        &code,
        &Invitation {
            key: B64.encode(key.as_slice()),
            slots,
        },
    )?;
    let made = t.new_join_code(&NewJoinCode {
        code: join_code_auth(&code),
        sealed: Some(sealed),
        valid_minutes,
    })?;
    db.write(&actor(), |w| {
        w.record_event(
            "sync_invited",
            Table::SyncState,
            &l.device_id,
            Some(serde_json::json!({ "valid_minutes": valid_minutes })),
        )
    })?;
    Ok((code, made.expires_at))
}

/// Joins a PC that has no data yet: creates its database with the clinic's key and the
/// clinic's key slots, then downloads the clinic (`progress` as in `apply::download`). The
/// database and slot file are written like set-up's (a marker until both exist); a download
/// cut off after that resumes at the next `apply::download`.
pub fn join_new(
    dir: &Path,
    clock: Clock,
    server_url: &str,
    server_cert: &str,
    code: &str,
    device_name: &str,
    progress: &dyn Fn(i64, i64) -> bool,
) -> Result<(Db, Link)> {
    keys::clean_half_made_setup(dir)?;
    if keys::initialized(dir) {
        return Err(crate::session::Error::AlreadyInitialized.into());
    }
    let t = Transport::new(server_url, server_cert, None)?;
    let joined = t.join(&JoinRequest {
        code: join_code_auth(code),
        device_name: device_name.to_string(),
        device_code: None,
    })?;
    let inv = unseal(
        code,
        joined
            .sealed
            .as_deref()
            .ok_or(Error::InvitationUnreadable)?,
    )?;
    let raw = Zeroizing::new(
        B64.decode(&inv.key)
            .map_err(|_| Error::InvitationUnreadable)?,
    );
    if raw.len() != 32 {
        return Err(Error::InvitationUnreadable.into());
    }
    let mut key: DbKey = Zeroizing::new([0; 32]);
    key.copy_from_slice(&raw);
    let slots = KeySlots::from_peer(dir, &inv.slots)?;

    keys::begin_setup(dir)?;
    let made = (|| -> Result<Db> {
        let db = Db::create(dir, &key, &joined.device_code, clock)?;
        let recovery = slots.recovery_public_key();
        db.write_durable(&actor(), |w| {
            if let Some(public) = &recovery {
                Db::set_recovery_public_key(w, &db.device().id, public)?;
            }
            apply::insert_link(w, server_url, server_cert, &joined)
        })?;
        slots.save_new()?;
        Ok(db)
    })();
    let db = match made {
        Ok(db) => {
            keys::finish_setup(dir)?;
            db
        }
        Err(e) => {
            keys::clean_half_made_setup(dir)?;
            return Err(e);
        }
    };
    let link = apply::download(&db, progress)?;
    Ok((db, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_code_opens_an_invitation() {
        let inv = Invitation {
            key: "k".into(),
            slots: "s".into(),
        };
        let sealed = seal("AAAA-BBBB-CCCC-DDDD-EEEE", &inv).unwrap();
        assert_eq!(
            unseal("aaaa bbbb cccc dddd eeee", &sealed).unwrap().slots,
            "s"
        );
        assert!(unseal("AAAA-BBBB-CCCC-DDDD-EEEF", &sealed).is_err());
        // The server half of the code is not the seal key.
        assert!(unseal(&join_code_auth("AAAA-BBBB-CCCC-DDDD-EEEE"), &sealed).is_err());
    }
}
