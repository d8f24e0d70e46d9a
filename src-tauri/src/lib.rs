//! The desktop shell: window, state, IPC. Each command is one call into `clinic_core::Core`
//! run off the main thread; errors cross as `ApiError {code, message, params}` and a
//! panic becomes an `internal` error instead of crossing IPC.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use clinic_core::app::{
    AppInfo, CalendarQuery, FirstFreeQuery, LoginDone, LoginStep, SessionInfo, SetActive, SetupInput, SetupResult,
};
use clinic_core::appointments::{
    Appointment, AppointmentStatus, BookInput, CalendarEntry, HistoryEntry, RescheduleInput, SlotQuery,
};
use clinic_core::doctors::{Doctor, ScheduleException, Specialization, WorkingBlock};
use clinic_core::patients::{Patient, PatientInput, RegisterOutcome, SearchPage};
use clinic_core::queue::{Board, CheckIn, QueueToday, Ticket, TicketStatus};
use clinic_core::schedule::Slot;
use clinic_core::audit::{AuditFilter, AuditPage, ChainStatus};
use clinic_core::settings::{Language, Settings};
use clinic_core::staff::{NewStaff, Staff, StaffUpdate};
use clinic_core::{ApiError, Core};
use tauri::{AppHandle, State};
use tauri_specta::{collect_commands, Builder};

type Api<'a> = State<'a, Arc<Core>>;
type Res<T> = Result<T, ApiError>;

/// Runs `f` on a blocking thread; a panic inside comes back as an `internal` error.
async fn call<T: Send + 'static>(
    core: &Arc<Core>,
    f: impl FnOnce(&Core) -> clinic_core::Result<T> + Send + 'static,
) -> Res<T> {
    let core = core.clone();
    let joined = tauri::async_runtime::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(|| f(&core))))
        .await
        .map_err(|e| ApiError::from_panic(&e.to_string()))?;
    match joined {
        Ok(result) => result.map_err(ApiError::from),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a command panicked".into());
            eprintln!("clinicdesk: command panicked: {what}");
            Err(ApiError::from_panic(&what))
        }
    }
}

macro_rules! commands {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => |$c:ident| $body:expr; )*) => {
        $(
            $(#[$m])*
            #[tauri::command]
            #[specta::specta]
            async fn $name(core: Api<'_>, $($arg: $ty),*) -> Res<$ret> {
                call(&core, move |$c| $body).await
            }
        )*
        /// Names of the commands defined here, for the test against the core's table.
        #[cfg(test)]
        const DEFINED: &[&str] = &[$(stringify!($name)),*];
    };
}

commands! {
    fn app_info() -> AppInfo => |c| c.app_info();
    fn setup_status() -> bool => |c| c.setup_status();
    fn setup_create(input: SetupInput) -> SetupResult => |c| c.setup_create(input);
    fn login(username: String, password: String) -> LoginStep => |c| c.login(&username, &password);
    fn login_totp(code: String) -> LoginDone => |c| c.login_totp(&code);
    fn recover_account(recovery_key: String, username: String, new_password: String) -> ()
        => |c| c.recover_account(&recovery_key, &username, &new_password);
    fn session_info() -> SessionInfo => |c| c.session_info_cmd();
    fn session_touch() -> () => |c| c.session_touch();
    fn logout() -> () => |c| c.logout();
    fn lock() -> () => |c| c.lock();
    fn unlock(password: String) -> SessionInfo => |c| c.unlock(&password);
    fn change_password(old_password: String, new_password: String) -> SessionInfo
        => |c| c.change_password(&old_password, &new_password);
    fn set_language(language: Language) -> SessionInfo => |c| c.set_language(language);
    fn staff_list() -> Vec<Staff> => |c| c.staff_list();
    fn staff_get(id: String) -> Staff => |c| c.staff_get(&id);
    fn staff_create(input: NewStaff) -> Staff => |c| c.staff_create(input);
    fn staff_update(input: StaffUpdate) -> Staff => |c| c.staff_update(input);
    fn staff_set_active(input: SetActive) -> Staff => |c| c.staff_set_active(input);
    fn staff_reset_password(id: String, new_password: String) -> Staff => |c| c.staff_reset_password(&id, &new_password);
    fn staff_reset_totp(id: String) -> Staff => |c| c.staff_reset_totp(&id);
    fn settings_get() -> Settings => |c| c.settings_get();
    fn settings_update(input: Settings) -> Settings => |c| c.settings_update(input);
    fn audit_list(filter: AuditFilter) -> AuditPage => |c| c.audit_list(filter);
    fn audit_verify() -> ChainStatus => |c| c.audit_verify();

    fn patient_search(text: String, offset: u32, limit: u32) -> SearchPage => |c| c.patient_search(&text, offset, limit);
    fn patient_get(id: String) -> Patient => |c| c.patient_get(&id);
    fn patient_register(input: PatientInput, allow_duplicates: bool) -> RegisterOutcome
        => |c| c.patient_register(input, allow_duplicates);
    fn patient_update(id: String, input: PatientInput) -> Patient => |c| c.patient_update(&id, input);
    fn patient_set_photo(id: String, mime: String, base64: String) -> () => |c| c.patient_set_photo(&id, &mime, &base64);
    fn patient_photo(id: String) -> Option<String> => |c| c.patient_photo(&id);

    fn specialization_list() -> Vec<Specialization> => |c| c.specialization_list();
    fn specialization_save(input: Specialization) -> Specialization => |c| c.specialization_save(input);
    fn doctor_list() -> Vec<Doctor> => |c| c.doctor_list();
    fn doctor_save(input: Doctor) -> Doctor => |c| c.doctor_save(input);
    fn doctor_hours_get(doctor_id: String) -> Vec<WorkingBlock> => |c| c.doctor_hours_get(&doctor_id);
    fn doctor_hours_set(doctor_id: String, blocks: Vec<WorkingBlock>) -> Vec<WorkingBlock>
        => |c| c.doctor_hours_set(&doctor_id, blocks);
    fn exception_list(doctor_id: Option<String>, from: String, to: String) -> Vec<ScheduleException>
        => |c| c.exception_list(doctor_id, &from, &to);
    fn exception_add(input: ScheduleException) -> ScheduleException => |c| c.exception_add(input);
    fn exception_remove(id: String) -> () => |c| c.exception_remove(&id);

    fn slots_find(query: SlotQuery) -> Vec<Slot> => |c| c.slots_find(query);
    fn appointment_book(input: BookInput) -> Appointment => |c| c.appointment_book(input);
    fn appointment_book_first_free(query: FirstFreeQuery) -> Appointment => |c| c.appointment_book_first_free(query);
    fn appointment_set_status(id: String, status: AppointmentStatus, reason: String) -> Appointment
        => |c| c.appointment_set_status(&id, status, &reason);
    fn appointment_reschedule(input: RescheduleInput) -> Appointment => |c| c.appointment_reschedule(input);
    fn appointment_history(id: String) -> Vec<HistoryEntry> => |c| c.appointment_history(&id);
    fn appointments_calendar(query: CalendarQuery) -> Vec<CalendarEntry> => |c| c.appointments_calendar(query);
    fn appointments_for_patient(patient_id: String) -> Vec<CalendarEntry> => |c| c.appointments_for_patient(&patient_id);

    fn queue_check_in(input: CheckIn) -> Ticket => |c| c.queue_check_in(input);
    fn queue_today() -> QueueToday => |c| c.queue_today();
    fn queue_call_next(doctor_id: Option<String>) -> Ticket => |c| c.queue_call_next(doctor_id);
    fn queue_advance(ticket_id: String, to: TicketStatus) -> Ticket => |c| c.queue_advance(&ticket_id, to);
    fn queue_mark_left(ticket_id: String) -> Ticket => |c| c.queue_mark_left(&ticket_id);
    fn queue_board() -> Board => |c| c.queue_board();
}

/// Renders the recovery sheet and asks where to save it (a native dialog: window
/// business, so it lives here). Returns the saved path, or null if cancelled.
#[tauri::command]
#[specta::specta]
async fn recovery_sheet_save(app: AppHandle, core: Api<'_>, recovery_key: String) -> Res<Option<String>> {
    let pdf = call(&core, move |c| c.recovery_sheet_pdf(&recovery_key)).await?;
    use tauri_plugin_dialog::DialogExt;
    let picked = app
        .dialog()
        .file()
        .add_filter("PDF", &["pdf"])
        .set_file_name("clinicdesk-recovery-key.pdf")
        .blocking_save_file();
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
    std::fs::write(&path, pdf).map_err(|e| ApiError::from(clinic_core::Error::from(e)))?;
    Ok(Some(path.display().to_string()))
}

/// Opens the waiting-room board in its own window (or brings it forward). The board
/// window's capability allows it `queue_board` and nothing else.
#[tauri::command]
#[specta::specta]
async fn open_queue_board(app: AppHandle, core: Api<'_>) -> Res<()> {
    use tauri::Manager;
    call(&core, |c| c.authorize(clinic_core::perm::Command::open_queue_board)).await?;
    if let Some(w) = app.get_webview_window("board") {
        let _ = w.set_focus();
        return Ok(());
    }
    tauri::WebviewWindowBuilder::new(&app, "board", tauri::WebviewUrl::App("index.html#board".into()))
        .title("ClinicDesk — Queue")
        .inner_size(1280.0, 800.0)
        .build()
        .map_err(|e| ApiError::from(clinic_core::Error::internal(e)))?;
    Ok(())
}

pub fn specta_builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .error_handling(tauri_specta::ErrorHandlingMode::Throw)
        .dangerously_cast_bigints_to_number()
        .disable_serde_phases()
        // Sent inside error params; exported so the UI can prove it translates every one.
        .typ::<clinic_core::error::Reason>()
        .typ::<clinic_core::error::Field>()
        .commands(collect_commands![
            app_info,
            setup_status,
            setup_create,
            recovery_sheet_save,
            login,
            login_totp,
            recover_account,
            session_info,
            session_touch,
            logout,
            lock,
            unlock,
            change_password,
            set_language,
            staff_list,
            staff_get,
            staff_create,
            staff_update,
            staff_set_active,
            staff_reset_password,
            staff_reset_totp,
            settings_get,
            settings_update,
            audit_list,
            audit_verify,
            patient_search,
            patient_get,
            patient_register,
            patient_update,
            patient_set_photo,
            patient_photo,
            specialization_list,
            specialization_save,
            doctor_list,
            doctor_save,
            doctor_hours_get,
            doctor_hours_set,
            exception_list,
            exception_add,
            exception_remove,
            slots_find,
            appointment_book,
            appointment_book_first_free,
            appointment_set_status,
            appointment_reschedule,
            appointment_history,
            appointments_calendar,
            appointments_for_patient,
            queue_check_in,
            queue_today,
            queue_call_next,
            queue_advance,
            queue_mark_left,
            queue_board,
            open_queue_board,
        ])
}

pub const BINDINGS_PATH: &str = "../ui/src/lib/bindings.ts";

pub fn export_bindings(path: &std::path::Path) {
    specta_builder()
        .export(
            specta_typescript::Typescript::default().header("// Generated from the Rust types by `make bindings`. Do not edit."),
            path,
        )
        .expect("export TypeScript bindings");
}

pub fn run() {
    let core = Arc::new(Core::new(Core::default_data_dir()));
    let builder = specta_builder();
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(core)
        .invoke_handler(builder.invoke_handler())
        .run(tauri::tauri_build_context!())
        .expect("error while running ClinicDesk");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in bindings must match the Rust types: run `make bindings` after a change.
    #[test]
    fn bindings_are_up_to_date() {
        let fresh = std::env::temp_dir().join(format!("clinicdesk-bindings-{}.ts", std::process::id()));
        export_bindings(&fresh);
        let fresh = std::fs::read_to_string(&fresh).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH);
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(current == fresh, "ui/src/lib/bindings.ts is out of date: run `make bindings`");
    }

    /// A panic inside a command comes back as an `internal` error, not a crash across IPC.
    #[test]
    fn a_panicking_command_returns_an_internal_error() {
        let core = Arc::new(Core::new(std::env::temp_dir().join("clinicdesk-panic-test")));
        let out: Res<()> = tauri::async_runtime::block_on(call(&core, |_| panic!("boom")));
        let err = out.unwrap_err();
        assert_eq!(err.code, clinic_core::ErrorCode::Internal);
        assert!(err.message.contains("boom"), "{}", err.message);
        let ok = tauri::async_runtime::block_on(call(&core, |c| c.setup_status())).unwrap();
        assert!(!ok, "the core still answers after a panic");
    }

    /// Every command in the core's permission table is callable from the window, and
    /// the window calls nothing the table doesn't know.
    #[test]
    fn window_commands_match_the_core_table() {
        let mut ours: Vec<&str> = DEFINED.to_vec();
        ours.push("recovery_sheet_save");
        ours.push("open_queue_board");
        ours.sort();
        let mut table: Vec<&str> = clinic_core::perm::Command::ALL.iter().map(|c| c.name()).collect();
        table.sort();
        assert_eq!(ours, table);
        let bindings = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH)).unwrap();
        for name in &table {
            assert!(bindings.contains(&format!("\"{name}\"")), "{name} missing from bindings");
        }
    }
}
