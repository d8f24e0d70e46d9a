//! Printing from the window: the admin uploads the clinic's logo (a broken file is refused),
//! chooses the 80 mm roll and Thai papers, then prints the test page through the system print
//! dialog (GTK's own window, driven with xdotool) to its "Print to File" printer; the file is
//! the test page on a roll, in Thai, with the logo. A cancelled dialog leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clinicdesk_e2e::{demo_clinic, dialog_closes, file_appears, print_dialog, run, xdotool, App};

/// PDF files anywhere under `dir`.
fn pdfs_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(pdfs_in(&p));
        } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"%PDF")) {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_page_goes_through_the_print_dialog_with_the_clinics_paper_and_logo() {
    let data = demo_clinic();
    // A home of its own: "Print to File" writes there, under the paper's name.
    let home = tempfile::tempdir().unwrap();
    // And a temporary folder of its own, to show no copy of a paper is left in one.
    let tmp = tempfile::tempdir().unwrap();
    let mut app = App::launch_with(
        "printing",
        data.path().to_path_buf(),
        None,
        &[("HOME", home.path()), ("TMPDIR", tmp.path())],
    )
    .await;
    app.sign_in("admin", "clinic-admin-demo").await;
    app.click("nav-settings").await;
    app.el("settings-printing").await;
    app.el("settings-logo-none").await;

    // A file that is not a picture is refused, naming the field.
    let files = tempfile::tempdir().unwrap();
    let broken: PathBuf = files.path().join("logo.png");
    std::fs::write(&broken, b"not really a PNG").unwrap();
    app.el("settings-logo-file")
        .await
        .send_keys(broken.display().to_string())
        .await
        .unwrap();
    app.wait_text("settings-logo-error", "Logo").await;
    app.shot("logo-refused").await;

    // A real logo: kept, and shown.
    let logo = files.path().join("clinic-logo.png");
    std::fs::write(&logo, clinic_core::dev::papers::logo_png()).unwrap();
    app.el("settings-logo-file")
        .await
        .send_keys(logo.display().to_string())
        .await
        .unwrap();
    app.el("settings-logo-preview").await;
    assert!(!app.exists("settings-logo-error").await);

    // Papers on the 80 mm roll, in Thai.
    app.choose("settings-paper", "roll80").await;
    app.choose("settings-default-language", "th").await;
    app.click("settings-save").await;
    app.el("settings-saved").await;
    app.shot("settings-printing").await;

    // Print: the PDF is made off the window's thread, then GTK's dialog opens. While it is
    // open the window still runs (its script answers) and the button says it is busy.
    app.click("test-page-print").await;
    let dialog = print_dialog("ClinicDesk test page").await;
    let label = app
        .js(
            "return document.querySelector('[data-testid=test-page-print]').textContent.trim()",
            vec![],
        )
        .await;
    assert_eq!(label.as_str(), Some("Preparing…"), "{label}");
    assert_eq!(
        pdfs_in(tmp.path()),
        Vec::<PathBuf>::new(),
        "a paper in TMPDIR"
    );
    // The one printer here is "Print to File": select it, then print.
    xdotool(&["windowfocus", "--sync", &dialog]);
    xdotool(&["key", "Down"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&["key", "Return"]);
    dialog_closes(&dialog).await;
    app.wait_text("test-page-paper-done", "Print to File").await;
    app.shot("test-page-printed").await;

    let out = home.path().join("ClinicDesk test page.pdf");
    let pdf = file_appears(&out).await;
    assert!(pdf.starts_with(b"%PDF"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the printed file is the user's only");
    assert_eq!(
        pdfs_in(tmp.path()),
        Vec::<PathBuf>::new(),
        "a paper left in TMPDIR"
    );
    let text = run(Command::new("pdftotext").arg(&out).arg("-"));
    // Lines wrap on a roll: compare without spaces and line ends.
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let flat = squeeze(&text);
    for s in [
        "หน้าทดสอบเครื่องพิมพ์",
        "กระดาษม้วนใบเสร็จ 80 มม.",
        "ผู้ป่วย นางสาวปิ่นแก้ว ศรีสุข",
        "Пациентка Ольга Иванова",
    ] {
        assert!(
            flat.contains(&squeeze(s)),
            "{s:?} not on the printed page:\n{text}"
        );
    }
    let info = run(Command::new("pdfinfo").arg(&out));
    let size = info
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap_or_default()
        .to_string();
    assert!(size.contains("226.77"), "an 80 mm roll: {size}");
    let images = run(Command::new("pdfimages").arg("-list").arg(&out));
    assert_eq!(images.lines().count(), 3, "the logo, once:\n{images}");
    std::fs::remove_file(&out).unwrap();

    // Cancelled: no file, no message, and the buttons are back.
    app.click("test-page-print").await;
    let dialog = print_dialog("ClinicDesk test page").await;
    xdotool(&["windowfocus", "--sync", &dialog]);
    xdotool(&["key", "Escape"]);
    dialog_closes(&dialog).await;
    app.wait_text_is("test-page-print", "Print…").await;
    assert!(
        !app.exists("test-page-paper-done").await && !app.exists("test-page-paper-error").await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!out.exists(), "a cancelled print wrote {}", out.display());

    // The logo can be removed again.
    app.click("settings-logo-remove").await;
    app.el("settings-logo-none").await;
    app.quit().await;
}
