//! Checks on string values, each paired with the JSON Schema `pattern` that says the same thing
//! (tests hold the two to agreement). Messages name what is expected and never quote the value.

use crate::json::{self, Kind};

/// A rule for a string value.
#[derive(Debug)]
pub(crate) struct StrRule {
    /// Returns the problem, if any.
    pub(crate) check: fn(&str) -> Result<(), String>,
    /// The same rule as an ECMA-262 regular expression, for the published JSON Schema; `None`
    /// when the rule cannot be written as one (then the schema accepts any string).
    pub(crate) pattern: Option<&'static str>,
    /// Shown by editors.
    pub(crate) description: &'static str,
}

/// Any string.
pub(crate) const ANY: StrRule = StrRule {
    check: |_| Ok(()),
    pattern: None,
    description: "",
};

/// A TCP port 1-65535 without leading zeros.
macro_rules! port_re {
    () => {
        "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
    };
}

/// A repository path component as Docker's reference grammar defines it.
macro_rules! component_re {
    () => {
        "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    };
}

/// A registry host name or bracketed IPv6 address.
macro_rules! host_re {
    () => {
        "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])"
    };
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && !s.starts_with('0')
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

fn is_component(s: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut first = true;
    while i < bytes.len() || first {
        if !first {
            let sep_start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &s[sep_start..i];
            let sep_ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
            if sep.is_empty() || !sep_ok {
                return false;
            }
        }
        first = false;
        let run_start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
    }
    true
}

fn is_host(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `host[:port]`.
fn is_host_port(s: &str) -> bool {
    // An IPv6 host contains colons, so split the port after the closing bracket.
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => match &s[end + 1..] {
                "" => (s, None),
                rest => match rest.strip_prefix(':') {
                    Some(port) => (&s[..=end], Some(port)),
                    None => return false,
                },
            },
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    is_host(host) && port.is_none_or(is_port)
}

/// `enhancedContainerIsolation.dockerSocketMount.imageList.images[]`.
pub(crate) const IMAGE: StrRule = StrRule {
    check: check_image,
    pattern: Some(concat!(
        "^(?:\\*|(?:",
        host_re!(),
        "(?::",
        port_re!(),
        ")?/)?",
        component_re!(),
        "(?:/",
        component_re!(),
        ")*(?::(?:\\*|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?)$"
    )),
    description:
        "an image allowed to mount the Docker socket: repo:tag, repo:*, repo@sha256:<digest> or *",
};

fn check_image(s: &str) -> Result<(), String> {
    const FIX: &str =
        "expected an image as repo:tag, repo:*, repo@sha256:<64 hex digits> or \"*\" (lowercase repository)";
    if s == "*" {
        return Ok(());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !ok {
            return Err(
                "invalid digest: expected @sha256: followed by 64 lowercase hex digits".to_owned(),
            );
        }
    }
    // The tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let valid = tag == "*"
            || (!tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')));
        if !valid {
            return Err(format!("invalid tag: {FIX}"));
        }
    }
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let first_ok = if rest.is_some() && !is_component(first) {
        // A registry host: `localhost:5000`, `Registry.Example.com`.
        let (host, port) = match first.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        is_host(host) && port.is_none_or(is_port)
    } else {
        // A path component, or a host spelled like one (`docker.io`): both fine.
        is_component(first)
    };
    if first_ok && rest.is_none_or(|rest| rest.split('/').all(is_component)) {
        Ok(())
    } else {
        Err(FIX.to_owned())
    }
}

/// `enhancedContainerIsolation.dockerSocketMount.commandList.commands[]`.
pub(crate) const COMMAND: StrRule = StrRule {
    check: |s| {
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase() || c == '*')
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'*' | b'_' | b'-')
            });
        if ok {
            Ok(())
        } else {
            Err("expected a Docker API command name such as push, image* or container* (lowercase letters, digits, -, _ and * wildcards)".to_owned())
        }
    },
    pattern: Some("^[a-z*][a-z0-9*_-]*$"),
    description: "an API command name, `*` matches any characters (container*, image*, push)",
};

/// `filesharingAllowedDirectories[].path`.
pub(crate) const SHARED_PATH: StrRule = StrRule {
    check: |s| {
        let rest = ["$HOME", "$TMP", "$TEMP"]
            .iter()
            .find_map(|var| s.strip_prefix(var))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .or_else(|| s.strip_prefix('/').map(|_| s));
        let Some(rest) = rest else {
            return Err("expected an absolute path, or one starting with $HOME, $TMP or $TEMP".to_owned());
        };
        if rest.split('/').any(|c| c == "..") {
            return Err("`..` is not allowed in a shared path: write the directory it leads to".to_owned());
        }
        if s.contains('\0') {
            return Err("a path cannot contain a NUL character".to_owned());
        }
        Ok(())
    },
    pattern: Some("^(?![\\s\\S]*(?:^|/)\\.\\.(?:/|$))(?:\\$(?:HOME|TMP|TEMP)(?:/[^\\x00]*)?|/[^\\x00]*)$"),
    description: "a host directory that may be bind-mounted (with its subdirectories); $HOME, $TMP and $TEMP are expanded per user",
};

/// `registryAccess.allowedRegistries[]`.
pub(crate) const REGISTRY: StrRule = StrRule {
    check: |s| {
        if s == "*" {
            return Ok(());
        }
        if s.contains("://") {
            return Err(
                "write the registry as host[:port], without a scheme such as https://".to_owned(),
            );
        }
        if s.contains('/') {
            return Err("write the registry as host[:port], without a path".to_owned());
        }
        if is_host_port(s) {
            Ok(())
        } else {
            Err("expected a registry as host[:port] (for example docker.io or registry.example.com:5000, port 1-65535)".to_owned())
        }
    },
    pattern: Some(concat!("^(?:\\*|", host_re!(), "(?::", port_re!(), ")?)$")),
    description: "a registry host[:port]; docker.io means Docker Hub; \"*\" means any registry (registry access not restricted)",
};

/// `imageAccess.organizationNamespaces[]`.
pub(crate) const NAMESPACE: StrRule = StrRule {
    check: |s| {
        if is_component(s) {
            Ok(())
        } else {
            Err("expected a Docker Hub namespace (lowercase letters and digits, separated by ., _ or -)".to_owned())
        }
    },
    pattern: Some(concat!("^", component_re!(), "$")),
    description: "a Docker Hub organisation namespace",
};

/// `imageAccess.allowedRepositories[]`.
pub(crate) const REPOSITORY: StrRule = StrRule {
    check: |s| {
        if s.split('/').all(is_component) {
            Ok(())
        } else {
            Err(
                "expected a repository such as library/nginx or myorg/app (lowercase, no tag)"
                    .to_owned(),
            )
        }
    },
    pattern: Some(concat!(
        "^",
        component_re!(),
        "(?:/",
        component_re!(),
        ")*$"
    )),
    description: "a Docker Hub repository allowed whatever its category (namespace/name)",
};

/// `imageAccess.catalog`, `audit.path`.
pub(crate) const ABSOLUTE_PATH: StrRule = StrRule {
    check: |s| {
        if s.starts_with('/') && !s.contains('\0') {
            Ok(())
        } else {
            Err("expected an absolute path (starting with /)".to_owned())
        }
    },
    pattern: Some("^/[^\\x00]*$"),
    description: "an absolute path",
};

/// `proxy.http`, `proxy.https` and the same in `containersProxy`.
pub(crate) const PROXY_URL: StrRule = StrRule {
    check: |s| {
        if s.is_empty() {
            return Ok(());
        }
        let rest = ["http://", "https://", "socks5://", "socks5h://"]
            .iter()
            .find_map(|scheme| s.strip_prefix(scheme));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => Ok(()),
            _ => Err("expected a proxy URL such as http://proxy.example.com:3128 (scheme http, https or socks5), or \"\" for none".to_owned()),
        }
    },
    pattern: Some("^(?:(?:https?|socks5h?)://\\S+)?$"),
    description: "a proxy URL (http://host:port), or empty for none",
};

/// `pac` in `proxy` and `containersProxy`.
pub(crate) const PAC_URL: StrRule = StrRule {
    check: |s| {
        if s.is_empty() {
            return Ok(());
        }
        let rest = ["http://", "https://", "file://"]
            .iter()
            .find_map(|scheme| s.strip_prefix(scheme));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => Ok(()),
            _ => Err(
                "expected a PAC file URL (http://, https:// or file://), or \"\" for none"
                    .to_owned(),
            ),
        }
    },
    pattern: Some("^(?:(?:https?|file)://\\S+)?$"),
    description: "the URL of a PAC file, or empty for none",
};

/// `containersProxy.transparentPorts`.
pub(crate) const TRANSPARENT_PORTS: StrRule = StrRule {
    check: |s| {
        if s.is_empty() || s == "*" || s.split(',').all(|p| is_port(p.trim_matches(' '))) {
            Ok(())
        } else {
            Err("expected \"*\" or a comma-separated list of ports 1-65535, such as \"80,443\"".to_owned())
        }
    },
    pattern: Some(concat!(
        "^(?:\\*| *",
        port_re!(),
        " *(?:, *",
        port_re!(),
        " *)*)?$"
    )),
    description: "container TCP ports sent through the proxy: \"*\" or a comma-separated list such as \"80,443\"",
};

/// Daemon options that Stockade's hardening or its layout sets and a policy cannot change
/// (DESIGN.md §3): where the engine listens and who may open it, user namespaces, where its
/// state lives, its bridge and its (absent) packet filtering, which the egress rules rely on,
/// and the runtimes and builder entitlements that would undo container isolation.
pub const MANAGED_DAEMON_OPTIONS: [&str; 17] = [
    "hosts",
    "tls",
    "tlsverify",
    "userns-remap",
    "group",
    "data-root",
    "exec-root",
    "pidfile",
    "bridge",
    "bip",
    "iptables",
    "ip6tables",
    "ip-forward",
    "ip-masq",
    "builder",
    "runtimes",
    "default-runtime",
];

/// `linuxVM.dockerDaemonOptions.value`: a JSON object written as a string.
pub(crate) const DAEMON_OPTIONS: StrRule = StrRule {
    check: check_daemon_options,
    pattern: None,
    description: "extra daemon.json keys, as a JSON object written in a string",
};

fn check_daemon_options(s: &str) -> Result<(), String> {
    const EXAMPLE: &str =
        "write a JSON object inside the string, such as \"{\\\"debug\\\": false}\"";
    let parsed = match json::parse(s) {
        Ok(parsed) => parsed,
        Err(err) => {
            let (line, column) = json::LineIndex::new(s).line_col(err.pos);
            return Err(format!(
                "the string is not valid JSON (at line {line}, column {column} of the string: {}): {EXAMPLE}",
                err.message
            ));
        }
    };
    if let Some(dup) = parsed.duplicates.first() {
        return Err(format!(
            "the JSON in the string repeats the key {}: remove one",
            dup.path
        ));
    }
    let Kind::Object(members) = &parsed.root.kind else {
        return Err(format!(
            "the string holds JSON that is not an object: {EXAMPLE}"
        ));
    };
    for member in members {
        if MANAGED_DAEMON_OPTIONS.contains(&member.key.as_str()) {
            return Err(format!(
                "daemon option `{}` is managed by stockade and cannot be set: remove it",
                member.key
            ));
        }
        let text = match &member.value.kind {
            Kind::String(s) => Some(s.as_str()),
            _ => None,
        };
        let weakening = match member.key.as_str() {
            "no-new-privileges" => member.value.kind != Kind::Bool(true),
            // Each of these would switch a container protection off for every container.
            "seccomp-profile" => text == Some("unconfined"),
            "default-cgroupns-mode" => text == Some("host"),
            "default-ipc-mode" => text == Some("host"),
            _ => false,
        };
        if weakening {
            return Err(format!(
                "daemon option `{}` would weaken every container's isolation and cannot have this value: remove it",
                member.key
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (rule name, rule, accepted samples, rejected samples); the schema test reuses these.
    pub(crate) fn samples() -> Vec<(
        &'static str,
        &'static StrRule,
        Vec<&'static str>,
        Vec<&'static str>,
    )> {
        vec![
            (
                "image",
                &IMAGE,
                vec![
                    "*",
                    "alpine",
                    "docker.io/testcontainers/ryuk:*",
                    "localhost:5000/app:1.0",
                    "registry.example.com/team/app:v1.2.3",
                    "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "a/b:c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "my_org/my-app",
                    "docker.io/library/alpine:latest",
                ],
                vec![
                    "",
                    "Alpine",
                    "alpine:",
                    "alpine@sha256:abc",
                    "alpine:-x",
                    "a//b",
                    "/alpine",
                    "alpine ",
                    "a/b:*:*",
                    "alpine@md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "**",
                ],
            ),
            (
                "command",
                &COMMAND,
                vec!["push", "container*", "*", "image_build", "v2-x"],
                vec!["", "Push", "docker push", "-x", "9x"],
            ),
            (
                "shared path",
                &SHARED_PATH,
                vec!["$HOME", "$TMP", "$TEMP/x", "/", "/srv/data", "$HOME/work/..x", "/a/.../b"],
                vec!["", "relative", "$HOMEX", "$HOME/../etc", "/a/..", "~/x", "$USER/x"],
            ),
            (
                "registry",
                &REGISTRY,
                vec!["docker.io", "registry.example.com:5000", "localhost", "10.0.0.1:443", "[::1]:5000", "[fe80::1]", "Ghcr.IO"],
                vec!["", "https://docker.io", "docker.io/library", "host:0", "host:65536", "host:", "-bad.com", "a..b", "host:08", "[::1]x"],
            ),
            (
                "namespace",
                &NAMESPACE,
                vec!["myorg", "my-org", "my.org2"],
                vec!["", "MyOrg", "my/org", "-x", "x-"],
            ),
            (
                "repository",
                &REPOSITORY,
                vec!["library/nginx", "myorg/app", "nginx", "a__b/c---d"],
                vec!["", "library/nginx:latest", "Library/nginx", "/x", "x/"],
            ),
            (
                "absolute path",
                &ABSOLUTE_PATH,
                vec!["/etc/stockade/catalog.json", "/"],
                vec!["", "etc/x", "./x"],
            ),
            (
                "proxy url",
                &PROXY_URL,
                vec!["", "http://proxy:3128", "https://user:pw@proxy.example.com:443", "socks5://p:1080"],
                vec!["proxy:3128", "ftp://x", "http://", "http://a b"],
            ),
            (
                "pac url",
                &PAC_URL,
                vec!["", "http://proxy/proxy.pac", "file:///etc/proxy.pac"],
                vec!["proxy.pac", "ftp://x/p.pac", "https://"],
            ),
            (
                "transparent ports",
                &TRANSPARENT_PORTS,
                vec!["", "*", "80", "80,443", "80, 443 ,8080", "65535"],
                vec!["**", "80;443", "80,", "0", "65536", "http", "80,*", "080", " "],
            ),
        ]
    }

    #[test]
    fn string_rules() {
        for (name, rule, good, bad) in samples() {
            for s in good {
                assert_eq!((rule.check)(s), Ok(()), "{name}: {s:?} should pass");
            }
            for s in bad {
                assert!((rule.check)(s).is_err(), "{name}: {s:?} should fail");
            }
        }
    }

    #[test]
    fn daemon_options() {
        assert_eq!(check_daemon_options("{\"debug\": false}"), Ok(()));
        assert_eq!(
            check_daemon_options("{\"no-new-privileges\": true}"),
            Ok(())
        );
        let err = check_daemon_options("{\"debug\": ").unwrap_err();
        assert!(
            err.starts_with("the string is not valid JSON (at line 1, column 11"),
            "{err}"
        );
        assert!(check_daemon_options("[1]")
            .unwrap_err()
            .contains("not an object"));
        assert!(check_daemon_options("{\"a\":1,\"a\":2}")
            .unwrap_err()
            .contains("repeats"));
        for weak in [
            "{\"builder\": {}}",
            "{\"default-runtime\": \"x\"}",
            "{\"iptables\": true}",
            "{\"seccomp-profile\": \"unconfined\"}",
            "{\"default-ipc-mode\": \"host\"}",
            "{\"default-cgroupns-mode\": \"host\"}",
            "{\"data-root\": \"/x\"}",
        ] {
            assert!(check_daemon_options(weak).is_err(), "{weak}");
        }
        assert_eq!(
            check_daemon_options("{\"debug\": true, \"registry-mirrors\": [\"https://m\"], \"default-ipc-mode\": \"private\"}"),
            Ok(())
        );
        assert!(check_daemon_options("{\"hosts\": []}")
            .unwrap_err()
            .contains("`hosts`"));
        assert!(check_daemon_options("{\"userns-remap\": \"\"}")
            .unwrap_err()
            .contains("`userns-remap`"));
        assert!(check_daemon_options("{\"no-new-privileges\": false}")
            .unwrap_err()
            .contains("would weaken every container"));
    }
}
