//! Turning the string `FindProxyForURL` returns into a [`Plan`].
//!
//! Accepted, case-insensitively and with any whitespace around entries and between a keyword
//! and its argument, entries separated by `;` and tried in order:
//!
//! | entry | hop | port when missing |
//! |---|---|---|
//! | `DIRECT` | [`Hop::Direct`] | — |
//! | `PROXY h:p`, `HTTP h:p` | [`Hop::Proxy`] (HTTP `CONNECT`) | 80 |
//! | `SOCKS5 h:p`, `SOCKS h:p` | [`Hop::Socks5`] | 1080 |
//! | `HTTPS h:p`, `SOCKS4 h:p`, `QUIC h:p` | skipped, with a note in the reason | — |
//! | any `h` = `reject.docker.internal` | refuse: this and later entries are dropped | — |
//!
//! Choices, and why:
//! - `SOCKS` is SOCKS4 in browsers; only SOCKS5 is spoken here, so `SOCKS` is tried as SOCKS5:
//!   a SOCKS4-only server fails the handshake and the next entry is tried. Nothing goes direct
//!   that the script did not allow.
//! - `HTTPS` proxies need TLS to the proxy, which the proxy does not speak: the entry is skipped
//!   with a note rather than replaced by anything weaker. A result made only of skipped entries
//!   refuses the connection; it never becomes `DIRECT`.
//! - A missing port takes the scheme's usual one (80 for HTTP proxies, as Chromium does; 1080
//!   for SOCKS).
//! - Anything else (an unknown keyword, a bad host or port, an empty result) is
//!   [`DecideError::BadResult`]: browsers skip what they do not understand, but a gateway that
//!   guesses could let through what the author meant to stop.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::target::{DecideError, Hop, Plan};

/// The host Docker Desktop gives meaning to: `PROXY reject.docker.internal:<port>` refuses.
pub const REJECT_HOST: &str = "reject.docker.internal";

/// Longest result string looked at; a longer one is an error (a script cannot make the parser or
/// the log line arbitrarily large).
const MAX_RESULT_LEN: usize = 8 * 1024;
/// Most entries kept from one result; later ones are dropped with a note.
const MAX_HOPS: usize = 16;

/// Parses a PAC result into a plan whose `reason` is `pac: ` followed by the entries in force and
/// any notes.
///
/// # Errors
/// [`DecideError::BadResult`] for anything that is not a well-formed list.
pub fn parse_result(result: &str) -> Result<Plan, DecideError> {
    let bad = || DecideError::BadResult(shorten(result));
    if result.len() > MAX_RESULT_LEN {
        return Err(bad());
    }
    let mut hops = Vec::new();
    let mut shown = Vec::new();
    let mut notes = Vec::new();
    let mut rejected = false;
    for entry in result.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let mut words = entry.split_whitespace();
        let keyword = words.next().ok_or_else(bad)?.to_ascii_uppercase();
        let arg = words.next();
        if words.next().is_some() {
            return Err(bad());
        }
        let hop = match (keyword.as_str(), arg) {
            ("DIRECT", None) => Hop::Direct,
            ("PROXY" | "HTTP", Some(a)) => {
                let (host, port) = host_port(a, 80).ok_or_else(bad)?;
                Hop::Proxy { host, port }
            }
            ("SOCKS5" | "SOCKS", Some(a)) => {
                let (host, port) = host_port(a, 1080).ok_or_else(bad)?;
                Hop::Socks5 { host, port }
            }
            ("HTTPS" | "SOCKS4" | "QUIC", Some(a)) => {
                host_port(a, 443).ok_or_else(bad)?;
                notes.push(format!(
                    "{keyword} {a} skipped: {keyword} proxies are not supported"
                ));
                continue;
            }
            _ => return Err(bad()),
        };
        if matches!(&hop, Hop::Proxy { host, .. } | Hop::Socks5 { host, .. } if host == REJECT_HOST)
        {
            rejected = true;
            break;
        }
        if hops.len() == MAX_HOPS {
            notes.push(format!("entries after the first {MAX_HOPS} dropped"));
            break;
        }
        shown.push(hop.to_string());
        hops.push(hop);
    }
    if hops.is_empty() && !rejected && notes.is_empty() {
        return Err(bad());
    }
    let mut reason = String::from("pac: ");
    reason.push_str(&shown.join("; "));
    if rejected {
        if !shown.is_empty() {
            reason.push_str("; ");
        }
        reason.push_str("reject");
    } else if hops.is_empty() {
        reason.push_str("refused: no usable entry");
    }
    for note in notes {
        let _ = write!(reason, " ({note})");
    }
    Ok(Plan { hops, reason })
}

/// `host:port`, `[v6]:port`, `host` (then `default_port`); the host lowercased and checked.
pub(crate) fn host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p != 0)?
        }
        Some(_) => return None,
    };
    valid_host(host).then(|| (host.to_ascii_lowercase(), port))
}

/// A DNS name (letters, digits, `-`, `_`, dots; labels non-empty, at most 253 characters) or an
/// IP address.
pub(crate) fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A bounded, printable copy of a script's output for error messages.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(h: &str, p: u16) -> Hop {
        Hop::Proxy {
            host: h.into(),
            port: p,
        }
    }
    fn socks(h: &str, p: u16) -> Hop {
        Hop::Socks5 {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn single_entries() {
        assert_eq!(parse_result("DIRECT").unwrap().hops, vec![Hop::Direct]);
        assert_eq!(
            parse_result("PROXY p:3128").unwrap().hops,
            vec![proxy("p", 3128)]
        );
        assert_eq!(
            parse_result("HTTP p:3128").unwrap().hops,
            vec![proxy("p", 3128)]
        );
        assert_eq!(
            parse_result("SOCKS5 s:1080").unwrap().hops,
            vec![socks("s", 1080)]
        );
        assert_eq!(
            parse_result("SOCKS s:9050").unwrap().hops,
            vec![socks("s", 9050)]
        );
        assert_eq!(
            parse_result("PROXY [fd00::1]:8080").unwrap().hops,
            vec![proxy("fd00::1", 8080)]
        );
        assert_eq!(
            parse_result("PROXY 10.0.0.1:1").unwrap().hops,
            vec![proxy("10.0.0.1", 1)]
        );
    }

    #[test]
    fn tolerance() {
        let plan = parse_result("  proxy   Proxy.Example.COM:3128 ;;  direct ; ").unwrap();
        assert_eq!(
            plan.hops,
            vec![proxy("proxy.example.com", 3128), Hop::Direct]
        );
        assert_eq!(plan.reason, "pac: PROXY proxy.example.com:3128; DIRECT");
        assert_eq!(parse_result("\tDIRECT\n").unwrap().hops, vec![Hop::Direct]);
    }

    #[test]
    fn default_ports() {
        assert_eq!(parse_result("PROXY p").unwrap().hops, vec![proxy("p", 80)]);
        assert_eq!(
            parse_result("SOCKS5 s").unwrap().hops,
            vec![socks("s", 1080)]
        );
        assert_eq!(
            parse_result("PROXY [::1]").unwrap().hops,
            vec![proxy("::1", 80)]
        );
    }

    #[test]
    fn fallback_order() {
        let plan = parse_result("PROXY a:1; SOCKS5 b:2; PROXY c:3; DIRECT").unwrap();
        assert_eq!(
            plan.hops,
            vec![proxy("a", 1), socks("b", 2), proxy("c", 3), Hop::Direct]
        );
    }

    #[test]
    fn reject() {
        let plan = parse_result("PROXY reject.docker.internal:1234").unwrap();
        assert!(plan.hops.is_empty());
        assert_eq!(plan.reason, "pac: reject");
        let plan = parse_result("PROXY a:1; PROXY REJECT.docker.internal:1; DIRECT").unwrap();
        assert_eq!(
            plan.hops,
            vec![proxy("a", 1)],
            "entries after reject are dropped"
        );
        assert_eq!(plan.reason, "pac: PROXY a:1; reject");
        assert!(parse_result("PROXY reject.docker.internal")
            .unwrap()
            .hops
            .is_empty());
    }

    #[test]
    fn unsupported_entries_are_skipped_never_direct() {
        let plan = parse_result("HTTPS secure:443; PROXY p:3128").unwrap();
        assert_eq!(plan.hops, vec![proxy("p", 3128)]);
        assert!(
            plan.reason.contains("HTTPS secure:443 skipped"),
            "{}",
            plan.reason
        );
        let plan = parse_result("HTTPS secure:443").unwrap();
        assert!(plan.hops.is_empty(), "only unsupported entries: refuse");
        assert!(plan.reason.contains("refused"), "{}", plan.reason);
        assert!(parse_result("SOCKS4 s:1080").unwrap().hops.is_empty());
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "   ",
            ";;",
            "direct please",
            "PROXY",
            "PROXY a:b",
            "PROXY a:0",
            "PROXY a:65536",
            "PROXY a:",
            "PROXY a:+80",
            "PROXY a b",
            "PROXY a/b:80",
            "PROXY a..b:80",
            "PROXY [zz]:80",
            "GOPHER a:70",
            "DIRECT 1",
            "PROXY a:1; nonsense",
        ] {
            assert!(
                matches!(parse_result(bad), Err(DecideError::BadResult(_))),
                "{bad:?} should be refused"
            );
        }
        let long = "DIRECT;".repeat(2000);
        assert!(matches!(parse_result(&long), Err(DecideError::BadResult(s)) if s.len() < 300));
    }

    #[test]
    fn many_entries_are_bounded() {
        let many = "PROXY a:1;".repeat(40);
        let plan = parse_result(&many).unwrap();
        assert_eq!(plan.hops.len(), MAX_HOPS);
        assert!(plan.reason.contains("dropped"));
    }
}
