//! Docker image references, parsed and normalised exactly as the Docker Engine does
//! (`busybox` is `docker.io/library/busybox`), and the matching helpers Stockade's registry
//! access (RAM), image access (IAM) and socket-mount (ECI) rules need.
//!
//! The engine decides what to pull, tag or run from the reference *it* parses, so a gateway
//! that parsed differently could be steered past its own rules. [`Reference::parse_normalized`]
//! therefore follows `github.com/distribution/reference` (the package the engine vendors)
//! rule for rule, including its oddities, and [`parse_repo_and_tag`], [`repo_tag_reference`],
//! [`parse_tag_target`], [`parse_push`] and [`parse_build_tags`] apply the engine's per-route
//! handling of Engine API query parameters.
//!
//! ```
//! use stockade_imageref::{ImagePattern, Reference};
//!
//! let r = Reference::parse_normalized("busybox").unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/busybox");
//! assert_eq!(r.clone().with_default_tag().to_string(), "docker.io/library/busybox:latest");
//! assert_eq!(r.familiar(), "busybox");
//! assert!(r.is_official() && r.host_matches("docker.io"));
//!
//! let r = Reference::parse_normalized("localhost:5000/team/app:1.0").unwrap();
//! assert_eq!((r.domain(), r.path(), r.tag()), ("localhost:5000", "team/app", Some("1.0")));
//! assert!(!r.host_matches("localhost"));
//!
//! let err = Reference::parse_normalized("Busybox").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid reference format: repository name (library/Busybox) must be lowercase"
//! );
//!
//! // A socket-mount entry matches by name *and* by the image's RepoDigests.
//! let allowed = ImagePattern::parse("docker:cli").unwrap();
//! let image = Reference::parse_normalized("docker:cli").unwrap();
//! let pulled = vec![format!("docker@sha256:{}", "a".repeat(64))];
//! assert!(allowed.matches(&image, &pulled));
//! assert!(!allowed.matches(&image, &[])); // re-tagged local image: no provenance
//! ```
//!
//! # Grammar
//!
//! ```text
//! reference   := name [":" tag] ["@" digest]
//! name        := [domain "/"] path            path: at most 255 characters
//! domain      := host [":" port]              host: DNS-like name, IPv4, or [IPv6]
//! path        := component ("/" component)*   component: [a-z0-9]+ joined by . _ __ or -+
//! tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest      := algorithm ":" hex            sha256/sha384/sha512, lowercase hex of full length
//! ```
#![forbid(unsafe_code)]

mod digest;
mod engine;
mod error;
mod grammar;
mod pattern;
mod reference;
mod registry;

pub use digest::Digest;
pub use engine::{
    parse_build_tags, parse_push, parse_repo_and_tag, parse_tag_target, repo_tag_reference,
};
pub use error::RefError;
pub use pattern::{ImagePattern, RepositoryPattern};
pub use reference::{
    AnyReference, Reference, DEFAULT_TAG, DOCKER_HUB, HUB_REGISTRY, LEGACY_HUB, OFFICIAL_NAMESPACE,
    PATH_MAX,
};
pub use registry::RegistryHost;

#[cfg(test)]
mod tests;
