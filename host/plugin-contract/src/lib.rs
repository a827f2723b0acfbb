//! The plugin contract, free of any WebAssembly runtime: the domain model
//! the host works in, whatever plugin API version a plugin was built
//! against. Each version's bindings (`host/src/plugins/api/v*.rs`) convert
//! their generated WIT types into these and back; views, events, the
//! portal and the REST API only ever see these.
//!
//! **Invariant:** nothing here depends on wasmtime, axum or a database.

pub mod principal;
pub mod ui;

pub use principal::Principal;
