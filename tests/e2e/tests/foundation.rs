//! Fresh data folder → setup wizard → admin signs in with TOTP → creates a receptionist
//! → signs out → the receptionist must change the password → sees only their screens
//! → five wrong passwords → the delay is shown.

use clinicdesk_e2e::{totp_now, App};

const ADMIN_PW: &str = "violet-tram-Kettle";
const RECEPTION_PW: &str = "Front-desk-start-1";
const RECEPTION_NEW_PW: &str = "Front-desk-mine-22";

#[tokio::test(flavor = "multi_thread")]
async fn setup_admin_totp_staff_forced_change_and_lockout() {
    let mut app = App::launch("foundation").await;

    // Setup wizard, step 1: the clinic. An empty name is refused before moving on.
    app.el("setup").await;
    app.shot("setup-wizard").await;
    app.click("setup-next").await;
    app.wait_text("setup-error", "Clinic name").await;
    app.fill("setup-clinic-name", "Riverside Family Clinic")
        .await;
    app.fill("setup-clinic-address", "12 Sukhumvit Rd, Bangkok")
        .await;
    app.fill("setup-clinic-phone", "+66 2 123 4567").await;
    app.choose("setup-currency", "THB").await;
    app.choose("setup-time-zone", "Asia/Bangkok").await;
    app.click("setup-next").await;

    // Step 2: the first admin. A weak password comes back from Rust as a translated error.
    app.fill("setup-admin-name", "Anna Admin").await;
    app.fill("setup-admin-username", "admin").await;
    app.fill("setup-admin-email", "anna@clinic.example").await;
    app.fill("setup-admin-password", "password123").await;
    app.fill("setup-admin-confirm", "password123").await;
    app.click("setup-create").await;
    app.wait_text("setup-error", "too easy to guess").await;
    app.shot("setup-weak-password").await;
    app.fill("setup-admin-password", ADMIN_PW).await;
    app.fill("setup-admin-confirm", ADMIN_PW).await;
    app.click("setup-create").await;

    // Step 3: the recovery key, shown once.
    let key = app.text("recovery-key").await;
    assert_eq!(key.len(), 39, "8 groups of 4 with dashes: {key}");
    app.shot("setup-recovery-key").await;
    app.click("recovery-stored").await;
    app.click("setup-finish").await;

    // Admin signs in and must enrol TOTP; the test computes the code from the shown secret.
    app.fill("login-username", "admin").await;
    app.fill("login-password", ADMIN_PW).await;
    app.click("login-submit").await;
    let secret = app.text("totp-secret").await;
    assert!(app.exists("totp-qr").await);
    app.shot("totp-enrolment").await;
    app.fill("totp-code", "000000").await;
    app.click("totp-submit").await;
    app.wait_text("login-error", "wrong or has expired").await;
    app.fill("totp-code", &totp_now(&secret)).await;
    app.click("totp-submit").await;
    app.el("recovery-codes").await;
    assert_eq!(
        app.count("[data-testid=recovery-codes] li").await,
        10,
        "ten recovery codes"
    );
    app.shot("recovery-codes").await;
    app.click("codes-continue").await;

    // The admin's shell offers the admin screens.
    app.wait_text("current-user", "Anna Admin").await;
    for screen in ["home", "staff", "audit", "settings", "account"] {
        assert!(
            app.exists(&format!("nav-{screen}")).await,
            "admin sees {screen}"
        );
    }
    app.shot("admin-home").await;

    // Create a receptionist.
    app.click("nav-staff").await;
    app.click("staff-new").await;
    app.fill("staff-full-name", "Rita Reception").await;
    app.fill("staff-username", "rita").await;
    app.fill("staff-email", "rita@clinic.example").await;
    app.fill("staff-password", RECEPTION_PW).await;
    app.shot("staff-form").await;
    // Locking keeps what was typed: unlock with the password and the form is still filled.
    app.click("lock-button").await;
    app.el("lock-screen").await;
    app.fill("unlock-password", "not-the-password").await;
    app.click("unlock-submit").await;
    app.wait_text("unlock-error", "Wrong username or password")
        .await;
    app.shot("lock-screen").await;
    app.fill("unlock-password", ADMIN_PW).await;
    app.click("unlock-submit").await;
    app.wait_gone("lock-screen").await;
    let kept = app.el("staff-full-name").await.prop("value").await.unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("Rita Reception"),
        "the form survived the lock"
    );
    app.click("staff-save").await;
    app.wait_text("staff-notice", "rita").await;
    app.wait_text("staff-row-rita", "Receptionist").await;
    app.shot("staff-created").await;

    // Keys: a new recovery key (shown once), then a re-key of the database with its progress.
    app.click("nav-settings").await;
    app.click("keys-recovery-rotate").await;
    let new_key = app.text("keys-recovery-key").await;
    assert_eq!(new_key.len(), 39, "8 groups of 4: {new_key}");
    assert_ne!(new_key, key, "a new recovery key");
    app.shot("new-recovery-key").await;
    app.click("keys-recovery-stored").await;
    app.click("keys-rekey").await;
    app.el("keys-rekey-confirm").await;
    app.click("keys-rekey-go").await;
    app.wait_text("keys-notice", "The database has a new key")
        .await;
    app.shot("rekeyed").await;

    // The audit log shows the creation, the new keys and an intact chain with its head.
    app.click("nav-audit").await;
    app.wait_text("audit-chain-status", "Chain intact").await;
    app.wait_text("audit-table", "Rita Reception").await;
    app.wait_text("audit-table", "Re-keyed the database").await;
    app.wait_text("audit-head", "Newest entry").await;
    app.shot("audit-log").await;

    app.click("logout-button").await;

    // The receptionist's first sign-in forces a password change.
    app.fill("login-username", "rita").await;
    app.fill("login-password", RECEPTION_PW).await;
    app.click("login-submit").await;
    app.el("change-password-forced").await;
    app.shot("forced-password-change").await;
    app.fill("cp-current", RECEPTION_PW).await;
    app.fill("cp-new", RECEPTION_NEW_PW).await;
    app.fill("cp-confirm", RECEPTION_NEW_PW).await;
    app.click("cp-submit").await;

    // Only the receptionist's screens.
    app.wait_text("current-user", "Rita Reception").await;
    assert!(app.exists("nav-home").await && app.exists("nav-account").await);
    for screen in ["staff", "audit", "settings"] {
        assert!(
            !app.exists(&format!("nav-{screen}")).await,
            "receptionist must not see {screen}"
        );
    }
    app.shot("receptionist-home").await;

    // Language is remembered per user: switch to Thai.
    app.choose("language-select", "th").await;
    app.wait_text("screen-title", "หน้าหลัก").await;
    app.shot("receptionist-thai").await;
    app.click("logout-button").await;

    // Five wrong passwords: the fifth starts the delay, and the screen says how long.
    app.choose("login-language", "en").await;
    for _ in 0..4 {
        app.fill("login-username", "rita").await;
        app.fill("login-password", "not-her-password").await;
        app.click("login-submit").await;
        app.wait_text("login-error", "Wrong username or password")
            .await;
    }
    app.fill("login-password", "not-her-password").await;
    app.click("login-submit").await;
    let msg = app.wait_text("login-error", "Wait 30 seconds").await;
    assert!(msg.contains("Too many failed attempts"), "{msg}");
    app.shot("lockout-delay").await;
    // Even the right password waits now.
    app.fill("login-password", RECEPTION_NEW_PW).await;
    app.click("login-submit").await;
    app.wait_text("login-error", "Too many failed attempts")
        .await;

    app.quit().await;
}
