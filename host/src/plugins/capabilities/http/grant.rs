//! Host grants live in the wasm-free plugin contract, where manifests
//! intersect them; the http capability enforces them.

pub use callboard_plugin_contract::grant::*;
