//! Entry point of the volunteer binary.

fn main() {
    eprintln!(
        "volunteer {} (report schema {}): cluster snapshots are not implemented in this release",
        env!("CARGO_PKG_VERSION"),
        volunteer::SCHEMA_VERSION
    );
    std::process::exit(2);
}
