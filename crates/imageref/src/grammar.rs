//! Docker's reference grammar, hand-written.
//!
//! This is the grammar of `github.com/distribution/reference` (the package the engine vendors),
//! written as small matchers instead of regular expressions:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] remote-name
//! domain           := host [":" port]
//! host             := domain-name | "[" ipv6-chars "]"
//! domain-name      := domain-component ("." domain-component)*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! ipv6-chars       := [a-fA-F0-9:]+
//! port             := [0-9]+
//! remote-name      := path-component ("/" path-component)*
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm        := alg-component ([-_+.] alg-component)*
//! alg-component    := [A-Za-z][A-Za-z0-9]*
//! ```
//!
//! Docker matches the whole reference with one anchored regular expression and then splits the
//! name again with a second one whose optional domain group is greedy. Because a tag can hold
//! neither `/` nor `:` and a digest cannot hold `@`, the split points are unique, so the
//! matchers below find the same (domain, path, tag, digest) as Go's leftmost-first engine; the
//! differential test in `tests/oracle.rs` checks that against the original expressions.

/// Maximum length of a tag (Docker's `[\w][\w.-]{0,127}`).
pub(crate) const TAG_MAX: usize = 128;

/// The parts of a reference that matched the grammar, as slices of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    /// Empty when the name has no domain.
    pub domain: &'a str,
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// `reference` above, anchored at both ends.
pub(crate) fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((before, after)) => {
            if !is_digest_syntax(after) {
                return None;
            }
            (before, Some(after))
        }
        None => (s, None),
    };
    // A `:` after the last `/` can only start the tag: the name holds `:` only in its domain,
    // and a domain is always followed by `/`.
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = &name_tag[colon + 1..];
            if !is_tag(tag) {
                return None;
            }
            (&name_tag[..colon], Some(tag))
        }
        _ => (name_tag, None),
    };
    let (domain, path) = split_name(name)?;
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `name` above: the domain is the first component when it is a valid domain and the rest a
/// valid remote name (Docker's greedy optional group); otherwise the whole name must be a
/// remote name and the domain is empty.
pub(crate) fn split_name(name: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first) && is_remote_name(rest) {
            return Some((first, rest));
        }
    }
    is_remote_name(name).then_some(("", name))
}

pub(crate) fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

pub(crate) fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().copied().is_some_and(alnum) || !b.last().copied().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, between two alphanumerics (the ends were checked above).
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `domain` above: host with an optional numeric port.
pub(crate) fn is_domain(s: &str) -> bool {
    let (host, port) = split_host_port(s);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    port_ok && is_host(host)
}

/// Split `host[:port]`, where host may be a bracketed IPv6 literal. The port is `Some` whenever
/// a `:` follows the host (it may then be empty or invalid; callers check).
pub(crate) fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let (host, rest) = s.split_at(end + 1);
            return match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if rest.is_empty() => (host, None),
                // Something other than a port after `]`: leave it in the host so it fails.
                None => (s, None),
            };
        }
        return (s, None);
    }
    match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    }
}

fn is_host(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
    }
    !s.is_empty() && s.split('.').all(is_domain_component)
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// `tag` above.
pub(crate) fn is_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    b.len() <= TAG_MAX
        && b.first().copied().is_some_and(word)
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `digest` above: the reference grammar's syntax only; the engine then validates the digest
/// further (see [`crate::Digest`]).
pub(crate) fn is_digest_syntax(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    is_algorithm(alg) && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

fn is_algorithm(s: &str) -> bool {
    s.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    })
}

/// Docker's `identifier`: exactly 64 lowercase hex characters (an image ID without `sha256:`).
pub(crate) fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components() {
        for ok in [
            "a", "a0", "a.b", "a_b", "a__b", "a-b", "a---b", "a.b_c-d", "0",
        ] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "A", "-a", "a-", "_a", "a_", ".a", "a.", "a..b", "a___b", "a_.b", "a-.b", "a.-b",
            "a b", "a/b", "é",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn domains() {
        for ok in [
            "localhost",
            "a",
            "A",
            "example.com",
            "EXAMPLE.com:5000",
            "xn--n3h.com",
            "127.0.0.1:5000",
            "[::1]",
            "[::1]:5000",
            "[fc00:1:2:3:4:5:6:7]",
            "a-b.c",
        ] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a:",
            "a:b",
            "[]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[fe80::1%eth0]",
            "a_b.com",
            "a:5000:1",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(is_tag("latest"));
        assert!(is_tag("_x"));
        assert!(is_tag(&"a".repeat(128)));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(!is_tag("-x"));
        assert!(!is_tag(".x"));
        assert!(!is_tag(""));
        assert!(!is_tag("a:b"));
        assert!(is_digest_syntax(&format!("sha256:{}", "A".repeat(32))));
        assert!(is_digest_syntax(&format!("a+b.c-d_e:{}", "0".repeat(40))));
        assert!(!is_digest_syntax(&format!("sha256:{}", "0".repeat(31))));
        assert!(!is_digest_syntax(&format!("1sha:{}", "0".repeat(32))));
        assert!(!is_digest_syntax(&format!("sha--256:{}", "0".repeat(32))));
        assert!(!is_digest_syntax(&format!(":{}", "0".repeat(32))));
    }

    #[test]
    fn reference_split_points() {
        let p = match_reference("a:5000/b:c@sha256:ffffffffffffffffffffffffffffffff");
        assert_eq!(
            p,
            Some(Parts {
                domain: "a:5000",
                path: "b",
                tag: Some("c"),
                digest: Some("sha256:ffffffffffffffffffffffffffffffff"),
            })
        );
        // The first component is a domain whenever it can be (Parse, before normalisation).
        assert_eq!(match_reference("foo/bar").map(|p| p.domain), Some("foo"));
        // Not a valid domain (underscore), so the whole name is the path.
        assert_eq!(
            match_reference("foo_bar.com/x").map(|p| (p.domain, p.path)),
            Some(("", "foo_bar.com/x"))
        );
        assert_eq!(match_reference("a:b:c"), None);
        assert_eq!(match_reference("a@b@c"), None);
    }
}
