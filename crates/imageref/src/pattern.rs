//! Policy patterns over image references: ECI's socket-mount `imageList` ([`ImagePattern`]) and
//! IAM's `allowedRepositories` / `organizationNamespaces` ([`RepositoryPattern`]).

use std::fmt;
use std::str::FromStr;

use crate::grammar;
use crate::reference::{DOCKER_HUB, LEGACY_HUB};
use crate::{RefError, Reference};

/// One `enhancedContainerIsolation.dockerSocketMount.imageList.images` entry, in Docker
/// Desktop's forms:
///
/// | entry | meaning |
/// |---|---|
/// | `"*"` | any image |
/// | `repo:tag`, `repo` | that tag (`latest` when omitted) |
/// | `repo:*` | any tag of that repository |
/// | `repo@sha256:…` | that exact content (a tag next to the digest is ignored, as the engine ignores it) |
///
/// `repo` is normalised like any reference, so `docker:cli`, `library/docker:cli` and
/// `docker.io/library/docker:cli` are the same entry, and Hub aliases are one registry.
///
/// Names alone prove nothing (anyone can `docker tag` any image with an allowed name), so
/// [`matches`](Self::matches) also needs the image's `RepoDigests` as reported by the engine's
/// image inspect; see there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImagePattern {
    /// `"*"`: every image.
    Any,
    /// `repo:tag`; the reference has a tag and no digest.
    Tag(Reference),
    /// `repo:*`; the reference is name-only.
    AnyTag(Reference),
    /// `repo@digest`; the reference has a digest and no tag.
    Digest(Reference),
}

impl ImagePattern {
    /// Parse an `imageList` entry.
    ///
    /// ```
    /// use stockade_imageref::ImagePattern;
    /// let p = ImagePattern::parse("docker/foo:*").unwrap();
    /// assert_eq!(p, ImagePattern::parse("docker.io/docker/foo:*").unwrap());
    /// assert_eq!(p.to_string(), "docker.io/docker/foo:*");
    /// ```
    pub fn parse(entry: &str) -> Result<Self, RefError> {
        if entry == "*" {
            return Ok(Self::Any);
        }
        let invalid = |reason: &str| RefError::InvalidPattern {
            pattern: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(repo) = entry.strip_suffix(":*") {
            if repo.contains('*') {
                return Err(invalid(WILDCARD_PLACES));
            }
            let r = Reference::parse_normalized(repo)?;
            if r.tag().is_some() || r.digest().is_some() {
                return Err(invalid(
                    "a wildcard tag cannot follow a tag or digest; write repo:*",
                ));
            }
            return Ok(Self::AnyTag(r));
        }
        if entry.contains('*') {
            return Err(invalid(WILDCARD_PLACES));
        }
        let r = Reference::parse_normalized(entry)?;
        Ok(match r.digest() {
            Some(d) => Self::Digest(r.name_only().with_digest(d.clone())),
            None => Self::Tag(r.with_default_tag()),
        })
    }

    /// May a container of `image` mount the Docker socket under this entry?
    ///
    /// `image` is the reference the container is created from, and `repo_digests` the
    /// `RepoDigests` of the image it resolves to (from the engine's image inspect, either
    /// familiar `busybox@sha256:…` or qualified form; unparsable entries are ignored). Names are
    /// compared after normalisation, with Hub aliases and host case unified.
    ///
    /// - `Any` matches everything.
    /// - `Digest` matches only when `repo_digests` holds that repository **and** digest; the
    ///   name the container was created with does not matter, and a name alone never matches.
    /// - `Tag` and `AnyTag` need the name (and for `Tag`, the tag, `latest` when the image
    ///   reference has none) to match, **and** provenance: `repo_digests` must hold a digest in
    ///   the same repository, so a local image re-tagged to an allowed name (whose
    ///   `RepoDigests` come from elsewhere or are empty) is refused. When `image` itself has a
    ///   digest, that exact digest must be among `repo_digests`. A digest-only `image` never
    ///   matches `Tag` (its tag is unknown).
    ///
    /// What this cannot tell: whether the local content is what the registry *currently* serves
    /// for that tag (Docker Desktop asks the registry); an image pulled as `repo:other` and
    /// re-tagged `repo:tag` inside the same repository passes a `Tag` entry. Pin a digest where
    /// that matters.
    pub fn matches(&self, image: &Reference, repo_digests: &[String]) -> bool {
        let digests = || {
            repo_digests
                .iter()
                .filter_map(|d| Reference::parse_normalized(d).ok())
                .filter(|d| d.digest().is_some())
        };
        let provenance = |pattern: &Reference| match image.digest() {
            Some(want) => digests().any(|d| d.same_repository(pattern) && d.digest() == Some(want)),
            None => digests().any(|d| d.same_repository(pattern)),
        };
        match self {
            Self::Any => true,
            Self::Digest(p) => digests().any(|d| d.same_repository(p) && d.digest() == p.digest()),
            Self::Tag(p) => {
                image.same_repository(p)
                    && image.tag_or_latest().is_some_and(|t| Some(t) == p.tag())
                    && provenance(p)
            }
            Self::AnyTag(p) => image.same_repository(p) && provenance(p),
        }
    }
}

const WILDCARD_PLACES: &str =
    "`*` is allowed only as the whole entry (any image) or as the whole tag (repo:*)";

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::AnyTag(r) => write!(f, "{r}:*"),
            Self::Tag(r) | Self::Digest(r) => write!(f, "{r}"),
        }
    }
}

impl FromStr for ImagePattern {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A repository allowlist entry for Image Access Management.
///
/// - [`parse`](Self::parse) reads `imageAccess.allowedRepositories` entries: a repository name
///   (`ubuntu` = `docker.io/library/ubuntu`, `myorg/app`, `ghcr.io/acme/app`), or a prefix
///   ending in `/*` for every repository below it (`myorg/*`, `ghcr.io/acme/*`, `ghcr.io/*`).
///   `*` is allowed nowhere else, and tags or digests are refused: the entry is about
///   repositories.
/// - [`namespace`](Self::namespace) reads `imageAccess.organizationNamespaces` entries: a
///   Docker Hub namespace (`myorg`), i.e. `docker.io/myorg/*`.
///
/// Matching ignores tags and digests, unifies Hub aliases, and compares hosts
/// case-insensitively. A prefix matches whole path components only: `myorg/*` matches
/// `myorg/app` and `myorg/team/app`, never `myorg-evil/app` or `myorg` itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryPattern {
    /// Lowercased registry host as in [`Reference::registry_host`] (`docker.io` for Hub).
    host: String,
    /// Repository path (Hub paths with `library/` for official images); empty for a whole
    /// registry.
    path: String,
    prefix: bool,
}

impl RepositoryPattern {
    /// Parse an `allowedRepositories` entry.
    ///
    /// ```
    /// use stockade_imageref::{Reference, RepositoryPattern};
    /// let p = RepositoryPattern::parse("ghcr.io/acme/*").unwrap();
    /// assert!(p.matches(&Reference::parse_normalized("ghcr.io/acme/tool:1").unwrap()));
    /// assert!(!p.matches(&Reference::parse_normalized("ghcr.io/acme-evil/tool").unwrap()));
    /// ```
    pub fn parse(entry: &str) -> Result<Self, RefError> {
        let invalid = |reason: &str| RefError::InvalidPattern {
            pattern: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(prefix) = entry.strip_suffix("/*") {
            if prefix.contains('*') || prefix.is_empty() {
                return Err(invalid(REPO_WILDCARD));
            }
            // Parse with a placeholder last component, so the prefix is normalised exactly
            // like a repository below it would be.
            let probe = Reference::parse_normalized(&format!("{prefix}/x"))
                .map_err(|_| invalid("the part before /* is not a registry or repository"))?;
            if probe.tag().is_some() || probe.digest().is_some() {
                return Err(invalid(NO_TAG));
            }
            let (host, path) = probe.repository_key();
            let path = if !prefix.contains('/') && names_registry(prefix) {
                String::new()
            } else {
                path.strip_suffix("/x").unwrap_or_default().to_owned()
            };
            return Ok(Self {
                host,
                path,
                prefix: true,
            });
        }
        if entry.contains('*') {
            return Err(invalid(REPO_WILDCARD));
        }
        let r = Reference::parse_normalized(entry)?;
        if r.tag().is_some() || r.digest().is_some() {
            return Err(invalid(NO_TAG));
        }
        let (host, path) = r.repository_key();
        Ok(Self {
            host,
            path: path.into_owned(),
            prefix: false,
        })
    }

    /// Parse an `organizationNamespaces` entry: one Docker Hub namespace (`myorg`).
    pub fn namespace(entry: &str) -> Result<Self, RefError> {
        if !grammar::is_path_component(entry) {
            return Err(RefError::InvalidPattern {
                pattern: entry.to_owned(),
                reason: "a Docker Hub namespace is one lowercase name such as myorg".to_owned(),
            });
        }
        Ok(Self {
            host: DOCKER_HUB.to_owned(),
            path: entry.to_owned(),
            prefix: true,
        })
    }

    /// Does `image`'s repository fall under this entry?
    pub fn matches(&self, image: &Reference) -> bool {
        let (host, path) = image.repository_key();
        if host != self.host {
            return false;
        }
        if !self.prefix {
            return path == self.path;
        }
        self.path.is_empty()
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

const REPO_WILDCARD: &str =
    "`*` is allowed only as a last /* component (myorg/*, ghcr.io/acme/*, ghcr.io/*)";
const NO_TAG: &str = "an entry names repositories; remove the tag or digest";

/// Docker's `splitDockerDomain` rule for "this first component is a registry".
fn names_registry(first: &str) -> bool {
    first == "localhost"
        || first == LEGACY_HUB
        || first.contains(['.', ':'])
        || first.chars().any(char::is_uppercase)
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        if self.prefix {
            f.write_str("/*")?;
        }
        Ok(())
    }
}

impl FromStr for RepositoryPattern {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
