//! Cold start to a visible sign-in window: spawn the app through tauri-driver on an
//! existing (demo) clinic and time until the sign-in form is in the DOM. Prints JSON.
//! Run under Xvfb: `xvfb-run -a cargo run -p clinicdesk-e2e --bin coldstart`.

use std::time::Instant;

use clinicdesk_e2e::{workspace_root, App};

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().unwrap();
    let cli = workspace_root().join("target/debug/clinicdesk-cli");
    let ok = std::process::Command::new(&cli)
        .arg("demo")
        .arg(data.path())
        .output()
        .expect("clinicdesk-cli built");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut ms = vec![];
    for _ in 0..6 {
        let t = Instant::now();
        let app = App::launch_in("coldstart", data.path().to_path_buf(), None).await;
        app.el("login-form").await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        app.quit().await;
    }
    let first = ms.remove(0);
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{}",
        serde_json::json!({
            "bench": "cold start to visible sign-in window (tauri-driver session start → form in DOM)",
            "first_run_ms": first.round(),
            "runs": ms.len(),
            "median_ms": ms[ms.len() / 2].round(),
            "max_ms": ms.last().unwrap().round(),
        })
    );
}
