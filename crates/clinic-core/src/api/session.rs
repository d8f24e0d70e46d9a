//! First run, sign-in and one's own session: all of it is the session module's.

use crate::error::Result;
use crate::session::Cx;
use crate::session::{
    keys, signin, AppInfo, LoginDone, LoginStep, RecoveryKey, RekeyProgress, RekeyReport,
    SessionInfo, SetupInput, SetupResult,
};
use crate::settings::Language;

pub fn app_info(cx: &Cx) -> Result<AppInfo> {
    signin::app_info(cx)
}

pub fn setup_status(cx: &Cx) -> Result<bool> {
    signin::setup_status(cx)
}

pub fn setup_create(cx: &Cx, input: SetupInput) -> Result<SetupResult> {
    signin::setup_create(cx, input)
}

pub fn login(cx: &Cx, username: String, password: String) -> Result<LoginStep> {
    signin::login(cx, &username, &password)
}

pub fn login_totp(cx: &Cx, code: String) -> Result<LoginDone> {
    signin::login_totp(cx, &code)
}

pub fn recover_account(
    cx: &Cx,
    recovery_key: String,
    username: String,
    new_password: String,
) -> Result<()> {
    signin::recover_account(cx, &recovery_key, &username, &new_password)
}

pub fn session_info(cx: &Cx) -> Result<SessionInfo> {
    signin::session_info(cx)
}

pub fn session_touch(cx: &Cx) -> Result<()> {
    signin::session_touch(cx)
}

pub fn logout(cx: &Cx) -> Result<()> {
    signin::logout(cx)
}

pub fn lock(cx: &Cx) -> Result<()> {
    signin::lock(cx)
}

pub fn unlock(cx: &Cx, password: String) -> Result<SessionInfo> {
    signin::unlock(cx, &password)
}

pub fn change_password(cx: &Cx, old_password: String, new_password: String) -> Result<SessionInfo> {
    signin::change_password(cx, &old_password, &new_password)
}

pub fn set_language(cx: &Cx, language: Language) -> Result<SessionInfo> {
    signin::set_language(cx, language)
}

pub fn recovery_key_rotate(cx: &Cx) -> Result<RecoveryKey> {
    keys::rotate_recovery_key(cx)
}

pub fn database_rekey(cx: &Cx) -> Result<RekeyReport> {
    keys::rekey(cx)
}

pub fn database_rekey_progress(cx: &Cx) -> Result<RekeyProgress> {
    keys::rekey_progress(cx)
}
