//! Air-gapped containers: nftables redirection and the transparent egress proxy with PAC.
//!
//! This crate is filled by the air-gapped containers issue.
#![forbid(unsafe_code)]
