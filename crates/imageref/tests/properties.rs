//! Property tests: no input panics, valid references round-trip, and the hand-written grammar
//! agrees with Docker's own regular expressions (rebuilt here, with the `regex` crate, from
//! distribution/reference's `regexp.go`) on every generated input.

use proptest::prelude::*;
use regex::Regex;
use stockade_imageref::{
    parse_build_tags, parse_repo_and_tag, repo_tag_reference, AnyReference, ImagePattern,
    Reference, RegistryHost, RepositoryPattern,
};

// ---- Docker's expressions, assembled the way regexp.go assembles them ----

struct Oracle {
    reference: Regex,
    name: Regex,
}

impl Oracle {
    fn new() -> Result<Self, regex::Error> {
        let alphanumeric = "[a-z0-9]+";
        let separator = "(?:[._]|__|[-]+)";
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let optional_port = "(?::[0-9]+)?";
        // Go's \w is ASCII-only; Rust's is Unicode unless told otherwise.
        let tag = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
        let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
        let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
        let host = format!("(?:{domain_name}|{ipv6})");
        let domain_and_port = format!("{host}{optional_port}");
        let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
        let remote_name = format!("{path_component}(?:/{path_component})*");
        let name_pat = format!("(?:{domain_and_port}/)?{remote_name}");
        let reference = format!("^({name_pat})(?::({tag}))?(?:@({digest}))?$");
        let name = format!("^(?:({domain_and_port})/)?({remote_name})$");
        Ok(Self {
            reference: Regex::new(&reference)?,
            name: Regex::new(&name)?,
        })
    }

    /// `ParseNormalizedNamed` built on the regular expressions: (domain, path, tag, digest), or
    /// `None` for any error.
    fn parse_normalized(
        &self,
        s: &str,
    ) -> Option<(String, String, Option<String>, Option<String>)> {
        let is_id = s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if is_id {
            return None;
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if go_lower(remote) != remote {
            return None;
        }
        let full = format!("{domain}/{remainder}");
        let caps = self.reference.captures(&full)?;
        let name = caps.get(1)?.as_str();
        let tag = caps.get(2).map(|m| m.as_str().to_owned());
        let digest = caps.get(3).map(|m| m.as_str().to_owned());
        let (domain, path) = match self.name.captures(name) {
            Some(n) => (
                n.get(1).map_or("", |m| m.as_str()).to_owned(),
                n.get(2)?.as_str().to_owned(),
            ),
            None => (String::new(), name.to_owned()),
        };
        if path.len() > 255 {
            return None;
        }
        if let Some(d) = &digest {
            let (alg, hex) = d.split_once(':')?;
            let size = match alg {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return None,
            };
            if hex.len() != size || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
        }
        Some((domain, path, tag, digest))
    }
}

fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                return 'i';
            }
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(x), None) => x,
                _ => c,
            }
        })
        .collect()
}

fn split_docker_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return ("docker.io".into(), format!("library/{name}"));
    };
    let (domain, remote) = if first == "localhost" {
        (first.to_owned(), rest.to_owned())
    } else if first == "index.docker.io" {
        ("docker.io".to_owned(), rest.to_owned())
    } else if first.contains('.') || first.contains(':') || go_lower(first) != first {
        (first.to_owned(), rest.to_owned())
    } else {
        ("docker.io".to_owned(), name.to_owned())
    };
    if domain == "docker.io" && !remote.contains('/') {
        return (domain, format!("library/{remote}"));
    }
    (domain, remote)
}

// ---- generators ----

/// Fragments that sit on the grammar's edges, glued together in random order.
fn fragments() -> impl Strategy<Value = String> {
    let pieces: Vec<String> = [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "localhost",
        "Foo",
        "a",
        "b0",
        "a.b",
        "a_b.c",
        "a-b",
        "a--b",
        "a__b",
        "a___b",
        "[::1]",
        "[fc00::1]",
        "[fe80::1%e]",
        ":5000",
        ":",
        "/",
        "//",
        "@",
        "sha256:",
        "sha512:",
        "md5:",
        "SHA256:",
        "-",
        "_",
        "__",
        ".",
        "..",
        "A",
        "library",
        "x",
        "latest",
        "\u{130}",
        "\u{212a}",
        "é",
        " ",
        "*",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "f".repeat(64),
        "0123456789abcdef".repeat(2),
        "F".repeat(64),
        "a".repeat(250),
        "t".repeat(128),
    ])
    .collect();
    prop::collection::vec(prop::sample::select(pieces), 1..8).prop_map(|v| v.concat())
}

/// Strings over the characters that matter to the grammar.
fn near_reference() -> impl Strategy<Value = String> {
    "[a-cA-C0-9:/@._\\-\\[\\]]{0,40}"
}

/// Structurally valid references, for round trips.
fn valid_reference() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}";
    let domain = prop_oneof![
        Just(String::new()),
        Just("docker.io/".to_owned()),
        Just("index.docker.io/".to_owned()),
        Just("registry-1.docker.io/".to_owned()),
        Just("localhost/".to_owned()),
        Just("localhost:5000/".to_owned()),
        Just("[::1]:5000/".to_owned()),
        Just("[fc00:1:2::7]/".to_owned()),
        "[a-zA-Z0-9]{1,4}(\\.[a-zA-Z0-9]{1,4}){1,2}(:[0-9]{1,5})?/",
        "[A-Z][a-z]{0,3}/",
    ];
    let path = prop::collection::vec(component, 1..4).prop_map(|v| v.join("/"));
    let tag = prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
    let digest = prop::option::of("[0-9a-f]{64}");
    (domain, path, tag, digest).prop_map(|(d, p, t, h)| {
        let mut s = format!("{d}{p}");
        if let Some(t) = t {
            s.push(':');
            s.push_str(&t);
        }
        if let Some(h) = h {
            s.push_str("@sha256:");
            s.push_str(&h);
        }
        s
    })
}

fn assert_agrees(oracle: &Oracle, s: &str) -> Result<(), TestCaseError> {
    let ours = Reference::parse_normalized(s).ok().map(|r| {
        (
            r.domain().to_owned(),
            r.path().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(|d| d.as_str().to_owned()),
        )
    });
    prop_assert_eq!(ours, oracle.parse_normalized(s), "input {:?}", s);
    Ok(())
}

fn exercise_everything(s: &str, t: &str) {
    let _ = Reference::parse_normalized(s);
    let _ = AnyReference::parse(s);
    let _ = ImagePattern::parse(s);
    let _ = RepositoryPattern::parse(s);
    let _ = RepositoryPattern::namespace(s);
    let _ = RegistryHost::parse(s);
    let _ = parse_repo_and_tag(s, t);
    let _ = repo_tag_reference(s, t);
    let _ = parse_build_tags([s, t]);
    if let Ok(r) = Reference::parse_normalized(s) {
        let _ = r.host_matches(t);
        let _ = r.familiar();
        let _ = r.is_official();
        let _ = r.registry_host();
        if let Ok(p) = ImagePattern::parse(t) {
            let _ = p.matches(&r, &[t.to_owned(), s.to_owned()]);
        }
        if let Ok(p) = RepositoryPattern::parse(t) {
            let _ = p.matches(&r);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics(s in any::<String>(), t in any::<String>()) {
        exercise_everything(&s, &t);
    }

    #[test]
    fn no_near_miss_panics(s in fragments(), t in near_reference()) {
        exercise_everything(&s, &t);
        exercise_everything(&t, &s);
    }

    #[test]
    fn valid_references_round_trip(s in valid_reference()) {
        let r = Reference::parse_normalized(&s);
        prop_assert!(r.is_ok(), "{:?}: {:?}", s, r);
        let r = r.unwrap();
        let full = r.to_string();
        let again = Reference::parse_normalized(&full).unwrap();
        prop_assert_eq!(&again, &r);
        prop_assert_eq!(again.to_string(), full);
        // The familiar form parses back too, except where Docker's own familiar form is
        // ambiguous: a bare 64-hex name reads as an image ID, and a Hub namespace with a dot
        // (`docker.io/a.b/c` shows as `a.b/c`) reads as a registry.
        let familiar = r.familiar();
        let image_id = familiar.len() == 64 && familiar.bytes().all(|c| c.is_ascii_hexdigit());
        let dotted_namespace = r.domain() == "docker.io"
            && r.path().split('/').next().is_some_and(|ns| ns.contains('.'));
        if !image_id && !dotted_namespace {
            prop_assert_eq!(Reference::parse_normalized(&familiar).unwrap(), r);
        }
    }

    #[test]
    fn anything_that_parses_round_trips(s in prop_oneof![fragments(), near_reference()]) {
        if let Ok(r) = Reference::parse_normalized(&s) {
            let again = Reference::parse_normalized(&r.to_string());
            prop_assert_eq!(again, Ok(r));
        }
    }

    #[test]
    fn grammar_agrees_with_dockers_regexps(
        s in prop_oneof![fragments(), near_reference(), valid_reference()],
    ) {
        assert_agrees(oracle().as_ref().unwrap(), &s)?;
    }
}

fn oracle() -> &'static Result<Oracle, regex::Error> {
    static ORACLE: std::sync::OnceLock<Result<Oracle, regex::Error>> = std::sync::OnceLock::new();
    ORACLE.get_or_init(Oracle::new)
}

#[test]
fn oracle_agrees_on_fixed_edges() {
    let o = oracle().as_ref().unwrap();
    for s in [
        "busybox",
        "foo_bar.com/x",
        "a:5000/b:c",
        "[::1]:5000/x",
        "[::1]/x",
        "[::1]",
        "Foo/bar",
        "Foo_Bar/x",
        "docker.io/library/x@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "x:y:z",
        "x@y@z",
    ] {
        assert_agrees(o, s).unwrap();
    }
}
