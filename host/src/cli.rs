//! Subcommands of the `callboard` binary other than `serve`.

pub mod catalog;
pub mod db;
pub mod plugin;
pub mod vendor;
