//! Plugin runtime tests.
