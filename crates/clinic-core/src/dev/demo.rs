//! The demo clinic `make run` opens: set up through the same API as a real one.

use std::path::Path;

use super::generate;
use crate::error::{Error, Result};
use crate::perm::Role;
use crate::session::{LoginStep, SetupInput};
use crate::settings::{ClinicProfile, Language, Settings};
use crate::staff::NewStaff;
use crate::store::Actor;
use crate::Core;

/// Doctors (the demo `doctor` account signs in as the first), patients and appointments.
/// The doctors and their hours are saved through the commands; patients and appointments,
/// up to a million, in batches through the write path.
fn populate(core: &Core, size: Size, progress: &mut impl FnMut(&str)) -> Result<()> {
    let clinic = core.settings_get()?.clinic;
    let tz = clinic.tz();
    let doctor_staff = core
        .staff_accounts()?
        .into_iter()
        .find(|s| s.username == ACCOUNTS[1].0)
        .map(|s| s.id);
    let doctors = generate::doctors(core, size.doctors, &clinic.currency, doctor_staff)?;
    progress(&format!("{} doctors with weekly hours", doctors.len()));
    let db = core.dev_db()?;
    let actor = Actor {
        id: "demo".into(),
        name: "Demo data".into(),
    };
    let total = size.patients;
    let ids = generate::patients(&db, &actor, total, 42, |done| {
        if done % 10_000 == 0 || done == total {
            progress(&format!("patients: {done} / {total}"));
        }
    })?;
    let from = db.now() - chrono::Duration::days(2);
    let made = generate::appointments(
        &db,
        &actor,
        &doctors,
        &ids,
        from,
        size.days,
        70,
        size.max_appointments,
        tz,
        42,
        |n| {
            progress(&format!("appointments: {n}"));
        },
    )?;
    progress(&format!("{made} appointments over {} days", size.days));
    Ok(())
}

/// (username, password, role) of every demo account.
pub const ACCOUNTS: &[(&str, &str, Role, &str)] = &[
    ("admin", "clinic-admin-demo", Role::Admin, "Anna Petrova"),
    (
        "doctor",
        "consult-room-demo",
        Role::Doctor,
        "Dr. Somchai Wongsakul",
    ),
    ("nurse", "triage-desk-demo", Role::Nurse, "Maria Ivanova"),
    (
        "reception",
        "front-desk-demo",
        Role::Receptionist,
        "Nok Siriporn",
    ),
    (
        "pharmacist",
        "dispensary-demo",
        Role::Pharmacist,
        "Pavel Smirnov",
    ),
    ("cashier", "cash-drawer-demo", Role::Cashier, "Lena Kim"),
];

/// How much generated data a demo clinic gets.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub doctors: usize,
    pub patients: u64,
    /// Days of appointments, starting two days ago.
    pub days: u32,
    /// Stop after this many appointments.
    pub max_appointments: u64,
}

/// What `make run` opens: 5 doctors, 2,000 patients, a week of appointments.
pub const DEMO: Size = Size {
    doctors: 5,
    patients: 2000,
    days: 7,
    max_appointments: u64::MAX,
};

pub fn create(dir: &Path) -> Result<Vec<(String, String, String)>> {
    create_sized(dir, DEMO, |_| {})
}

/// A demo clinic of the given size; `progress` gets a line per step.
pub fn create_sized(
    dir: &Path,
    size: Size,
    mut progress: impl FnMut(&str),
) -> Result<Vec<(String, String, String)>> {
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
            paper: Default::default(),
        },
        admin_username: admin_user.into(),
        admin_full_name: admin_name.into(),
        admin_email: "admin@riverside.example".into(),
        admin_phone: "+66 81 000 0001".into(),
        admin_password: admin_pw.into(),
    })?;
    // The demo is for clicking around without an authenticator app: no role needs 2FA.
    // A real set-up keeps the default (administrators and doctors).
    let policy_off = |s: Settings| Settings {
        security: crate::settings::SecurityPolicy {
            totp_required_roles: vec![],
            ..s.security
        },
        ..s
    };
    let done = |step: LoginStep| match step {
        LoginStep::Done { .. } => Ok(()),
        _ => Err(Error::internal("demo sign-in needs a second factor")),
    };
    // Setup's policy needs TOTP for admins; sign in once through the enrolment with a
    // code computed here, then switch the policy off.
    match core.login(admin_user.into(), admin_pw.into())? {
        LoginStep::EnrolTotp { secret_base32, .. } => {
            let now = chrono::Utc::now().timestamp() as u64;
            core.login_totp(crate::session::auth::totp_code(&secret_base32, now)?)?;
        }
        other => done(other)?,
    }
    core.settings_update(policy_off(core.settings_get()?))?;
    core.staff_reset_totp(core.session_info()?.staff_id)?;
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
        done(core.login((*user).into(), initial.clone())?)?;
        core.change_password(initial, (*pw).into())?;
        core.logout()?;
        done(core.login(admin_user.into(), admin_pw.into())?)?;
    }
    progress("accounts created");
    populate(&core, size, &mut progress)?;
    core.logout()?;
    Ok(ACCOUNTS
        .iter()
        .map(|(u, p, r, _)| (u.to_string(), p.to_string(), r.as_str().to_string()))
        .collect())
}
