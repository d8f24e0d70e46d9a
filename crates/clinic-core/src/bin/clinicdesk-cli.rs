//! ClinicDesk's command line: the same `Core` API the window uses.
//!
//!   clinicdesk-cli demo <data-dir>        a demo clinic with one account per role
//!
//! Demo passwords are printed and listed in README.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clinic_core::demo;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["demo", dir] => demo::create(&PathBuf::from(dir)).map(|accounts| {
            println!("Demo clinic created in {dir}. Accounts:");
            for (user, pw, role) in accounts {
                println!("  {user:<12} {pw:<22} {role}");
            }
        }),
        _ => {
            eprintln!("usage: clinicdesk-cli demo <data-dir>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
