//! `callboard catalog ...`. (Owned by the catalog work; stub.)
