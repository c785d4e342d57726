//! How the engine turns Engine API query parameters into references.
//!
//! Each function mirrors one handler of the Docker Engine (moby `daemon/server/router/...` and
//! `daemon/builder/backend`), so the gateway checks exactly the reference the engine is about
//! to act on. Query values arrive already percent-decoded; when a parameter is repeated, the
//! engine reads the first value (`r.Form.Get`), except for build's `t`, which it reads in full.

use crate::{Digest, RefError, Reference};

/// The name `FROM scratch` reserves; the engine refuses to pull it.
const SCRATCH: &str = "scratch";

/// `POST /images/create?fromImage=X&tag=Y` (pull; `docker pull`, and the implicit pull of
/// `docker run`/`create`).
///
/// The engine:
/// 1. drops one trailing `:` from `fromImage` (old `docker pull -a` clients send `busybox:`);
/// 2. parses it with `ParseNormalizedNamed`;
/// 3. if `tag` is not empty and is a valid digest, pulls `name@tag` (any tag or digest in
///    `fromImage` is dropped); otherwise sets `tag` as the tag (`WithTag`: a digest already in
///    `fromImage` is kept), refusing an invalid tag;
/// 4. refuses `scratch` (HTTP 403 in the engine).
///
/// A result with neither tag nor digest means **every tag** of the repository: the engine then
/// pulls all tags (`docker pull --all-tags`).
///
/// ```
/// use stockade_imageref::parse_repo_and_tag;
/// let r = parse_repo_and_tag("busybox", "1.36").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
/// ```
pub fn parse_repo_and_tag(from_image: &str, tag: &str) -> Result<Reference, RefError> {
    let image = from_image.strip_suffix(':').unwrap_or(from_image);
    let mut reference = Reference::parse_normalized(image)?;
    if !tag.is_empty() {
        reference = match Digest::parse(tag) {
            Ok(digest) => reference.name_only().with_digest(digest),
            Err(_) => reference.with_tag(tag)?,
        };
    }
    if reference.familiar_name() == SCRATCH {
        return Err(RefError::ReservedName {
            input: from_image.to_owned(),
        });
    }
    Ok(reference)
}

/// The engine's `RepoTagReference(repo, tag)`, shared by
/// - `POST /commit?repo=R&tag=T` (`docker commit`),
/// - `POST /images/create?fromSrc=S&repo=R&tag=T` (`docker import`),
/// - `POST /images/{name}/push?tag=T` (with `repo` = `{name}`, when `tag` is not empty).
///
/// An empty `repo` gives `Ok(None)`: commit and import then create an untagged image. A `repo`
/// with a digest is refused; `tag` replaces any tag in `repo`; without either the tag is
/// `latest`.
pub fn repo_tag_reference(repo: &str, tag: &str) -> Result<Option<Reference>, RefError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let reference = Reference::parse_normalized(repo)?;
    if reference.digest().is_some() {
        return Err(RefError::DigestReference {
            input: repo.to_owned(),
        });
    }
    if tag.is_empty() {
        Ok(Some(reference.with_default_tag()))
    } else {
        reference.with_tag(tag).map(Some)
    }
}

/// `POST /images/{name}/tag?repo=R&tag=T` (`docker tag`): [`repo_tag_reference`], then the
/// engine refuses a repository whose familiar name is `sha256` (it would read as a digest).
///
/// `Ok(None)` (empty `repo`) is what the engine answers with success without doing anything.
pub fn parse_tag_target(repo: &str, tag: &str) -> Result<Option<Reference>, RefError> {
    let target = repo_tag_reference(repo, tag)?;
    if target
        .as_ref()
        .is_some_and(|t| t.familiar_name() == "sha256")
    {
        return Err(RefError::AmbiguousTag {
            input: repo.to_owned(),
        });
    }
    Ok(target)
}

/// `POST /images/{name}/push?tag=T` (`docker push`): with a tag, [`repo_tag_reference`] on
/// `{name}`; without, `{name}` as parsed, and a name-only result means **every tag** of the
/// repository (`docker push --all-tags`).
pub fn parse_push(name: &str, tag: &str) -> Result<Reference, RefError> {
    if tag.is_empty() {
        return Reference::parse_normalized(name);
    }
    repo_tag_reference(name, tag)?.ok_or_else(|| RefError::InvalidFormat {
        input: name.to_owned(),
    })
}

/// `POST /build?t=NAME&t=NAME2` (classic builder and BuildKit alike): the engine's
/// `sanitizeRepoAndTags`. Empty values are skipped, each value is parsed, a digest is refused,
/// `:latest` is added where no tag is given, and duplicates (after normalisation) are dropped,
/// keeping the first occurrence's order.
pub fn parse_build_tags<'a, I>(names: I) -> Result<Vec<Reference>, RefError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out: Vec<Reference> = Vec::new();
    for name in names {
        if name.is_empty() {
            continue;
        }
        let reference = Reference::parse_normalized(name)?;
        if reference.digest().is_some() {
            return Err(RefError::BuildTagDigest {
                input: name.to_owned(),
            });
        }
        let reference = reference.with_default_tag();
        if !out.contains(&reference) {
            out.push(reference);
        }
    }
    Ok(out)
}
