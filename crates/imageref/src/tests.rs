//! Vectors derived from the cases in Docker's own tests (distribution/reference's
//! `reference_test.go`, `normalize_test.go`, `regexp_test.go`, and the moby route handlers),
//! restated for `ParseNormalizedNamed`, plus Stockade's matching rules.

use crate::*;

fn hex(n: usize) -> String {
    "0123456789abcdef".chars().cycle().take(n).collect()
}

fn f64() -> String {
    "f".repeat(64)
}

fn parse(s: &str) -> Reference {
    match Reference::parse_normalized(s) {
        Ok(r) => r,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

/// (input, fully qualified form, familiar form)
fn valid_vectors() -> Vec<(String, String, String)> {
    let d = format!("sha256:{}", f64());
    let redis = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    let bb = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let hex64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    let long_ok = "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev";
    let v: Vec<(String, String, String)> = vec![
        // Hub normalisation.
        (
            "busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
        ),
        (
            "library/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "docker.io/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "docker.io/busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
        ),
        (
            "docker.io/library/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "index.docker.io/busybox".into(),
            "docker.io/library/busybox".into(),
            "busybox".into(),
        ),
        (
            "index.docker.io/library/debian".into(),
            "docker.io/library/debian".into(),
            "debian".into(),
        ),
        (
            "index.docker.io/docker/docker".into(),
            "docker.io/docker/docker".into(),
            "docker/docker".into(),
        ),
        (
            "index.docker.io/fooo/bar".into(),
            "docker.io/fooo/bar".into(),
            "fooo/bar".into(),
        ),
        (
            "docker/docker".into(),
            "docker.io/docker/docker".into(),
            "docker/docker".into(),
        ),
        (
            "docker.io/docker/docker".into(),
            "docker.io/docker/docker".into(),
            "docker/docker".into(),
        ),
        (
            "fooo/bar".into(),
            "docker.io/fooo/bar".into(),
            "fooo/bar".into(),
        ),
        (
            "nonlibrary/ubuntu".into(),
            "docker.io/nonlibrary/ubuntu".into(),
            "nonlibrary/ubuntu".into(),
        ),
        (
            "other/library".into(),
            "docker.io/other/library".into(),
            "other/library".into(),
        ),
        (
            "ubuntu-12.04-base".into(),
            "docker.io/library/ubuntu-12.04-base".into(),
            "ubuntu-12.04-base".into(),
        ),
        (
            "library/foo/bar".into(),
            "docker.io/library/foo/bar".into(),
            "library/foo/bar".into(),
        ),
        (
            "docker.io/library/foo/bar".into(),
            "docker.io/library/foo/bar".into(),
            "library/foo/bar".into(),
        ),
        (
            "store/foo/bar".into(),
            "docker.io/store/foo/bar".into(),
            "store/foo/bar".into(),
        ),
        (
            "test_com/foo".into(),
            "docker.io/test_com/foo".into(),
            "test_com/foo".into(),
        ),
        (
            "docker/migrator".into(),
            "docker.io/docker/migrator".into(),
            "docker/migrator".into(),
        ),
        (
            "dbcc1".into(),
            "docker.io/library/dbcc1".into(),
            "dbcc1".into(),
        ),
        (hex(63), format!("docker.io/library/{}", hex(63)), hex(63)),
        (
            long_ok.into(),
            format!("docker.io/library/{long_ok}"),
            long_ok.into(),
        ),
        // A 64-hex name is fine once a domain removes the ambiguity with an image ID; its
        // familiar form is then the bare hex (which would not parse back).
        (
            format!("docker.io/{hex64}"),
            format!("docker.io/library/{hex64}"),
            hex64.into(),
        ),
        // Path component separators.
        (
            "docker-rules/docker".into(),
            "docker.io/docker-rules/docker".into(),
            "docker-rules/docker".into(),
        ),
        (
            "docker---rules/docker".into(),
            "docker.io/docker---rules/docker".into(),
            "docker---rules/docker".into(),
        ),
        (
            "doc/docker".into(),
            "docker.io/doc/docker".into(),
            "doc/docker".into(),
        ),
        (
            "d/docker".into(),
            "docker.io/d/docker".into(),
            "d/docker".into(),
        ),
        ("jess/t".into(), "docker.io/jess/t".into(), "jess/t".into()),
        (
            "dock__er/docker".into(),
            "docker.io/dock__er/docker".into(),
            "dock__er/docker".into(),
        ),
        // Not Hub: the first component is a domain (dot, port, localhost, uppercase).
        (
            "registry-1.docker.io/library/busybox".into(),
            "registry-1.docker.io/library/busybox".into(),
            "registry-1.docker.io/library/busybox".into(),
        ),
        (
            "registry-1.docker.io/busybox".into(),
            "registry-1.docker.io/busybox".into(),
            "registry-1.docker.io/busybox".into(),
        ),
        (
            "localhost/fooo".into(),
            "localhost/fooo".into(),
            "localhost/fooo".into(),
        ),
        (
            "localhost/fooo/bar".into(),
            "localhost/fooo/bar".into(),
            "localhost/fooo/bar".into(),
        ),
        (
            "localhost/library/debian".into(),
            "localhost/library/debian".into(),
            "localhost/library/debian".into(),
        ),
        (
            "localhost:5000/x".into(),
            "localhost:5000/x".into(),
            "localhost:5000/x".into(),
        ),
        (
            "LOCALDOMAIN/fooo".into(),
            "LOCALDOMAIN/fooo".into(),
            "LOCALDOMAIN/fooo".into(),
        ),
        (
            "LOCALDOMAIN/fooo/bar".into(),
            "LOCALDOMAIN/fooo/bar".into(),
            "LOCALDOMAIN/fooo/bar".into(),
        ),
        ("Foo/bar".into(), "Foo/bar".into(), "Foo/bar".into()),
        ("FOO/bar".into(), "FOO/bar".into(), "FOO/bar".into()),
        (
            "Docker/docker".into(),
            "Docker/docker".into(),
            "Docker/docker".into(),
        ),
        (
            "127.0.0.1:5000/x".into(),
            "127.0.0.1:5000/x".into(),
            "127.0.0.1:5000/x".into(),
        ),
        (
            "127.0.0.1:5000/library/debian".into(),
            "127.0.0.1:5000/library/debian".into(),
            "127.0.0.1:5000/library/debian".into(),
        ),
        (
            "127.0.0.1:8000/private/moonbase".into(),
            "127.0.0.1:8000/private/moonbase".into(),
            "127.0.0.1:8000/private/moonbase".into(),
        ),
        (
            "example.com/privatebase".into(),
            "example.com/privatebase".into(),
            "example.com/privatebase".into(),
        ),
        (
            "example.com:8000/private/moonbase".into(),
            "example.com:8000/private/moonbase".into(),
            "example.com:8000/private/moonbase".into(),
        ),
        (
            "test.com/foo".into(),
            "test.com/foo".into(),
            "test.com/foo".into(),
        ),
        (
            "test.com:8080/foo".into(),
            "test.com:8080/foo".into(),
            "test.com:8080/foo".into(),
        ),
        (
            "test-com:8080/foo".into(),
            "test-com:8080/foo".into(),
            "test-com:8080/foo".into(),
        ),
        (
            "test:5000/repo".into(),
            "test:5000/repo".into(),
            "test:5000/repo".into(),
        ),
        (
            "test:5000/repo:tag".into(),
            "test:5000/repo:tag".into(),
            "test:5000/repo:tag".into(),
        ),
        (
            format!("test:5000/repo@{d}"),
            format!("test:5000/repo@{d}"),
            format!("test:5000/repo@{d}"),
        ),
        (
            format!("test:5000/repo:tag@{d}"),
            format!("test:5000/repo:tag@{d}"),
            format!("test:5000/repo:tag@{d}"),
        ),
        (
            "xn--n3h.com/foo".into(),
            "xn--n3h.com/foo".into(),
            "xn--n3h.com/foo".into(),
        ),
        (
            "xn--n3h.com:18080/foo".into(),
            "xn--n3h.com:18080/foo".into(),
            "xn--n3h.com:18080/foo".into(),
        ),
        (
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{d}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{d}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{d}"),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
        ),
        (
            "gcr.io/library/busybox".into(),
            "gcr.io/library/busybox".into(),
            "gcr.io/library/busybox".into(),
        ),
        (
            "192.168.0.1:8/debian".into(),
            "192.168.0.1:8/debian".into(),
            "192.168.0.1:8/debian".into(),
        ),
        (
            "192.168.0.2:25000/debian".into(),
            "192.168.0.2:25000/debian".into(),
            "192.168.0.2:25000/debian".into(),
        ),
        (
            "192.168.1.1/repo".into(),
            "192.168.1.1/repo".into(),
            "192.168.1.1/repo".into(),
        ),
        (
            "192.168.1.1:5000/repo:5050".into(),
            "192.168.1.1:5000/repo:5050".into(),
            "192.168.1.1:5000/repo:5050".into(),
        ),
        (
            "[::1]:5000/x".into(),
            "[::1]:5000/x".into(),
            "[::1]:5000/x".into(),
        ),
        (
            "[fc00::1]:5000/docker".into(),
            "[fc00::1]:5000/docker".into(),
            "[fc00::1]:5000/docker".into(),
        ),
        (
            "[fc00::1]:5000/docker/docker".into(),
            "[fc00::1]:5000/docker/docker".into(),
            "[fc00::1]:5000/docker/docker".into(),
        ),
        (
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian".into(),
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian".into(),
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian".into(),
        ),
        (
            "[2001:db8::1]/repo".into(),
            "[2001:db8::1]/repo".into(),
            "[2001:db8::1]/repo".into(),
        ),
        (
            "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
            "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
            "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
        ),
        (
            format!("[2001:db8::1]:5000/repo:tag@{d}"),
            format!("[2001:db8::1]:5000/repo:tag@{d}"),
            format!("[2001:db8::1]:5000/repo:tag@{d}"),
        ),
        (
            "[2001:db8::]:5000/repo".into(),
            "[2001:db8::]:5000/repo".into(),
            "[2001:db8::]:5000/repo".into(),
        ),
        // A single component is always Hub, even when it looks like a host: what follows the
        // colon is a tag.
        (
            "192.168.0.1".into(),
            "docker.io/library/192.168.0.1".into(),
            "192.168.0.1".into(),
        ),
        (
            "192.168.0.1:80".into(),
            "docker.io/library/192.168.0.1:80".into(),
            "192.168.0.1:80".into(),
        ),
        (
            "test.com:tag".into(),
            "docker.io/library/test.com:tag".into(),
            "test.com:tag".into(),
        ),
        (
            "test.com:5000".into(),
            "docker.io/library/test.com:5000".into(),
            "test.com:5000".into(),
        ),
        (
            "localhost:5000".into(),
            "docker.io/library/localhost:5000".into(),
            "localhost:5000".into(),
        ),
        (
            "foo_bar.com:8080".into(),
            "docker.io/library/foo_bar.com:8080".into(),
            "foo_bar.com:8080".into(),
        ),
        (
            "test_com".into(),
            "docker.io/library/test_com".into(),
            "test_com".into(),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            "docker.io/foo/foo_bar.com:8080".into(),
            "foo/foo_bar.com:8080".into(),
        ),
        // Tags are case-sensitive and may be uppercase.
        (
            "lowercase:Uppercase".into(),
            "docker.io/library/lowercase:Uppercase".into(),
            "lowercase:Uppercase".into(),
        ),
        // Digests, with and without tag.
        (
            format!("redis@{redis}"),
            format!("docker.io/library/redis@{redis}"),
            format!("redis@{redis}"),
        ),
        (
            format!("docker.io/library/redis@{redis}"),
            format!("docker.io/library/redis@{redis}"),
            format!("redis@{redis}"),
        ),
        (
            format!("dmcgowan/myapp@{redis}"),
            format!("docker.io/dmcgowan/myapp@{redis}"),
            format!("dmcgowan/myapp@{redis}"),
        ),
        (
            format!("busybox:latest@{bb}"),
            format!("docker.io/library/busybox:latest@{bb}"),
            format!("busybox:latest@{bb}"),
        ),
        (
            format!("busybox@sha384:{}", hex(96)),
            format!("docker.io/library/busybox@sha384:{}", hex(96)),
            format!("busybox@sha384:{}", hex(96)),
        ),
        (
            format!("busybox@sha512:{}", hex(128)),
            format!("docker.io/library/busybox@sha512:{}", hex(128)),
            format!("busybox@sha512:{}", hex(128)),
        ),
        // Length limits: path at most 255 (the domain does not count), tag at most 128.
        (
            format!("example.com/{}:tag", "a".repeat(255)),
            format!("example.com/{}:tag", "a".repeat(255)),
            format!("example.com/{}:tag", "a".repeat(255)),
        ),
        (
            format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
            format!("docker.io/{}a:tag-puts-this-over-max", "a/".repeat(127)),
            format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
        ),
        (
            "a".repeat(247),
            format!("docker.io/library/{}", "a".repeat(247)),
            "a".repeat(247),
        ),
        (
            format!("busybox:{}", "t".repeat(128)),
            format!("docker.io/library/busybox:{}", "t".repeat(128)),
            format!("busybox:{}", "t".repeat(128)),
        ),
        // Docker's oddity: a dotted first component that is no valid host leaves no domain.
        (
            "foo_bar.com/x".into(),
            "foo_bar.com/x".into(),
            "foo_bar.com/x".into(),
        ),
    ];
    v
}

#[test]
fn valid_references_normalise_like_docker() {
    let vectors = valid_vectors();
    assert!(vectors.len() >= 80, "{} vectors", vectors.len());
    for (input, full, familiar) in &vectors {
        let r = parse(input);
        assert_eq!(&r.to_string(), full, "full form of {input:?}");
        assert_eq!(&r.familiar(), familiar, "familiar form of {input:?}");
        // The qualified form parses back to the same reference.
        assert_eq!(parse(full), r, "round trip of {input:?}");
    }
}

#[test]
fn domains_and_paths() {
    let cases = [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ("LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar"),
        ("FOO/bar", "FOO", "bar"),
        (
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000",
            "privatebase",
        ),
        ("[::1]:5000/a/b:c", "[::1]:5000", "a/b"),
        ("foo_bar.com/x", "", "foo_bar.com/x"),
    ];
    for (input, domain, path) in cases {
        let r = parse(input);
        assert_eq!((r.domain(), r.path()), (domain, path), "{input}");
        let name = if domain.is_empty() {
            path.to_owned()
        } else {
            format!("{domain}/{path}")
        };
        assert_eq!(r.name(), name);
    }
    let r = parse("[::1]:5000/x:1");
    assert_eq!(
        (r.host(), r.port(), r.tag()),
        ("[::1]", Some("5000"), Some("1"))
    );
    let r = parse("busybox");
    assert_eq!(
        (r.host(), r.port(), r.tag(), r.digest()),
        ("docker.io", None, None, None)
    );
}

type Check = fn(&RefError) -> bool;

fn invalid_vectors() -> Vec<(String, Check)> {
    let fmt: Check = |e| matches!(e, RefError::InvalidFormat { .. });
    let upper: Check = |e| matches!(e, RefError::Uppercase { .. });
    let long: Check = |e| matches!(e, RefError::NameTooLong { .. });
    let id: Check = |e| matches!(e, RefError::LooksLikeImageId { .. });
    let d_len: Check = |e| matches!(e, RefError::DigestLength { .. });
    let d_fmt: Check = |e| matches!(e, RefError::DigestFormat { .. });
    let d_alg: Check = |e| matches!(e, RefError::DigestUnsupported { .. });
    vec![
        (String::new(), fmt),
        ("https://github.com/docker/docker".into(), fmt),
        ("docker/Docker".into(), upper),
        ("docker.io/docker/Docker".into(), upper),
        ("Busybox".into(), upper),
        ("Uppercase:tag".into(), upper),
        ("test:5000/Uppercase/lowercase:tag".into(), upper),
        ("localhost:5000/Foo".into(), upper),
        (format!("busybox@SHA256:{}", f64()), upper),
        ("-docker".into(), fmt),
        ("-docker/docker".into(), fmt),
        ("-docker.io/docker/docker".into(), fmt),
        ("docker-/docker".into(), fmt),
        ("-docker-/docker".into(), fmt),
        ("docker///docker".into(), fmt),
        ("docker.io/docker///docker".into(), fmt),
        ("____/____".into(), fmt),
        ("_docker/_docker".into(), fmt),
        ("dock..er/docker".into(), fmt),
        ("dock_.er/docker".into(), fmt),
        ("dock-.er/docker".into(), fmt),
        ("docker/".into(), fmt),
        ("/docker".into(), fmt),
        ("[fc00::1]".into(), fmt),
        ("[fc00::1]:5000".into(), fmt),
        ("fc00::1:5000/debian".into(), fmt),
        ("[fe80::1%eth0]:5000/debian".into(), fmt),
        ("[fe80::1%@invalidzone]:5000/repo".into(), fmt),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), fmt),
        ("[2001:db8::1]".into(), fmt),
        ("[2001:db8::1]:5000".into(), fmt),
        ("[2001:db8::1]:tag".into(), fmt),
        (":justtag".into(), fmt),
        (format!("@sha256:{}", f64()), fmt),
        ("aa/asdf$$^/aa".into(), fmt),
        ("busybox:".into(), fmt),
        ("busybox:-tag".into(), fmt),
        ("busybox:.tag".into(), fmt),
        ("busybox:a:b".into(), fmt),
        ("a b".into(), fmt),
        ("busybox\n".into(), fmt),
        ("busybox/".into(), fmt),
        ("example.com:/x".into(), fmt),
        ("example.com:port/x".into(), fmt),
        ("ex_ample.com:5000/x".into(), fmt),
        (format!("busybox:{}", "t".repeat(129)), fmt),
        (format!("busybox@sha256:{}", "f".repeat(31)), fmt),
        (format!("busybox@@sha256:{}", f64()), fmt),
        ("busybox@sha256:xyz".into(), fmt),
        (format!("busybox@sha256:{}", "f".repeat(34)), d_len),
        (format!("repo@sha256:{}", "f".repeat(65)), d_len),
        (format!("busybox@sha256:{}", "F".repeat(64)), d_fmt),
        (format!("validname@invaliddigest:{}", f64()), d_alg),
        (format!("busybox@md5:{}", hex(32)), d_alg),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a".into(),
            id,
        ),
        (f64(), id),
        (format!("domain/{}:tag", "a".repeat(256)), long),
        ("a".repeat(248), long),
        (
            format!("{}x/docker", "this_is_not_a_valid_namespace_".repeat(9)),
            long,
        ),
        // Go lowercases U+0130 to "i" and the Kelvin sign to "k", so these are reported as
        // uppercase, not as malformed.
        ("\u{130}/x".into(), upper),
        ("\u{212a}afka".into(), upper),
        ("Foo_Bar/x".into(), upper),
    ]
}

#[test]
fn invalid_references_fail_with_dockers_reason() {
    let vectors = invalid_vectors();
    for (input, check) in &vectors {
        match Reference::parse_normalized(input) {
            Ok(r) => panic!("{input:?} should be refused, parsed as {r}"),
            Err(e) => assert!(check(&e), "{input:?}: unexpected error {e:?}"),
        }
    }
    assert!(valid_vectors().len() + vectors.len() >= 150);
}

#[test]
fn error_messages_mirror_docker_and_name_the_input() {
    let msg = |s: &str| Reference::parse_normalized(s).unwrap_err().to_string();
    assert_eq!(
        msg("Busybox"),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    assert_eq!(
        msg("docker.io/docker/Docker:Tag"),
        "invalid reference format: repository name (docker/Docker) must be lowercase"
    );
    assert_eq!(msg("a b"), "invalid reference format: \"a b\"");
    assert_eq!(msg("x\ny"), "invalid reference format: \"x\\ny\"");
    assert_eq!(
        msg(&f64()),
        format!(
            "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
            f64()
        )
    );
    assert_eq!(
        msg(&"a".repeat(248)),
        format!(
            "invalid reference format: repository name must not be more than 255 characters \
             (256 in \"{}\")",
            "a".repeat(248)
        )
    );
    assert_eq!(
        msg(&format!("x@md5:{}", hex(32))),
        format!("unsupported digest algorithm: \"md5:{}\"", hex(32))
    );
    for (input, check) in invalid_vectors() {
        let m = Reference::parse_normalized(&input).unwrap_err().to_string();
        assert!(check(&Reference::parse_normalized(&input).unwrap_err()));
        assert!(!m.ends_with('.'), "{m}");
        assert!(m.starts_with(|c: char| c.is_lowercase()), "{m}");
    }
}

#[test]
fn default_tag_is_explicit() {
    let r = parse("busybox");
    assert_eq!(r.tag(), None);
    assert_eq!(r.tag_or_latest(), Some("latest"));
    assert_eq!(
        r.clone().with_default_tag().to_string(),
        "docker.io/library/busybox:latest"
    );
    let d = format!("sha256:{}", hex(64));
    let r = parse(&format!("busybox@{d}"));
    assert_eq!(r.tag_or_latest(), None);
    assert_eq!(r.clone().with_default_tag(), r);
    let r = parse("busybox:1");
    assert_eq!(r.tag_or_latest(), Some("1"));
}

#[test]
fn docker_ref_keeps_digest_over_tag() {
    let d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
    let cases = [
        (
            "busybox".to_owned(),
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            format!("busybox@{d}"),
            format!("docker.io/library/busybox@{d}"),
        ),
        (
            "library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "docker.io/busybox".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "docker.io/library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "docker.io/busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "library/busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "gcr.io/library/busybox".into(),
            "gcr.io/library/busybox:latest".into(),
        ),
        (
            format!("gcr.io/library/busybox:latest@{d}"),
            format!("gcr.io/library/busybox@{d}"),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse(&input).to_docker_ref().to_string(), want, "{input}");
    }
}

#[test]
fn with_tag_and_digest_follow_docker() {
    let r = parse("busybox");
    assert!(matches!(
        r.with_tag("-foo"),
        Err(RefError::InvalidTag { .. })
    ));
    let d = Digest::parse(&format!("sha256:{}", hex(64))).unwrap();
    let both = r.with_digest(d.clone()).with_tag("1").unwrap();
    assert_eq!(both.to_string(), format!("docker.io/library/busybox:1@{d}"));
    assert_eq!(both.name_only(), r);
    assert!(Digest::parse("foo").is_err());
}

#[test]
fn any_reference_reads_ids_and_digests() {
    let id = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    let want = Digest::parse(&format!("sha256:{id}")).unwrap();
    assert_eq!(
        AnyReference::parse(id).unwrap(),
        AnyReference::Digest(want.clone())
    );
    assert_eq!(
        AnyReference::parse(&format!("sha256:{id}")).unwrap(),
        AnyReference::Digest(want)
    );
    for (input, full) in [
        ("redis", "docker.io/library/redis"),
        ("redis:latest", "docker.io/library/redis:latest"),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp"),
        ("dbcc1", "docker.io/library/dbcc1"),
        (
            &id[..63],
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
        ),
    ] {
        match AnyReference::parse(input).unwrap() {
            AnyReference::Named(r) => assert_eq!(r.to_string(), full),
            other @ AnyReference::Digest(_) => panic!("{input}: {other:?}"),
        }
    }
}

#[test]
fn hub_helpers() {
    let cases: [(&str, bool, bool, Option<&str>, &str); 14] = [
        ("busybox", true, true, Some("library"), "docker.io"),
        (
            "docker.io/library/busybox:1",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "index.docker.io/busybox",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "registry-1.docker.io/library/busybox",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "registry-1.docker.io/busybox",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "REGISTRY-1.DOCKER.IO/busybox",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "docker.io:443/library/busybox",
            true,
            true,
            Some("library"),
            "docker.io",
        ),
        (
            "docker.io:5000/library/busybox",
            false,
            false,
            None,
            "docker.io:5000",
        ),
        ("user/x", true, false, Some("user"), "docker.io"),
        ("myorg/team/app", true, false, Some("myorg"), "docker.io"),
        ("library/foo/bar", true, false, Some("library"), "docker.io"),
        ("ghcr.io/library/busybox", false, false, None, "ghcr.io"),
        ("localhost:5000/x", false, false, None, "localhost:5000"),
        ("foo_bar.com/x", false, false, None, "foo_bar.com"),
    ];
    for (input, hub, official, ns, host) in cases {
        let r = parse(input);
        assert_eq!(r.is_docker_hub(), hub, "{input} hub");
        assert_eq!(r.is_official(), official, "{input} official");
        assert_eq!(r.hub_namespace(), ns, "{input} namespace");
        assert_eq!(r.registry_host(), host, "{input} host");
    }
    assert_eq!(
        parse("registry-1.docker.io/busybox")
            .hub_repository()
            .as_deref(),
        Some("library/busybox")
    );
    assert!(parse("registry-1.docker.io/busybox").same_repository(&parse("busybox:1")));
    assert!(!parse("ghcr.io/library/busybox").same_repository(&parse("busybox")));
}

#[test]
fn registry_entries_match_as_an_admin_expects() {
    let cases = [
        ("docker.io", "busybox", true),
        ("docker.io", "registry-1.docker.io/library/busybox", true),
        ("index.docker.io", "user/app", true),
        ("registry-1.docker.io", "busybox", true),
        ("DOCKER.IO", "busybox", true),
        ("docker.io:443", "busybox", true),
        ("docker.io", "docker.io:5000/library/busybox", false),
        ("docker.io", "ghcr.io/x", false),
        ("ghcr.io", "busybox", false),
        ("ghcr.io", "ghcr.io/acme/app", true),
        ("GHCR.io", "ghcr.io/acme/app", true),
        ("ghcr.io", "GHCR.IO/acme/app", true),
        ("ghcr.io", "ghcr.io:443/acme/app", true),
        ("ghcr.io:443", "ghcr.io/acme/app", true),
        ("ghcr.io", "ghcr.io:5000/acme/app", false),
        ("ghcr.io", "ghcr.io.evil.com/acme/app", false),
        ("localhost:5000", "localhost:5000/x", true),
        ("localhost:5000", "localhost:05000/x", true),
        ("localhost:5000", "localhost/x", false),
        ("localhost", "localhost:5000/x", false),
        ("localhost:5000", "localhost:5001/x", false),
        ("127.0.0.1:5000", "127.0.0.1:5000/x", true),
        ("[::1]:5000", "[::1]:5000/x", true),
        ("[0:0::1]:5000", "[::1]:5000/x", true),
        ("[::1]:5000", "[::2]:5000/x", false),
        ("foo_bar.com", "foo_bar.com/x", false),
        ("localhost:5000", "localhost:99999999999999/x", false),
    ];
    for (allowed, image, want) in cases {
        assert_eq!(
            parse(image).host_matches(allowed),
            want,
            "{allowed} vs {image}"
        );
    }
    for bad in [
        "",
        "https://docker.io",
        "docker.io/",
        "docker.io/library",
        "*.example.com",
        "example.com:",
        "example.com:0",
        "example.com:65536",
        "[::1",
        "[zz::1]:5000",
        "foo_bar.com",
    ] {
        assert!(RegistryHost::parse(bad).is_err(), "{bad:?}");
        assert!(!parse("busybox").host_matches(bad), "{bad:?}");
    }
    assert_eq!(
        RegistryHost::parse("GHCR.IO:5000").unwrap().to_string(),
        "ghcr.io:5000"
    );
    assert!(RegistryHost::parse("index.docker.io")
        .unwrap()
        .is_docker_hub());
}

#[test]
fn engine_pull_parameters() {
    let d = format!("sha256:{}", hex(64));
    let ok = |img: &str, tag: &str| match parse_repo_and_tag(img, tag) {
        Ok(r) => r.to_string(),
        Err(e) => panic!("{img:?} {tag:?}: {e}"),
    };
    assert_eq!(ok("busybox", ""), "docker.io/library/busybox");
    assert_eq!(ok("busybox", "latest"), "docker.io/library/busybox:latest");
    assert_eq!(ok("busybox:", ""), "docker.io/library/busybox");
    assert_eq!(ok("busybox:1", ""), "docker.io/library/busybox:1");
    assert_eq!(ok("busybox:1", "2"), "docker.io/library/busybox:2");
    assert_eq!(
        ok("busybox:1", &d),
        format!("docker.io/library/busybox@{d}")
    );
    assert_eq!(
        ok(&format!("busybox@{d}"), "v1"),
        format!("docker.io/library/busybox:v1@{d}")
    );
    assert_eq!(
        ok("busybox", &format!("sha512:{}", hex(128))),
        format!("docker.io/library/busybox@sha512:{}", hex(128))
    );
    assert_eq!(ok("myorg/scratch", ""), "docker.io/myorg/scratch");
    assert!(matches!(
        parse_repo_and_tag("busybox", "sha256:abc"),
        Err(RefError::InvalidTag { .. })
    ));
    assert!(matches!(
        parse_repo_and_tag("busybox::", ""),
        Err(RefError::InvalidFormat { .. })
    ));
    for scratch in ["scratch", "docker.io/library/scratch", "scratch:latest"] {
        assert!(matches!(
            parse_repo_and_tag(scratch, ""),
            Err(RefError::ReservedName { .. })
        ));
    }
}

#[test]
fn engine_commit_tag_import_push_build_parameters() {
    let d = format!("sha256:{}", hex(64));
    let full = |r: Option<Reference>| r.map(|r| r.to_string());
    assert_eq!(repo_tag_reference("", "x").unwrap(), None);
    assert_eq!(
        full(repo_tag_reference("busybox", "").unwrap()).as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    assert_eq!(
        full(repo_tag_reference("busybox:1", "").unwrap()).as_deref(),
        Some("docker.io/library/busybox:1")
    );
    assert_eq!(
        full(repo_tag_reference("busybox:1", "2").unwrap()).as_deref(),
        Some("docker.io/library/busybox:2")
    );
    assert!(matches!(
        repo_tag_reference(&format!("busybox@{d}"), ""),
        Err(RefError::DigestReference { .. })
    ));
    assert!(matches!(
        repo_tag_reference("busybox", "bad tag"),
        Err(RefError::InvalidTag { .. })
    ));
    for ambiguous in ["sha256", "docker.io/library/sha256", "sha256:1"] {
        assert!(matches!(
            parse_tag_target(ambiguous, ""),
            Err(RefError::AmbiguousTag { .. })
        ));
    }
    assert!(parse_tag_target("myorg/sha256", "").is_ok());
    assert_eq!(parse_tag_target("", "").unwrap(), None);

    assert_eq!(
        parse_push("busybox", "").unwrap().to_string(),
        "docker.io/library/busybox"
    );
    assert_eq!(
        parse_push("busybox", "1").unwrap().to_string(),
        "docker.io/library/busybox:1"
    );

    let tags = parse_build_tags(["a", "", "docker.io/library/a:latest", "b:1", "a"]).unwrap();
    let tags: Vec<String> = tags.iter().map(Reference::familiar).collect();
    assert_eq!(tags, ["a:latest", "b:1"]);
    assert!(matches!(
        parse_build_tags([format!("a@{d}").as_str()]),
        Err(RefError::BuildTagDigest { .. })
    ));
    assert!(matches!(
        parse_build_tags(["A"]),
        Err(RefError::Uppercase { .. })
    ));
    assert!(parse_build_tags([""]).unwrap().is_empty());
}

#[test]
fn image_patterns_parse_with_normalisation() {
    let d = format!("sha256:{}", hex(64));
    let same = [
        ("docker/foo:tag", "docker.io/docker/foo:tag"),
        ("docker:cli", "docker.io/library/docker:cli"),
        ("docker", "docker.io/library/docker:latest"),
        ("index.docker.io/docker/foo:*", "docker/foo:*"),
        (&format!("busybox:1@{d}"), &format!("busybox@{d}")),
    ];
    for (a, b) in same {
        assert_eq!(
            ImagePattern::parse(a).unwrap(),
            ImagePattern::parse(b).unwrap(),
            "{a} {b}"
        );
    }
    let shown = [
        ("*", "*"),
        ("docker:cli", "docker.io/library/docker:cli"),
        ("localhost:5000/x:*", "localhost:5000/x:*"),
        (
            &format!("busybox@{d}"),
            &format!("docker.io/library/busybox@{d}"),
        ),
    ];
    for (entry, display) in shown {
        assert_eq!(ImagePattern::parse(entry).unwrap().to_string(), display);
    }
    for bad in [
        "",
        "**",
        "docker/*",
        "*/foo:tag",
        "docker:1*",
        "docker:1:*",
        "Docker:*",
        ":*",
    ] {
        assert!(ImagePattern::parse(bad).is_err(), "{bad:?}");
    }
    assert!(ImagePattern::parse(&format!("x@{d}:*")).is_err());
}

#[test]
fn image_patterns_need_digest_evidence() {
    let d1 = format!("sha256:{}", hex(64));
    let d2 = format!("sha256:{}", "e".repeat(64));
    let digests = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let pulled = digests(&[&format!("docker@{d1}")]);
    let pulled_qualified = digests(&[&format!("docker.io/library/docker@{d1}")]);
    let elsewhere = digests(&[&format!("evil/docker@{d1}")]);

    let tag = ImagePattern::parse("docker:cli").unwrap();
    let any_tag = ImagePattern::parse("docker.io/library/docker:*").unwrap();
    let pinned = ImagePattern::parse(&format!("docker@{d1}")).unwrap();
    let any = ImagePattern::parse("*").unwrap();

    let cli = parse("docker:cli");
    let other_tag = parse("docker:27");
    let no_tag = parse("docker");
    let by_digest = parse(&format!("docker@{d1}"));
    let by_other_digest = parse(&format!("docker@{d2}"));
    let evil = parse("evil/docker:cli");

    assert!(tag.matches(&cli, &pulled));
    assert!(tag.matches(&cli, &pulled_qualified));
    assert!(!tag.matches(&cli, &[]), "re-tagged local image");
    assert!(
        !tag.matches(&cli, &elsewhere),
        "content from another repository"
    );
    assert!(!tag.matches(&other_tag, &pulled));
    assert!(!tag.matches(&no_tag, &pulled), "no tag means latest");
    assert!(ImagePattern::parse("docker")
        .unwrap()
        .matches(&no_tag, &pulled));
    assert!(
        !tag.matches(&by_digest, &pulled),
        "tag unknown for a digest-only reference"
    );
    assert!(tag.matches(&parse(&format!("docker:cli@{d1}")), &pulled));
    assert!(!tag.matches(&parse(&format!("docker:cli@{d2}")), &pulled));

    assert!(any_tag.matches(&cli, &pulled));
    assert!(any_tag.matches(&other_tag, &pulled));
    assert!(any_tag.matches(&by_digest, &pulled));
    assert!(!any_tag.matches(&by_other_digest, &pulled));
    assert!(!any_tag.matches(&evil, &elsewhere));
    assert!(any_tag.matches(&parse("registry-1.docker.io/library/docker:x"), &pulled));

    assert!(
        pinned.matches(&cli, &pulled),
        "content decides, not the name used"
    );
    assert!(pinned.matches(&by_digest, &pulled_qualified));
    assert!(
        !pinned.matches(&by_digest, &[]),
        "a name alone never matches a digest entry"
    );
    assert!(!pinned.matches(&cli, &elsewhere));
    assert!(!pinned.matches(&cli, &digests(&[&format!("docker@{d2}")])));
    assert!(!pinned.matches(&cli, &digests(&["not a reference", "docker:cli"])));

    assert!(any.matches(&evil, &[]));
}

#[test]
fn repository_patterns() {
    let cases = [
        ("ubuntu", "ubuntu:22.04", true),
        ("ubuntu", "docker.io/library/ubuntu", true),
        ("ubuntu", "registry-1.docker.io/ubuntu", true),
        ("ubuntu", "myorg/ubuntu", false),
        ("ubuntu", "ghcr.io/library/ubuntu", false),
        ("myorg/app", "myorg/app:1", true),
        ("myorg/app", "myorg/app2", false),
        ("myorg/*", "myorg/app", true),
        ("myorg/*", "myorg/team/app", true),
        ("myorg/*", "myorg-evil/app", false),
        ("myorg/*", "myorg", false),
        ("library/*", "busybox", true),
        ("library/*", "user/busybox", false),
        ("docker.io/*", "user/x", true),
        ("docker.io/*", "ghcr.io/x", false),
        ("ghcr.io/acme/*", "ghcr.io/acme/tool", true),
        ("ghcr.io/acme/*", "GHCR.IO/acme/tool", true),
        ("ghcr.io/acme/*", "ghcr.io/acme-evil/tool", false),
        ("ghcr.io/acme/*", "acme/tool", false),
        ("ghcr.io/*", "ghcr.io/anyone/any", true),
        ("ghcr.io/acme/app", "ghcr.io/acme/app:1", true),
        ("localhost:5000/*", "localhost:5000/x", true),
        ("localhost:5000/*", "localhost/x", false),
    ];
    for (pattern, image, want) in cases {
        let p = RepositoryPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(&parse(image)), want, "{pattern} vs {image}");
    }
    let ns = RepositoryPattern::namespace("myorg").unwrap();
    assert!(ns.matches(&parse("myorg/app")));
    assert!(ns.matches(&parse("index.docker.io/myorg/app:1")));
    assert!(!ns.matches(&parse("myorgx/app")));
    assert!(!ns.matches(&parse("ghcr.io/myorg/app")));
    assert_eq!(ns.to_string(), "docker.io/myorg/*");
    assert_eq!(
        RepositoryPattern::parse("ubuntu").unwrap().to_string(),
        "docker.io/library/ubuntu"
    );
    assert_eq!(
        RepositoryPattern::parse("ghcr.io/*").unwrap().to_string(),
        "ghcr.io/*"
    );
    for bad in [
        "",
        "*",
        "/*",
        "my*/app",
        "myorg/*/app",
        "ubuntu:22.04",
        "Ubuntu",
        "a/**",
    ] {
        assert!(RepositoryPattern::parse(bad).is_err(), "{bad:?}");
    }
    for bad in ["", "MyOrg", "my/org", "-org", "*"] {
        assert!(RepositoryPattern::namespace(bad).is_err(), "{bad:?}");
    }
}
