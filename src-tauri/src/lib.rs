//! The desktop shell: window, state, IPC. Each command is one call into `clinic_core::Core`
//! run off the main thread; errors cross as `ApiError {code, message, params}` and a
//! panic becomes an `internal` error instead of crossing IPC.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use clinic_core::print::Output;
use clinic_core::{ApiError, Core};

mod papers;
use tauri::{AppHandle, State};
use tauri_specta::{collect_commands, Builder};

// The command table names types from the core's root (`patients::PatientInput`).
#[allow(unused_imports)]
use clinic_core::*;

type Api<'a> = State<'a, Arc<Core>>;
type Res<T> = Result<T, ApiError>;

/// Runs `f` on a blocking thread; a panic inside comes back as an `internal` error.
async fn call<T: Send + 'static>(
    core: &Arc<Core>,
    f: impl FnOnce(&Core) -> clinic_core::Result<T> + Send + 'static,
) -> Res<T> {
    let core = core.clone();
    let joined = tauri::async_runtime::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| f(&core)))
    })
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

macro_rules! tauri_command {
    // Window commands are written out below.
    (window; $($rest:tt)*) => {};
    (; $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        #[tauri::command]
        #[specta::specta]
        async fn $name(core: Api<'_>, $($arg: $ty),*) -> Res<$ret> {
            call(&core, move |c| c.$name($($arg),*)).await
        }
    };
}

/// From the command table: one `#[tauri::command]` per core command, and the specta
/// builder listing every command (window ones too) and each section's `Field`, `Table` and
/// `Error` types, which the UI translates.
macro_rules! window_api {
    ($( $section:ident { $( $(#[$kind:ident])? $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $perm:ident ; )* } )*) => {
        $($( tauri_command!($($kind)?; $name ($($arg : $ty),*) -> $ret); )*)*

        pub fn specta_builder() -> Builder<tauri::Wry> {
            Builder::<tauri::Wry>::new()
                .error_handling(tauri_specta::ErrorHandlingMode::Throw)
                .dangerously_cast_bigints_to_number()
                .disable_serde_phases()
                // Sent inside error params, or named by them: exported so the UI can prove it
                // translates every one.
                .typ::<clinic_core::error::Reason>()
                .typ::<clinic_core::error::ErrorCode>()
                .typ::<clinic_core::store::StoreTable>()
                .typ::<clinic_core::store::audit::Field>()
                .typ::<clinic_core::print::PrintError>()
                $( .typ::<clinic_core::$section::Field>().typ::<clinic_core::$section::Table>().typ::<clinic_core::$section::Error>() )*
                .commands(collect_commands![$($($name,)*)*])
        }
    };
}

clinic_commands::for_each_command!(window_api);

/// The recovery sheet, saved where the person picks (null if cancelled).
#[tauri::command]
#[specta::specta]
async fn recovery_sheet_save(
    app: AppHandle,
    core: Api<'_>,
    recovery_key: String,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.recovery_sheet_pdf(Output::Save, &recovery_key)
    })
    .await?;
    papers::save(&app, pdf, "clinicdesk-recovery-key.pdf").await
}

/// The recovery sheet, through the system print dialog (the printer's name, null if
/// cancelled).
#[tauri::command]
#[specta::specta]
async fn recovery_sheet_print(
    app: AppHandle,
    core: Api<'_>,
    recovery_key: String,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.recovery_sheet_pdf(Output::Print, &recovery_key)
    })
    .await?;
    papers::print(&app, pdf, "ClinicDesk recovery key", papers::Kind::Secret).await
}

/// The printer test page, saved.
#[tauri::command]
#[specta::specta]
async fn test_page_save(app: AppHandle, core: Api<'_>) -> Res<Option<String>> {
    let pdf = call(&core, |c| c.test_page_pdf(Output::Save)).await?;
    papers::save(&app, pdf, "clinicdesk-test-page.pdf").await
}

/// The printer test page, printed.
#[tauri::command]
#[specta::specta]
async fn test_page_print(app: AppHandle, core: Api<'_>) -> Res<Option<String>> {
    let pdf = call(&core, |c| c.test_page_pdf(Output::Print)).await?;
    papers::print(&app, pdf, "ClinicDesk test page", papers::Kind::Ordinary).await
}

/// A prescription, saved (in `language`, or the clinic's).
#[tauri::command]
#[specta::specta]
async fn prescription_save(
    app: AppHandle,
    core: Api<'_>,
    id: String,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.prescription_pdf(Output::Save, &id, language)
    })
    .await?;
    papers::save(&app, pdf, "prescription.pdf").await
}

/// A prescription, printed.
#[tauri::command]
#[specta::specta]
async fn prescription_print(
    app: AppHandle,
    core: Api<'_>,
    id: String,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.prescription_pdf(Output::Print, &id, language)
    })
    .await?;
    papers::print(&app, pdf, "Prescription", papers::Kind::Ordinary).await
}

/// An attachment, saved out where the person picks (audited).
#[tauri::command]
#[specta::specta]
async fn attachment_save(app: AppHandle, core: Api<'_>, id: String) -> Res<Option<String>> {
    let (name, bytes) = call(&core, move |c| c.attachment_export(&id)).await?;
    papers::save(&app, bytes, &name).await
}

/// A stock report, saved as a CSV file (column titles in `language`, or the clinic's).
#[tauri::command]
#[specta::specta]
async fn stock_report_save(
    app: AppHandle,
    core: Api<'_>,
    query: pharmacy::reports::ReportQuery,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let (name, csv) = call(&core, move |c| {
        c.stock_report_file(Output::Save, &query, language)
    })
    .await?;
    papers::save(&app, csv, &name).await
}

/// A stock report, printed.
#[tauri::command]
#[specta::specta]
async fn stock_report_print(
    app: AppHandle,
    core: Api<'_>,
    query: pharmacy::reports::ReportQuery,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let (_, pdf) = call(&core, move |c| {
        c.stock_report_file(Output::Print, &query, language)
    })
    .await?;
    papers::print(&app, pdf, "Stock report", papers::Kind::Ordinary).await
}

/// Dispensing labels, saved as a PDF (in `language`, or the clinic's).
#[tauri::command]
#[specta::specta]
async fn dispense_label_save(
    app: AppHandle,
    core: Api<'_>,
    ids: Vec<String>,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.dispense_label_pdf(Output::Save, &ids, language)
    })
    .await?;
    papers::save(&app, pdf, "label.pdf").await
}

/// Dispensing labels, printed.
#[tauri::command]
#[specta::specta]
async fn dispense_label_print(
    app: AppHandle,
    core: Api<'_>,
    ids: Vec<String>,
    language: Option<settings::Language>,
) -> Res<Option<String>> {
    let pdf = call(&core, move |c| {
        c.dispense_label_pdf(Output::Print, &ids, language)
    })
    .await?;
    papers::print(&app, pdf, "Label", papers::Kind::Ordinary).await
}

/// Papers made from one id and a language, saved or printed: each line gives the two commands,
/// the `Core` method that makes the PDF for either (it takes the command, the id and the
/// language), the file name and the print title.
macro_rules! id_papers {
    ($($save:ident, $print:ident, $core:ident, $file:literal, $title:literal;)*) => {$(
        #[doc = concat!("A ", $title, ", saved as a PDF (in `language`, or the clinic's).")]
        #[tauri::command]
        #[specta::specta]
        async fn $save(
            app: AppHandle,
            core: Api<'_>,
            id: String,
            language: Option<settings::Language>,
        ) -> Res<Option<String>> {
            let pdf = call(&core, move |c| {
                c.$core(clinic_core::perm::Command::$save, &id, language)
            })
            .await?;
            papers::save(&app, pdf, $file).await
        }

        #[doc = concat!("A ", $title, ", printed.")]
        #[tauri::command]
        #[specta::specta]
        async fn $print(
            app: AppHandle,
            core: Api<'_>,
            id: String,
            language: Option<settings::Language>,
        ) -> Res<Option<String>> {
            let pdf = call(&core, move |c| {
                c.$core(clinic_core::perm::Command::$print, &id, language)
            })
            .await?;
            papers::print(&app, pdf, $title, papers::Kind::Ordinary).await
        }
    )*};
}

id_papers! {
    invoice_save, invoice_print, billing_pdf, "invoice.pdf", "Invoice";
    receipt_save, receipt_print, billing_pdf, "receipt.pdf", "Receipt";
    daily_close_save, daily_close_print, billing_pdf, "daily-close.pdf", "Daily close";
}

/// Opens the waiting-room board in its own window (or brings it forward). The board
/// window's capability allows it `queue_board` and nothing else.
#[tauri::command]
#[specta::specta]
async fn open_queue_board(app: AppHandle, core: Api<'_>) -> Res<()> {
    use tauri::Manager;
    call(&core, |c| {
        c.authorize(clinic_core::perm::Command::open_queue_board)
    })
    .await?;
    if let Some(w) = app.get_webview_window("board") {
        let _ = w.set_focus();
        return Ok(());
    }
    tauri::WebviewWindowBuilder::new(
        &app,
        "board",
        tauri::WebviewUrl::App("index.html#board".into()),
    )
    .title("ClinicDesk — Queue")
    .inner_size(1280.0, 800.0)
    .build()
    .map_err(|e| ApiError::from(clinic_core::Error::internal(e)))?;
    Ok(())
}

pub const BINDINGS_PATH: &str = "../ui/src/lib/bindings.ts";

pub fn export_bindings(path: &std::path::Path) {
    specta_builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated from the Rust types by `make bindings`. Do not edit."),
            path,
        )
        .expect("export TypeScript bindings");
}

/// Sync in the background: a round every half second while rounds succeed (a change on one
/// PC shows on the others within about a second: BENCHMARKS.md), backing off to half a
/// minute while the server can't be reached. Does nothing without a server or while nobody has signed in.
fn start_background_sync(core: Arc<Core>) {
    std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || {
            let every = std::time::Duration::from_millis(500);
            let mut pause = every;
            loop {
                std::thread::sleep(pause);
                let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    core.sync_background()
                }));
                pause = match round {
                    // More waiting (a large catch-up, files on their way): on at once.
                    Ok(Some(Ok(r))) if r.more => std::time::Duration::from_millis(20),
                    Ok(None) | Ok(Some(Ok(_))) => every,
                    Ok(Some(Err(_))) | Err(_) => {
                        (pause * 2).min(std::time::Duration::from_secs(30))
                    }
                };
            }
        })
        .expect("starting the sync thread");
}

pub fn run() {
    let core = Arc::new(Core::new(Core::default_data_dir()));
    start_background_sync(core.clone());
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
        let fresh =
            std::env::temp_dir().join(format!("clinicdesk-bindings-{}.ts", std::process::id()));
        export_bindings(&fresh);
        let fresh = std::fs::read_to_string(&fresh).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH);
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == fresh,
            "ui/src/lib/bindings.ts is out of date: run `make bindings`"
        );
    }

    /// A panic inside a command comes back as an `internal` error, not a crash across IPC.
    #[test]
    fn a_panicking_command_returns_an_internal_error() {
        let core = Arc::new(Core::new(
            std::env::temp_dir().join("clinicdesk-panic-test"),
        ));
        let out: Res<()> = tauri::async_runtime::block_on(call(&core, |_| panic!("boom")));
        let err = out.unwrap_err();
        assert_eq!(err.code, "internal");
        assert!(err.message.contains("boom"), "{}", err.message);
        let ok = tauri::async_runtime::block_on(call(&core, |c| c.setup_status())).unwrap();
        assert!(!ok, "the core still answers after a panic");
    }

    /// Every command of the table is registered with the window and is in the bindings.
    #[test]
    fn every_command_of_the_table_reaches_the_window() {
        let bindings = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH),
        )
        .unwrap();
        let acl = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("permissions/main-window.toml"),
        )
        .unwrap();
        for cmd in clinic_core::perm::Command::ALL {
            let name = cmd.name();
            assert!(
                bindings.contains(&format!("\"{name}\"")),
                "{name} missing from bindings"
            );
            assert!(
                acl.contains(&format!("\"allow-{}\"", name.replace('_', "-"))),
                "{name} missing from the main window's ACL"
            );
        }
        assert_eq!(
            acl.matches("\"allow-").count(),
            clinic_core::perm::Command::ALL.len(),
            "the ACL lists exactly the table"
        );
    }
}
