//! The admin policy (`admin-settings.json`, Docker Desktop's Settings Management format), user
//! settings and their precedence.
//!
//! This crate is filled by the Settings Management issue; nothing else in the workspace decides
//! policy semantics meanwhile.
#![forbid(unsafe_code)]
