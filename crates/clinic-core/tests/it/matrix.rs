//! Every command against every role: allowed exactly when the permission table says so.

use clinic_core::perm::{allowed, Command, Role};
use clinic_core::queue::{CheckIn, TicketStatus};
use clinic_core::scheduling::{
    AppointmentKind, AppointmentStatus, BookInput, CalendarQuery, ExceptionKind, FirstFreeQuery, RescheduleInput, ScheduleException,
    SlotQuery, Specialization,
};
use clinic_core::settings::Language;
use clinic_core::staff::{SetActive, StaffUpdate};
use clinic_core::store::audit::AuditFilter;
use clinic_core::{Core, Error};

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
            .setup_create(clinic_core::session::SetupInput {
                clinic: clinic_profile("Another"),
                admin_username: "x".into(),
                admin_full_name: "x".into(),
                admin_email: String::new(),
                admin_phone: String::new(),
                admin_password: "x".into(),
            })
            .map(drop),
        Command::recovery_sheet_save => core.recovery_sheet_pdf("0000-0000").map(drop),
        Command::login => core.login("nobody-here".into(), "Wrong-password-1".into()).map(drop),
        Command::login_totp => core.login_totp("000000".into()).map(drop),
        Command::recover_account => core.recover_account("0000-0000".into(), "nobody".into(), "Wrong-password-1".into()).map(drop),
        Command::session_info => core.session_info().map(drop),
        Command::session_touch => core.session_touch(),
        Command::logout => core.logout(),
        Command::lock => core.lock(),
        Command::unlock => core.unlock(pw.into()).map(drop),
        Command::change_password => core.change_password(pw.into(), "short".into()).map(drop),
        Command::set_language => core.set_language(Language::En).map(drop),
        Command::staff_list => core.staff_list().map(drop),
        Command::staff_get => core.staff_get(nobody.into()).map(drop),
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
        Command::staff_reset_password => core.staff_reset_password(nobody.into(), "x".into()).map(drop),
        Command::staff_reset_totp => core.staff_reset_totp(nobody.into()).map(drop),
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
        Command::patient_search => core.patient_search("ann".into(), 0, 20).map(drop),
        Command::patient_get => core.patient_get(nobody.into()).map(drop),
        Command::patient_register => core.patient_register(crate::reception::patient("", "", "2000-01-01"), false).map(drop),
        Command::patient_update => core.patient_update(nobody.into(), crate::reception::patient("A", "B", "2000-01-01")).map(drop),
        Command::patient_set_photo => core.patient_set_photo(nobody.into(), "image/png".into(), "AAAA".into()).map(drop),
        Command::patient_photo => core.patient_photo(nobody.into()).map(drop),
        Command::specialization_list => core.specialization_list().map(drop),
        Command::specialization_save => core
            .specialization_save(Specialization { id: String::new(), name: String::new(), queue_code: "C".into() })
            .map(drop),
        Command::doctor_list => core.doctor_list().map(drop),
        Command::doctor_save => core.doctor_save(crate::reception::doctor_input("x", nobody)).map(drop),
        Command::doctor_hours_get => core.doctor_hours_get(nobody.into()).map(drop),
        Command::doctor_hours_set => core.doctor_hours_set(nobody.into(), vec![]).map(drop),
        Command::exception_list => core.exception_list(None, "2026-01-01T00:00:00Z".into(), "2026-01-02T00:00:00Z".into()).map(drop),
        Command::exception_add => core
            .exception_add(ScheduleException {
                id: String::new(),
                doctor_id: Some(nobody.into()),
                kind: ExceptionKind::Leave,
                starts_at: "x".into(),
                ends_at: "y".into(),
                reason: String::new(),
            })
            .map(drop),
        Command::exception_remove => core.exception_remove(nobody.into()),
        Command::slots_find => core
            .slots_find(SlotQuery { doctor_id: Some(nobody.into()), specialization_id: None, from: None, days: 1, limit: 5 })
            .map(drop),
        Command::appointment_book => core
            .appointment_book(BookInput {
                patient_id: nobody.into(),
                doctor_id: nobody.into(),
                starts_at: "2030-01-01T00:00:00Z".into(),
                duration_minutes: 15,
                kind: AppointmentKind::Consultation,
                reason: String::new(),
                override_reason: None,
            })
            .map(drop),
        Command::appointment_book_first_free => core
            .appointment_book_first_free(FirstFreeQuery {
                specialization_id: nobody.into(),
                patient_id: nobody.into(),
                from: None,
                days: 1,
                duration_minutes: None,
                kind: AppointmentKind::Consultation,
                reason: String::new(),
            })
            .map(drop),
        Command::appointment_set_status => core.appointment_set_status(nobody.into(), AppointmentStatus::Confirmed, "".into()).map(drop),
        Command::appointment_reschedule => core
            .appointment_reschedule(RescheduleInput {
                appointment_id: nobody.into(),
                starts_at: "2030-01-01T00:00:00Z".into(),
                doctor_id: None,
                duration_minutes: None,
                reason: String::new(),
            })
            .map(drop),
        Command::appointment_history => core.appointment_history(nobody.into()).map(drop),
        Command::appointments_calendar => core
            .appointments_calendar(CalendarQuery { from: "2026-01-01T00:00:00Z".into(), to: "2026-01-02T00:00:00Z".into(), doctor_ids: vec![] })
            .map(drop),
        Command::appointments_for_patient => core.appointments_for_patient(nobody.into()).map(drop),
        Command::queue_check_in => core
            .queue_check_in(CheckIn { appointment_id: Some(nobody.into()), patient_id: None, specialization_id: None, doctor_id: None, priority: None })
            .map(drop),
        Command::queue_today => core.queue_today().map(drop),
        Command::queue_call_next => core.queue_call_next(Some(nobody.into())).map(drop),
        Command::queue_advance => core.queue_advance(nobody.into(), TicketStatus::InConsultation).map(drop),
        Command::queue_mark_left => core.queue_mark_left(nobody.into()).map(drop),
        Command::queue_board => core.queue_board().map(drop),
        Command::open_queue_board => core.authorize(Command::open_queue_board),
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
        core.change_password(PW.into(), NEW_PW.into()).unwrap();
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
        let r = call(&core, cmd, PW);
        let public = cmd.permission() == clinic_core::perm::Permission::Public;
        let refused = matches!(&r, Err(e) if e.code() == "not_authenticated");
        // logout without a session is a harmless no-op.
        if cmd == Command::logout {
            assert!(r.is_ok());
            continue;
        }
        assert_eq!(refused, !public, "{} without a session: {:?}", cmd.name(), r.err().map(|e| e.code()));
    }
}
