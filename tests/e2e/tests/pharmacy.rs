//! The dispensary in the real window: the pharmacist receives two batches of amoxicillin with
//! different expiry dates, dispenses a signed prescription (first expiry, first out takes the
//! earlier batch; an expired batch on the shelf is skipped with a warning), prints the label
//! in Thai and reads it back, then dispenses part of a second prescription, which stays on
//! the queue.

use std::process::Command;
use std::time::Duration;

use clinicdesk_e2e::{
    demo_clinic, dialog_closes, file_appears, print_dialog, run, workspace_root, xdotool, App,
};

/// Runs one command-line operation as a demo account; its output line.
fn cli_as(data: &std::path::Path, user: &str, password: &str, op: &[&str]) -> String {
    let cli = workspace_root().join("target/debug/clinicdesk-cli");
    let out = Command::new(cli)
        .args(["as", data.to_str().unwrap(), user, password])
        .args(op)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{op:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pharmacist_receives_dispenses_first_expiry_first_prints_the_label_and_fills_in_part() {
    let data = demo_clinic();
    // Stock received in January that expired in February: on the shelf, expired, today.
    cli_as(
        data.path(),
        "pharmacist",
        "dispensary-demo",
        &[
            "--now",
            "2026-01-20T03:00:00Z",
            "receive",
            "Amoxicillin",
            "OLD-1",
            "2026-02-15",
            "20",
        ],
    );
    // Two signed prescriptions from the doctor, a Thai patient's first.
    for (given, family, qty, days) in [
        ("สมศักดิ์", "ใจดี", "21", "7"),
        ("Ирина", "Соколова", "30", "10"),
    ] {
        let id = cli_as(
            data.path(),
            "doctor",
            "consult-room-demo",
            &["signed-rx", given, family, "Amoxicillin", qty, days],
        );
        assert!(!id.is_empty());
    }

    let home = tempfile::tempdir().unwrap();
    let mut app = App::launch_with(
        "pharmacy",
        data.path().to_path_buf(),
        None,
        &[("HOME", home.path())],
    )
    .await;
    app.sign_in("pharmacist", "dispensary-demo").await;
    // The alerts count in the menu: the expired batch.
    app.wait_text("nav-badge-pharmacy", "1").await;
    app.click("nav-pharmacy").await;
    app.wait_text("pharm-alert-expired", "1").await;
    app.shot("alerts").await;

    // 1. Two deliveries of amoxicillin, the earlier-expiring one second.
    app.click("pharm-tab-stock").await;
    app.fill("stock-scan", "Amoxicillin").await;
    app.click("stock-item-Amoxicillin").await;
    app.wait_text("stock-chosen", "Amoxicillin").await;
    for (lot, expiry, qty) in [
        ("LATE-27", "2027-06-30", "100"),
        ("EARLY-26", "2026-09-30", "40"),
    ] {
        app.fill("receive-lot", lot).await;
        app.set_value("receive-expiry", expiry).await;
        app.fill("receive-qty", qty).await;
        app.fill("receive-cost", "2.50").await;
        app.click("receive-submit").await;
        app.wait_text("stock-notice", lot).await;
        app.el(&format!("stock-batch-{lot}")).await;
    }
    app.wait_text("stock-chosen-on-hand", "160").await;
    app.wait_text("stock-history", "LATE-27").await;
    app.shot("received").await;

    // 2. The first prescription: FEFO picks the earlier batch; the expired one is skipped.
    app.click("pharm-tab-dispense").await;
    app.wait_text("dispense-queue-count", "2").await;
    app.click("dispense-queue-0").await;
    app.wait_text("dispense-patient", "สมศักดิ์ ใจดี").await;
    app.wait_text("dispense-picks-0", "EARLY-26").await;
    // 5. The expired batch is skipped, and the window says so.
    app.wait_text("dispense-warning-0-0", "OLD-1").await;
    app.wait_text("dispense-warning-0-0", "skipped").await;
    app.shot("plan-fefo-expired-skipped").await;
    app.click("dispense-submit").await;
    app.wait_text("dispense-result", "EARLY-26 × 21").await;
    app.wait_text("dispense-status", "Dispensed").await;
    app.shot("dispensed").await;

    // 4. The label, in Thai, printed to "Print to File" and read back.
    app.choose("label-language", "th").await;
    let out = home.path().join("Label.pdf");
    app.click("label-print").await;
    let dialog = print_dialog("Label").await;
    xdotool(&["windowfocus", "--sync", &dialog]);
    xdotool(&["key", "Down"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&["key", "Return"]);
    dialog_closes(&dialog).await;
    app.wait_text("label-paper-done", "Print to File").await;
    file_appears(&out).await;
    let text = run(Command::new("pdftotext").arg(&out).arg("-"));
    for want in [
        "สมศักดิ์ ใจดี",
        "Amoxicillin 500 mg",
        "EARLY-26",
        "2026-09-30",
        "เลขที่ผลิต",
        "วิธีใช้",
    ] {
        assert!(
            squeeze(&text).contains(&squeeze(want)),
            "{want} not on the label:\n{text}"
        );
    }
    app.shot("label-printed").await;

    // 3. The second prescription, in part: 10 of 30. It stays on the queue, partly filled.
    app.wait_text("dispense-queue-count", "1").await;
    app.click("dispense-queue-0").await;
    app.wait_text("dispense-patient", "Ирина Соколова").await;
    app.fill("dispense-qty-0", "10").await;
    app.click("dispense-submit").await;
    app.wait_text("dispense-result", "EARLY-26 × 10").await;
    app.wait_text("dispense-status", "Partly dispensed").await;
    app.wait_text("dispense-remaining-0", "to dispense 20")
        .await;
    app.wait_text("dispense-queue-status-0", "Partly dispensed")
        .await;
    app.shot("partly-dispensed").await;

    // The shelf afterwards: 40 − 21 − 10 of the early batch, the late one untouched.
    app.click("pharm-tab-stock").await;
    app.fill("stock-scan", "Amoxicillin").await;
    app.click("stock-item-Amoxicillin").await;
    app.wait_text("stock-batch-EARLY-26", "9").await;
    app.wait_text("stock-batch-LATE-27", "100").await;
    app.shot("stock-after").await;
    app.quit().await;
}
