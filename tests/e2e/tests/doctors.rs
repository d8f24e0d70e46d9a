//! The admin's side of reception: a new doctor with weekly hours, a refused duplicate licence,
//! and a leave; then the front desk's booking offers exactly those hours and refuses the leave.

use clinicdesk_e2e::{demo_clinic, App};

#[tokio::test(flavor = "multi_thread")]
async fn admin_sets_hours_and_leave_and_the_front_desk_books_by_them() {
    let data = demo_clinic();
    let mut app = App::launch_in("doctors", data.path().to_path_buf(), None).await;
    app.sign_in("admin", "clinic-admin-demo").await;
    app.click("nav-doctors").await;

    // A new dermatologist.
    app.click("doctor-new").await;
    app.fill("doctor-name", "Dr. Mira Castellanos").await;
    app.choose_text("doctor-spec", "Dermatology").await;
    app.fill("doctor-licence", "MD-77777").await;
    app.fill("doctor-fee", "650").await;
    app.fill("doctor-room", "205").await;
    app.click("doctor-save").await;
    app.wait_text("doctors-notice", "Changes saved").await;
    app.wait_text("doctor-row-MD-77777", "Dr. Mira Castellanos")
        .await;
    app.wait_text("doctor-row-MD-77777", "650.00").await;

    // Another doctor under Dr. Somchai's licence number is refused, naming the field.
    app.click("doctor-new").await;
    app.fill("doctor-name", "Dr. Copy").await;
    app.fill("doctor-licence", "MD-10000").await;
    app.click("doctor-save").await;
    app.wait_text("doctors-error", "Licence number is already taken")
        .await;
    app.shot("duplicate-licence").await;
    app.click("doctor-cancel").await;

    // Her hours: Mondays 09:00–12:00 in 20-minute slots.
    app.click("doctor-hours-MD-77777").await;
    app.el("hours-form").await;
    assert!(
        !app.exists("hours-day-0").await,
        "a new doctor has no hours yet"
    );
    app.click("hours-add").await;
    app.choose_text("hours-day-0", "Monday").await;
    app.set_value("hours-start-0", "09:00").await;
    app.set_value("hours-end-0", "12:00").await;
    app.fill("hours-slot-0", "20").await;
    app.click("hours-save").await;
    app.wait_text("doctors-notice", "Working hours saved").await;
    app.shot("hours-saved").await;

    // Dr. Somchai on leave for a whole weekday ahead.
    let day = app.clinic_weekday_ahead(10).await;
    app.choose_text("exception-doctor", "Dr. Somchai Wongsakul")
        .await;
    app.choose("exception-kind", "leave").await;
    app.set_value("exception-from", &format!("{day}T00:00"))
        .await;
    app.set_value("exception-to", &format!("{day}T23:59")).await;
    app.fill("exception-reason", "Medical conference").await;
    app.click("exception-add").await;
    app.wait_text("exception-list", "Medical conference").await;
    app.wait_text("exception-list", "Dr. Somchai Wongsakul")
        .await;
    app.shot("leave-added").await;

    // The front desk opens a patient and looks for Dr. Castellanos's time in a week from `day`.
    app.click("logout-button").await;
    app.sign_in("reception", "front-desk-demo").await;
    app.click("nav-reception").await;
    // Enter straight after typing, before the answer is back, opens the first result of
    // what was typed (not of the recent patients the box showed a moment before).
    // The empty box lists recent patients. Type the family name of one further down, and
    // Enter in the same burst of keys (well inside the box's 120 ms pause): that patient
    // opens, not the recent one the box showed a moment before.
    let family = |row: &str| row.split(',').next().unwrap_or_default().trim().to_string();
    let recent = family(&app.text("search-result-0").await);
    let mut target = None;
    for i in 1..20 {
        let f = family(&app.text(&format!("search-result-{i}")).await);
        if f != recent && f.is_ascii() {
            target = Some(f);
            break;
        }
    }
    let target = target.expect("a recent patient with another Latin family name");
    app.fill("patient-search", &format!("{target}\u{E007}"))
        .await;
    let opened = app.text("patient-name").await;
    assert!(
        opened.starts_with(&format!("{target},")),
        "typed {target:?} and Enter, but {opened:?} opened"
    );
    app.alt('b').await;
    app.choose_text("booking-spec", "Dermatology").await;
    app.choose_text("booking-doctor", "Dr. Mira Castellanos")
        .await;
    app.set_value("booking-from", &day).await;
    app.set_value("booking-days", "7").await;
    app.click("booking-find").await;
    // One Monday in any seven days: 09:00, 09:20 … 11:40, nine slots.
    app.wait_text("booking-slots", "11:40").await;
    let slots = app.wait_text("booking-slots", "09:20").await;
    assert!(
        !slots.contains("09:15") && !slots.contains("12:00"),
        "only her 20-minute Monday slots: {slots}"
    );
    assert_eq!(
        app.count("[data-testid=booking-slots] button").await,
        9,
        "{slots}"
    );
    app.shot("new-doctor-slots").await;

    // Dr. Somchai has no free time on his leave day, and a booking typed in is refused.
    app.choose_text("booking-spec", "General practice").await;
    app.choose_text("booking-doctor", "Dr. Somchai Wongsakul")
        .await;
    app.set_value("booking-days", "1").await;
    app.click("booking-find").await;
    app.el("booking-no-slots").await;
    app.set_value("booking-manual-day", &day).await;
    app.set_value("booking-manual-time", "09:00").await;
    app.click("booking-manual-submit").await;
    app.wait_text("booking-error", "during leave").await;
    app.shot("leave-refused").await;

    app.quit().await;
}
