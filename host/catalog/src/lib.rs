//! Callboard catalog.
