//! Callboard's integration tests: real HTTP servers on 127.0.0.1:0, real
//! SQLite files, real wasm components built from this repository.

mod assistant;
mod assistant_models;
mod author;
mod backup;
mod catalog;
mod ci;
mod containment_runtime;
mod containment_surface;
mod containment_trust;
mod cost;
mod health;
mod identity;
mod insights;
mod install;
mod kubernetes;
mod oidc;
mod people;
mod plugin_api;
mod plugin_api_v0_4;
mod plugins;
mod policy;
mod replicas;
mod search;
mod server;
mod support;
mod techdocs;
mod telemetry;
mod tokens;
mod web;
