//! Every command against every role: allowed exactly when the permission table says so.

use clinic_core::app::SetActive;
use clinic_core::audit::AuditFilter;
use clinic_core::perm::{allowed, Command, Role};
use clinic_core::settings::Language;
use clinic_core::staff::StaffUpdate;
use clinic_core::{Core, Error, ErrorCode};

use crate::support::*;

const PW: &str = "Matrix-pass-2026";
const NEW_PW: &str = "Matrix-pass-2027";

/// Calls `cmd` with harmless arguments. The match is exhaustive, so a new command
/// does not compile until this test knows how to call it.
fn call(core: &Core, cmd: Command, pw: &str) -> Result<(), Error> {
    let nobody = "00000000-0000-7000-8000-000000000000";
    match cmd {
        Command::app_info => core.app_info().map(drop),
        Command::setup_status => core.setup_status().map(drop),
        Command::setup_create => core
            .setup_create(clinic_core::app::SetupInput {
                clinic: clinic_profile("Another"),
                admin_username: "x".into(),
                admin_full_name: "x".into(),
                admin_email: String::new(),
                admin_phone: String::new(),
                admin_password: "x".into(),
            })
            .map(drop),
        Command::recovery_sheet_save => core.recovery_sheet_pdf("0000-0000").map(drop),
        Command::login => core.login("nobody-here", "Wrong-password-1").map(drop),
        Command::login_totp => core.login_totp("000000").map(drop),
        Command::recover_account => core.recover_account("0000-0000", "nobody", "Wrong-password-1").map(drop),
        Command::session_info => core.session_info_cmd().map(drop),
        Command::session_touch => core.session_touch(),
        Command::logout => core.logout(),
        Command::lock => core.lock(),
        Command::unlock => core.unlock(pw).map(drop),
        Command::change_password => core.change_password(pw, "short").map(drop),
        Command::set_language => core.set_language(Language::En).map(drop),
        Command::staff_list => core.staff_list().map(drop),
        Command::staff_get => core.staff_get(nobody).map(drop),
        Command::staff_create => core.staff_create(new_staff("x", vec![], "x")).map(drop),
        Command::staff_update => core
            .staff_update(StaffUpdate {
                id: nobody.into(),
                full_name: "x".into(),
                email: String::new(),
                phone: String::new(),
                roles: vec![Role::Cashier],
                language: Language::En,
            })
            .map(drop),
        Command::staff_set_active => {
            core.staff_set_active(SetActive { id: nobody.into(), active: false, initial_password: None }).map(drop)
        }
        Command::staff_reset_password => core.staff_reset_password(nobody, "x").map(drop),
        Command::staff_reset_totp => core.staff_reset_totp(nobody).map(drop),
        Command::settings_get => core.settings_get().map(drop),
        Command::settings_update => {
            // Needs a readable current value; a role without it gets Forbidden first.
            let current = core.settings_get();
            match current {
                Ok(s) => core.settings_update(s).map(drop),
                Err(_) => core.settings_update(placeholder_settings()).map(drop),
            }
        }
        Command::audit_list => core.audit_list(AuditFilter::default()).map(drop),
        Command::audit_verify => core.audit_verify().map(drop),
    }
}

fn placeholder_settings() -> clinic_core::settings::Settings {
    clinic_core::settings::Settings {
        clinic: clinic_profile("x"),
        security: Default::default(),
        device_code: "X".into(),
    }
}

#[test]
fn every_command_against_every_role_follows_the_table() {
    let c = new_clinic();
    let admin = admin_core(&c);
    for role in Role::ALL {
        admin.staff_create(new_staff(&format!("m-{}", role.as_str()), vec![role], PW)).unwrap();
    }
    admin.logout().unwrap();

    let mut checked = 0;
    for role in Role::ALL {
        let core = c.core();
        let user = format!("m-{}", role.as_str());
        login_any(&c, &core, &user, PW);
        core.change_password(PW, NEW_PW).unwrap();
        // `logout` ends the session and `lock` locks it: run them last.
        let mut order: Vec<Command> = Command::ALL.to_vec();
        order.sort_by_key(|c| match c {
            Command::lock => 1,
            Command::logout => 2,
            _ => 0,
        });
        for &cmd in &order {
            let result = call(&core, cmd, NEW_PW);
            let expected = allowed(&[role], cmd.permission());
            let forbidden = matches!(&result, Err(e) if e.code() == ErrorCode::Forbidden);
            assert_eq!(
                !forbidden,
                expected,
                "{:?} calling {} (needs {:?}) got {:?}",
                role,
                cmd.name(),
                cmd.permission(),
                result.as_ref().err().map(|e| e.code())
            );
            assert!(
                !matches!(&result, Err(e) if matches!(e.code(), ErrorCode::NotAuthenticated | ErrorCode::SessionLocked | ErrorCode::Internal)),
                "{role:?} {}: {:?}",
                cmd.name(),
                result
            );
            if cmd == Command::lock {
                core.unlock(NEW_PW).unwrap();
            }
            checked += 1;
        }
    }
    assert_eq!(checked, Role::ALL.len() * Command::ALL.len());
}

#[test]
fn without_a_session_only_public_commands_answer() {
    let c = new_clinic();
    let core = c.core();
    for &cmd in Command::ALL {
        let r = call(&core, cmd, PW);
        let public = cmd.permission() == clinic_core::perm::Permission::Public;
        let refused = matches!(&r, Err(e) if e.code() == ErrorCode::NotAuthenticated);
        // logout without a session is a harmless no-op.
        if cmd == Command::logout {
            assert!(r.is_ok());
            continue;
        }
        assert_eq!(refused, !public, "{} without a session: {:?}", cmd.name(), r.err().map(|e| e.code()));
    }
}
