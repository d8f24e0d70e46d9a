//! The cashier in the real window: a visit made by the consultation and pharmacy flows (the
//! doctor prescribes and signs, the pharmacist dispenses) is invoiced, paid in part in cash
//! with the change shown, paid in full by card, its receipt printed and read back, and the day
//! closed with a counted-cash difference.

use std::process::Command;
use std::time::Duration;

use clinicdesk_e2e::{
    demo_clinic, dialog_closes, file_appears, print_dialog, run, workspace_root, xdotool, App,
};

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
async fn the_cashier_invoices_a_visit_takes_cash_then_card_prints_the_receipt_and_closes_the_day() {
    let data = demo_clinic();
    let d = data.path();
    cli_as(
        d,
        "admin",
        "clinic-admin-demo",
        &["set-price", "Amoxicillin", "500"],
    );
    cli_as(
        d,
        "pharmacist",
        "dispensary-demo",
        &["receive", "Amoxicillin", "CASH-1", "2027-01-31", "100"],
    );
    let rx = cli_as(
        d,
        "doctor",
        "consult-room-demo",
        &["signed-rx", "Анна", "Смирнова", "Amoxicillin", "21", "7"],
    );
    cli_as(d, "pharmacist", "dispensary-demo", &["dispense", &rx, "21"]);

    let home = tempfile::tempdir().unwrap();
    let mut app =
        App::launch_with("billing", d.to_path_buf(), None, &[("HOME", home.path())]).await;
    app.sign_in("cashier", "cash-drawer-demo").await;
    app.click("nav-billing").await;

    // 1. The visit's invoice: the consultation and the dispensed drug, filled in.
    app.wait_text("bill-visit-0", "Анна Смирнова").await;
    app.shot("visits-to-bill").await;
    app.click("bill-visit-0").await;
    app.wait_text("invoice-patient", "Анна Смирнова").await;
    app.wait_text("invoice-line-1", "Amoxicillin").await;
    app.wait_text("invoice-line-1", "105.00").await;
    app.click("invoice-issue").await;
    app.wait_text("invoice-status", "Issued").await;
    let number = app.text("invoice-number").await;
    assert!(number.contains("-2026-000001"), "{number}");
    let total = app.text("invoice-total").await;
    app.shot("invoice-issued").await;

    // 2. Part in cash: 100.00 from a 500 note, the change shown before it is taken.
    app.fill("pay-amount", "100").await;
    app.fill("pay-tendered", "500").await;
    app.wait_text("pay-change", "400.00").await;
    app.shot("cash-change-due").await;
    app.click("pay-submit").await;
    app.wait_text("invoice-status", "Partly paid").await;
    app.wait_text("invoice-paid", "100.00").await;
    // The patient's balance across their invoices.
    app.wait_text("patient-balance", "505.00").await;

    // 3. The rest by card (the amount due is filled in), then the receipt, printed.
    app.choose("pay-method", "card").await;
    app.click("pay-submit").await;
    app.wait_text("invoice-status", "Paid").await;
    app.wait_text("invoice-balance", "0.00").await;
    app.shot("paid").await;
    let out = home.path().join("Receipt.pdf");
    app.click("receipt-print").await;
    let dialog = print_dialog("Receipt").await;
    xdotool(&["windowfocus", "--sync", &dialog]);
    xdotool(&["key", "Down"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&["key", "Return"]);
    dialog_closes(&dialog).await;
    app.wait_text("receipt-paper-done", "Print to File").await;
    file_appears(&out).await;
    let text = run(Command::new("pdftotext").arg(&out).arg("-"));
    let total_figure = total.split_whitespace().next().unwrap().to_string();
    for want in ["Receipt", "Анна Смирнова", &number, &total_figure, "Card"] {
        assert!(
            squeeze(&text).contains(&squeeze(want)),
            "{want} not on the receipt:\n{text}"
        );
    }
    app.shot("receipt-printed").await;

    // 4. The day's close: 100.00 cash expected, 90.00 counted; the difference needs a note.
    app.click("bill-tab-close").await;
    app.wait_text("close-expected", "100.00").await;
    app.fill("close-count-50", "1").await;
    app.fill("close-count-20", "2").await;
    app.wait_text("close-counted", "90.00").await;
    app.wait_text("close-difference", "-10.00").await;
    app.click("close-submit").await;
    app.wait_text("close-error", "Note").await;
    app.fill("close-note", "a 10 note missing from the drawer")
        .await;
    app.click("close-submit").await;
    app.wait_text("close-done", "closed").await;
    app.shot("day-closed").await;
    app.quit().await;
}
