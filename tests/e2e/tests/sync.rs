//! Sync in the real window, against the real server binary on loopback: the admin connects
//! the demo clinic's PC to a new server, the header shows it synced, a join code is made,
//! and a second, empty PC joins from its set-up screen, downloads the clinic and the same
//! admin signs in there. Then the first PC revokes the second, whose header reports it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clinicdesk_e2e::{demo_clinic, workspace_root, App};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server on a free loopback port: (process, address, certificate, first join code).
fn start_server(dir: &std::path::Path) -> (Server, String, String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = workspace_root().join("target/debug/clinicdesk-server");
    assert!(
        bin.exists(),
        "{} missing: cargo build -p clinic-server",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args(["serve", "--data"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut code = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(c) = line
            .split("join code for its first PC (valid 7 days): ")
            .nth(1)
        {
            code = c.trim().to_string();
        }
        if line.starts_with("listening on") {
            break;
        }
    }
    // Keep draining what it prints.
    std::thread::spawn(move || for _ in lines {});
    let cert = std::fs::read_to_string(dir.join("server.crt")).unwrap();
    (
        Server(child),
        format!("https://localhost:{port}"),
        cert,
        code,
    )
}

/// Waits (longer than the harness's default: a whole clinic moves) for text in an element.
async fn wait_long(app: &App, id: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        if app.exists(id).await {
            let t = app.text(id).await;
            if t.contains(needle) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "[data-testid={id}] says {t:?}, not {needle:?}"
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no [data-testid={id}]"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn fill_connect(app: &App, prefix: &str, url: &str, cert: &str, code: &str, name: &str) {
    app.fill(&format!("{prefix}-url"), url).await;
    app.set_value(&format!("{prefix}-cert"), cert).await;
    app.fill(&format!("{prefix}-code"), code).await;
    app.fill(&format!("{prefix}-name"), name).await;
    app.click(&format!("{prefix}-submit")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_connects_the_clinic_and_a_new_pc_joins_and_signs_in() {
    let server_dir = tempfile::tempdir().unwrap();
    let (_server, url, cert, first_code) = start_server(server_dir.path());
    let data = demo_clinic();
    let mut a = App::launch_in("sync-first-pc", data.path().to_path_buf(), None).await;
    a.sign_in("admin", "clinic-admin-demo").await;
    assert!(
        !a.exists("sync-badge").await,
        "a PC without a server shows no sync state"
    );
    a.click("nav-sync").await;

    // A wrong code is refused in words, and nothing is connected.
    fill_connect(
        &a,
        "sync-connect",
        &url,
        &cert,
        "AAAA-BBBB-CCCC-DDDD-EEEE",
        "Front desk",
    )
    .await;
    wait_long(&a, "sync-connect-error", "did not accept this join code").await;
    a.shot("wrong-code").await;

    fill_connect(&a, "sync-connect", &url, &cert, &first_code, "Front desk").await;
    wait_long(&a, "sync-state", "Synced").await;
    a.wait_text("sync-clinic", "My clinic").await;
    wait_long(&a, "sync-badge", "Synced").await;
    a.shot("connected").await;

    a.click("sync-invite").await;
    let code = a.wait_text("sync-invite-code", "-").await;
    assert_eq!(code.trim().len(), 24, "{code}");
    a.shot("join-code").await;
    a.click("sync-invite-done").await;

    // A second PC with nothing on it joins from its set-up screen.
    let mut b = App::launch("sync-new-pc").await;
    b.click("setup-join-start").await;
    fill_connect(&b, "setup-join", &url, &cert, code.trim(), "Room 2").await;
    b.el("setup-join-progress").await;
    b.shot("downloading").await;
    wait_long(&b, "setup-join-done", "Sign in").await;
    b.click("setup-join-login").await;
    b.sign_in("admin", "clinic-admin-demo").await;
    wait_long(&b, "sync-badge", "Synced").await;
    b.click("nav-sync").await;
    wait_long(&b, "sync-devices", "Room 2").await;
    wait_long(&b, "sync-devices", "Front desk").await;
    b.shot("new-pc-signed-in").await;

    // The first PC sees both, and which PC let the second in (revoking a lost PC leaves the
    // PCs it let in, so the list says); in each language.
    a.click("nav-home").await;
    a.click("nav-sync").await;
    wait_long(&a, "sync-devices", "Room 2").await;
    let codes = a
        .js(
            "return [...document.querySelectorAll('[data-testid^=sync-invited-by-]')].map(e => [e.dataset.testid, e.textContent.trim()])",
            vec![],
        )
        .await;
    let rows = codes.as_array().unwrap();
    let first_code = a.text("sync-summary").await;
    assert!(
        rows.iter()
            .any(|r| r[1].as_str() != Some("—") && first_code.contains(r[1].as_str().unwrap())),
        "the new PC's row doesn't name the PC that let it in: {rows:?} / {first_code}"
    );
    for lang in ["ru", "th", "en"] {
        a.choose("language-select", lang).await;
        a.wait_text("nav-sync", "").await;
        if lang != "en" {
            a.shot(&format!("devices-{lang}")).await;
        }
    }
    wait_long(&a, "sync-devices", "Room 2").await;
    let row = a
        .js(
            "return [...document.querySelectorAll('[data-testid^=sync-revoke-]')].map(e => e.dataset.testid)",
            vec![],
        )
        .await;
    let revoke = row.as_array().unwrap()[0].as_str().unwrap().to_string();
    a.click(&revoke).await;
    a.click("sync-revoke-go").await;
    wait_long(&a, "sync-notice", "was revoked").await;
    a.shot("revoked").await;
    wait_long(&b, "sync-badge-error", "revoked").await;
    b.shot("new-pc-revoked").await;
    b.quit().await;
    a.quit().await;
}
