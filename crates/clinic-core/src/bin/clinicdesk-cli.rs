//! ClinicDesk's command line: the same `Core` API the window uses.
//!
//!   clinicdesk-cli demo <data-dir>        a demo clinic with one account per role,
//!                                         5 doctors, 2,000 patients, a week of appointments
//!   clinicdesk-cli generate <data-dir> --patients N [--doctors D] [--days K] [--appointments M]
//!                                         the same with N patients (up to 1,000,000), for benchmarks
//!
//! Demo passwords are printed and listed in README.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clinic_core::dev::demo::{self, Size};

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.replace('_', "").parse().ok()).ok_or(format!("{name} needs a number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = std::time::Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
    let size = match args.first().map(String::as_str) {
        Some("demo") if args.len() == 2 => Ok(demo::DEMO),
        Some("generate") if args.len() >= 2 => (|| {
            Ok::<_, String>(Size {
                patients: flag(&args, "--patients", 10_000)?.min(1_000_000),
                doctors: flag(&args, "--doctors", 20)? as usize,
                days: flag(&args, "--days", 14)? as u32,
                max_appointments: flag(&args, "--appointments", u64::MAX)?,
            })
        })(),
        _ => {
            eprintln!("usage: clinicdesk-cli demo <data-dir>\n       clinicdesk-cli generate <data-dir> --patients N [--doctors D] [--days K] [--appointments M]");
            return ExitCode::from(2);
        }
    };
    let result = match size {
        Err(e) => Err(clinic_core::Error::Internal(e)),
        Ok(size) => demo::create_sized(&PathBuf::from(&args[1]), size, progress).map(|accounts| {
            println!("Clinic created in {}. Accounts:", args[1]);
            for (user, pw, role) in accounts {
                println!("  {user:<12} {pw:<22} {role}");
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
