//! One module per host interface of the plugin API. Each keeps its state
//! (e.g. [`kv::KvStore`]) and its version-free logic apart from the WIT
//! glue, a macro each API version's module (`super::api`) invokes for the
//! interfaces it has.

pub mod catalog;
pub mod config;
pub mod events;
pub mod http;
pub mod kv;
pub mod license;
pub(crate) mod log;
pub mod models;
pub mod permissions;
pub mod search;
