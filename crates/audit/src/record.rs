//! The record format, version 1: one JSON object per line, fields in a fixed order.
//!
//! ```text
//! {"v":1,"seq":7,"time_ns":1795000000000000000,"kind":"decision","uid":1000,
//!  "route":"POST /containers/create","summary":{"image":"busybox"},"decision":"deny",
//!  "rule":"eci.privileged","reason":"...","policy_hash":"…","prev":"<sha256 of line 6>"}
//! ```
//!
//! `prev` is the SHA-256 (hex) of the previous line's bytes exactly as stored (without its
//! newline); the first record of a log has 64 zeros. Editing any record changes its hash and
//! breaks the next record's `prev`; removing, inserting or reordering records breaks `seq` and
//! `prev`. Optional fields are left out when empty. Readers reject unknown fields.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The format version written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// The `prev` of the first record of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A gateway decision on a request.
    Decision,
    /// A policy was loaded (at start or on reload).
    PolicyLoad,
    /// A policy reload was refused; the previous policy stays in force.
    PolicyReloadFailed,
    /// The gateway started serving.
    GatewayStart,
    /// The gateway stopped serving.
    GatewayStop,
    /// The managed engine started.
    EngineStart,
    /// The managed engine stopped.
    EngineStop,
    /// An egress proxy decision.
    Egress,
}

/// Allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Forwarded.
    Allow,
    /// Refused.
    Deny,
}

/// What a caller hands to the log; the log adds the sequence number, the time and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// What happened.
    pub kind: Option<Kind>,
    /// The caller's uid.
    pub uid: Option<u32>,
    /// The calling container, for socket-mount callers.
    pub container: Option<String>,
    /// Method and path.
    pub route: Option<String>,
    /// The fields that mattered (never secrets: no auth headers, no env values).
    pub summary: BTreeMap<String, serde_json::Value>,
    /// Allowed or denied.
    pub decision: Option<Decision>,
    /// The rule id.
    pub rule: Option<String>,
    /// The human reason.
    pub reason: Option<String>,
    /// Hash of the policy in force.
    pub policy_hash: Option<String>,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version.
    pub v: u32,
    /// Sequence number, 1 for the first record ever, never reset by rotation.
    pub seq: u64,
    /// Unix time in nanoseconds.
    pub time_ns: u64,
    /// What happened.
    pub kind: Kind,
    /// The caller's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The calling container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Method and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The fields that mattered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: BTreeMap<String, serde_json::Value>,
    /// Allowed or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The human reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Hash of the policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// SHA-256 (hex) of the previous line.
    pub prev: String,
}

impl Record {
    /// Builds the record that follows `prev` with number `seq`.
    #[must_use]
    pub fn new(event: Event, seq: u64, time_ns: u64, prev: String) -> Self {
        Self {
            v: FORMAT_VERSION,
            seq,
            time_ns,
            kind: event.kind.unwrap_or(Kind::Decision),
            uid: event.uid,
            container: event.container,
            route: event.route,
            summary: event.summary,
            decision: event.decision,
            rule: event.rule,
            reason: event.reason,
            policy_hash: event.policy_hash,
            prev,
        }
    }

    /// The record as one line of JSON, without the newline.
    #[must_use]
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail; an empty line would fail verification.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// SHA-256 of a stored line, hex.
#[must_use]
pub fn line_hash(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

/// Formats Unix nanoseconds as RFC 3339 UTC with milliseconds.
#[must_use]
pub fn format_time(time_ns: u64) -> String {
    let secs = time_ns / 1_000_000_000;
    let millis = (time_ns / 1_000_000) % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_stable_and_round_trips() {
        let mut event = Event {
            kind: Some(Kind::Decision),
            uid: Some(1000),
            route: Some("POST /containers/create".into()),
            decision: Some(Decision::Deny),
            rule: Some("eci.privileged".into()),
            ..Event::default()
        };
        event.summary.insert("image".into(), "busybox".into());
        let record = Record::new(event, 7, 1_795_000_000_000_000_000, GENESIS.into());
        let line = record.to_line();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.starts_with(
                r#"{"v":1,"seq":7,"time_ns":1795000000000000000,"kind":"decision","uid":1000,"#
            ),
            "{text}"
        );
        assert!(
            !text.contains("\"container\""),
            "empty fields are left out: {text}"
        );
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let line = br#"{"v":1,"seq":1,"time_ns":0,"kind":"decision","prev":"x","extra":1}"#;
        assert!(serde_json::from_slice::<Record>(line).is_err());
    }

    #[test]
    fn hashes_and_times() {
        assert_eq!(
            line_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time(951_782_400_123_000_000),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_time(1_795_478_400_000_000_000),
            "2026-11-24T00:00:00.000Z"
        );
    }
}
