//! What the window shows of sync: the header's state, the admin's devices and conflicts,
//! reception's double bookings, a new PC's download.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{link, waiting};
use crate::error::Result;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ConnectInput {
    /// `https://host:port` of the clinic's server.
    pub server_url: String,
    /// The server's certificate (PEM), which this PC will trust and nothing else.
    pub server_cert: String,
    pub join_code: String,
    /// What this PC is called in the device list ("Front desk").
    pub device_name: String,
}

/// The header's sync state.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct Status {
    /// Connected to a server at all (without one, sync shows nothing).
    pub linked: bool,
    /// The clinic is downloaded and sync runs.
    pub ready: bool,
    pub server_url: Option<String>,
    pub clinic_name: Option<String>,
    pub device_code: Option<String>,
    pub desk: Option<i64>,
    pub last_sync_at: Option<String>,
    /// Changes made here the server does not have yet.
    pub waiting: i64,
    /// The last round's error (the window says it in words); none after a good round.
    pub last_error: Option<crate::ApiError>,
    pub open_conflicts: i64,
    pub double_bookings: i64,
    pub downloaded: i64,
    pub download_total: i64,
    /// Other PCs' changes held back: stamped more than three days ahead of this PC's clock
    /// (this PC's date may be wrong). Applied once the clock gets near them.
    pub held: i64,
    /// This PC's changes the server refused: stamped more than three days ahead of the
    /// server's clock (this PC's date was wrong when they were made), and when it last said so.
    pub own_refused: i64,
    pub own_refused_at: Option<String>,
    /// Files made here not yet on the server, and files named here not yet fetched.
    pub files_to_upload: i64,
    pub files_to_fetch: i64,
}

pub fn status(c: &Connection) -> Result<Status> {
    let Some(l) = link(c)? else {
        return Ok(Status {
            linked: false,
            ready: false,
            server_url: None,
            clinic_name: None,
            device_code: None,
            desk: None,
            last_sync_at: None,
            waiting: 0,
            last_error: None,
            open_conflicts: 0,
            double_bookings: 0,
            downloaded: 0,
            download_total: 0,
            held: 0,
            own_refused: 0,
            own_refused_at: None,
            files_to_upload: 0,
            files_to_fetch: 0,
        });
    };
    let count =
        |sql: &str| -> Result<i64> { Ok(c.prepare_cached(sql)?.query_row([], |r| r.get(0))?) };
    let (own_refused, own_refused_at): (i64, Option<String>) = c
        .prepare_cached("SELECT own_refused, own_refused_at FROM sync_state")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let open = |kind: &str| -> Result<i64> {
        Ok(c.prepare_cached(
            "SELECT count(*) FROM sync_conflicts WHERE resolved_at IS NULL AND (?1 = '' OR kind = ?1)",
        )?
        .query_row([kind], |r| r.get(0))?)
    };
    let desk: Option<i64> = crate::store::desk_number(c)?;
    Ok(Status {
        linked: true,
        ready: l.ready,
        server_url: Some(l.server_url.clone()),
        clinic_name: Some(l.clinic_name.clone()),
        device_code: Some(l.device_code.clone()),
        desk,
        last_sync_at: l.last_sync_at.clone(),
        waiting: waiting(c)?,
        // Kept as an `ApiError` in JSON; anything else is still an error, never "fine".
        last_error: l.last_error.as_deref().map(|e| {
            serde_json::from_str(e)
                .unwrap_or_else(|_| crate::Error::Internal(format!("sync: {e}")).into())
        }),
        open_conflicts: open("")?,
        double_bookings: open("double_booking")?,
        downloaded: l.snapshot_done,
        download_total: l.snapshot_total,
        held: count("SELECT count(*) FROM sync_held")?,
        own_refused,
        own_refused_at,
        files_to_upload: count("SELECT count(*) FROM blobs WHERE uploaded_at IS NULL")?,
        files_to_fetch: count(
            "SELECT count(DISTINCT a.sha256) FROM attachments a
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a.sha256)",
        )?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct Invite {
    /// Shown once, to the admin, to type on the new PC.
    pub code: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct DeviceRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub joined_at: String,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Changes the server holds from it.
    pub last_seq: i64,
    /// This PC.
    pub this_pc: bool,
    /// The code of the PC whose join code it used (none for the clinic's first PC): revoking
    /// a lost PC leaves the PCs it let in, so an administrator checks these too.
    pub invited_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The same record changed on two PCs while apart: the later version is in place.
    Concurrent,
    /// A version this database's rules refused (a duplicate username, a signed note).
    Refused,
    /// One slot booked on two PCs while apart.
    DoubleBooking,
    /// Two PCs together took more of a batch than there was.
    StockShort,
    /// One invoice paid at two desks while they were apart, beyond its total.
    Overpaid,
    /// One prescription dispensed on two PCs while apart, beyond what was prescribed.
    OverDispensed,
}
crate::text_column!(ConflictKind);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct Conflict {
    pub id: String,
    pub kind: ConflictKind,
    pub entity: String,
    pub entity_id: String,
    pub detected_at: String,
    /// The version kept aside (JSON of the row); hidden for accounts and key slots.
    pub kept_aside: Option<String>,
    pub detail: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

/// Entities whose set-aside versions hold secrets: the list says only that there was one.
const SECRET: &[&str] = &["staff", "key_slots"];

pub fn conflicts(c: &Connection, open_only: bool) -> Result<Vec<Conflict>> {
    let mut st = c.prepare_cached(
        "SELECT id, kind, entity, entity_id, detected_at, loser_after, detail, resolved_at,
                coalesce((SELECT full_name FROM staff s WHERE s.id = k.resolved_by), k.resolved_by), resolution
         FROM sync_conflicts k WHERE (?1 = 0 OR resolved_at IS NULL)
         ORDER BY detected_at DESC, id LIMIT 500",
    )?;
    let rows = st
        .query_map([open_only as i64], |r| {
            let entity: String = r.get(2)?;
            let aside: Option<String> = r.get(5)?;
            Ok(Conflict {
                id: r.get(0)?,
                kind: r.get(1)?,
                kept_aside: aside.filter(|_| !SECRET.contains(&entity.as_str())),
                entity,
                entity_id: r.get(3)?,
                detected_at: r.get(4)?,
                detail: r.get(6)?,
                resolved_at: r.get(7)?,
                resolved_by: r.get(8)?,
                resolution: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A pair of appointments for one slot, made on two PCs while apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct DoubleBooking {
    pub conflict_id: String,
    pub starts_at: String,
    pub doctor: String,
    pub first_appointment: String,
    pub first_patient: String,
    pub second_appointment: String,
    pub second_patient: String,
    pub detected_at: String,
}

pub fn double_bookings(c: &Connection) -> Result<Vec<DoubleBooking>> {
    let mut st = c.prepare_cached(
        "SELECT k.id, a.starts_at, d.full_name, a.id, pa.given_name || ' ' || pa.family_name,
                b.id, pb.given_name || ' ' || pb.family_name, k.detected_at
         FROM sync_conflicts k
         JOIN appointments a ON a.id = k.entity_id
         JOIN appointments b ON b.id = k.detail
         JOIN doctors d ON d.id = a.doctor_id
         JOIN patients pa ON pa.id = a.patient_id
         JOIN patients pb ON pb.id = b.patient_id
         WHERE k.kind = 'double_booking' AND k.resolved_at IS NULL
         ORDER BY a.starts_at",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(DoubleBooking {
                conflict_id: r.get(0)?,
                starts_at: r.get(1)?,
                doctor: r.get(2)?,
                first_appointment: r.get(3)?,
                first_patient: r.get(4)?,
                second_appointment: r.get(5)?,
                second_patient: r.get(6)?,
                detected_at: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A new PC's download, as the set-up screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct JoinProgress {
    pub running: bool,
    pub done: i64,
    pub total: i64,
    /// Finished well: sign in with your usual password.
    pub finished: bool,
    pub error: Option<crate::ApiError>,
}
