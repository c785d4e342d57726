//! Docker image references, parsed and normalised exactly as the Docker Engine does
//! (`busybox` is `docker.io/library/busybox:latest`).
//!
//! This crate is filled by the Registry and Image Access issue; nothing else in the workspace
//! parses image references meanwhile.
#![forbid(unsafe_code)]
