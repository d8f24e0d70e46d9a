use std::sync::atomic::Ordering;

use crate::error::{Reason, Result};
use crate::session::{accounts, Cx};
use crate::store::Table as _;
use crate::sync::{
    self, apply, join, link, status, Conflict, ConnectInput, DeviceRow, DoubleBooking, Field,
    Invite, JoinProgress, Status,
};
use crate::validate;

pub fn sync_status(cx: &Cx) -> Result<Status> {
    cx.read(status::status)
}

/// One round now (the background task runs them anyway); a download cut off resumes.
pub fn sync_now(cx: &Cx) -> Result<Status> {
    let db = cx.db()?;
    let _round = cx.host().sync_round();
    let l = db.read(link)?.ok_or(sync::Error::NotConfigured)?;
    if !l.ready {
        apply::download(db, &|_, _| true)?;
    }
    sync::sync_once(db)?;
    cx.read(status::status)
}

fn checked(input: &ConnectInput) -> Result<ConnectInput> {
    let server_url = validate::required(Field::ServerUrl, &input.server_url, 300)?;
    if !server_url.starts_with("https://") {
        return Err(crate::Error::invalid(
            Field::ServerUrl,
            Reason::InvalidFormat,
        ));
    }
    let server_cert = validate::required(Field::ServerCert, &input.server_cert, 64 * 1024)?;
    if !server_cert.contains("-----BEGIN CERTIFICATE-----") {
        return Err(crate::Error::invalid(
            Field::ServerCert,
            Reason::InvalidFormat,
        ));
    }
    let join_code = validate::required(Field::JoinCode, &input.join_code, 64)?;
    if clinic_sync_proto::normalize_join_code(&join_code).len() != 20 {
        return Err(crate::Error::invalid(
            Field::JoinCode,
            Reason::InvalidFormat,
        ));
    }
    Ok(ConnectInput {
        server_url,
        server_cert,
        join_code,
        device_name: validate::required(Field::DeviceName, &input.device_name, 100)?,
    })
}

/// Connects this PC, with the data it has, to a clinic's server (the first PC of a clinic,
/// or one set up on its own).
pub fn sync_connect(cx: &Cx, input: ConnectInput) -> Result<Status> {
    let input = checked(&input)?;
    let db = cx.db()?;
    let _round = cx.host().sync_round();
    // Accounts from before grants get one now, signed by the admin connecting: other PCs
    // take their slots only with one. Once linked, rows may come from other PCs: no more.
    if cx.read(link)?.is_none() {
        accounts::grant_ungranted(cx)?;
    }
    apply::join(
        db,
        &input.server_url,
        &input.server_cert,
        &input.join_code,
        &input.device_name,
        &|_, _| true,
    )?;
    sync::sync_once(db)?;
    cx.read(status::status)
}

pub fn sync_invite(cx: &Cx, valid_minutes: u32) -> Result<Invite> {
    if !(5..=7 * 24 * 60).contains(&valid_minutes) {
        return Err(crate::Error::invalid(
            Field::ValidMinutes,
            Reason::OutOfRange,
        ));
    }
    let (code, expires_at) = join::invite_until(cx.db()?, cx.host().data_dir(), valid_minutes)?;
    Ok(Invite { code, expires_at })
}

pub fn sync_devices(cx: &Cx) -> Result<Vec<DeviceRow>> {
    let l = cx.read(link)?.ok_or(sync::Error::NotConfigured)?;
    let devices = l.transport()?.devices()?;
    let code_of: std::collections::HashMap<String, String> = devices
        .iter()
        .map(|d| (d.id.clone(), d.code.clone()))
        .collect();
    Ok(devices
        .into_iter()
        .map(|d| DeviceRow {
            invited_by: d
                .joined_via
                .as_ref()
                .map(|v| code_of.get(v).cloned().unwrap_or_else(|| v.clone())),
            this_pc: d.id == l.device_id,
            id: d.id,
            code: d.code,
            name: d.name,
            joined_at: d.joined_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
            last_seq: d.last_seq,
        })
        .collect())
}

/// Revokes a PC (lost, stolen, retired): it can neither push nor pull from now on.
pub fn sync_revoke(cx: &Cx, device_id: String) -> Result<Vec<DeviceRow>> {
    let l = cx.read(link)?.ok_or(sync::Error::NotConfigured)?;
    let d = l.transport()?.revoke(&device_id)?;
    cx.write(|w| {
        w.record_event(
            "sync_device_revoked",
            sync::Table::SyncState,
            &d.id,
            Some(serde_json::json!({ "code": d.code, "name": d.name })),
        )
    })?;
    sync_devices(cx)
}

pub fn sync_conflicts(cx: &Cx, open_only: bool) -> Result<Vec<Conflict>> {
    cx.read(|c| status::conflicts(c, open_only))
}

/// Marks a conflict resolved, with what was done about it (the version in place stays;
/// restoring the other is an edit like any other).
pub fn sync_conflict_resolve(cx: &Cx, id: String, note: String) -> Result<Conflict> {
    let note = validate::required(Field::Note, &note, 500)?;
    let by = cx.staff_id()?.to_string();
    cx.write(|w| {
        let resolved: Option<Option<String>> = w
            .conn()
            .prepare_cached("SELECT resolved_at FROM sync_conflicts WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        match resolved {
            None => return Err(sync::Table::SyncConflicts.not_found()),
            Some(Some(_)) => return Err(sync::Error::AlreadyResolved.into()),
            Some(None) => {}
        }
        let now = w.now_ts();
        w.update_row(
            sync::Table::SyncConflicts,
            &id,
            &[
                ("resolved_at", &now),
                ("resolved_by", &by),
                ("resolution", &note),
            ],
        )?;
        Ok(())
    })?;
    cx.read(|c| status::conflicts(c, false))?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| sync::Table::SyncConflicts.not_found())
}

pub fn sync_double_bookings(cx: &Cx) -> Result<Vec<DoubleBooking>> {
    cx.read(status::double_bookings)
}

/// A new PC with nothing on it joins its clinic: the download runs on a thread of its own;
/// the set-up screen polls `sync_join_progress`. Then people sign in as on any PC of the
/// clinic.
pub fn sync_join_start(cx: &Cx, input: ConnectInput) -> Result<()> {
    let input = checked(&input)?;
    let host = cx.host();
    if crate::session::keys::initialized(host.data_dir()) {
        return Err(crate::session::Error::AlreadyInitialized.into());
    }
    let task = host.join_task().clone();
    if task.running.swap(true, Ordering::SeqCst) {
        return Err(crate::Error::Busy);
    }
    task.done.store(0, Ordering::SeqCst);
    task.total.store(0, Ordering::SeqCst);
    *task.outcome.lock() = None;
    let (dir, clock) = (host.data_dir().to_path_buf(), host.clock().clone());
    std::thread::spawn(move || {
        let progress = |done: i64, total: i64| {
            task.done.store(done, Ordering::SeqCst);
            task.total.store(total, Ordering::SeqCst);
            true
        };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            join::join_new(
                &dir,
                clock,
                &input.server_url,
                &input.server_cert,
                &input.join_code,
                &input.device_name,
                &progress,
            )
            .map(drop)
        }));
        let outcome = match out {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(crate::ApiError::from_panic("joining the clinic")),
        };
        *task.outcome.lock() = Some(outcome);
        task.running.store(false, Ordering::SeqCst);
    });
    Ok(())
}

pub fn sync_join_progress(cx: &Cx) -> Result<JoinProgress> {
    let task = cx.host().join_task();
    let outcome = task.outcome.lock().clone();
    Ok(JoinProgress {
        running: task.running.load(Ordering::SeqCst),
        done: task.done.load(Ordering::SeqCst),
        total: task.total.load(Ordering::SeqCst),
        finished: matches!(outcome, Some(Ok(()))),
        error: outcome.and_then(|o| o.err()),
    })
}
