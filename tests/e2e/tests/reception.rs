//! The front desk's day in the real window: register a patient (and be warned the second
//! time), find them by part of the name, book a free slot, fail to book a clashing one,
//! check them in for a ticket; a doctor calls the next patient and the board shows it.

use clinicdesk_e2e::{demo_clinic, App, Key};

#[tokio::test(flavor = "multi_thread")]
async fn register_find_book_clash_check_in_call_and_board() {
    let data = demo_clinic();
    let mut app = App::launch_in("reception", data.path().to_path_buf(), None).await;

    app.sign_in("reception", "front-desk-demo").await;
    app.click("nav-reception").await;
    app.el("patient-search").await;
    app.shot("reception-start").await;

    // Register a new patient.
    app.click("patient-new").await;
    app.fill("pf-given", "Zelda").await;
    app.fill("pf-family", "Quinterova").await;
    app.set_value("pf-birth", "1985-04-12").await;
    app.fill("pf-phone-0", "+66 89 555 0101").await;
    app.click("pf-allergy-add").await;
    app.fill("pf-allergy-substance-0", "Penicillin").await;
    app.shot("register-form").await;
    app.click("pf-save").await;
    app.wait_text("reception-notice", "Registered").await;
    let mrn = app.text("patient-mrn").await;
    assert!(mrn.contains('-'), "record number {mrn}");
    app.wait_text("patient-allergies", "Penicillin").await;
    app.shot("registered").await;

    // The same person again: the duplicate warning, and opening the existing record.
    app.click("patient-new").await;
    app.fill("pf-given", "zelda").await;
    app.fill("pf-family", "QUINTEROVA").await;
    app.set_value("pf-birth", "1985-04-12").await;
    app.click("pf-save").await;
    app.wait_text("duplicate-warning", &mrn).await;
    app.wait_text("duplicate-warning", "same name and date of birth")
        .await;
    app.shot("duplicate-warning").await;
    app.click("duplicate-open-0").await;
    app.wait_text("patient-mrn", &mrn).await;

    // Find her by part of the family name, from the keyboard.
    app.fill("patient-search", "quinte").await;
    app.wait_text("search-result-0", "Quinterova").await;
    app.press("patient-search", Key::Enter).await;
    app.wait_text("patient-name", "Quinterova").await;
    app.shot("found-by-partial-name").await;

    // Locked with the chart open: nothing of it is shown, reachable by Tab, or left in the
    // accessibility tree; unlocking brings it back as it was.
    app.click("lock-button").await;
    app.el("lock-screen").await;
    let shown = app.js("return document.body.innerText;", vec![]).await;
    let shown = shown.as_str().unwrap();
    assert!(
        !shown.contains("Quinterova") && !shown.contains(&mrn) && !shown.contains("Penicillin"),
        "the chart shows through the lock: {shown}"
    );
    let frame = app
        .js("const f = document.querySelector('[data-testid=app-frame]'); return [f.hidden, f.inert, f.getAttribute('aria-hidden'), getComputedStyle(f).display];", vec![])
        .await;
    assert_eq!(
        frame,
        serde_json::json!([true, true, "true", "none"]),
        "the screen behind the lock is hidden, inert and out of the accessibility tree"
    );
    for _ in 0..8 {
        app.driver
            .action_chain()
            .send_keys(Key::Tab)
            .perform()
            .await
            .unwrap();
        let inside = app.js("return !!document.activeElement && !!document.activeElement.closest('[data-testid=lock-screen]');", vec![]).await;
        assert_eq!(
            inside,
            serde_json::json!(true),
            "Tab leaves the lock screen"
        );
    }
    app.shot("locked-window").await;
    app.fill("unlock-password", "front-desk-demo").await;
    app.click("unlock-submit").await;
    app.wait_gone("lock-screen").await;
    app.wait_text("patient-name", "Quinterova").await;

    // Book the first free slot with the doctor who signs in as `doctor`: Alt+B opens booking.
    app.alt('b').await;
    app.choose_text("booking-spec", "General practice").await;
    app.choose_text("booking-doctor", "Dr. Somchai Wongsakul")
        .await;
    app.click("booking-find").await;
    // The slots arrive after a round trip: wait for them rather than look once.
    let slot = app.el_css("[data-testid=booking-slots] button").await;
    let start = slot.attr("data-start").await.unwrap().expect("slot start");
    app.shot("free-slots").await;
    slot.click().await.unwrap();
    app.wait_text("reception-notice", "Booked").await;
    // Confirm it; the status history shows who did what.
    app.wait_text("patient-appointments", "Scheduled").await;
    app.click("appt-confirm").await;
    app.wait_text("patient-appointments", "Confirmed").await;
    app.click("appt-history").await;
    app.wait_text("appt-history-list", "Scheduled → Confirmed")
        .await;
    app.wait_text("appt-history-list", "Nok Siriporn").await;
    app.shot("appointment-history").await;

    // Start moving it, change your mind and open someone else: Alt+B books for them, it
    // doesn't move Zelda's appointment.
    app.click("appt-move").await;
    app.wait_text("booking-panel", "Move the appointment of Zelda Quinterova")
        .await;
    app.fill("patient-search", "Smith\u{E007}").await;
    app.wait_text("patient-name", "Smith").await;
    app.alt('b').await;
    app.wait_text("booking-panel", "Book for").await;
    assert!(
        !app.text("booking-panel")
            .await
            .contains("Move the appointment"),
        "Alt+B after Move must book, not move"
    );
    app.click("booking-close").await;
    app.fill("patient-search", "quinte\u{E007}").await;
    app.wait_text("patient-name", "Quinterova").await;

    // The same time again: the clash is refused and named.
    app.click("patient-book").await;
    app.choose_text("booking-spec", "General practice").await;
    app.choose_text("booking-doctor", "Dr. Somchai Wongsakul")
        .await;
    let local = app
        .js(
            "const p = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Bangkok', hour12: false, year: 'numeric',
                 month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(new Date(arguments[0]));
             const g = t => p.find(x => x.type === t).value;
             return [g('year') + '-' + g('month') + '-' + g('day'), g('hour') + ':' + g('minute')];",
            vec![serde_json::json!(start)],
        )
        .await;
    app.set_value("booking-manual-day", local[0].as_str().unwrap())
        .await;
    app.set_value("booking-manual-time", local[1].as_str().unwrap())
        .await;
    app.click("booking-manual-submit").await;
    let msg = app
        .wait_text("booking-error", "already has an appointment")
        .await;
    assert!(
        msg.contains(local[1].as_str().unwrap()),
        "the error names the clashing time: {msg}"
    );
    app.shot("clash-refused").await;
    app.click("booking-close").await;

    // Check in as a walk-in (Alt+C) and get a ticket.
    app.alt('c').await;
    app.choose_text("checkin-spec", "General practice").await;
    app.click("checkin-walkin").await;
    let ticket = app.text("ticket-number").await;
    assert!(ticket.starts_with("C-"), "ticket {ticket}");
    app.wait_text("queue-list", &ticket).await;
    app.shot("checked-in").await;

    // The waiting-room board in its own window.
    app.click("open-board").await;
    app.switch_to_window_with("board").await;
    app.wait_text_is("board-waiting", "Waiting: 1").await;
    app.shot("board-waiting").await;
    app.switch_to_window_with("shell").await;

    // The calendar shows the booking.
    app.click("nav-calendar").await;
    app.el("calendar").await;
    app.shot("calendar-all-doctors").await;
    app.choose_text("calendar-doctor", "Dr. Somchai Wongsakul")
        .await;
    app.click("calendar-week").await;
    // The first free slot may fall in next week (a run on a Saturday night): go to its day.
    app.set_value("calendar-date", local[0].as_str().unwrap())
        .await;
    app.wait_text("calendar", "Quinterova").await;
    app.shot("calendar-week").await;

    // A doctor calls the next patient.
    app.click("logout-button").await;
    app.sign_in("doctor", "consult-room-demo").await;
    app.click("nav-queue").await;
    app.click("queue-call-next").await;
    app.wait_text("queue-current-number", &ticket).await;
    app.wait_text("queue-current-patient", "Quinterova").await;
    app.shot("doctor-called").await;

    // The board shows the number and the room.
    app.switch_to_window_with("board").await;
    app.wait_text(&format!("board-entry-{ticket}"), "101").await;
    app.shot("board-called").await;

    app.quit().await;
}

/// The calendar's own gestures: clicking an empty slot books it, dragging an appointment
/// moves it, and a drag into the lunch break is refused by the same checks and undone.
#[tokio::test(flavor = "multi_thread")]
async fn calendar_click_to_book_and_drag_to_move() {
    let data = demo_clinic();
    let mut app = App::launch_in("calendar", data.path().to_path_buf(), None).await;
    app.sign_in("reception", "front-desk-demo").await;
    app.click("nav-calendar").await;
    app.el("calendar").await;
    app.choose_text("calendar-doctor", "Dr. Somchai Wongsakul")
        .await;
    // Past the demo's week of appointments: the doctor works there and nothing is booked.
    let day = app.clinic_weekday_ahead(10).await;
    app.show_calendar_day(&day).await;

    // Click the empty 09:00 slot, find a patient, book.
    let [at] = app.calendar_points(["09:00"]).await;
    app.click_at(at).await;
    app.wait_text("calendar-booking", &format!("{day} 09:00"))
        .await;
    app.fill("calendar-patient-search", "a").await;
    app.click("calendar-patient-find").await;
    let pick = app.text("calendar-pick-0").await;
    // "Family, Given · birth date · record number"; the calendar titles events "Given Family".
    let (family, given) = pick.split(" · ").next().unwrap().split_once(", ").unwrap();
    let name = format!("{given} {family}");
    app.shot("calendar-click-to-book").await;
    app.click("calendar-pick-0").await;
    app.wait_text("calendar-notice", &format!("{day} 09:00"))
        .await;
    app.wait_text("calendar", &format!("09:00 {name}")).await;
    app.shot("calendar-booked").await;

    // Drag it an hour later: rescheduled in the database, drawn at 10:00 after reloading.
    let [from, to] = app.calendar_points(["09:00", "10:00"]).await;
    app.drag(from, to).await;
    app.wait_text("calendar-notice", &format!("Moved to {day} 10:00"))
        .await;
    app.wait_text("calendar", &format!("10:00 {name}")).await;
    app.shot("calendar-dragged").await;

    // Into the lunch break: outside working hours, refused and put back.
    let [from, to] = app.calendar_points(["10:00", "12:15"]).await;
    app.drag(from, to).await;
    app.wait_text("calendar-error", "Outside the doctor's working hours")
        .await;
    app.wait_text("calendar", &format!("10:00 {name}")).await;
    assert!(
        !app.text("calendar")
            .await
            .contains(&format!("12:15 {name}")),
        "a refused move must not stay drawn"
    );
    assert!(
        !app.exists("calendar-notice").await,
        "the earlier \"Moved\" notice is gone"
    );
    app.shot("calendar-drag-refused").await;

    app.quit().await;
}
