//! Staff across PCs. Every PC of a clinic shares one database key (a new PC gets it sealed in
//! its invitation, `join`), so an account's key slot made on one PC opens every PC's copy.
//! Sync carries the slots, each with its signed grant (`session::grants`), as rows of
//! `key_slots`:
//! - before a push, `publish` copies each account's grant from this PC's slot file into
//!   `key_slots` unless the row holds it already or holds one this PC would take: the slot
//!   (a new account, a new password, a reset, new roles, re-enabling) or the grant that
//!   disabled the account. A row this PC would not take (someone's forgery, however high it
//!   ranks) is overwritten, so no row can hold back a grant;
//! - after a pull, `adopt` takes each row's slot or disabling into this PC's slot file when
//!   this PC admits its grant: signed by an administrator or the recovery key it trusts, or
//!   by the account itself changing only its password, and newer than what it holds.
//!
//! So a password change, a reset or a disabled account on one PC takes effect on every PC at
//! its next sync, and a row someone wrote with only a PC's folder and a staff password (which
//! open the database, not an administrator's slot) is never taken. The `staff` row's own
//! columns decide nothing here. Attempt counters stay each PC's own.

use rusqlite::OptionalExtension;

use super::{actor, apply, Table};
use crate::error::Result;
use crate::session::keyslots::KeySlots;
use crate::store::Db;

/// Copies each account's grant into its `key_slots` row unless the row already holds it, or
/// one this PC would take (`KeySlots::settles`). Returns how many.
pub fn publish(db: &Db) -> Result<u32> {
    let slots = KeySlots::load(db.dir())?;
    let shared = slots.shared_grants()?;
    db.write(&actor(), |w| {
        let mut n = 0;
        for g in &shared {
            let id = &g.staff_id;
            let held: Option<String> = w
                .conn()
                .prepare_cached("SELECT slot FROM key_slots WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            let cols: [(&str, &dyn rusqlite::ToSql); 2] =
                [("public_key", &g.public_key), ("slot", &g.content)];
            match held {
                Some(h) if slots.settles(id, &h, &g.content) => continue,
                Some(_) => {
                    w.update_row(Table::KeySlots, id, &cols)?;
                }
                None => {
                    w.insert_row(Table::KeySlots, id, &cols)?;
                }
            }
            n += 1;
        }
        Ok(n)
    })
}

/// Takes into this PC's slot file each `key_slots` row whose grant it admits, until none is
/// left (a new administrator's grant comes before the grants they signed). A row newer than
/// what this PC holds that it does not admit (signed by no slot it trusts, or by a slot since
/// replaced) is kept as a `refused` conflict for an administrator. Returns how many it took.
pub fn adopt(db: &Db) -> Result<u32> {
    let rows = db.read(|c| {
        let mut st = c.prepare_cached("SELECT id, slot FROM key_slots ORDER BY id")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let (n, refused) = KeySlots::modify(db.dir(), |s| {
        let mut n = 0;
        loop {
            let mut changed = false;
            for (id, slot) in &rows {
                if s.adopt_shared(id, slot)? {
                    changed = true;
                    n += 1;
                }
            }
            if !changed {
                break;
            }
        }
        let refused: Vec<&String> = rows
            .iter()
            .filter(|(id, slot)| s.newer_than_held(id, slot))
            .map(|(id, _)| id)
            .collect();
        Ok((n, refused))
    })?;
    if !refused.is_empty() {
        db.write(&actor(), |w| {
            for id in refused {
                apply::refuse_account_change(w, id)?;
            }
            Ok(())
        })?;
    }
    Ok(n)
}
