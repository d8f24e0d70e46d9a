//! Demo and generated data (the `dev-data` feature: the command-line tool, benchmarks and
//! tests; never the shipped app). The demo goes through `Core`'s commands like a person
//! would; only the bulk generator writes batches straight through the write path.

pub mod demo;
pub mod generate;
pub mod papers;
