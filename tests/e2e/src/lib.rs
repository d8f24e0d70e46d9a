//! A harness for driving the real ClinicDesk window: it starts tauri-driver (which
//! starts WebKitWebDriver, which starts our binary) with a fresh data folder, and
//! gives tests short verbs over `data-testid`s. Screenshots go to
//! `artifacts/e2e/<test>/`. Run under Xvfb (`make test` does).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;
use thirtyfour::Capabilities;

pub use thirtyfour::{Key, WebElement};

const WAIT: Duration = Duration::from_secs(15);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn app_binary() -> PathBuf {
    let path = std::env::var_os("CLINICDESK_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/clinicdesk"));
    assert!(
        path.exists(),
        "{} missing: build the app first (make app)",
        path.display()
    );
    path
}

/// Two free ports, told apart: both are held while the second is picked (one picked after
/// the other was let go can be the same, and tauri-driver and WebKitWebDriver on one port
/// hang the run).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

pub struct App {
    pub driver: WebDriver,
    _tauri_driver: Driver,
    pub data_dir: PathBuf,
    _data: Option<tempfile::TempDir>,
    shots: PathBuf,
    n: usize,
}

impl App {
    /// A fresh, empty data folder: the app starts at the setup wizard.
    pub async fn launch(test: &str) -> App {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_path_buf();
        Self::launch_in(test, dir, Some(data)).await
    }

    /// An existing data folder (for tests that restart the app).
    pub async fn launch_in(test: &str, data_dir: PathBuf, keep: Option<tempfile::TempDir>) -> App {
        Self::launch_with(test, data_dir, keep, &[]).await
    }

    /// As `launch_in`, with more environment for the app (a home folder of its own).
    pub async fn launch_with(
        test: &str,
        data_dir: PathBuf,
        keep: Option<tempfile::TempDir>,
        env: &[(&str, &std::path::Path)],
    ) -> App {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, native) = free_ports();
        let tauri_driver =
            Command::new(std::env::var("TAURI_DRIVER").unwrap_or_else(|_| "tauri-driver".into()))
                .args([
                    "--port",
                    &port.to_string(),
                    "--native-port",
                    &native.to_string(),
                ])
                .env("CLINICDESK_DATA_DIR", &data_dir)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map(Driver)
                .expect("tauri-driver on PATH (cargo install tauri-driver --locked)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "tauri-driver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = Capabilities::new();
        caps.set("browserName", "wry").unwrap();
        caps.set(
            "tauri:options",
            serde_json::json!({ "application": app_binary() }),
        )
        .unwrap();
        // tauri-driver can accept the connection a moment before it serves sessions.
        let mut attempt = 0;
        let driver = loop {
            let session = WebDriver::new(format!("http://127.0.0.1:{port}"), caps.clone());
            let within = Duration::from_secs(90);
            match tokio::time::timeout(within, session)
                .await
                .unwrap_or_else(|_| panic!("no WebDriver session within {within:?}"))
            {
                Ok(d) => break d,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("WebDriver session attempt {attempt} failed: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("WebDriver session: {e}"),
            }
        };
        let shots = workspace_root().join("artifacts/e2e").join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let app = App {
            driver,
            _tauri_driver: tauri_driver,
            data_dir,
            _data: keep,
            shots,
            n: 0,
        };
        app.check_clock().await;
        app
    }

    /// The page, the app and this test read one clock. `make test-e2e` pins it (libfaketime,
    /// `CLINICDESK_E2E_PIN`) so that no test depends on the weekday or hour it runs at; this
    /// fails loudly if the window escaped the pin.
    async fn check_clock(&self) {
        let page = self
            .js("return Date.now();", vec![])
            .await
            .as_f64()
            .unwrap_or(0.0)
            / 1000.0;
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (page - ours).abs() < 120.0,
            "the window's clock ({page}) is not the test's ({ours})"
        );
        if let Ok(pin) = std::env::var("CLINICDESK_E2E_PIN") {
            let pin = chrono::DateTime::parse_from_rfc3339(&pin)
                .expect("CLINICDESK_E2E_PIN is RFC 3339")
                .timestamp() as f64;
            assert!(
                ours >= pin - 60.0 && ours < pin + 3600.0,
                "CLINICDESK_E2E_PIN is {pin} but the clock reads {ours}: libfaketime not loaded?"
            );
        }
    }

    fn sel(id: &str) -> By {
        By::Css(format!("[data-testid=\"{id}\"]"))
    }

    /// Waits for the element to be present and returns it.
    pub async fn el(&self, id: &str) -> WebElement {
        self.el_css(&format!("[data-testid=\"{id}\"]")).await
    }

    /// Waits for the first element matching a CSS selector and returns it.
    pub async fn el_css(&self, css: &str) -> WebElement {
        let start = Instant::now();
        loop {
            if let Ok(e) = self.driver.find(By::Css(css)).await {
                return e;
            }
            if start.elapsed() > WAIT {
                let body = self.driver.source().await.unwrap_or_default();
                let _ = self
                    .driver
                    .screenshot(&self.shots.join("failure.png"))
                    .await;
                panic!(
                    "nothing matches {css} after {WAIT:?}; page: {}",
                    &body[..body.len().min(3000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        self.driver
            .find_all(By::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub async fn exists(&self, id: &str) -> bool {
        !self
            .driver
            .find_all(Self::sel(id))
            .await
            .unwrap_or_default()
            .is_empty()
    }

    /// Clicks the element, first scrolled to the middle of the view: a sticky header (the
    /// consultation's patient header) must not cover it.
    pub async fn click(&self, id: &str) {
        let el = self.el(id).await;
        let _ = self
            .driver
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'});",
                vec![el.to_json().unwrap()],
            )
            .await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {id}: {e}"));
    }

    /// Types `text` into an input and reads the value back, retrying until the field holds
    /// exactly what was typed (a redraw or a focus change while typing would otherwise leave
    /// a mix). A trailing WebDriver key (Enter, Tab …) goes in the same burst of keys; the
    /// value checked is the text before it.
    pub async fn fill(&self, id: &str, text: &str) {
        let typed = match text.char_indices().last() {
            Some((i, c)) if ('\u{E000}'..='\u{F8FF}').contains(&c) => &text[..i],
            _ => text,
        };
        let mut value = String::new();
        for _attempt in 0..5 {
            let e = self.el(id).await;
            if e.clear().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if let Err(err) = e.send_keys(text).await {
                eprintln!("typing into {id}: {err}; retrying");
                continue;
            }
            value = self.value(id).await;
            if value == typed {
                return;
            }
            eprintln!("[data-testid={id}] holds {value:?} after typing {typed:?}; typing again");
        }
        panic!("[data-testid={id}] holds {value:?}, not {typed:?}, after 5 attempts");
    }

    /// The `value` of an input, select or textarea.
    pub async fn value(&self, id: &str) -> String {
        let e = self.el(id).await;
        let v = self
            .driver
            .execute("return arguments[0].value;", vec![e.to_json().unwrap()])
            .await;
        v.ok()
            .and_then(|v| v.json().as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Sets a `<select>` and fires the events Svelte listens to.
    pub async fn choose(&self, id: &str, value: &str) {
        let e = self.el(id).await;
        self.driver
            .execute(
                "arguments[0].value = arguments[1];
                 arguments[0].dispatchEvent(new Event('input', { bubbles: true }));
                 arguments[0].dispatchEvent(new Event('change', { bubbles: true }));",
                vec![e.to_json().unwrap(), serde_json::json!(value)],
            )
            .await
            .unwrap();
    }

    /// Sets an input's value as if typed (date and time inputs don't take keystrokes
    /// reliably over WebDriver).
    pub async fn set_value(&self, id: &str, value: &str) {
        self.choose(id, value).await;
    }

    /// Chooses the `<option>` of a `<select>` whose text is `text`, waiting for the option
    /// to appear (options often arrive with a command's answer after the select is drawn).
    pub async fn choose_text(&self, id: &str, text: &str) {
        let start = Instant::now();
        while !self.try_choose_text(id, text).await {
            assert!(
                start.elapsed() < WAIT,
                "no option {text:?} in [data-testid={id}] after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_choose_text(&self, id: &str, text: &str) -> bool {
        let e = self.el(id).await;
        self.driver
            .execute(
                "const s = arguments[0];
                 const o = [...s.options].find(o => o.text.trim() === arguments[1]);
                 if (!o) return false;
                 s.value = o.value;
                 s.dispatchEvent(new Event('input', { bubbles: true }));
                 s.dispatchEvent(new Event('change', { bubbles: true }));
                 return true;",
                vec![e.to_json().unwrap(), serde_json::json!(text)],
            )
            .await
            .is_ok_and(|r| r.json() == &serde_json::json!(true))
    }

    /// Runs a script in the page and returns its JSON result.
    pub async fn js(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.driver
            .execute(script, args)
            .await
            .unwrap()
            .json()
            .clone()
    }

    /// Presses a key in an element (e.g. `Key::Enter`).
    pub async fn press(&self, id: &str, key: impl Into<thirtyfour::TypingData>) {
        self.el(id).await.send_keys(key).await.unwrap();
    }

    /// Presses Alt with a letter, as a keyboard shortcut for the whole window.
    pub async fn alt(&self, letter: char) {
        self.driver
            .action_chain()
            .key_down(Key::Alt)
            .send_keys(letter.to_string())
            .key_up(Key::Alt)
            .perform()
            .await
            .unwrap_or_else(|e| panic!("Alt+{letter}: {e}"));
    }

    /// Clicks with the mouse at a point of the viewport (for widgets that read the pointer's
    /// position, like a calendar's time grid).
    pub async fn click_at(&self, (x, y): (i64, i64)) {
        self.driver
            .action_chain()
            .move_to(x, y)
            .click()
            .perform()
            .await
            .unwrap_or_else(|e| panic!("click at {x},{y}: {e}"));
    }

    /// Presses the mouse at `from`, moves to `to` in small steps (drag libraries wait for a
    /// few pixels of movement) and releases it there.
    pub async fn drag(&self, from: (i64, i64), to: (i64, i64)) {
        const STEPS: i64 = 8;
        let mut chain = self
            .driver
            .action_chain()
            .move_to(from.0, from.1)
            .click_and_hold();
        for i in 1..=STEPS {
            chain = chain.move_to(
                from.0 + (to.0 - from.0) * i / STEPS,
                from.1 + (to.1 - from.1) * i / STEPS,
            );
        }
        chain
            .release()
            .perform()
            .await
            .unwrap_or_else(|e| panic!("drag {from:?} → {to:?}: {e}"));
    }

    /// The first Monday-to-Friday at least `days` days ahead in the demo clinic's zone
    /// (Asia/Bangkok, UTC+7 all year), as YYYY-MM-DD.
    pub async fn clinic_weekday_ahead(&self, days: u32) -> String {
        let day = self
            .js(
                "const d = new Date(Date.now() + 7 * 3600e3 + arguments[0] * 86400e3);
                 while (d.getUTCDay() === 0 || d.getUTCDay() === 6) d.setUTCDate(d.getUTCDate() + 1);
                 return d.toISOString().slice(0, 10);",
                vec![serde_json::json!(days)],
            )
            .await;
        day.as_str().unwrap().to_string()
    }

    /// Moves the open calendar to `day` (YYYY-MM-DD) and waits until its title shows it
    /// (in English, formatted as the page does for en-GB).
    pub async fn show_calendar_day(&self, day: &str) {
        self.set_value("calendar-date", day).await;
        let title = self
            .js(
                "return new Intl.DateTimeFormat('en-GB', { year: 'numeric', month: 'long', day: 'numeric' })
                   .format(new Date(arguments[0] + 'T12:00:00'));",
                vec![serde_json::json!(day)],
            )
            .await;
        self.wait_text("calendar", title.as_str().unwrap()).await;
    }

    /// The centres of the calendar's time-grid rows for local times `hhmm` in the first day
    /// column, in viewport pixels. The grid is scrolled once so that their middle is in view:
    /// measure all the points of one gesture in one call, since a later scroll would move
    /// the earlier ones. Rows are the Calendar screen's: 07:00 to 20:00 by 15 minutes.
    pub async fn calendar_points<const N: usize>(&self, hhmm: [&str; N]) -> [(i64, i64); N] {
        let p = self
            .js(
                "const day = document.querySelector('[data-testid=calendar] .ec-body .ec-day');
                 const rows = (20 - 7) * 4;
                 const minutes = arguments[0].map(t => { const [h, m] = t.split(':').map(Number); return h * 60 + m; });
                 const offset = (r, min) => ((min - 7 * 60) / 15 + 0.5) * (r.height / rows);
                 const mid = (Math.min(...minutes) + Math.max(...minutes)) / 2;
                 let sc = day.parentElement;
                 while (sc && !(sc.scrollHeight > sc.clientHeight && /auto|scroll/.test(getComputedStyle(sc).overflowY))) sc = sc.parentElement;
                 if (sc) {
                   const r = day.getBoundingClientRect(), s = sc.getBoundingClientRect();
                   sc.scrollTop += r.top + offset(r, mid) - (s.top + s.height / 2);
                 }
                 const r = day.getBoundingClientRect();
                 return minutes.map(min => [Math.round(r.left + r.width / 2), Math.round(r.top + offset(r, min))]);",
                vec![serde_json::json!(hhmm.as_slice())],
            )
            .await;
        std::array::from_fn(|i| (p[i][0].as_i64().unwrap(), p[i][1].as_i64().unwrap()))
    }

    /// Switches to the window whose page has an element `id` (e.g. the board).
    pub async fn switch_to_window_with(&self, id: &str) {
        let start = Instant::now();
        loop {
            for w in self.driver.windows().await.unwrap() {
                self.driver.switch_to_window(w).await.unwrap();
                if self.exists(id).await {
                    return;
                }
            }
            assert!(start.elapsed() < WAIT, "no window shows [data-testid={id}]");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Signs in with a username and password (no second factor).
    pub async fn sign_in(&self, user: &str, password: &str) {
        self.fill("login-username", user).await;
        self.fill("login-password", password).await;
        self.click("login-submit").await;
        self.el("shell").await;
    }

    /// The element's text, once it is there. A screen that redraws between finding the
    /// element and reading it leaves a stale reference: find it again.
    pub async fn text(&self, id: &str) -> String {
        let start = Instant::now();
        loop {
            match self.el(id).await.text().await {
                Ok(t) => return t,
                Err(e) => assert!(start.elapsed() < WAIT, "reading [data-testid={id}]: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, id: &str, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Ok(e) = self.driver.find(Self::sel(id)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                    if start.elapsed() > WAIT {
                        let _ = self
                            .driver
                            .screenshot(&self.shots.join("failure.png"))
                            .await;
                        panic!("[data-testid={id}] says {t:?}, expected it to contain {needle:?}");
                    }
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "no [data-testid={id}] containing {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element's whole text (trimmed) is `expected`: "1 waiting" must not
    /// pass on "11 waiting".
    pub async fn wait_text_is(&self, id: &str, expected: &str) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < WAIT {
            if let Ok(e) = self.driver.find(Self::sel(id)).await {
                if let Ok(t) = e.text().await {
                    if t.trim() == expected {
                        return;
                    }
                    last = t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self
            .driver
            .screenshot(&self.shots.join("failure.png"))
            .await;
        panic!("[data-testid={id}] says {last:?}, expected exactly {expected:?}");
    }

    pub async fn wait_gone(&self, id: &str) {
        let start = Instant::now();
        while self.exists(id).await {
            assert!(start.elapsed() < WAIT, "[data-testid={id}] still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a numbered screenshot. Take it after asserting on the screen's text, so
    /// the picture shows the state the test checked.
    pub async fn shot(&mut self, name: &str) {
        self.n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        self.driver.screenshot(&path).await.unwrap();
    }

    pub async fn quit(self) {
        let _ = self.driver.clone().quit().await;
        // Dropping stops tauri-driver (and with it WebKitWebDriver and the app).
    }
}

/// tauri-driver, stopped when the test ends, also when it panics: a failed test must not
/// leave tauri-driver, WebKitWebDriver or the app running. SIGTERM first (a killed
/// tauri-driver leaves WebKitWebDriver behind), then whatever is left in its process group.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        // WebKitWebDriver and the app were started in tauri-driver's own process group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
}

/// A demo clinic (accounts, doctors, 2,000 patients, a week of appointments) made by
/// the command-line tool, in a fresh folder.
pub fn demo_clinic() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let cli = workspace_root().join("target/debug/clinicdesk-cli");
    assert!(
        cli.exists(),
        "{} missing: cargo build -p clinic-core --bin clinicdesk-cli",
        cli.display()
    );
    let out = Command::new(&cli)
        .arg("demo")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

/// The current TOTP code for a base32 secret, as an authenticator app shows it.
pub fn totp_now(secret_base32: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        "e2e".into(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now)
}

/// Waits until the next 30-second TOTP step, so a fresh code differs from the last one.
pub async fn next_totp_step() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() % 30_000;
    tokio::time::sleep(Duration::from_millis((30_000 - into) as u64 + 200)).await;
}

// The system print dialog (GTK's window), driven with xdotool.

pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (make deps installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn xdotool(args: &[&str]) -> String {
    run(std::process::Command::new("xdotool").args(args))
}

/// The print dialog's X window, once it is shown (it is titled with the paper's name).
pub async fn print_dialog(title: &str) -> String {
    let start = Instant::now();
    loop {
        let out = std::process::Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", title])
            .output()
            .expect("xdotool (make deps)");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !id.is_empty() {
            return id.lines().next().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no print dialog titled {title:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn dialog_closes(id: &str) {
    let start = Instant::now();
    while std::process::Command::new("xdotool")
        .args(["getwindowname", id])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the print dialog stays open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn file_appears(path: &std::path::Path) -> Vec<u8> {
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            if bytes.ends_with(b"%%EOF\n") || bytes.ends_with(b"%%EOF") {
                return bytes;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} was not written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
