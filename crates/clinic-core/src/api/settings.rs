//! Clinic settings and the audit trail.

use crate::error::Result;
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

pub fn audit_list(cx: &Cx, filter: AuditFilter) -> Result<AuditPage> {
    cx.read(|c| audit::list(c, &filter))
}

pub fn audit_verify(cx: &Cx) -> Result<ChainStatus> {
    cx.read(audit::verify)
}
