//! [`Reference`]: a named image reference, normalised as the engine normalises it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::grammar;
use crate::{Digest, RefError, RegistryHost};

/// Docker Hub's canonical domain: what `busybox` normalises to.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy Hub domain, rewritten to [`DOCKER_HUB`] during normalisation.
pub const LEGACY_HUB: &str = "index.docker.io";
/// The host the engine actually contacts for Hub pulls. Docker does *not* rewrite it, so
/// `registry-1.docker.io/library/busybox` keeps this domain; [`Reference::is_docker_hub`] still
/// counts it as Hub.
pub const HUB_REGISTRY: &str = "registry-1.docker.io";
/// The Hub namespace of official images.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag the engine assumes when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path Docker accepts (the domain does not count).
pub const PATH_MAX: usize = 255;

/// A named image reference (`[domain/]path[:tag][@digest]`), parsed and normalised exactly as
/// the Docker Engine's `reference.ParseNormalizedNamed` does.
///
/// Normalisation adds Docker Hub's domain and the `library/` namespace (`busybox` is
/// `docker.io/library/busybox`) and rewrites `index.docker.io` to `docker.io`. It does **not**
/// add a tag; [`with_default_tag`](Self::with_default_tag) and
/// [`tag_or_latest`](Self::tag_or_latest) do that explicitly. A reference may carry both a tag
/// and a digest; the engine then resolves the digest and the tag is only informational.
///
/// `Display` gives the fully qualified form (`docker.io/library/busybox:latest`);
/// [`familiar`](Self::familiar) gives the short form the docker CLI prints (`busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `domain/path`, or just `path` when the domain is empty.
    name: String,
    /// Length of the domain within `name`; 0 when there is none.
    domain_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What `ParseAnyReference` finds: an image ID or digest, or a named reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A full image ID (64 hex, read as `sha256:<hex>`) or a bare digest.
    Digest(Digest),
    /// A named reference.
    Named(Reference),
}

impl AnyReference {
    /// Docker's `ParseAnyReference`, used where the engine accepts "an image name or ID" (e.g.
    /// `GET /images/{name}/json`, `docker save`): a 64-hex string is the image ID
    /// `sha256:<hex>`, a valid digest is a digest, anything else is parsed with
    /// [`Reference::parse_normalized`].
    ///
    /// A *short* ID such as `3f57d9401f8d` is a valid name (`docker.io/library/3f57d9401f8d`);
    /// the engine tries it as a name first and then as an ID prefix, so rules about names must
    /// not assume such a string names a repository.
    pub fn parse(s: &str) -> Result<Self, RefError> {
        if grammar::is_identifier(s) {
            return Ok(Self::Digest(Digest::parse(&format!("sha256:{s}"))?));
        }
        if let Ok(d) = Digest::parse(s) {
            return Ok(Self::Digest(d));
        }
        Reference::parse_normalized(s).map(Self::Named)
    }
}

impl Reference {
    /// Parse `s` the way the engine's `ParseNormalizedNamed` does.
    ///
    /// In order, as the engine checks:
    /// 1. a bare 64-hex string is refused (it looks like an image ID);
    /// 2. the first `/`-separated component is the domain when it contains `.` or `:`, is
    ///    `localhost`, or contains uppercase letters; `index.docker.io` becomes `docker.io`;
    ///    otherwise the domain is `docker.io`; a one-component path on `docker.io` gets
    ///    `library/`;
    /// 3. the repository (after that split, up to the first `:`) must be lowercase;
    /// 4. the result must match the grammar (see the crate docs), with a repository path of at
    ///    most 255 characters (`library/` counts, the domain does not), a tag of at most 128,
    ///    and a digest the engine supports.
    ///
    /// One oddity is kept on purpose: a first component with a `.` that is not a valid host
    /// (only possible with `_`, as in `foo_bar.com/app`) leaves the reference without a domain.
    /// Docker accepts it the same way; see [`registry_host`](Self::registry_host) for how such
    /// a reference is treated.
    pub fn parse_normalized(s: &str) -> Result<Self, RefError> {
        if grammar::is_identifier(s) {
            return Err(RefError::LooksLikeImageId {
                input: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split_once(':').map_or(&*remainder, |(r, _)| r);
        if go_to_lower(remote) != remote {
            return Err(RefError::Uppercase {
                input: s.to_owned(),
                name: remote.to_owned(),
            });
        }
        let full = format!("{domain}/{remainder}");
        parse_canonical(&full, s)
    }

    /// The domain (`docker.io`, `localhost:5000`, `[::1]:5000`), as written apart from the Hub
    /// rewrite; empty only in the `foo_bar.com/app` case described at
    /// [`parse_normalized`](Self::parse_normalized).
    pub fn domain(&self) -> &str {
        &self.name[..self.domain_len]
    }

    /// The repository path (`library/busybox`).
    pub fn path(&self) -> &str {
        if self.domain_len == 0 {
            &self.name
        } else {
            &self.name[self.domain_len + 1..]
        }
    }

    /// `domain/path` (Docker's `Name()`), without tag or digest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The explicit tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag the engine resolves: the explicit tag, `latest` for a name-only reference, and
    /// `None` for a reference with a digest but no tag (the digest alone decides).
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// Docker's `TagNameOnly`: add `:latest` when there is neither tag nor digest.
    #[must_use]
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// Docker's `ParseDockerRef` applied to this reference: what the engine actually resolves.
    /// A reference with both tag and digest keeps only the digest; a name-only reference gets
    /// `:latest`.
    #[must_use]
    pub fn to_docker_ref(&self) -> Self {
        let mut r = self.clone();
        if r.digest.is_some() {
            r.tag = None;
        }
        r.with_default_tag()
    }

    /// Docker's `WithTag`: replace the tag (a digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Self, RefError> {
        if !grammar::is_tag(tag) {
            return Err(RefError::InvalidTag {
                tag: tag.to_owned(),
            });
        }
        let mut r = self.clone();
        r.tag = Some(tag.to_owned());
        Ok(r)
    }

    /// Docker's `WithDigest`: replace the digest (a tag is kept).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        let mut r = self.clone();
        r.digest = Some(digest);
        r
    }

    /// Docker's `TrimNamed`: the name without tag or digest.
    #[must_use]
    pub fn name_only(&self) -> Self {
        Self {
            name: self.name.clone(),
            domain_len: self.domain_len,
            tag: None,
            digest: None,
        }
    }

    /// Docker's `FamiliarName`: the name as the CLI shows it (`busybox`, `user/app`,
    /// `localhost:5000/app`).
    pub fn familiar_name(&self) -> &str {
        if self.domain() != DOCKER_HUB {
            return &self.name;
        }
        let path = self.path();
        match path.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest,
            _ => path,
        }
    }

    /// Docker's `FamiliarString`: `busybox:latest`, `user/app@sha256:...`.
    ///
    /// For display only: like Docker's, it does not always parse back to the same reference
    /// (`docker.io/<64 hex>` shows as a bare hex string, which reads as an image ID, and
    /// `docker.io/a.b/c` shows as `a.b/c`, which reads as registry `a.b`). Use `to_string()`
    /// wherever the result is parsed again.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    fn with_suffix(&self, name: &str) -> String {
        let mut s = name.to_owned();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// The domain's host, without port (`[::1]` keeps its brackets).
    pub fn host(&self) -> &str {
        grammar::split_host_port(self.domain()).0
    }

    /// The domain's port, as written, if any.
    pub fn port(&self) -> Option<&str> {
        grammar::split_host_port(self.domain()).1
    }

    /// True when the image comes from Docker Hub: the host is `docker.io`, `index.docker.io` or
    /// `registry-1.docker.io` (compared case-insensitively, since DNS is), with no port or port
    /// 443. A Hub host on another port is treated as a separate registry.
    pub fn is_docker_hub(&self) -> bool {
        let host = self.host();
        let hub = [DOCKER_HUB, LEGACY_HUB, HUB_REGISTRY]
            .iter()
            .any(|h| host.eq_ignore_ascii_case(h));
        hub && self.port().is_none_or(|p| port_number(p) == Some(443))
    }

    /// The Hub repository (`library/busybox`, `user/app`), or `None` off Hub.
    ///
    /// On `docker.io` this is the path. On the other Hub aliases Docker does not add
    /// `library/`, so `registry-1.docker.io/busybox` has the path `busybox`; Hub serves
    /// one-component names as official images, so this returns `library/busybox` for it.
    pub fn hub_repository(&self) -> Option<Cow<'_, str>> {
        if !self.is_docker_hub() {
            return None;
        }
        let path = self.path();
        Some(if path.contains('/') {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(format!("{OFFICIAL_NAMESPACE}/{path}"))
        })
    }

    /// The Hub namespace: `library` for official images, else the user or organisation
    /// (`docker.io/myorg/app` → `myorg`). `None` off Hub.
    pub fn hub_namespace(&self) -> Option<&str> {
        if !self.is_docker_hub() {
            return None;
        }
        Some(
            self.path()
                .split_once('/')
                .map_or(OFFICIAL_NAMESPACE, |(ns, _)| ns),
        )
    }

    /// True for a Docker Official Image: on Hub, in `library/`, one level deep
    /// (`docker.io/library/busybox`). A nested `library/a/b` is not official: Hub has no such
    /// repositories, so nothing official can be named that way.
    pub fn is_official(&self) -> bool {
        self.hub_repository().is_some_and(|repo| {
            repo.strip_prefix("library/")
                .is_some_and(|rest| !rest.contains('/'))
        })
    }

    /// The registry a registry-access rule is about: `docker.io` for every Hub alias, otherwise
    /// the domain as written (`ghcr.io`, `localhost:5000`). For the domain-less
    /// `foo_bar.com/app` case this is the first path component (`foo_bar.com`), the host
    /// containerd would contact for it; no `allowedRegistries` entry can name it (`_` is not
    /// valid in a host), so [`host_matches`](Self::host_matches) is always false there.
    pub fn registry_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB
        } else if self.domain_len == 0 {
            self.name.split('/').next().unwrap_or_default()
        } else {
            self.domain()
        }
    }

    /// Does this image's registry match an `allowedRegistries` entry (`host[:port]`)? See
    /// [`RegistryHost`] for the rules; an invalid entry matches nothing.
    pub fn host_matches(&self, allowed: &str) -> bool {
        RegistryHost::parse(allowed).is_ok_and(|h| h.matches(self))
    }

    /// A key equal for two references to the same repository: Hub aliases unified to
    /// `docker.io/<hub repository>`, the host compared case-insensitively.
    pub(crate) fn repository_key(&self) -> (String, Cow<'_, str>) {
        if let Some(repo) = self.hub_repository() {
            return (DOCKER_HUB.to_owned(), repo);
        }
        (
            self.registry_host().to_ascii_lowercase(),
            Cow::Borrowed(self.path()),
        )
    }

    /// True when both name the same repository (tags and digests ignored), with Hub aliases and
    /// host case unified.
    pub fn same_repository(&self, other: &Self) -> bool {
        self.repository_key() == other.repository_key()
    }
}

/// Docker's `Parse`, for a string that has already been through `splitDockerDomain`; `input` is
/// what the caller gave, for error messages.
fn parse_canonical(full: &str, input: &str) -> Result<Reference, RefError> {
    let Some(parts) = grammar::match_reference(full) else {
        let lower = go_to_lower(full);
        if lower != full && grammar::match_reference(&lower).is_some() {
            return Err(RefError::Uppercase {
                input: input.to_owned(),
                name: input.to_owned(),
            });
        }
        return Err(RefError::InvalidFormat {
            input: input.to_owned(),
        });
    };
    if parts.path.len() > PATH_MAX {
        return Err(RefError::NameTooLong {
            input: input.to_owned(),
            len: parts.path.len(),
        });
    }
    let digest = parts.digest.map(Digest::parse).transpose()?;
    let name = if parts.domain.is_empty() {
        parts.path.to_owned()
    } else {
        format!("{}/{}", parts.domain, parts.path)
    };
    Ok(Reference {
        name,
        domain_len: parts.domain.len(),
        tag: parts.tag.map(str::to_owned),
        digest,
    })
}

/// Docker's `splitDockerDomain`: (domain, remainder with tag and digest).
fn split_docker_domain(s: &str) -> (&str, Cow<'_, str>) {
    let Some((first, rest)) = s.split_once('/') else {
        // One component ("ubuntu", "ubuntu:latest", even "localhost:5000"): always Hub.
        return (DOCKER_HUB, Cow::Owned(format!("{OFFICIAL_NAMESPACE}/{s}")));
    };
    let (domain, remote) = if first == "localhost" {
        (first, rest)
    } else if first == LEGACY_HUB {
        (DOCKER_HUB, rest)
    } else if first.contains(['.', ':']) || go_to_lower(first) != first {
        // Looks like a host (dot or port), or has uppercase, which a namespace cannot have.
        (first, rest)
    } else {
        (DOCKER_HUB, s)
    };
    if domain == DOCKER_HUB && !remote.contains('/') {
        return (domain, Cow::Owned(format!("{OFFICIAL_NAMESPACE}/{remote}")));
    }
    (domain, Cow::Borrowed(remote))
}

/// Go's `strings.ToLower`: simple (one-to-one) case mapping. Rust's `str::to_lowercase` uses
/// the full mapping, which differs for U+0130 and final sigma; only the choice between two
/// error messages depends on it, but keeping Go's mapping keeps them identical.
fn go_to_lower(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c == '\u{130}' {
                    return 'i';
                }
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ => c,
                }
            })
            .collect(),
    )
}

/// A port as a number, ignoring leading zeros; `None` when out of range.
pub(crate) fn port_number(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let trimmed = p.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some(0);
    }
    trimmed.parse().ok()
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(&self.name))
    }
}

impl FromStr for Reference {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}
