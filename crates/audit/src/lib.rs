//! The tamper-evident audit log: one JSON line per decision in a hash chain.
//!
//! This crate is filled by the audit issue.
#![forbid(unsafe_code)]
