//! Staff across PCs. Every PC of a clinic shares one database key (a new PC gets it sealed in
//! its invitation, `join`), so an account's key slot made on one PC opens every PC's copy.
//! Sync carries the slots as rows of `key_slots`:
//! - before a push, `publish` copies each active account's slot from this PC's slot file
//!   into `key_slots` when the account row names that slot's public key and the row holds
//!   another (a new account, a new password, a reset, re-enabling);
//! - after a pull, `adopt` puts each `key_slots` slot into this PC's slot file when the
//!   account row names it, and removes the slots of accounts disabled anywhere.
//!
//! So a password change, a reset or a disabled account on one PC takes effect on every PC at
//! its next sync. A row and an account that disagree (one of them not yet arrived) wait for
//! the next round. Attempt counters stay each PC's own.

use rusqlite::OptionalExtension;

use super::{actor, Table};
use crate::error::Result;
use crate::session::keyslots::KeySlots;
use crate::store::Db;

/// Copies changed slots of active accounts into `key_slots`. Returns how many.
pub fn publish(db: &Db) -> Result<u32> {
    let shared = KeySlots::load(db.dir())?.shared_staff_slots()?;
    db.write(&actor(), |w| {
        let mut n = 0;
        for (id, public, slot) in &shared {
            let named: Option<(String, bool)> = w
                .conn()
                .prepare_cached("SELECT slot_public_key, active FROM staff WHERE id = ?1")?
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        r.get(1)?,
                    ))
                })
                .optional()?;
            if named != Some((public.clone(), true)) {
                continue;
            }
            let held: Option<String> = w
                .conn()
                .prepare_cached("SELECT public_key FROM key_slots WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            match held {
                Some(p) if p == *public => continue,
                Some(_) => {
                    w.update_row(
                        Table::KeySlots,
                        id,
                        &[("public_key", public), ("slot", slot)],
                    )?;
                }
                None => {
                    w.insert_row(
                        Table::KeySlots,
                        id,
                        &[("public_key", public), ("slot", slot)],
                    )?;
                }
            }
            n += 1;
        }
        Ok(n)
    })
}

/// Brings this PC's slot file in line with `key_slots` and the accounts. Returns the slots
/// put in or removed.
pub fn adopt(db: &Db) -> Result<u32> {
    let (shared, disabled) = db.read(|c| {
        let mut st = c.prepare_cached(
            "SELECT k.id, k.public_key, k.slot FROM key_slots k
             JOIN staff s ON s.id = k.id
             WHERE s.active = 1 AND s.slot_public_key = k.public_key",
        )?;
        let shared = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut st = c.prepare_cached("SELECT id FROM staff WHERE active = 0")?;
        let disabled = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((shared, disabled))
    })?;
    KeySlots::modify(db.dir(), |s| {
        let mut n = 0;
        for (id, public, slot) in &shared {
            if s.staff_public_key(id) != Some(public.as_str()) {
                s.put_shared_staff_slot(id, public, slot)?;
                n += 1;
            }
        }
        for id in &disabled {
            if s.staff_public_key(id).is_some() {
                s.remove_staff(id);
                n += 1;
            }
        }
        Ok(n)
    })
}
