//! Fuzz targets for the parsers an attacker reaches. Each module's `run` is
//! one target's body; `fuzz_targets/*.rs` hand it to libFuzzer, and
//! `cargo xtask fuzz TARGET --seconds N` builds one with coverage
//! instrumentation and runs it on a copy of `corpus/TARGET`.
//!
//! Besides "no panic, no hang", some targets check properties: a valid
//! entity's ref reads back as itself, keyset pages do not overlap, packing a
//! plugin again keeps its manifest, and rendered views carry no markup but
//! the renderer's own.

pub mod catalog_query;
pub mod entity_yaml;
#[cfg(feature = "host")]
pub mod license;
#[cfg(feature = "host")]
pub mod plugin_file;
#[cfg(feature = "host")]
pub mod plugin_manifest;
#[cfg(feature = "host")]
pub mod view_render;
