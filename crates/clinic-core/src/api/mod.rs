//! The command handlers, one thin file per section of the command table. A handler picks
//! the connection (a read, or one audited write), passes what the session knows (the
//! clinic's zone, who is acting) and calls its domain. The rules live in the domains.
//!
//! Each handler is named as its command and takes `&Cx` then the command's arguments; the
//! generated `Core` method calls it after the permission check (`commands.rs`).

pub mod billing;
pub mod clinical;
pub mod patients;
pub mod pharmacy;
pub mod queue;
pub mod scheduling;
pub mod session;
pub mod settings;
pub mod staff;
pub mod sync;
