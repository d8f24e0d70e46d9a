//! Staff across PCs. Every PC of a clinic shares one database key (a new PC gets it sealed in
//! its invitation, `join`), so an account's key slot made on one PC opens every PC's copy.
//! Sync carries the slots, each with its signed grant (`session::grants`), as rows of
//! `key_slots`, one row per grant, never rewritten (so no row, however it ranks, holds back
//! another, and no two PCs overwrite each other's):
//! - before a push, `publish` adds a row for each grant this PC holds that has none yet: an
//!   account's slot (a new account, a new password, a reset, new roles, re-enabling) or the
//!   grant that disabled it;
//! - after a pull, `adopt` takes into this PC's slot file, for each account, the greatest
//!   grant of its rows that this PC admits: signed by an administrator or the recovery key it
//!   trusts, or by the account itself changing only its password, and newer than what it
//!   holds.
//!
//! So a password change, a reset or a disabled account on one PC takes effect on every PC at
//! its next sync, and a row someone wrote with only a PC's folder and a staff password (which
//! open the database, not an administrator's slot) is never taken. The `staff` row's own
//! columns decide nothing here. Attempt counters stay each PC's own.

use rusqlite::OptionalExtension;

use super::{actor, apply, Table};
use crate::error::Result;
use crate::session::keyslots::{row_staff_id, shared_is_own, KeySlots};
use crate::store::Db;

/// Adds a `key_slots` row for each grant this PC holds that has none. Returns how many.
pub fn publish(db: &Db) -> Result<u32> {
    let shared = KeySlots::load(db.dir())?.shared_grants()?;
    db.write(&actor(), |w| {
        let mut n = 0;
        for g in &shared {
            let there: Option<i64> = w
                .conn()
                .prepare_cached("SELECT 1 FROM key_slots WHERE id = ?1")?
                .query_row([&g.row_id], |r| r.get(0))
                .optional()?;
            if there.is_none() {
                let cols: [(&str, &dyn rusqlite::ToSql); 2] =
                    [("public_key", &g.public_key), ("slot", &g.content)];
                w.insert_row(Table::KeySlots, &g.row_id, &cols)?;
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Takes into this PC's slot file each `key_slots` row whose grant it admits, until none is
/// left (a new administrator's grant comes before the grants they signed; each account ends
/// with the greatest it admits, whatever the order). A row newer than
/// what this PC holds that it does not admit (signed by no slot it trusts, or by a slot since
/// replaced) is kept as a `refused` conflict for an administrator. Returns how many it took.
pub fn adopt(db: &Db) -> Result<u32> {
    let mut rows = db.read(|c| {
        let mut st = c.prepare_cached("SELECT id, slot FROM key_slots ORDER BY id")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    // Administrators' grants before people's own changes: a grant an administrator signed
    // before changing their own password checks against the slot it was signed with.
    rows.sort_by_key(|(_, slot)| shared_is_own(slot));
    let (n, refused) = KeySlots::modify(db.dir(), |s| {
        let mut n = 0;
        loop {
            let mut changed = false;
            for (id, slot) in &rows {
                if s.adopt_shared(row_staff_id(id), slot)? {
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
            .filter(|(id, slot)| s.newer_than_held(row_staff_id(id), slot))
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
