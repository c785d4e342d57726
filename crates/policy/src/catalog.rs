//! The Docker Hub category catalog that Image Access Management (`imageAccess`) reads: which
//! namespaces and repositories are Verified Publisher images.
//!
//! Docker Official Images need no catalog: they are the `library/` namespace. Every other Hub
//! image is a community image unless the catalog says otherwise, so a missing or stale catalog
//! errs towards the most restricted category.
//!
//! Format (`catalogVersion` 1), loaded like the policy: strict JSON, duplicate keys refused,
//! every problem reported as `FILE:LINE:COL: key.path: message`:
//!
//! ```json
//! {
//!   "catalogVersion": 1,
//!   "namespaces": { "bitnami": "verified-publisher" },
//!   "repositories": { "grafana/grafana": "verified-publisher", "bitnami/legacy": "community" }
//! }
//! ```
//!
//! A `repositories` entry overrides its namespace's entry. Categories: `verified-publisher`,
//! `community`.

use crate::json::{format_path, Kind, Node, Segment};
use crate::shape::Problem;
use crate::{parse_json, problems_error, read_limited, sha256_hex, PolicyError};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use stockade_imageref::Reference;

/// Largest catalog file read (16 MiB: Docker Hub has a few thousand verified publishers).
pub const CATALOG_LIMIT: u64 = 16 * 1024 * 1024;

/// A Docker Hub image's category, as Image Access Management distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Docker Official Images (`library/…`).
    Official,
    /// Docker Verified Publisher images.
    VerifiedPublisher,
    /// Everything else on Docker Hub.
    Community,
}

impl Category {
    /// The words used in denials: `image access denied: <category> images not allowed`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::VerifiedPublisher => "verified publisher",
            Self::Community => "community",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A validated catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    namespaces: HashMap<String, Category>,
    repositories: HashMap<String, Category>,
    hash: String,
}

impl Catalog {
    /// Reads and validates a catalog file (a regular file of at most [`CATALOG_LIMIT`]).
    ///
    /// # Errors
    /// Every problem in the file, positioned.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let name = path.display().to_string();
        let bytes = read_limited(path, &name, CATALOG_LIMIT)?;
        Self::parse(&name, &bytes)
    }

    /// Validates a catalog held in memory; `file_name` is used in diagnostics.
    ///
    /// # Errors
    /// Every problem in the document, positioned.
    pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Self, PolicyError> {
        let (text, parsed, mut problems) = parse_json(file_name, bytes, CATALOG_LIMIT)?;
        let mut catalog = Catalog {
            hash: sha256_hex(bytes),
            ..Catalog::default()
        };
        let Kind::Object(members) = &parsed.root.kind else {
            problems.push(problem(
                &parsed.root,
                "(root)",
                "expected an object with catalogVersion, namespaces and repositories",
            ));
            return Err(problems_error(file_name, text, problems));
        };
        let mut version_seen = false;
        for member in members {
            match member.key.as_str() {
                "catalogVersion" => {
                    version_seen = true;
                    if !matches!(&member.value.kind, Kind::Number(n) if n.int == Some(1)) {
                        problems.push(problem(
                            &member.value,
                            "catalogVersion",
                            "expected 1, the only catalog format this version of stockade reads",
                        ));
                    }
                }
                "namespaces" => entries(&member.value, "namespaces", &mut problems, |key| {
                    is_component(key).then(|| key.to_owned()).ok_or(
                        "expected a Docker Hub namespace (lowercase letters and digits, separated by ., _ or -)",
                    )
                })
                .into_iter()
                .for_each(|(k, c)| {
                    catalog.namespaces.insert(k, c);
                }),
                "repositories" => entries(&member.value, "repositories", &mut problems, |key| {
                    hub_repository(key).ok_or(
                        "expected a Docker Hub repository such as grafana/grafana (lowercase, no registry, tag or digest)",
                    )
                })
                .into_iter()
                .for_each(|(k, c)| {
                    catalog.repositories.insert(k, c);
                }),
                other => problems.push(Problem {
                    pos: member.key_pos,
                    path: format_path(&[Segment::Key(other.to_owned())]),
                    message: "unknown key: a catalog has catalogVersion, namespaces and repositories"
                        .to_owned(),
                }),
            }
        }
        if !version_seen {
            problems.push(problem(
                &parsed.root,
                "(root)",
                "missing catalogVersion: add \"catalogVersion\": 1",
            ));
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(problems_error(file_name, text, problems))
        }
    }

    /// The SHA-256 of the catalog file (recorded with the policy hash).
    #[must_use]
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The category of a Docker Hub image; `None` for images of other registries, which
    /// Image Access Management does not govern.
    #[must_use]
    pub fn category(&self, image: &Reference) -> Option<Category> {
        category(image, Some(self))
    }
}

/// The category of a Docker Hub image, with or without a catalog (without one, every image
/// outside `library/` is community); `None` for other registries.
#[must_use]
pub fn category(image: &Reference, catalog: Option<&Catalog>) -> Option<Category> {
    if !image.is_docker_hub() {
        return None;
    }
    if image.is_official() {
        return Some(Category::Official);
    }
    let repository = image.hub_repository()?;
    let found = catalog.and_then(|c| {
        c.repositories
            .get(repository.as_ref())
            .copied()
            .or_else(|| {
                image
                    .hub_namespace()
                    .and_then(|ns| c.namespaces.get(ns).copied())
            })
    });
    Some(found.unwrap_or(Category::Community))
}

fn problem(node: &Node, path: &str, message: &str) -> Problem {
    Problem {
        pos: node.pos,
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

/// Reads `{ key: "category", ... }`, checking each key with `key_check`.
fn entries(
    node: &Node,
    field: &str,
    problems: &mut Vec<Problem>,
    key_check: impl Fn(&str) -> Result<String, &'static str>,
) -> Vec<(String, Category)> {
    let Kind::Object(members) = &node.kind else {
        problems.push(problem(
            node,
            field,
            "expected an object mapping names to \"verified-publisher\" or \"community\"",
        ));
        return Vec::new();
    };
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        let path = format_path(&[
            Segment::Key(field.to_owned()),
            Segment::Key(member.key.clone()),
        ]);
        let key = match key_check(&member.key) {
            Ok(key) => key,
            Err(message) => {
                problems.push(Problem {
                    pos: member.key_pos,
                    path,
                    message: message.to_owned(),
                });
                continue;
            }
        };
        let category = match &member.value.kind {
            Kind::String(s) if s == "verified-publisher" => Category::VerifiedPublisher,
            Kind::String(s) if s == "community" => Category::Community,
            Kind::String(s) if s == "official" => {
                problems.push(problem(
                    &member.value,
                    &path,
                    "official images are the library/ namespace and need no entry: use \"verified-publisher\" or \"community\"",
                ));
                continue;
            }
            _ => {
                problems.push(problem(
                    &member.value,
                    &path,
                    "expected \"verified-publisher\" or \"community\"",
                ));
                continue;
            }
        };
        out.push((key, category));
    }
    out
}

/// A Docker Hub path component.
fn is_component(s: &str) -> bool {
    Reference::parse_normalized(&format!("{s}/x"))
        .is_ok_and(|r| r.is_docker_hub() && r.hub_namespace() == Some(s))
        && !s.is_empty()
}

/// `namespace/name` of a Docker Hub repository outside `library/`, as the catalog keys it.
fn hub_repository(key: &str) -> Option<String> {
    if !key.contains('/') {
        return None;
    }
    let r = Reference::parse_normalized(key).ok()?;
    if !r.is_docker_hub() || r.tag().is_some() || r.digest().is_some() || r.is_official() {
        return None;
    }
    // Keys are written without a registry, so the normalised path must be the key itself.
    let repository = r.hub_repository()?;
    (repository == key).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    const GOOD: &str = r#"{
  "catalogVersion": 1,
  "namespaces": {"bitnami": "verified-publisher"},
  "repositories": {"grafana/grafana": "verified-publisher", "bitnami/legacy": "community"}
}"#;

    #[test]
    fn categories() {
        let c = Catalog::parse("c.json", GOOD.as_bytes()).unwrap();
        assert_eq!(c.category(&r("busybox")), Some(Category::Official));
        assert_eq!(
            c.category(&r("library/busybox:1")),
            Some(Category::Official)
        );
        assert_eq!(
            c.category(&r("bitnami/redis")),
            Some(Category::VerifiedPublisher)
        );
        assert_eq!(
            c.category(&r("docker.io/bitnami/legacy")),
            Some(Category::Community)
        );
        assert_eq!(
            c.category(&r("index.docker.io/grafana/grafana:10")),
            Some(Category::VerifiedPublisher)
        );
        assert_eq!(c.category(&r("grafana/loki")), Some(Category::Community));
        assert_eq!(c.category(&r("ann/tool")), Some(Category::Community));
        // A look-alike namespace is not the verified one.
        assert_eq!(
            c.category(&r("bitnami-evil/redis")),
            Some(Category::Community)
        );
        assert_eq!(c.category(&r("ghcr.io/bitnami/redis")), None);
        assert_eq!(
            category(&r("bitnami/redis"), None),
            Some(Category::Community)
        );
    }

    #[test]
    fn errors_are_positioned() {
        let bad = r#"{
  "catalogVersion": 2,
  "namespaces": {"Bitnami": "verified-publisher", "ok": "gold"},
  "repositories": {"docker.io/grafana/grafana": "verified-publisher", "library/nginx": "official", "x/y:1": "community"},
  "repos": {}
}"#;
        let err = Catalog::parse("c.json", bad.as_bytes()).unwrap_err();
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert!(
            lines[0].starts_with("c.json:2:21: catalogVersion: expected 1"),
            "{text}"
        );
        assert!(
            lines[1]
                .starts_with("c.json:3:18: namespaces.Bitnami: expected a Docker Hub namespace"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("c.json:3:57: namespaces.ok: expected \"verified-publisher\""),
            "{text}"
        );
        assert!(lines[3].starts_with("c.json:4:20: repositories[\"docker.io/grafana/grafana\"]: expected a Docker Hub repository"), "{text}");
        assert!(
            lines[4].contains("repositories[\"library/nginx\"]"),
            "{text}"
        );
        assert!(lines[5].contains("repositories[\"x/y:1\"]"), "{text}");
        assert!(
            lines[6].starts_with("c.json:5:3: repos: unknown key"),
            "{text}"
        );
    }

    #[test]
    fn duplicates_and_version_are_required() {
        let err = Catalog::parse(
            "c.json",
            br#"{"namespaces": {"a": "community", "a": "verified-publisher"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("namespaces.a: duplicate key"), "{err}");
        assert!(err.contains("missing catalogVersion"), "{err}");
        assert!(Catalog::parse("c.json", b"[]").is_err());
        assert!(Catalog::parse("c.json", b"{\"catalogVersion\": 1}").is_ok());
    }
}
