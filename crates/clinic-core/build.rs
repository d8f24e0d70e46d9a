//! `refinery::embed_migrations!` reads `migrations/` at compile time but does not tell cargo:
//! without this, a new V{n} file leaves an already built crate embedding the old set, and a
//! database migrated by a fresher build fails to open ("migration … missing").
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
