//! One module per host interface of the plugin API. Each keeps its state
//! (e.g. [`kv::KvStore`]) apart from the WIT glue that exposes it.

pub mod kv;
mod license;
mod log;
