//! Integration tests: every test gets its own data folder with a real SQLCipher file.

mod support;

mod foundation;
mod layers;
mod matrix;
mod reception;
mod security;
mod printing;
mod clinical;
mod pharmacy;
mod billing;
mod sync;
mod proxy;
mod sync_faults;
mod sync_bounds;
