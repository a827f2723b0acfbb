//! Callboard: an internal developer portal whose plugins run sandboxed as
//! WebAssembly components.
//!
//! The binary in `main.rs` only parses the command line; everything it runs
//! lives here so that tests drive the same code through [`server::start`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod database;
pub mod plugins;
pub mod server;
pub mod usage;
pub mod views;
pub mod web;
