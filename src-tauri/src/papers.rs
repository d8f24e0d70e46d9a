//! Papers leave the window two ways: saved where the person picks (a save dialog), or printed
//! through the system's print dialog. The core makes the PDF on a blocking thread first
//! (`call`), so neither blocks the window; the dialogs are the system's own.

use clinic_core::{ApiError, Error};
use tauri::AppHandle;

type Res<T> = Result<T, ApiError>;

/// Asks where to save `pdf` (or an attachment's bytes; suggesting `file_name`) and writes it
/// there. `None` if the person cancels.
pub async fn save(app: &AppHandle, pdf: Vec<u8>, file_name: &str) -> Res<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    // The file's own kind: a paper is a PDF, an attachment may be a picture.
    let ext = std::path::Path::new(file_name)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "pdf".into());
    let picked = app
        .dialog()
        .file()
        .add_filter(ext.to_uppercase(), &[ext.as_str()])
        .set_file_name(file_name)
        .blocking_save_file();
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else {
        return Ok(None);
    };
    write_private(&path, &pdf).map_err(|e| ApiError::from(Error::from(e)))?;
    Ok(Some(path.display().to_string()))
}

/// Writes `bytes` at `path` readable by this user only: into a new file of its own in the
/// same folder (created exclusively, mode 0600), then renamed over `path`. A file already
/// there is replaced, not rewritten in place with its old mode; a link there is replaced,
/// not followed.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".clinicdesk-")
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// How private a paper is. A secret one (the recovery sheet) starts the print dialog afresh:
/// no printer carried over from the last print (which may have been "Print to File").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ordinary,
    Secret,
}

/// Opens the system print dialog for `pdf`; the chosen printer gets the PDF as it is. The
/// printer's name, or `None` if the person cancels.
pub async fn print(app: &AppHandle, pdf: Vec<u8>, title: &str, kind: Kind) -> Res<Option<String>> {
    #[cfg(target_os = "linux")]
    {
        gtk_print::print(app, pdf, title, kind).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (app, pdf, title, kind);
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
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::PathBuf;

    use super::Kind;

    use clinic_core::print::PrintError;
    use clinic_core::{ApiError, Error};
    use gtk::glib::translate::{FromGlibPtrFull, FromGlibPtrNone, ToGlibPtr};
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
        fn gtk_print_job_set_source_fd(
            job: *mut c_void,
            fd: c_int,
            error: *mut *mut gtk::glib::ffi::GError,
        ) -> c_int;
        fn gtk_printer_is_virtual(printer: *mut c_void) -> c_int;
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

    /// What the job's completion callback needs: where to answer, and the file "Print to
    /// File" wrote, to make private.
    struct Job {
        reply: tokio::sync::oneshot::Sender<Reply>,
        printer: String,
        written: Option<PathBuf>,
        /// The paper (`spool`), closed when the job is done.
        _paper: OwnedFd,
    }

    unsafe extern "C" fn job_done(
        job: *mut c_void,
        data: *mut c_void,
        error: *const gtk::glib::ffi::GError,
    ) {
        let done = Box::from_raw(data as *mut Job);
        let reply = if error.is_null() {
            // GTK's file printer creates its file readable by everyone (0644).
            match done.written.as_deref().map(make_private) {
                Some(Err(e)) => Err(PrintError::PrintFailed {
                    detail: e.to_string(),
                }),
                _ => Ok(Some(done.printer)),
            }
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

    fn make_private(path: &std::path::Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }

    /// The PDF as a file with no name: a memory file (`memfd_create`) that the print job reads
    /// and nothing else can reach. It is gone once closed (or the process ends): no copy of
    /// the paper is left on disk, not even after a crash.
    pub fn spool(pdf: &[u8]) -> std::io::Result<OwnedFd> {
        use std::io::{Seek, Write};
        // SAFETY: a plain system call with a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"clinicdesk-paper".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.write_all(pdf)?;
        file.rewind()?;
        Ok(file.into())
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
        kind: Kind,
    ) -> Result<Option<String>, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Reply>();
        let title = title.to_string();
        let handle = app.clone();
        app.run_on_main_thread(move || {
            let parent = handle
                .get_webview_window("main")
                .and_then(|w| w.gtk_window().ok());
            show(parent, &title, pdf, kind, tx)
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

    /// A GError's message, freeing it.
    unsafe fn take_error(error: *mut gtk::glib::ffi::GError, otherwise: &str) -> String {
        if error.is_null() {
            return otherwise.into();
        }
        let m = CStr::from_ptr((*error).message)
            .to_string_lossy()
            .into_owned();
        gtk::glib::ffi::g_error_free(error);
        m
    }

    /// On the main thread: shows the dialog and, on "Print", sends the job. The PDF stays in
    /// memory until then.
    fn show(
        parent: Option<gtk::ApplicationWindow>,
        title: &str,
        pdf: Vec<u8>,
        kind: Kind,
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
        let last = match kind {
            Kind::Ordinary => LAST.with_borrow(|l| l.clone()),
            Kind::Secret => None,
        };
        let settings = last.unwrap_or_else(|| {
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
        let pending = RefCell::new(Some((tx, pdf)));
        let c_title = c_title.clone();
        dialog.connect_response(move |d, response| {
            let Some((tx, pdf)) = pending.borrow_mut().take() else {
                return;
            };
            let raw: *mut gtk::ffi::GtkDialog = d.to_glib_none().0;
            let raw = raw as *mut c_void;
            if response != gtk::ResponseType::Ok {
                let _ = tx.send(Ok(None));
                unsafe { d.destroy() };
                return;
            }
            let fail = |tx: tokio::sync::oneshot::Sender<Reply>, detail: String| {
                let _ = tx.send(Err(PrintError::PrintFailed { detail }));
            };
            // SAFETY: pointers from the dialog, used before it is destroyed; the job takes
            // its own references, and its own copy of the file descriptor.
            unsafe {
                let printer = gtk_print_unix_dialog_get_selected_printer(raw);
                if printer.is_null() {
                    fail(tx, "no printer chosen".into());
                    d.destroy();
                    return;
                }
                let settings = gtk_print_unix_dialog_get_settings(raw);
                let setup = gtk_print_unix_dialog_get_page_setup(raw);
                let kept = gtk::PrintSettings::from_glib_full(settings);
                LAST.with_borrow_mut(|l| *l = Some(kept.clone()));
                let written = (gtk_printer_is_virtual(printer) != 0)
                    .then(|| kept.get("output-uri"))
                    .flatten()
                    .and_then(|uri| gtk::glib::filename_from_uri(uri.as_str()).ok())
                    .map(|(path, _)| path);
                let printer_name = CStr::from_ptr(gtk_printer_get_name(printer))
                    .to_string_lossy()
                    .into_owned();
                let fd = match spool(&pdf) {
                    Ok(fd) => fd,
                    Err(e) => {
                        fail(tx, e.to_string());
                        d.destroy();
                        return;
                    }
                };
                let job = gtk_print_job_new(c_title.as_ptr(), printer, settings, setup);
                let mut error = std::ptr::null_mut();
                // GTK reads the descriptor without taking it: it stays open, in `Job`, until
                // the job is done.
                if gtk_print_job_set_source_fd(job, fd.as_raw_fd(), &mut error) == 0 {
                    fail(tx, take_error(error, "the printer cannot take the file"));
                    gtk::glib::gobject_ffi::g_object_unref(job as *mut _);
                    d.destroy();
                    return;
                }
                let data = Box::into_raw(Box::new(Job {
                    reply: tx,
                    printer: printer_name,
                    written,
                    _paper: fd,
                }));
                d.destroy();
                gtk_print_job_send(job, job_done, data as *mut c_void, None);
            }
        });
        dialog.show();
    }

    #[cfg(test)]
    mod tests {
        use std::io::Read;

        /// The spooled PDF reads back whole through the descriptor, and no file is named for
        /// it: not in the temporary folder, not anywhere (its link is a memfd's).
        #[test]
        fn a_paper_is_spooled_in_memory_with_no_name_on_disk() {
            let pdf: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let fd = super::spool(&pdf).unwrap();
            let link = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap();
            assert!(
                link.to_string_lossy()
                    .starts_with("/memfd:clinicdesk-paper"),
                "{link:?}"
            );
            let after: Vec<_> = std::fs::read_dir(std::env::temp_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| !before.contains(n))
                .collect();
            assert!(
                !after
                    .iter()
                    .any(|n| n.to_string_lossy().contains("clinicdesk")),
                "{after:?}"
            );
            let mut back = vec![];
            std::fs::File::from(fd).read_to_end(&mut back).unwrap();
            assert_eq!(back, pdf);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A saved paper is this user's only, whatever the umask; a file already there is replaced
    /// with a private one; a link at the path is replaced, its target left alone.
    #[test]
    fn a_saved_paper_is_private_and_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("sheet.pdf");
        super::write_private(&new, b"%PDF-1 new").unwrap();
        assert_eq!(mode(&new), 0o600);
        assert_eq!(std::fs::read(&new).unwrap(), b"%PDF-1 new");

        let old = dir.path().join("old.pdf");
        std::fs::write(&old, b"old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&old, b"%PDF-1 replaced").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read(&old).unwrap(), b"%PDF-1 replaced");

        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"untouched").unwrap();
        let link = dir.path().join("link.pdf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        super::write_private(&link, b"%PDF-1 via link").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&link), 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".clinicdesk-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
