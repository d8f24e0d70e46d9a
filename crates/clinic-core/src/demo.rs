//! The demo clinic `make run` opens: set up through the same API as a real one.

use std::path::Path;

use crate::app::{LoginStep, SetupInput};
use crate::error::{Error, Result};
use crate::perm::Role;
use crate::settings::{ClinicProfile, Language, Settings};
use crate::staff::NewStaff;
use crate::Core;

/// (username, password, role) of every demo account.
pub const ACCOUNTS: &[(&str, &str, Role, &str)] = &[
    ("admin", "clinic-admin-demo", Role::Admin, "Anna Petrova"),
    ("doctor", "consult-room-demo", Role::Doctor, "Dr. Somchai Wongsakul"),
    ("nurse", "triage-desk-demo", Role::Nurse, "Maria Ivanova"),
    ("reception", "front-desk-demo", Role::Receptionist, "Nok Siriporn"),
    ("pharmacist", "dispensary-demo", Role::Pharmacist, "Pavel Smirnov"),
    ("cashier", "cash-drawer-demo", Role::Cashier, "Lena Kim"),
];

pub fn create(dir: &Path) -> Result<Vec<(String, String, String)>> {
    let core = Core::new(dir);
    let (admin_user, admin_pw, _, admin_name) = ACCOUNTS[0];
    core.setup_create(SetupInput {
        clinic: ClinicProfile {
            name: "Riverside Family Clinic".into(),
            address: "99 Charoen Krung Rd, Bang Rak, Bangkok 10500".into(),
            phone: "+66 2 234 5678".into(),
            currency: "THB".into(),
            time_zone: "Asia/Bangkok".into(),
            default_language: Language::En,
        },
        admin_username: admin_user.into(),
        admin_full_name: admin_name.into(),
        admin_email: "admin@riverside.example".into(),
        admin_phone: "+66 81 000 0001".into(),
        admin_password: admin_pw.into(),
    })?;
    // The demo is for clicking around without an authenticator app: no role needs 2FA.
    // A real set-up keeps the default (administrators and doctors).
    let policy_off = |s: Settings| Settings { security: crate::settings::SecurityPolicy { totp_required_roles: vec![], ..s.security }, ..s };
    let done = |step: LoginStep| match step {
        LoginStep::Done { .. } => Ok(()),
        _ => Err(Error::internal("demo sign-in needs a second factor")),
    };
    // Setup's policy needs TOTP for admins; sign in once through the enrolment with a
    // code computed here, then switch the policy off.
    match core.login(admin_user, admin_pw)? {
        LoginStep::EnrolTotp { secret_base32, .. } => {
            let now = chrono::Utc::now().timestamp() as u64;
            core.login_totp(&crate::auth::totp_code(&secret_base32, now)?)?;
        }
        other => done(other)?,
    }
    core.settings_update(policy_off(core.settings_get()?))?;
    core.staff_reset_totp(&core.session_info_cmd()?.staff_id)?;
    for (user, pw, role, name) in &ACCOUNTS[1..] {
        let initial = format!("{pw}-first");
        core.staff_create(NewStaff {
            username: (*user).into(),
            full_name: (*name).into(),
            email: format!("{user}@riverside.example"),
            phone: String::new(),
            roles: vec![*role],
            language: None,
            initial_password: initial.clone(),
        })?;
        core.logout()?;
        done(core.login(user, &initial)?)?;
        core.change_password(&initial, pw)?;
        core.logout()?;
        done(core.login(admin_user, admin_pw)?)?;
    }
    core.logout()?;
    Ok(ACCOUNTS.iter().map(|(u, p, r, _)| (u.to_string(), p.to_string(), r.as_str().to_string())).collect())
}
