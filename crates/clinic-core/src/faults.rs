//! Test hooks for crashes and failures at chosen points, only with the `dev-data` feature
//! (the app has none): `CLINICDESK_CRASH_AT=<point>` aborts the process there, as a kill or a
//! power cut would; `CLINICDESK_FAIL_AT=<point>` makes the step there return an error. Tests
//! set them on the command-line tool they run as a child process.

pub(crate) fn crash_point(point: &str) {
    #[cfg(feature = "dev-data")]
    if std::env::var("CLINICDESK_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("clinicdesk: crash point {point}");
        std::process::abort();
    }
    let _ = point;
}

pub(crate) fn fail_point(point: &str) -> crate::Result<()> {
    #[cfg(feature = "dev-data")]
    if std::env::var("CLINICDESK_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(crate::Error::internal(format!("fail point {point}")));
    }
    let _ = point;
    Ok(())
}
