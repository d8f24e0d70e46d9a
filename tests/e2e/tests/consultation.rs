//! The consultation room in the real window: the doctor calls the next patient (a Thai
//! name), records vitals with one abnormal value, types the note (the app is killed with
//! SIGKILL mid-visit and what was typed is there after the restart), finds an ICD-10
//! diagnosis by words, prescribes two interacting drugs (the warning appears and needs a
//! reason), signs, prints the prescription through the print dialog and reads it back; then
//! the next patient (a Cyrillic name) gets a printed prescription too.

use std::process::Command;
use std::time::Duration;

use clinicdesk_e2e::{
    demo_clinic, dialog_closes, file_appears, print_dialog, run, workspace_root, xdotool, App,
};

/// Registers a patient and checks them in for the demo doctor, through the command-line
/// tool as the receptionist.
fn walk_in(data: &std::path::Path, given: &str, family: &str, birth: &str) -> String {
    let cli = workspace_root().join("target/debug/clinicdesk-cli");
    let out = Command::new(cli)
        .args([
            "as",
            data.to_str().unwrap(),
            "reception",
            "front-desk-demo",
            "walk-in",
            given,
            family,
            birth,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The app's own process (started by WebKitWebDriver), killed outright.
fn kill_9_app(data: &std::path::Path) {
    let out = Command::new("pgrep")
        .args(["-f", "target/debug/clinicdesk"])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|pid| {
            // Only the window process whose data folder is this test's.
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    let env = String::from_utf8_lossy(&env).to_string();
                    env.contains(&format!("CLINICDESK_DATA_DIR={}", data.display()))
                        && !std::fs::read_link(format!("/proc/{pid}/exe"))
                            .map(|p| p.to_string_lossy().contains("clinicdesk-cli"))
                            .unwrap_or(true)
                })
                .unwrap_or(false)
        })
        .collect();
    assert!(!pids.is_empty(), "the app's process was not found");
    for pid in pids {
        assert!(Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doctor_calls_records_vitals_writes_a_note_that_survives_kill_9_and_diagnoses() {
    let data = demo_clinic();
    let thai = walk_in(data.path(), "ปิ่นแก้ว", "ศรีสุข", "1985-02-14");
    walk_in(data.path(), "Ольга", "Иванова", "1979-11-03");
    assert!(thai.contains('-'), "ticket {thai}");

    let mut app = App::launch_in("consultation", data.path().to_path_buf(), None).await;
    app.sign_in("doctor", "consult-room-demo").await;
    app.click("nav-consultation").await;
    app.wait_text("consult-waiting", "2").await;
    app.shot("workspace").await;

    // 1. Call next: the first to arrive, with her allergy in the header.
    app.click("consult-call-next").await;
    app.wait_text("consult-patient-name", "ปิ่นแก้ว ศรีสุข").await;
    app.wait_text("consult-allergies", "Penicillin").await;
    app.shot("called").await;

    // 2. Vitals, one abnormal (a fever), one impossible first (refused, naming the field).
    app.fill("vitals-spo2", "140").await;
    app.click("vitals-save").await;
    app.wait_text("consult-error", "SpO2").await;
    app.fill("vitals-spo2", "97").await;
    app.fill("vitals-temperature", "39.2").await;
    app.fill("vitals-systolic", "124").await;
    app.fill("vitals-diastolic", "78").await;
    app.click("vitals-save").await;
    app.wait_text("vital-flag-temperature", "High").await;
    assert!(!app.exists("vital-flag-systolic").await);
    app.choose("consult-trend-kind", "temperature").await;
    app.el("consult-trend").await;
    app.shot("vitals").await;

    // 3. The note, saved as it is typed; then the app is killed outright.
    let typed = "Fever and dry cough for three days, no shortness of breath";
    app.fill("note-subjective", typed).await;
    app.wait_text("note-saved-state", "Draft saved").await;
    app.shot("note-draft").await;
    kill_9_app(data.path());
    drop(app);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A home of its own: "Print to File" writes the prescription there.
    let home = tempfile::tempdir().unwrap();
    let mut app = App::launch_with(
        "consultation-after-kill",
        data.path().to_path_buf(),
        None,
        &[("HOME", home.path())],
    )
    .await;
    app.sign_in("doctor", "consult-room-demo").await;
    app.click("nav-consultation").await;
    app.el_css("[data-testid^=consult-encounter-]")
        .await
        .click()
        .await
        .unwrap();
    app.wait_text("consult-patient-name", "ปิ่นแก้ว ศรีสุข").await;
    assert_eq!(app.value("note-subjective").await, typed);
    app.shot("note-after-kill").await;

    // 4. A diagnosis found by words, added as primary (and to the problem list).
    app.fill("icd-search", "essential hypertension").await;
    app.click("icd-result-I10").await;
    app.wait_text("diagnosis-I10", "Primary").await;
    app.wait_text("consult-problems", "I10").await;
    app.shot("diagnosis").await;

    // A lab test ordered and its result entered: flagged low, on the trend chart.
    app.choose("lab-test", "lab-hemoglobin").await;
    app.click("lab-order").await;
    app.fill("lab-input-0", "10.2").await;
    app.click("lab-enter-0").await;
    app.wait_text("lab-flag-0", "Low").await;
    // A record with a picture, shown from memory.
    app.click("record-new").await;
    app.fill("record-title", "Chest X-ray").await;
    let pic = tempfile::tempdir().unwrap();
    let png = pic.path().join("chest-x-ray.png");
    std::fs::write(&png, clinic_core::dev::papers::logo_png()).unwrap();
    app.el("record-file")
        .await
        .send_keys(png.display().to_string())
        .await
        .unwrap();
    app.click("record-save").await;
    app.click("attachment-view-chest-x-ray.png").await;
    app.el("attachment-shown").await;
    app.shot("lab-and-history").await;
    // A PDF (an outside report), drawn in the window by pdf.js from memory.
    let report = pic.path().join("outside-report.pdf");
    let paper = clinic_core::print::render(&clinic_core::dev::papers::invoice(
        1,
        3,
        clinic_core::print::Paper::A4,
    ))
    .unwrap();
    std::fs::write(&report, paper).unwrap();
    app.fill("record-title", "Outside report").await;
    app.el("record-file")
        .await
        .send_keys(report.display().to_string())
        .await
        .unwrap();
    app.click("record-save").await;
    app.click("attachment-view-outside-report.pdf").await;
    app.wait_text("attachment-pdf", "1 pages").await;
    // Drawn, not blank: the page has dark pixels (text).
    let inked = app
        .js(
            "const c = document.querySelector('[data-testid=attachment-pdf-page]'); \
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
             let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 100 && d[i + 3] > 0) n++; return n;",
            vec![],
        )
        .await
        .as_u64()
        .unwrap_or(0);
    assert!(
        inked > 1000,
        "the PDF page looks blank ({inked} dark pixels)"
    );
    app.shot("pdf-attachment").await;

    // 5. Sign: the note is read-only; then close with a follow-up in two weeks.
    app.fill("note-assessment", "Viral bronchitis; raised blood pressure")
        .await;
    app.click("note-sign").await;
    app.wait_text("note-signed-subjective", typed).await;
    assert!(!app.exists("note-subjective").await);
    let in_two_weeks: String = app
        .js(
            "const d = new Date(Date.now() + 14 * 864e5); return d.toISOString().slice(0, 10);",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    // 6. Two interacting drugs: warfarin and ibuprofen. The warning needs a reason.
    app.click("rx-new").await;
    prescribe(
        &app,
        "warf",
        "Warfarin",
        "1 tablet",
        "once a day",
        "30",
        "30",
    )
    .await;
    prescribe(
        &app,
        "ibupro",
        "Ibuprofen",
        "1 tablet",
        "3 times a day",
        "5",
        "15",
    )
    .await;
    app.wait_text("rx-alert-0", "Interaction").await;
    app.wait_text("rx-alert-0", "bleeding").await;
    app.wait_text("rx-alert-0", "Malone").await;
    app.shot("interaction-warning").await;
    app.click("rx-sign").await;
    app.wait_text("rx-error", "need a reason").await;
    app.fill("rx-alert-reason-0", "Short course; INR checked in 3 days")
        .await;
    app.click("rx-sign").await;
    app.el("rx-signed").await;
    app.shot("prescription-signed").await;

    // 7. Printed (to GTK's "Print to File"), in Thai, and read back.
    app.choose("rx-language", "th").await;
    let text = print_prescription(&app, home.path(), true).await;
    for want in [
        "ใบสั่งยา",
        "ปิ่นแก้ว ศรีสุข",
        "Warfarin",
        "Ibuprofen",
        "Dr. Somchai Wongsakul",
    ] {
        assert!(
            squeeze(&text).contains(&squeeze(want)),
            "{want} not on the prescription:\n{text}"
        );
    }
    app.shot("prescription-printed").await;

    app.set_value("consult-follow-up", &in_two_weeks).await;
    app.click("consult-close").await;
    app.wait_text("consult-notice", "Visit closed").await;
    app.shot("closed").await;

    // The next patient has a Cyrillic name: her prescription prints it.
    app.click("consult-call-next").await;
    app.wait_text("consult-patient-name", "Ольга Иванова").await;
    app.click("rx-new").await;
    prescribe(
        &app,
        "parac",
        "Paracetamol",
        "2 tablets",
        "every 6 hours if needed",
        "3",
        "24",
    )
    .await;
    app.click("rx-sign").await;
    app.el("rx-signed").await;
    app.choose("rx-language", "ru").await;
    let text = print_prescription(&app, home.path(), false).await;
    for want in ["Рецепт", "Ольга Иванова", "Paracetamol"] {
        assert!(
            squeeze(&text).contains(&squeeze(want)),
            "{want} not on the prescription:\n{text}"
        );
    }
    app.shot("second-prescription").await;
    app.quit().await;
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect()
}

/// Finds a drug by the start of its name and adds it with these directions.
async fn prescribe(
    app: &App,
    typed: &str,
    name: &str,
    dose: &str,
    how_often: &str,
    days: &str,
    quantity: &str,
) {
    app.fill("rx-drug-search", typed).await;
    app.click(&format!("rx-drug-{name}")).await;
    app.fill("rx-dose", dose).await;
    app.fill("rx-frequency", how_often).await;
    app.fill("rx-days", days).await;
    app.fill("rx-quantity", quantity).await;
    app.click("rx-add").await;
    app.el(&format!("rx-item-{name}")).await;
}

/// Prints the signed prescription to "Print to File" and returns its text.
async fn print_prescription(app: &App, home: &std::path::Path, first: bool) -> String {
    let out = home.join("Prescription.pdf");
    let _ = std::fs::remove_file(&out);
    app.click("rx-print").await;
    let dialog = print_dialog("Prescription").await;
    // "Print to File" is the one printer here: the first print selects it, later ones find
    // it chosen (the dialog offers the last printer used).
    xdotool(&["windowfocus", "--sync", &dialog]);
    if first {
        xdotool(&["key", "Down"]);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&["key", "Return"]);
    dialog_closes(&dialog).await;
    app.wait_text("rx-paper-done", "Print to File").await;
    file_appears(&out).await;
    run(Command::new("pdftotext").arg(&out).arg("-"))
}
