//! Every command against every role: allowed exactly when the permission table says so.
//! The commands are called through `Core::call_with_defaults`, generated from the command
//! table, so a new command is in the matrix as soon as it is in the table.

use clinic_core::perm::{allowed, Command, Role};
use clinic_core::Error;

use crate::support::*;

const PW: &str = "Matrix-pass-2026";
const NEW_PW: &str = "Matrix-pass-2027";

#[test]
fn every_command_against_every_role_follows_the_table() {
    let c = new_clinic();
    let admin = admin_core(&c);
    for role in Role::ALL {
        admin
            .staff_create(new_staff(&format!("m-{}", role.as_str()), vec![role], PW))
            .unwrap();
    }
    admin.logout().unwrap();

    let mut checked = 0;
    for role in Role::ALL {
        let core = c.core();
        let user = format!("m-{}", role.as_str());
        login_any(&c, &core, &user, PW);
        core.change_password(PW.into(), NEW_PW.into()).unwrap();
        // `logout` ends the session and `lock` locks it: run them last.
        let mut order: Vec<Command> = Command::ALL.to_vec();
        order.sort_by_key(|c| match c {
            Command::lock => 1,
            Command::logout => 2,
            _ => 0,
        });
        for &cmd in &order {
            let result: Result<(), Error> = core.call_with_defaults(cmd);
            let expected = allowed(&[role], cmd.permission());
            let forbidden = matches!(&result, Err(e) if e.code() == "forbidden");
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
                !matches!(&result, Err(e) if matches!(e.code().as_str(), "not_authenticated" | "session_locked" | "internal")),
                "{role:?} {}: {:?}",
                cmd.name(),
                result
            );
            if cmd == Command::lock {
                core.unlock(NEW_PW.into()).unwrap();
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
        let r = core.call_with_defaults(cmd);
        if cmd == Command::logout {
            assert!(r.is_ok(), "logout without a session is a harmless no-op");
        }
        let public = cmd.permission() == clinic_core::perm::Permission::Public;
        let refused = matches!(&r, Err(e) if e.code() == "not_authenticated");
        assert_eq!(
            refused,
            !public,
            "{} without a session: {:?}",
            cmd.name(),
            r.err().map(|e| e.code())
        );
    }
}
