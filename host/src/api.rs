//! HTTP routers. Each area has its own `router(...)`, and [`router`] mounts
//! them all so tests can call it without a socket.

pub mod catalog;
pub mod error;
pub mod plugins;
