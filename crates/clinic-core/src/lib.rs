//! ClinicDesk's core: domain, services and encrypted storage.
//!
//! `Core` is the API; its methods are generated from the command table. See
//! ARCHITECTURE.md for the map and "Adding a domain".
//!
//! The modules below are in layers, lowest first: a module uses only those declared before
//! it (a test reads this list and checks every `crate::` path against it).

// The command table names types from the crate root (`patients::PatientInput`).
extern crate self as clinic_core;

// Shared by everything: enum names, roles and permissions, errors, ids, text, field checks.
pub mod names;
pub mod perm;
pub mod error;
mod faults;
pub mod ids;
pub mod text;
pub mod validate;

// Storage: the database, the one write path, the audit trail.
pub mod store;

// Domains, lowest first.
pub mod settings;
pub mod print;
pub mod staff;
pub mod session;
pub mod patients;
pub mod scheduling;
pub mod queue;
pub mod clinical;
pub mod pharmacy;
pub mod billing;

// Sync with the clinic's server: above every domain, whose rows it moves.
pub mod sync;

// The API: one handler file per section of the command table, and `Core`, whose methods
// the table generates.
pub mod api;
mod core;
mod commands;

// Demo and generated data, for the command-line tool, tests and benchmarks only.
#[cfg(feature = "dev-data")]
pub mod dev;

pub use crate::core::Core;
pub use error::{ApiError, Error, Result};
pub use session::Cx;
