//! ClinicDesk's core: domain, services and encrypted storage.
//!
//! `app::Core` is the API; everything else is below it. See ARCHITECTURE.md.

pub mod app;
pub mod appointments;
pub mod audit;
pub mod auth;
pub mod db;
pub mod demo;
pub mod doctors;
pub mod error;
pub mod generate;
pub mod ids;
pub mod keyslots;
pub mod patients;
pub mod perm;
pub mod print;
pub mod queue;
pub mod schedule;
pub mod settings;
pub mod staff;
pub mod text;
pub mod validate;

pub use app::Core;
pub use error::{ApiError, Error, ErrorCode, Result};
