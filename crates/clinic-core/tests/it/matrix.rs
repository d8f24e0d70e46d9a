//! Every command against every role: allowed exactly when the permission table says so.
//! The commands are called through `Core::call_with_defaults`, generated from the command
//! table, so a new command is in the matrix as soon as it is in the table.

use clinic_core::patients::{Allergy, PatientInput, RegisterOutcome, Severity};
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

// ---------------------------------------------------------------------------------
// Not only which commands a role may call: which fields of a chart it gets back.

pub fn full_patient() -> PatientInput {
    let mut p = crate::reception::patient("Petra", "Parts", "1970-07-07");
    p.blood_group = "O+".into();
    p.allergies = vec![Allergy {
        substance: "Penicillin".into(),
        reaction: "rash".into(),
        severity: Severity::Severe,
    }];
    p.current_medications = "Metformin 500 mg".into();
    p.chronic_conditions = "Diabetes".into();
    p.medical_history = "Appendectomy 1990".into();
    p.notes = "Prefers mornings".into();
    p
}

#[test]
fn each_role_gets_back_the_fields_of_a_chart_it_may_see() {
    let c = new_clinic();
    let admin = admin_core(&c);
    for role in Role::ALL {
        admin
            .staff_create(new_staff(
                &format!("r-{}", role.as_str()),
                vec![role],
                "Role-initial-pass-1",
            ))
            .unwrap();
    }
    admin.logout().unwrap();
    let doctor = c.core();
    let dr_totp = login_any(&c, &doctor, "r-doctor", "Role-initial-pass-1");
    doctor
        .change_password("Role-initial-pass-1".into(), "Role-second-pass-2".into())
        .unwrap();
    let id = match doctor.patient_register(full_patient(), true).unwrap() {
        RegisterOutcome::Registered { patient } => patient.id,
        other => panic!("{other:?}"),
    };
    doctor.logout().unwrap();
    // (allergies and blood group, current medications, history/conditions/notes)
    let expected = [
        (Role::Admin, (true, false, false)),
        (Role::Doctor, (true, true, true)),
        (Role::Nurse, (true, true, true)),
        (Role::Receptionist, (true, false, false)),
        (Role::Pharmacist, (true, true, false)),
        (Role::Cashier, (false, false, false)),
    ];
    for (role, (allergies, meds, clinical)) in expected {
        let core = match role {
            Role::Admin => admin_core(&c),
            Role::Doctor => {
                let core = c.core();
                login_with_totp(&c, &core, "r-doctor", "Role-second-pass-2", &dr_totp);
                core
            }
            _ => {
                let core = c.core();
                login_any(
                    &c,
                    &core,
                    &format!("r-{}", role.as_str()),
                    "Role-initial-pass-1",
                );
                core.change_password("Role-initial-pass-1".into(), "Role-second-pass-2".into())
                    .unwrap();
                core
            }
        };
        let p = core.patient_get(id.clone()).unwrap();
        assert!(
            p.family_name.starts_with("Parts"),
            "{role:?} sees the demographics"
        );
        let got = (
            !p.allergies.is_empty() && p.blood_group.is_some(),
            p.current_medications.is_some(),
            p.chronic_conditions.is_some() && p.medical_history.is_some() && p.notes.is_some(),
        );
        assert_eq!(got, (allergies, meds, clinical), "{role:?}");
        assert_eq!(
            (
                p.visible.allergies,
                p.visible.medications,
                p.visible.clinical
            ),
            (allergies, meds, clinical),
            "{role:?}"
        );
        // Saving the chart from a role that can't see a part keeps that part.
        if role == Role::Receptionist {
            let mut input = crate::reception::patient("Petra", "Parts-Renamed", "1970-07-07");
            input.allergies = p.allergies.clone();
            input.blood_group = "O+".into();
            core.patient_update(id.clone(), input).unwrap();
            let mut with_notes = crate::reception::patient("Petra", "Parts", "1970-07-07");
            with_notes.notes = "written blind".into();
            assert_eq!(
                core.patient_update(id.clone(), with_notes)
                    .unwrap_err()
                    .code(),
                "forbidden"
            );
        }
        core.logout().unwrap();
    }
    let nurse = c.core();
    login_any(&c, &nurse, "r-nurse", "Role-second-pass-2");
    let p = nurse.patient_get(id.clone()).unwrap();
    assert_eq!(
        (
            p.family_name.as_str(),
            p.notes.as_deref(),
            p.current_medications.as_deref()
        ),
        (
            "Parts-Renamed",
            Some("Prefers mornings"),
            Some("Metformin 500 mg")
        )
    );
}
