//! Test support shared by both backends (feature `testing`).

pub mod conformance;
pub mod postgres;
