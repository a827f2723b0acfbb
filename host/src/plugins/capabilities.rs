//! One module per host interface of the plugin API. Each keeps its state
//! (e.g. [`kv::KvStore`]) apart from the WIT glue that exposes it.

mod catalog;
mod config;
pub mod http;
pub mod kv;
mod license;
pub(crate) mod log;
