//! The one error type of this crate.
//!
//! Where the Docker Engine has a message for the same failure, the text starts with the engine's
//! wording (so a user who knows `docker` recognises it) and then names the offending input.
//! Inputs are printed with Rust's debug escaping, so a hostile reference cannot put control
//! characters into a log line or an HTTP answer.

/// Why an image reference, tag, digest or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefError {
    /// The input does not follow the reference grammar (Docker: `invalid reference format`).
    #[error("invalid reference format: {input:?}")]
    InvalidFormat {
        /// The reference as given.
        input: String,
    },

    /// The repository part contains uppercase letters. The text in parentheses is what Docker
    /// names there: the repository after domain splitting and up to the first `:`.
    #[error(
        "invalid reference format: repository name ({}) must be lowercase",
        .name.escape_debug()
    )]
    Uppercase {
        /// The reference as given.
        input: String,
        /// The part Docker reports as the repository name.
        name: String,
    },

    /// The repository path (without the domain) is longer than 255 characters.
    #[error(
        "invalid reference format: repository name must not be more than 255 characters \
         ({len} in {input:?})"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// Length of the normalised path, `library/` included.
        len: usize,
    },

    /// A bare 64-hex string was given as a name: Docker refuses it because it looks like an
    /// image ID.
    #[error(
        "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
        .input.escape_debug()
    )]
    LooksLikeImageId {
        /// The reference as given.
        input: String,
    },

    /// A digest with a supported algorithm whose hex part is malformed (uppercase, non-hex), or
    /// an algorithm name that is not valid at all.
    #[error("invalid checksum digest format: {digest:?}")]
    DigestFormat {
        /// The digest as given.
        digest: String,
    },

    /// A digest whose hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length: {digest:?}")]
    DigestLength {
        /// The digest as given.
        digest: String,
    },

    /// A well-formed digest of an algorithm the engine does not know (only `sha256`, `sha384`
    /// and `sha512` are).
    #[error("unsupported digest algorithm: {digest:?}")]
    DigestUnsupported {
        /// The digest as given.
        digest: String,
    },

    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (Docker: `invalid tag format`).
    #[error("invalid tag format: {tag:?}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
    },

    /// `repo` of commit, tag or import carried a digest (Docker: `cannot import digest
    /// reference`, the engine's wording for all three routes).
    #[error("cannot import digest reference: {input:?}")]
    DigestReference {
        /// The repository as given.
        input: String,
    },

    /// A build `t` value carried a digest (Docker: `build tag cannot contain a digest`).
    #[error("build tag cannot contain a digest: {input:?}")]
    BuildTagDigest {
        /// The build tag as given.
        input: String,
    },

    /// A pull of `scratch`, the name reserved for "no base image" (Docker: `'scratch' is a
    /// reserved name`).
    #[error("'scratch' is a reserved name: {input:?}")]
    ReservedName {
        /// The image as given.
        input: String,
    },

    /// Tagging into a repository named `sha256`, which would be ambiguous with a digest
    /// (Docker: `refusing to create an ambiguous tag using digest algorithm as name`).
    #[error("refusing to create an ambiguous tag using digest algorithm as name: {input:?}")]
    AmbiguousTag {
        /// The repository as given.
        input: String,
    },

    /// An `imageList`, `allowedRepositories` or `organizationNamespaces` entry that is not a
    /// valid pattern.
    #[error("invalid image pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The entry as given.
        pattern: String,
        /// What is wrong and how to write it instead.
        reason: String,
    },

    /// An `allowedRegistries` entry that is not `host[:port]`.
    #[error("invalid registry {entry:?}: expected host[:port], e.g. docker.io or registry.example.com:5000")]
    InvalidRegistry {
        /// The entry as given.
        entry: String,
    },
}
