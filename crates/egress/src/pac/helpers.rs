//! The PAC helper functions as plain Rust, independent of the JavaScript engine so each can be
//! tested against the PAC semantics (Netscape's original definitions, as browsers implement them).
//!
//! Every helper takes its arguments as strings (the sandbox coerces each JavaScript argument with
//! `String(x)`), never panics, and answers `false`/`null` for arguments it cannot understand, as
//! browsers do. Nothing here does I/O except through the [`Resolver`](super::Resolver).

use std::net::{IpAddr, Ipv4Addr};

use chrono::{Datelike, NaiveDateTime, Timelike};

/// `isPlainHostName(host)`: no dot in the name.
pub(crate) fn is_plain_host_name(host: &str) -> bool {
    !host.contains('.')
}

/// `dnsDomainIs(host, domain)`: the host name ends with the domain (a plain suffix test, as in
/// the original definition: `dnsDomainIs("www.example.com", ".example.com")` is true).
pub(crate) fn dns_domain_is(host: &str, domain: &str) -> bool {
    host.len() >= domain.len()
        && host.is_char_boundary(host.len() - domain.len())
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// `localHostOrDomainIs(host, hostdom)`: the names are equal, or the host is unqualified and
/// equals the first label of `hostdom`.
pub(crate) fn local_host_or_domain_is(host: &str, hostdom: &str) -> bool {
    if host.eq_ignore_ascii_case(hostdom) {
        return true;
    }
    !host.contains('.')
        && hostdom.len() > host.len()
        && hostdom.is_char_boundary(host.len())
        && hostdom[..host.len()].eq_ignore_ascii_case(host)
        && hostdom.as_bytes()[host.len()] == b'.'
}

/// `dnsDomainLevels(host)`: the number of dots.
pub(crate) fn dns_domain_levels(host: &str) -> usize {
    host.bytes().filter(|b| *b == b'.').count()
}

/// `shExpMatch(str, shexp)`: shell glob with `*` (any run) and `?` (one character), anchored at
/// both ends, case-sensitive. No other character is special (`[`, `.` and `\` match themselves).
///
/// Matched iteratively with one backtrack point (the last `*`), so the cost is at most
/// `len(str) × len(shexp)` steps: a pattern cannot make it explode the way a translated regular
/// expression can.
pub(crate) fn sh_exp_match(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Parses a dotted-quad IPv4 address the way the PAC helpers expect (strict: four decimal parts).
pub(crate) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.trim().parse().ok()
}

/// `isInNet(ip, pattern, mask)` once the host is an address: `ip & mask == pattern & mask`.
/// Only IPv4 takes part, as in the original definition; anything else is `false`.
pub(crate) fn ipv4_in_net(ip: IpAddr, pattern: &str, mask: &str) -> bool {
    let (IpAddr::V4(ip), Some(pattern), Some(mask)) = (ip, parse_ipv4(pattern), parse_ipv4(mask))
    else {
        return false;
    };
    let mask = u32::from(mask);
    u32::from(ip) & mask == u32::from(pattern) & mask
}

/// `isInNetEx(ip, "prefix/len")`: the Microsoft IPv6-aware form; both families.
pub(crate) fn in_prefix(ip: IpAddr, prefix: &str) -> bool {
    let Some((net, len)) = prefix.trim().split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u8>()) else {
        return false;
    };
    cidr_contains(net, len, ip)
}

/// Whether `ip` is inside `net/len` (families must agree; an IPv4-mapped IPv6 address counts as
/// IPv4).
pub(crate) fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// `sortIpAddressList("a;b;c")`: IPv6 addresses first, then IPv4, each in ascending order;
/// `None` (JavaScript `false`) when an entry is not an address.
pub(crate) fn sort_ip_address_list(list: &str) -> Option<String> {
    let mut ips = list
        .split(';')
        .map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()?;
    ips.sort_by_key(|ip| (ip.is_ipv4(), *ip));
    Some(
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";"),
    )
}

/// The time the date helpers look at, local and UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Local wall-clock time (the host's time zone).
    pub local: NaiveDateTime,
    /// The same instant in UTC (used when the last argument is `"GMT"`).
    pub utc: NaiveDateTime,
}

/// Splits off a trailing `"GMT"` and picks the matching clock.
fn pick<'a>(args: &'a [String], now: &Now) -> (&'a [String], NaiveDateTime) {
    match args.split_last() {
        Some((last, rest)) if last == "GMT" => (rest, now.utc),
        _ => (args, now.local),
    }
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn weekday_index(s: &str) -> Option<u32> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .and_then(|i| u32::try_from(i).ok())
}

fn month_index(s: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .and_then(|i| u32::try_from(i).ok())
}

/// Inclusive range test that wraps around when `start > end` (`FRI`..`MON`, `DEC`..`FEB`,
/// `22:00`..`06:00`).
fn in_wrapping<T: PartialOrd>(value: &T, start: &T, end: &T) -> bool {
    if start <= end {
        start <= value && value <= end
    } else {
        value >= start || value <= end
    }
}

/// `weekdayRange(wd1 [, wd2] [, "GMT"])`: `SUN`..`SAT`, inclusive, wrapping (`FRI`, `MON` is
/// Friday to Monday). An unknown day name is `false`.
pub(crate) fn weekday_range(args: &[String], now: &Now) -> bool {
    let (args, t) = pick(args, now);
    let today = t.weekday().num_days_from_sunday();
    match args {
        [one] => weekday_index(one) == Some(today),
        [a, b] => match (weekday_index(a), weekday_index(b)) {
            (Some(a), Some(b)) => in_wrapping(&today, &a, &b),
            _ => false,
        },
        _ => false,
    }
}

/// One `dateRange` argument: a day of the month (1..=31), a month name, or a four-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatePart {
    Day(u32),
    Month(u32),
    Year(i32),
}

fn date_part(s: &str) -> Option<DatePart> {
    if let Some(m) = month_index(s) {
        return Some(DatePart::Month(m));
    }
    let n: i64 = s.trim().parse().ok()?;
    match n {
        1..=31 => u32::try_from(n).ok().map(DatePart::Day),
        // Years are written in full; anything between 32 and 999 is meaningless.
        1000..=9999 => i32::try_from(n).ok().map(DatePart::Year),
        _ => None,
    }
}

/// `dateRange(...)`: with one argument, today's day, month or year equals it; with two, four or
/// six, the date lies in the inclusive range given with the same fields on both sides
/// (`day`, `month`, `year`, `day month`, `month year`, `day month year`). Ranges without a year
/// wrap around the year end (`dateRange("DEC", "JAN")`). Anything else is `false`.
pub(crate) fn date_range(args: &[String], now: &Now) -> bool {
    use DatePart::{Day, Month, Year};
    let (args, t) = pick(args, now);
    let Some(parts) = args
        .iter()
        .map(|a| date_part(a))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let (d, m, y) = (t.day(), t.month0(), t.year());
    match parts.as_slice() {
        [Day(a)] => d == *a,
        [Month(a)] => m == *a,
        [Year(a)] => y == *a,
        [Day(a), Day(b)] => in_wrapping(&d, a, b),
        [Month(a), Month(b)] => in_wrapping(&m, a, b),
        [Year(a), Year(b)] => (*a..=*b).contains(&y),
        [Day(d1), Month(m1), Day(d2), Month(m2)] => in_wrapping(&(m, d), &(*m1, *d1), &(*m2, *d2)),
        [Month(m1), Year(y1), Month(m2), Year(y2)] => ((*y1, *m1)..=(*y2, *m2)).contains(&(y, m)),
        [Day(d1), Month(m1), Year(y1), Day(d2), Month(m2), Year(y2)] => {
            ((*y1, *m1, *d1)..=(*y2, *m2, *d2)).contains(&(y, m, d))
        }
        _ => false,
    }
}

fn clock_part(s: &str, max: u32) -> Option<u32> {
    s.trim().parse::<u32>().ok().filter(|n| *n <= max)
}

/// `timeRange(...)`: `hour` (that hour), `h1, h2` (from `h1:00:00` to `h2:59:59`),
/// `h1, m1, h2, m2` (to `h2:m2:59`), `h1, m1, s1, h2, m2, s2` (exact seconds), optionally
/// followed by `"GMT"`. Inclusive; wraps past midnight when the start is after the end.
pub(crate) fn time_range(args: &[String], now: &Now) -> bool {
    let (args, t) = pick(args, now);
    let Some(n) = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // Hours are 0..=23 (24 is accepted as the end of the day), minutes and seconds 0..=59.
            let is_hour = match args.len() {
                4 => i % 2 == 0,
                6 => i % 3 == 0,
                _ => true,
            };
            clock_part(a, if is_hour { 24 } else { 59 })
        })
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let secs = |h: u32, m: u32, s: u32| h * 3600 + m * 60 + s;
    let cur = secs(t.hour(), t.minute(), t.second());
    let (start, end) = match n.as_slice() {
        [h] => (secs(*h, 0, 0), secs(*h, 59, 59)),
        [h1, h2] => (secs(*h1, 0, 0), secs(*h2, 59, 59)),
        [h1, m1, h2, m2] => (secs(*h1, *m1, 0), secs(*h2, *m2, 59)),
        [h1, m1, s1, h2, m2, s2] => (secs(*h1, *m1, *s1), secs(*h2, *m2, *s2)),
        _ => return false,
    };
    in_wrapping(&cur, &start, &end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    /// Wednesday 2025-03-12 14:30:15 local, 13:30:15 UTC.
    fn now() -> Now {
        let local = NaiveDate::from_ymd_opt(2025, 3, 12)
            .unwrap()
            .and_hms_opt(14, 30, 15)
            .unwrap();
        Now {
            local,
            utc: local - chrono::Duration::hours(1),
        }
    }

    #[test]
    fn plain_and_domain() {
        assert!(is_plain_host_name("www"));
        assert!(!is_plain_host_name("www.example.com"));
        assert!(dns_domain_is("www.example.com", ".example.com"));
        assert!(dns_domain_is("WWW.Example.com", ".example.COM"));
        assert!(!dns_domain_is("www", ".example.com"));
        assert!(!dns_domain_is("www.example.org", ".example.com"));
        // A plain suffix test, as specified: "badexample.com" ends with "example.com".
        assert!(dns_domain_is("badexample.com", "example.com"));
        assert!(!dns_domain_is("é", "x"));
    }

    #[test]
    fn local_host_or_domain() {
        assert!(local_host_or_domain_is(
            "www.example.com",
            "www.example.com"
        ));
        assert!(local_host_or_domain_is("www", "www.example.com"));
        assert!(!local_host_or_domain_is(
            "www.example.org",
            "www.example.com"
        ));
        assert!(!local_host_or_domain_is("home", "www.example.com"));
        assert!(!local_host_or_domain_is("ww", "www.example.com"));
        assert!(local_host_or_domain_is("www", "www"));
        assert!(local_host_or_domain_is("www", "WWW"));
    }

    #[test]
    fn levels() {
        assert_eq!(dns_domain_levels("www"), 0);
        assert_eq!(dns_domain_levels("example.com"), 1);
        assert_eq!(dns_domain_levels("www.example.com"), 2);
    }

    #[test]
    fn sh_exp() {
        assert!(sh_exp_match(
            "http://home.netscape.com/people/ari/index.html",
            "*/ari/*"
        ));
        assert!(!sh_exp_match(
            "http://home.netscape.com/people/montulli/index.html",
            "*/ari/*"
        ));
        assert!(sh_exp_match("www.example.com", "*.example.com"));
        assert!(!sh_exp_match("example.com", "*.example.com"));
        assert!(sh_exp_match("abc", "a?c"));
        assert!(!sh_exp_match("abbc", "a?c"));
        assert!(sh_exp_match("", "*"));
        assert!(sh_exp_match("", ""));
        assert!(!sh_exp_match("a", ""));
        assert!(sh_exp_match("a.b", "a.b"));
        assert!(!sh_exp_match("axb", "a.b"), "a dot is not a wildcard");
        assert!(sh_exp_match("[x]", "[x]"), "brackets are literal");
        assert!(!sh_exp_match("Example.com", "example.com"));
        assert!(sh_exp_match("aaa", "*a*a*a*"));
        assert!(sh_exp_match("héllo", "h?llo"));
        // A pattern that makes a backtracking regex explode stays linear here.
        let long = "a".repeat(5000);
        assert!(!sh_exp_match(&long, &format!("{}b", "*a".repeat(200))));
    }

    #[test]
    fn in_net() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ipv4_in_net(
            ip("198.95.249.79"),
            "198.95.249.79",
            "255.255.255.255"
        ));
        assert!(ipv4_in_net(ip("198.95.1.2"), "198.95.0.0", "255.255.0.0"));
        assert!(!ipv4_in_net(ip("198.96.1.2"), "198.95.0.0", "255.255.0.0"));
        assert!(ipv4_in_net(ip("10.1.2.3"), "0.0.0.0", "0.0.0.0"));
        assert!(!ipv4_in_net(ip("10.1.2.3"), "10.0.0.0", "bogus"));
        assert!(!ipv4_in_net(ip("::1"), "0.0.0.0", "0.0.0.0"));
        assert!(in_prefix(ip("fd00::1"), "fd00::/8"));
        assert!(!in_prefix(ip("fe80::1"), "fd00::/8"));
        assert!(in_prefix(ip("10.9.8.7"), "10.0.0.0/8"));
        assert!(in_prefix(ip("::ffff:10.9.8.7"), "10.0.0.0/8"));
        assert!(in_prefix(ip("1.2.3.4"), "0.0.0.0/0"));
        assert!(!in_prefix(ip("1.2.3.4"), "1.2.3.0/33"));
        assert!(!in_prefix(ip("1.2.3.4"), "1.2.3.0"));
    }

    #[test]
    fn sort_list() {
        assert_eq!(
            sort_ip_address_list("10.0.0.2;::1;10.0.0.1;fe80::1").as_deref(),
            Some("::1;fe80::1;10.0.0.1;10.0.0.2")
        );
        assert_eq!(sort_ip_address_list("10.0.0.1;x"), None);
    }

    #[test]
    fn weekdays() {
        let n = now(); // Wednesday
        assert!(weekday_range(&s(&["WED"]), &n));
        assert!(!weekday_range(&s(&["THU"]), &n));
        assert!(weekday_range(&s(&["MON", "FRI"]), &n));
        assert!(!weekday_range(&s(&["THU", "SAT"]), &n));
        assert!(weekday_range(&s(&["SAT", "WED"]), &n), "wraps");
        assert!(!weekday_range(&s(&["THU", "TUE"]), &n), "wraps");
        assert!(weekday_range(&s(&["WED", "GMT"]), &n));
        assert!(weekday_range(&s(&["wed"]), &n));
        assert!(!weekday_range(&s(&["XYZ"]), &n));
        assert!(!weekday_range(&s(&[]), &n));
    }

    #[test]
    fn gmt_changes_the_day() {
        // 00:30 local on Thursday is 23:30 UTC on Wednesday.
        let local = NaiveDate::from_ymd_opt(2025, 3, 13)
            .unwrap()
            .and_hms_opt(0, 30, 0)
            .unwrap();
        let n = Now {
            local,
            utc: local - chrono::Duration::hours(1),
        };
        assert!(weekday_range(&s(&["THU"]), &n));
        assert!(weekday_range(&s(&["WED", "GMT"]), &n));
        assert!(date_range(&s(&["13"]), &n));
        assert!(date_range(&s(&["12", "GMT"]), &n));
        assert!(time_range(&s(&["0"]), &n));
        assert!(time_range(&s(&["23", "GMT"]), &n));
    }

    #[test]
    fn dates() {
        let n = now(); // 2025-03-12
        assert!(date_range(&s(&["12"]), &n));
        assert!(!date_range(&s(&["1"]), &n));
        assert!(date_range(&s(&["MAR"]), &n));
        assert!(!date_range(&s(&["APR"]), &n));
        assert!(date_range(&s(&["2025"]), &n));
        assert!(!date_range(&s(&["2024"]), &n));
        assert!(date_range(&s(&["1", "15"]), &n));
        assert!(!date_range(&s(&["13", "15"]), &n));
        assert!(date_range(&s(&["25", "12"]), &n), "day range wraps");
        assert!(date_range(&s(&["JAN", "MAR"]), &n));
        assert!(date_range(&s(&["NOV", "MAR"]), &n), "month range wraps");
        assert!(!date_range(&s(&["APR", "OCT"]), &n));
        assert!(date_range(&s(&["2020", "2030"]), &n));
        assert!(!date_range(&s(&["2026", "2030"]), &n));
        assert!(date_range(&s(&["1", "MAR", "12", "MAR"]), &n));
        assert!(!date_range(&s(&["13", "MAR", "31", "MAR"]), &n));
        assert!(date_range(&s(&["24", "DEC", "15", "MAR"]), &n), "wraps");
        assert!(date_range(&s(&["FEB", "2025", "MAR", "2025"]), &n));
        assert!(date_range(&s(&["DEC", "2024", "JAN", "2026"]), &n));
        assert!(!date_range(&s(&["APR", "2025", "JAN", "2026"]), &n));
        assert!(date_range(
            &s(&["12", "MAR", "2025", "12", "MAR", "2025"]),
            &n
        ));
        assert!(!date_range(
            &s(&["13", "MAR", "2025", "1", "JAN", "2026"]),
            &n
        ));
        assert!(date_range(&s(&["MAR", "GMT"]), &n));
        assert!(
            !date_range(&s(&["1", "MAR"]), &n),
            "mixed kinds are not a range"
        );
        assert!(!date_range(&s(&["0"]), &n));
        assert!(!date_range(&s(&["500"]), &n));
        assert!(!date_range(&s(&[]), &n));
    }

    #[test]
    fn times() {
        let n = now(); // 14:30:15 local
        assert!(time_range(&s(&["14"]), &n));
        assert!(!time_range(&s(&["15"]), &n));
        assert!(time_range(&s(&["9", "17"]), &n));
        assert!(
            time_range(&s(&["12", "14"]), &n),
            "the end hour is inclusive"
        );
        assert!(!time_range(&s(&["15", "17"]), &n));
        assert!(time_range(&s(&["22", "15"]), &n), "wraps past midnight");
        assert!(!time_range(&s(&["22", "6"]), &n));
        assert!(time_range(&s(&["14", "30", "14", "30"]), &n));
        assert!(!time_range(&s(&["14", "31", "15", "0"]), &n));
        assert!(time_range(&s(&["14", "30", "15", "14", "30", "15"]), &n));
        assert!(!time_range(&s(&["14", "30", "16", "14", "30", "20"]), &n));
        assert!(time_range(&s(&["13", "GMT"]), &n));
        assert!(!time_range(&s(&["14", "GMT"]), &n));
        assert!(!time_range(&s(&["x"]), &n));
        assert!(!time_range(&s(&["14", "61", "15", "0"]), &n));
        assert!(!time_range(&s(&["1", "2", "3"]), &n));
        assert!(!time_range(&s(&[]), &n));
    }
}
