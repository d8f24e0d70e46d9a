//! ClinicDesk's command line: the same `Core` API the window uses.
//!
//!   clinicdesk-cli demo <data-dir>        a demo clinic with one account per role,
//!                                         5 doctors, 2,000 patients, a week of appointments
//!   clinicdesk-cli generate <data-dir> --patients N [--doctors D] [--days K] [--appointments M]
//!                                         the same with N patients (up to 1,000,000), for benchmarks
//!   clinicdesk-cli setup <data-dir> <admin> <password>
//!                                         an empty clinic (Bangkok, THB) with one admin
//!   clinicdesk-cli as <data-dir> <user> <password> [--totp SECRET] [--now INSTANT] <operation>
//!                                         signs in and runs one operation: rekey |
//!                                         create-account <user> <password> | disable <user> |
//!                                         change-password <new> | walk-in <given> <family> <birth> |
//!                                         type-note <encounter> | signed-rx <given> <family> <drug>
//!                                         <quantity> <days> | receive <item> <lot> <expiry> <quantity> |
//!                                         dispense <prescription> <quantity> | set-price <item> <minor units>.
//!                                         Tests use it to set the scene and to kill the
//!                                         process mid-way (CLINICDESK_CRASH_AT).
//!
//! Demo passwords are printed and listed in README.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clinic_core::dev::demo::{self, Size};

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
            .ok_or(format!("{name} needs a number")),
    }
}

/// The operations a test or an administrator runs from the command line, through `Core`.
fn operate(args: &[String]) -> Result<String, clinic_core::Error> {
    use clinic_core::session::{LoginStep, SetupInput};
    use clinic_core::settings::{ClinicProfile, Language};
    use clinic_core::Core;
    // `--now <RFC 3339>` starts the clock there (tests run on a fixed clock of their own).
    let mut args: Vec<String> = args.to_vec();
    let clock: clinic_core::ids::Clock = match args.iter().position(|a| a == "--now") {
        Some(i) => {
            let start =
                clinic_core::ids::parse_ts(args.get(i + 1).map(String::as_str).unwrap_or(""))
                    .ok_or_else(|| {
                        clinic_core::Error::Internal("--now needs an RFC 3339 instant".into())
                    })?;
            args.drain(i..i + 2);
            let t0 = std::time::Instant::now();
            std::sync::Arc::new(move || {
                start + chrono::Duration::from_std(t0.elapsed()).unwrap_or_default()
            })
        }
        None => clinic_core::ids::system_clock(),
    };
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| clinic_core::Error::Internal(format!("argument {i} missing")))
    };
    let core = Core::with_clock(PathBuf::from(arg(1)?), clock.clone());
    if args[0] == "setup" {
        let out = core.setup_create(SetupInput {
            clinic: ClinicProfile {
                name: "Command-line Clinic".into(),
                currency: "THB".into(),
                time_zone: "Asia/Bangkok".into(),
                default_language: Language::En,
                ..Default::default()
            },
            admin_username: arg(2)?,
            admin_full_name: "Administrator".into(),
            admin_password: arg(3)?,
            ..Default::default()
        })?;
        return Ok(out.recovery_key);
    }
    let mut i = 4;
    match core.login(arg(2)?, arg(3)?)? {
        LoginStep::Done { .. } => {}
        LoginStep::Totp if args.get(4).map(String::as_str) == Some("--totp") => {
            let unix = clock().timestamp() as u64;
            core.login_totp(clinic_core::session::auth::totp_code(&arg(5)?, unix)?)?;
            i = 6;
        }
        _ => {
            return Err(clinic_core::Error::Internal(
                "this account needs a second factor: pass --totp".into(),
            ))
        }
    }
    let out = match arg(i)?.as_str() {
        "rekey" => {
            let r = core.database_rekey()?;
            format!(
                "re-keyed in {:.1} s; accounts needing a new password: {:?}",
                r.seconds, r.accounts_needing_new_password
            )
        }
        "create-account" => {
            let s = core.staff_create(clinic_core::staff::NewStaff {
                username: arg(i + 1)?,
                full_name: arg(i + 1)?,
                roles: vec![clinic_core::perm::Role::Receptionist],
                initial_password: arg(i + 2)?,
                ..Default::default()
            })?;
            s.id
        }
        "disable" => {
            let who = core
                .staff_accounts()?
                .into_iter()
                .find(|s| s.username == args[i + 1])
                .ok_or(clinic_core::Error::NotFound { entity: "staff" })?;
            core.staff_set_active(clinic_core::staff::SetActive {
                id: who.id.clone(),
                active: false,
                initial_password: None,
            })?;
            who.id
        }
        // Registers a patient and checks them in as a walk-in for the doctor who signs in as
        // `doctor` (the demo's): for tests that start from a waiting patient.
        "walk-in" => {
            let mut p = clinic_core::patients::PatientInput {
                given_name: arg(i + 1)?,
                family_name: arg(i + 2)?,
                birth_date: arg(i + 3)?,
                ..Default::default()
            };
            p.allergies = vec![clinic_core::patients::Allergy {
                substance: "Penicillin".into(),
                reaction: "rash".into(),
                severity: clinic_core::patients::Severity::Severe,
            }];
            let patient = match core.patient_register(p, true)? {
                clinic_core::patients::RegisterOutcome::Registered { patient } => patient,
                _ => return Err(clinic_core::Error::Internal("not registered".into())),
            };
            let doctor_staff = core
                .staff_list()?
                .into_iter()
                .find(|s| s.full_name == clinic_core::dev::demo::ACCOUNTS[1].3)
                .ok_or(clinic_core::Error::NotFound { entity: "staff" })?;
            let doctor = core
                .doctor_list()?
                .into_iter()
                .find(|d| d.staff_id.as_deref() == Some(doctor_staff.id.as_str()))
                .ok_or(clinic_core::Error::NotFound { entity: "doctors" })?;
            let t = core.queue_check_in(clinic_core::queue::CheckIn {
                patient_id: Some(patient.id),
                specialization_id: Some(doctor.specialization_id.clone()),
                doctor_id: Some(doctor.id.clone()),
                ..Default::default()
            })?;
            t.number
        }
        // Types into the note of an open visit as a doctor's window does: a draft save per
        // revision, printing "saved <revision>" once each save has returned, then waits
        // (for the kill -9 test: what was reported saved must survive the kill).
        "type-note" => {
            use std::io::Write;
            let encounter_id = arg(i + 1)?;
            let mut out = std::io::stdout();
            for revision in 1.. {
                core.note_draft_save(clinic_core::clinical::notes::DraftInput {
                    encounter_id: encounter_id.clone(),
                    revision,
                    soap: clinic_core::clinical::notes::Soap {
                        subjective: format!("Cough for {revision} days"),
                        ..Default::default()
                    },
                })?;
                let _ = writeln!(out, "saved {revision}");
                let _ = out.flush();
            }
            unreachable!("typing goes on until the process is killed")
        }
        // A patient seen by the signed-in doctor, who prescribes `quantity` of a formulary
        // drug for `days` and signs (acknowledging any warning); prints the prescription's id.
        "signed-rx" => {
            use clinic_core::clinical::prescriptions::{Acknowledgement, ItemInput};
            let patient = match core.patient_register(
                clinic_core::patients::PatientInput {
                    given_name: arg(i + 1)?,
                    family_name: arg(i + 2)?,
                    birth_date: "1980-05-05".into(),
                    ..Default::default()
                },
                true,
            )? {
                clinic_core::patients::RegisterOutcome::Registered { patient } => patient,
                _ => return Err(clinic_core::Error::Internal("not registered".into())),
            };
            let e = core.encounter_open(patient.id)?;
            let rx = core.prescription_open(e.id.clone())?;
            let name = arg(i + 3)?;
            let found = core.drug_search(name.clone(), 10)?;
            let drug = found
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&name))
                .or(found.first())
                .cloned()
                .ok_or(clinic_core::Error::NotFound { entity: "drugs" })?;
            let number = |v: String| {
                v.parse::<u32>()
                    .map_err(|_| clinic_core::Error::Internal(format!("{v} is not a number")))
            };
            let drafted = core.prescription_item_add(ItemInput {
                prescription_id: rx.id.clone(),
                drug_id: Some(drug.id),
                dose: "1 capsule".into(),
                frequency: "3 times a day".into(),
                quantity: number(arg(i + 4)?)?,
                duration_days: number(arg(i + 5)?)?,
                unit: "capsules".into(),
                ..Default::default()
            })?;
            let acks = drafted
                .alerts
                .iter()
                .map(|a| Acknowledgement {
                    key: a.key.clone(),
                    reason: "discussed with the patient".into(),
                })
                .collect();
            core.prescription_sign(rx.id.clone(), acks)?;
            core.encounter_close(clinic_core::clinical::CloseInput {
                encounter_id: e.id,
                ..Default::default()
            })?;
            rx.id
        }
        // Receives a batch of a formulary drug as the signed-in pharmacist (with `--now`, in
        // the past: stock that has expired by the time a test opens the window).
        "receive" => {
            let item = core
                .stock_items(arg(i + 1)?, None)?
                .into_iter()
                .next()
                .ok_or(clinic_core::Error::NotFound {
                    entity: "stock_items",
                })?;
            let b = core.stock_receive(clinic_core::pharmacy::ReceiveInput {
                item_id: item.id,
                lot: arg(i + 2)?,
                expiry: arg(i + 3)?,
                quantity: arg(i + 4)?
                    .parse()
                    .map_err(|_| clinic_core::Error::Internal("quantity".into()))?,
                cost: 150,
                ..Default::default()
            })?;
            b.id
        }
        // Dispenses `quantity` of a signed prescription's first item, first expiry first out
        // (as the signed-in pharmacist).
        "dispense" => {
            let rx = core.prescription_get(arg(i + 1)?)?;
            let item = rx.items.first().ok_or(clinic_core::Error::NotFound {
                entity: "prescription_items",
            })?;
            let out = core.dispense(clinic_core::pharmacy::dispense::DispenseInput {
                prescription_id: rx.id.clone(),
                lines: vec![clinic_core::pharmacy::dispense::DispenseLine {
                    prescription_item_id: item.id.clone(),
                    quantity: arg(i + 2)?
                        .parse()
                        .map_err(|_| clinic_core::Error::Internal("quantity".into()))?,
                    ..Default::default()
                }],
            })?;
            format!("{} dispensings", out.dispensings.len())
        }
        // Sets a stock item's selling price in minor units (as an administrator).
        "set-price" => {
            let name = arg(i + 1)?;
            let found = core.stock_items(name.clone(), None)?;
            let item = found
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&name))
                .or(found.first())
                .cloned()
                .ok_or(clinic_core::Error::NotFound {
                    entity: "stock_items",
                })?;
            let price = arg(i + 2)?
                .parse()
                .map_err(|_| clinic_core::Error::Internal("price".into()))?;
            core.stock_item_price_set(item.id, item.cost, price)?.id
        }
        "change-password" => {
            core.change_password(arg(3)?, arg(i + 1)?)?;
            "changed".into()
        }
        other => {
            return Err(clinic_core::Error::Internal(format!(
                "unknown operation {other}"
            )))
        }
    };
    core.logout()?;
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("setup" | "as")) {
        return match operate(&args) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
            eprintln!(
                "usage: clinicdesk-cli demo <data-dir>\n       clinicdesk-cli generate <data-dir> --patients N [--doctors D] [--days K] [--appointments M]\n       clinicdesk-cli setup <data-dir> <admin> <password>\n       clinicdesk-cli as <data-dir> <user> <password> [--totp SECRET] rekey | create-account <user> <password> | disable <user> | change-password <new>"
            );
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
