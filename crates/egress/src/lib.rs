//! Air-gapped containers (DESIGN.md §6): the nftables redirection of container egress, the
//! transparent proxy that recovers each connection's destination and hostname, and the decision
//! by `containersProxy` (a fixed proxy or a PAC file evaluated in a time- and memory-limited
//! JavaScript sandbox). The same proxy core carries the managed engine's own pulls (DESIGN.md §5).
//!
//! The crate never sees Docker API requests: it is given bridge networks to guard and a
//! [`Decide`] implementation to ask.
#![forbid(unsafe_code)]

pub mod decide;
pub mod engine_filter;
pub mod pac;
mod target;
// The network half: transparent proxy, sniffing, the HTTP request stream, the splice relay,
// upstream connectors, nftables rules.
pub mod http_stream;
pub mod nft;
pub mod proxy;
mod relay;
pub mod sniff;
pub mod sys;
pub mod upstream;

pub use decide::{Decider, DeciderOptions, SystemProxy};
pub use target::{Decide, DecideError, Hop, Plan, Scheme, Target};
