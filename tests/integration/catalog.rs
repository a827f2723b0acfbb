//! Catalog tests: a real SQLite file in a temporary folder, the real
//! `/api/catalog` router on 127.0.0.1:0, descriptor files on disk and over
//! loopback HTTP, and Backstage's own client library from npm.

mod api;
mod cli;
mod compat;
mod harness;
mod hostile;
mod ingestion;
