//! Papers leave the window two ways: saved where the person picks (a save dialog), or printed
//! through the system's print dialog. The core makes the PDF on a blocking thread first
//! (`call`), so neither blocks the window; the dialogs are the system's own.

use clinic_core::{ApiError, Error};
use tauri::AppHandle;

type Res<T> = Result<T, ApiError>;

/// Asks where to save `pdf` (suggesting `file_name`) and writes it there. `None` if the
/// person cancels.
pub async fn save(app: &AppHandle, pdf: Vec<u8>, file_name: &str) -> Res<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    let picked = app
        .dialog()
        .file()
        .add_filter("PDF", &["pdf"])
        .set_file_name(file_name)
        .blocking_save_file();
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else {
        return Ok(None);
    };
    std::fs::write(&path, pdf).map_err(|e| ApiError::from(Error::from(e)))?;
    Ok(Some(path.display().to_string()))
}

/// Opens the system print dialog for `pdf`; the chosen printer gets the PDF as it is. The
/// printer's name, or `None` if the person cancels.
pub async fn print(app: &AppHandle, pdf: Vec<u8>, title: &str) -> Res<Option<String>> {
    #[cfg(target_os = "linux")]
    {
        gtk_print::print(app, pdf, title).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (app, pdf, title);
        Err(Error::from(clinic_core::print::PrintError::PrintUnavailable).into())
    }
}

/// GTK's print dialog (`GtkPrintUnixDialog`) and print job, which hands the PDF file to the
/// printer as it is: CUPS prints PDF natively, and the dialog's "Print to File" copies it.
/// These live in libgtk-3 next to what gtk-rs binds, but gtk-rs has no binding for them.
#[cfg(target_os = "linux")]
mod gtk_print {
    use std::cell::RefCell;
    use std::ffi::{c_char, c_int, c_void, CStr, CString};
    use std::path::PathBuf;

    use clinic_core::print::PrintError;
    use clinic_core::{ApiError, Error};
    use gtk::glib::translate::{FromGlibPtrNone, ToGlibPtr};
    use gtk::prelude::*;
    use tauri::{AppHandle, Manager};

    type Reply = Result<Option<String>, PrintError>;

    #[link(name = "gtk-3")]
    extern "C" {
        fn gtk_print_unix_dialog_new(
            title: *const c_char,
            parent: *mut gtk::ffi::GtkWindow,
        ) -> *mut gtk::ffi::GtkWidget;
        fn gtk_print_unix_dialog_set_settings(
            dialog: *mut c_void,
            settings: *mut gtk::ffi::GtkPrintSettings,
        );
        fn gtk_print_unix_dialog_get_settings(
            dialog: *mut c_void,
        ) -> *mut gtk::ffi::GtkPrintSettings;
        fn gtk_print_unix_dialog_get_selected_printer(dialog: *mut c_void) -> *mut c_void;
        fn gtk_print_unix_dialog_get_page_setup(dialog: *mut c_void)
            -> *mut gtk::ffi::GtkPageSetup;
        fn gtk_printer_get_name(printer: *mut c_void) -> *const c_char;
        fn gtk_print_job_new(
            title: *const c_char,
            printer: *mut c_void,
            settings: *mut gtk::ffi::GtkPrintSettings,
            page_setup: *mut gtk::ffi::GtkPageSetup,
        ) -> *mut c_void;
        fn gtk_print_job_set_source_file(
            job: *mut c_void,
            filename: *const c_char,
            error: *mut *mut gtk::glib::ffi::GError,
        ) -> c_int;
        fn gtk_print_job_send(
            job: *mut c_void,
            callback: unsafe extern "C" fn(*mut c_void, *mut c_void, *const gtk::glib::ffi::GError),
            user_data: *mut c_void,
            dnotify: Option<unsafe extern "C" fn(*mut c_void)>,
        );
    }

    thread_local! {
        /// The settings of the last print (printer, copies, paper tray), offered next time.
        static LAST: RefCell<Option<gtk::PrintSettings>> = const { RefCell::new(None) };
    }

    /// What the job's completion callback needs: where to answer, and the file to remove.
    struct Job {
        reply: tokio::sync::oneshot::Sender<Reply>,
        printer: String,
        _file: tempfile::NamedTempFile,
    }

    unsafe extern "C" fn job_done(
        job: *mut c_void,
        data: *mut c_void,
        error: *const gtk::glib::ffi::GError,
    ) {
        let done = Box::from_raw(data as *mut Job);
        let reply = if error.is_null() {
            Ok(Some(done.printer))
        } else {
            Err(PrintError::PrintFailed {
                detail: CStr::from_ptr((*error).message)
                    .to_string_lossy()
                    .into_owned(),
            })
        };
        let _ = done.reply.send(reply);
        gtk::glib::gobject_ffi::g_object_unref(job as *mut _);
    }

    /// Where "Print to File" writes unless the person changes it: the documents folder (or
    /// home), under the paper's name.
    fn default_output(title: &str) -> Option<String> {
        let dir = gtk::glib::user_special_dir(gtk::glib::UserDirectory::Documents)
            .filter(|d| d.is_dir())
            .unwrap_or_else(gtk::glib::home_dir);
        let name: String = title
            .chars()
            .map(|c| if c == '/' || c.is_control() { '-' } else { c })
            .collect();
        gtk::glib::filename_to_uri(dir.join(format!("{name}.pdf")), None)
            .ok()
            .map(|u| u.to_string())
    }

    pub async fn print(
        app: &AppHandle,
        pdf: Vec<u8>,
        title: &str,
    ) -> Result<Option<String>, ApiError> {
        // The PDF goes to a private temporary file (mode 0600) that the job reads and the
        // completion removes; a CUPS spooler keeps its own copy until printed.
        let mut file = tempfile::Builder::new()
            .prefix("clinicdesk-print-")
            .suffix(".pdf")
            .tempfile()
            .map_err(|e| ApiError::from(Error::from(e)))?;
        std::io::Write::write_all(&mut file, &pdf).map_err(|e| ApiError::from(Error::from(e)))?;
        let path: PathBuf = file.path().to_path_buf();
        let (tx, rx) = tokio::sync::oneshot::channel::<Reply>();
        let title = title.to_string();
        let handle = app.clone();
        app.run_on_main_thread(move || {
            let parent = handle
                .get_webview_window("main")
                .and_then(|w| w.gtk_window().ok());
            show(parent, &title, path, file, tx)
        })
        .map_err(|e| ApiError::from(Error::internal(e)))?;
        match rx.await {
            Ok(reply) => reply.map_err(|e| ApiError::from(Error::from(e))),
            Err(_) => Err(Error::from(PrintError::PrintFailed {
                detail: "the print dialog closed without an answer".into(),
            })
            .into()),
        }
    }

    /// On the main thread: shows the dialog and, on "Print", sends the job.
    fn show(
        parent: Option<gtk::ApplicationWindow>,
        title: &str,
        path: PathBuf,
        file: tempfile::NamedTempFile,
        tx: tokio::sync::oneshot::Sender<Reply>,
    ) {
        let c_title = CString::new(title.replace('\0', "")).unwrap_or_default();
        let parent_ptr: *mut gtk::ffi::GtkWindow = parent
            .as_ref()
            .map(|w| w.upcast_ref::<gtk::Window>().to_glib_none().0)
            .unwrap_or(std::ptr::null_mut());
        // SAFETY: GTK calls on the main thread; the dialog is a GtkDialog (GtkPrintUnixDialog
        // derives from it), wrapped with a reference of its own.
        let dialog: gtk::Dialog = unsafe {
            let raw = gtk_print_unix_dialog_new(c_title.as_ptr(), parent_ptr);
            gtk::Dialog::from_glib_none(raw as *mut gtk::ffi::GtkDialog)
        };
        let settings = LAST.with_borrow(|l| l.clone()).unwrap_or_else(|| {
            let s = gtk::PrintSettings::new();
            s.set("output-file-format", Some("pdf"));
            s
        });
        if let Some(uri) = default_output(title) {
            settings.set("output-uri", Some(&uri));
        }
        let dialog_ptr: *mut gtk::ffi::GtkDialog = dialog.to_glib_none().0;
        unsafe {
            gtk_print_unix_dialog_set_settings(dialog_ptr as *mut c_void, settings.to_glib_none().0)
        };
        dialog.set_modal(true);
        let pending = RefCell::new(Some((tx, file)));
        let c_title = c_title.clone();
        dialog.connect_response(move |d, response| {
            let Some((tx, file)) = pending.borrow_mut().take() else {
                return;
            };
            let raw: *mut gtk::ffi::GtkDialog = d.to_glib_none().0;
            let raw = raw as *mut c_void;
            if response != gtk::ResponseType::Ok {
                let _ = tx.send(Ok(None));
                unsafe { d.destroy() };
                return;
            }
            // SAFETY: pointers from the dialog, used before it is destroyed; the job takes
            // its own references.
            unsafe {
                let printer = gtk_print_unix_dialog_get_selected_printer(raw);
                let settings = gtk_print_unix_dialog_get_settings(raw);
                let setup = gtk_print_unix_dialog_get_page_setup(raw);
                if printer.is_null() {
                    let _ = tx.send(Err(PrintError::PrintFailed {
                        detail: "no printer chosen".into(),
                    }));
                    d.destroy();
                    return;
                }
                LAST.with_borrow_mut(|l| {
                    *l = Some(gtk::PrintSettings::from_glib_none(settings));
                });
                let printer_name = CStr::from_ptr(gtk_printer_get_name(printer))
                    .to_string_lossy()
                    .into_owned();
                let job = gtk_print_job_new(c_title.as_ptr(), printer, settings, setup);
                gtk::glib::gobject_ffi::g_object_unref(settings as *mut _);
                let c_path = CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
                let mut error = std::ptr::null_mut();
                if gtk_print_job_set_source_file(job, c_path.as_ptr(), &mut error) == 0 {
                    let detail = if error.is_null() {
                        "the printer cannot take the file".into()
                    } else {
                        let m = CStr::from_ptr((*error).message)
                            .to_string_lossy()
                            .into_owned();
                        gtk::glib::ffi::g_error_free(error);
                        m
                    };
                    let _ = tx.send(Err(PrintError::PrintFailed { detail }));
                    gtk::glib::gobject_ffi::g_object_unref(job as *mut _);
                    d.destroy();
                    return;
                }
                let data = Box::into_raw(Box::new(Job {
                    reply: tx,
                    printer: printer_name,
                    _file: file,
                }));
                d.destroy();
                gtk_print_job_send(job, job_done, data as *mut c_void, None);
            }
        });
        dialog.show();
    }
}
