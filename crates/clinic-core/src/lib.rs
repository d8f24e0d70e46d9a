//! ClinicDesk's core: domain, services and encrypted storage.
//!
//! `Core` is the API; its methods are generated from the command table. See
//! ARCHITECTURE.md for the map and "Adding a domain".

// The command table names types from the crate root (`patients::PatientInput`).
extern crate self as clinic_core;

// Shared by every domain.
pub mod error;
pub mod ids;
pub mod names;
pub mod text;
pub mod validate;

// Storage: the database, the one write path, the audit trail.
pub mod store;

// Who may do what, and the commands.
pub mod perm;
mod commands;

// Domains, lowest first: a domain may use those above it in this list, never below.
pub mod settings;
pub mod print;
pub mod staff;
pub mod session;
pub mod patients;
pub mod scheduling;
pub mod queue;

// The API: `Core` and one handler file per section of the command table.
pub mod api;
mod core;

#[cfg(feature = "dev-data")]
pub mod dev;

pub use crate::core::{Core, Cx};
pub use error::{ApiError, Error, Result};
