//! Callboard: an internal developer portal whose plugins run sandboxed as
//! WebAssembly components.
//!
//! The binary in `main.rs` only parses the command line; everything it runs
//! lives here so that tests drive the same code through [`server::start`].

/// The process's allocator. glibc's spent about a quarter of a catalog
/// request's CPU in `malloc`, `free` and arena locks (memory allocated on a
/// blocking-pool reader is freed on an async worker); jemalloc serves
/// 1.3-1.8x the requests (facets 3-4x) at the same peak memory, with freed
/// pages returned after 1 s (`.cargo/config.toml` sets its options at build
/// time; BENCHMARKS.md, "Allocator"). Declared in the library, not in `main.rs`,
/// so that the tests and benchmarks, which run the server in-process, run
/// on the binary's allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod database;
pub mod feed;
pub mod health;
pub mod identity;
pub mod permissions;
pub mod plugins;
pub mod search;
pub mod server;
pub mod techdocs;
pub mod telemetry;
pub mod usage;
pub mod views;
pub mod web;
