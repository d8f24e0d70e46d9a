//! Clinic settings and the audit trail.

use crate::error::Result;
use crate::patients::Sections;
use crate::session::signin;
use crate::session::Cx;
use crate::settings::{self, Settings};
use crate::store::audit::{self, AuditFilter, AuditPage, ChainStatus};

pub fn settings_get(cx: &Cx) -> Result<Settings> {
    let code = cx.db()?.device().code.clone();
    cx.read(|c| settings::load(c, &code))
}

pub fn settings_update(cx: &Cx, input: Settings) -> Result<Settings> {
    let (clinic, policy) = cx.write(|w| {
        Ok((
            settings::save_clinic(w, input.clinic)?,
            settings::save_security(w, input.security)?,
        ))
    })?;
    signin::refresh_settings(cx, policy, clinic.tz())?;
    settings_get(cx)
}

pub fn clinic_logo(cx: &Cx) -> Result<Option<settings::logo::Logo>> {
    cx.read(settings::logo::get)
}

pub fn clinic_logo_set(cx: &Cx, base64: String) -> Result<settings::logo::Logo> {
    let logo = settings::logo::decode(&base64)?;
    cx.write(|w| settings::logo::set(w, logo))
}

pub fn clinic_logo_clear(cx: &Cx) -> Result<()> {
    cx.write(settings::logo::clear)
}

/// The trail, with patients' rows showing only the parts of a chart the reader may see.
pub fn audit_list(cx: &Cx, filter: AuditFilter) -> Result<AuditPage> {
    let seen = Sections::for_roles(cx.roles()?);
    let mut page = cx.read(|c| audit::list(c, &filter))?;
    let patients = crate::store::Table::name(crate::patients::Table::Patients);
    for e in page.entries.iter_mut().filter(|e| e.entity == patients) {
        for image in [&mut e.before, &mut e.after].into_iter().flatten() {
            *image = seen.mask_image(image);
        }
    }
    Ok(page)
}

/// The chain, and (with a sync server) the heads this PC pushed: a trail cut or rewritten
/// after a push no longer matches what the server kept.
pub fn audit_verify(cx: &Cx) -> Result<ChainStatus> {
    let (mut status, link) = cx.read(|c| Ok((audit::verify(c)?, crate::sync::link(c)?)))?;
    if let Some(l) = link {
        if let Ok(heads) = l.transport().and_then(|t| t.audit_heads(&l.device_id)) {
            let heads: Vec<(i64, String)> = heads.into_iter().map(|h| (h.seq, h.hash)).collect();
            status.anchors_checked = heads.len() as i64;
            status.anchor_broken_seq = cx.read(|c| audit::check_anchors(c, &heads))?;
        }
    }
    Ok(status)
}
