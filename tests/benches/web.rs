//! Web benchmark (being written).
fn main() {}
