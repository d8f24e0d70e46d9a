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
use crate::ids::random_bytes;
use crate::session::keyslots::{same_grant, KeySlots, SharedRow};
use crate::store::Db;

/// Writes a `key_slots` row for each grant this PC holds whose row is missing, or holds
/// another grant or none (someone rewrote it: every PC that holds the grant puts it back; the
/// same grant over a changed slot is left, so no two PCs rewrite each other's row). Returns
/// how many.
pub fn publish(db: &Db) -> Result<u32> {
    let shared = KeySlots::load(db.dir())?.shared_grants()?;
    db.write(&actor(), |w| {
        let mut n = 0;
        for g in &shared {
            let there: Option<String> = w
                .conn()
                .prepare_cached("SELECT slot FROM key_slots WHERE id = ?1")?
                .query_row([&g.row_id], |r| r.get(0))
                .optional()?;
            let cols: [(&str, &dyn rusqlite::ToSql); 2] =
                [("public_key", &g.public_key), ("slot", &g.content)];
            match there {
                Some(c) if c == g.content || same_grant(&c, &g.content) => continue,
                Some(_) => {
                    w.update_row(Table::KeySlots, &g.row_id, &cols)?;
                }
                None => {
                    w.insert_row(Table::KeySlots, &g.row_id, &cols)?;
                }
            }
            n += 1;
        }
        Ok(n)
    })
}

/// Signature checks one `adopt` makes at most, three quarters for others' grants and a
/// quarter for people's own changes: a flood of forged rows costs each round a bounded time,
/// can't crowd out either kind, and the rows past the bound are checked in the next rounds
/// (each round starts at a random row).
const CHECKS_PER_ROUND: usize = 2_000;

/// Refused rows recorded as conflicts at most per round.
const REFUSALS_PER_ROUND: usize = 500;

/// Takes into this PC's slot file, for each account, the greatest grant of its `key_slots`
/// rows that this PC admits (a new administrator's grant comes before the grants they signed:
/// it loops while it takes something). Only rows ranking above the grant held are checked,
/// within `CHECKS_PER_ROUND`; others' grants first, and a person's own change not while a
/// grant they signed waits unchecked (an administrator's grant signed before their own
/// password change checks against the slot it was signed with). A row checked and not taken
/// (signed by no slot this PC trusts, or by a slot since replaced) is kept as a `refused`
/// conflict for an administrator. Returns how many it took.
pub fn adopt(db: &Db) -> Result<u32> {
    let rows = db.read(|c| {
        let mut st = c.prepare_cached("SELECT id, slot FROM key_slots")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let rows: Vec<SharedRow> = rows
        .into_iter()
        .filter_map(|(id, content)| SharedRow::read(id, content))
        .collect();
    let (n, refused) = KeySlots::modify(db.dir(), |s| {
        let mut n = 0;
        let mut budgets = [CHECKS_PER_ROUND * 3 / 4, CHECKS_PER_ROUND / 4];
        let mut checked = std::collections::BTreeSet::new();
        'passes: loop {
            let mut unchecked_signers = std::collections::BTreeSet::new();
            for own in [false, true] {
                let waiting: Vec<&SharedRow> = rows
                    .iter()
                    .filter(|r| r.own == own && s.newer_than_held(r))
                    .collect();
                if waiting.is_empty() {
                    continue;
                }
                let start = u64::from_le_bytes(random_bytes()) as usize % waiting.len();
                let budget = &mut budgets[usize::from(own)];
                let mut changed = false;
                for r in waiting.iter().cycle().skip(start).take(waiting.len()) {
                    if !s.newer_than_held(r) {
                        continue;
                    }
                    if !s.worth_checking(r) {
                        checked.insert(r.row_id.clone());
                        continue;
                    }
                    if own && unchecked_signers.contains(&r.staff_id) {
                        continue;
                    }
                    if *budget < r.cost {
                        if own {
                            break 'passes;
                        }
                        unchecked_signers.insert(r.by.clone());
                        continue;
                    }
                    *budget -= r.cost;
                    checked.insert(r.row_id.clone());
                    if s.adopt_shared(&r.staff_id, &r.content)? {
                        changed = true;
                        n += 1;
                    }
                }
                if changed {
                    continue 'passes;
                }
            }
            break;
        }
        let refused: Vec<String> = rows
            .iter()
            .filter(|r| checked.contains(&r.row_id) && s.newer_than_held(r))
            .map(|r| r.row_id.clone())
            .take(REFUSALS_PER_ROUND)
            .collect();
        Ok((n, refused))
    })?;
    if !refused.is_empty() {
        db.write(&actor(), |w| {
            for id in &refused {
                apply::refuse_account_change(w, id)?;
            }
            Ok(())
        })?;
    }
    Ok(n)
}
