//! Content digests (`sha256:<hex>`), validated as the engine validates them.

use std::fmt;
use std::str::FromStr;

use crate::RefError;

/// A content digest such as `sha256:` followed by 64 lowercase hex characters.
///
/// Validation follows `github.com/opencontainers/go-digest` as the engine builds it: the
/// algorithms are `sha256`, `sha384` and `sha512` (the engine links both Go hash packages that
/// register them), and the hex part must be lowercase and exactly twice the hash size. Anything
/// else is refused, with the engine's three distinct reasons: bad format, bad length,
/// unsupported algorithm.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate a digest (go-digest's `Parse`).
    ///
    /// ```
    /// use stockade_imageref::Digest;
    /// let d = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
    /// assert_eq!(d.algorithm(), "sha256");
    /// assert!(Digest::parse(&format!("sha256:{}", "AB".repeat(32))).is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, RefError> {
        let err = |make: fn(String) -> RefError| Err(make(s.to_owned()));
        let Some((alg, encoded)) = s
            .split_once(':')
            .filter(|(a, e)| !a.is_empty() && !e.is_empty())
        else {
            return err(|digest| RefError::DigestFormat { digest });
        };
        let size = match alg {
            "sha256" => 32,
            "sha384" => 48,
            "sha512" => 64,
            _ => {
                // go-digest tells "unsupported" from "malformed" with its own, more relaxed,
                // digest expression: lowercase algorithm, then a base64url-ish encoded part.
                return if is_relaxed_digest(alg, encoded) {
                    err(|digest| RefError::DigestUnsupported { digest })
                } else {
                    err(|digest| RefError::DigestFormat { digest })
                };
            }
        };
        if encoded.len() != size * 2 {
            return err(|digest| RefError::DigestLength { digest });
        }
        if !encoded
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return err(|digest| RefError::DigestFormat { digest });
        }
        Ok(Self(s.to_owned()))
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(alg, _)| alg)
    }

    /// The lowercase hex part.
    pub fn encoded(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, hex)| hex)
    }

    /// The whole digest, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// go-digest's `DigestRegexp`: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_relaxed_digest(alg: &str, encoded: &str) -> bool {
    let alg_ok = alg.split(['.', '+', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let enc_ok = encoded
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'=' || c == b'_' || c == b'-');
    alg_ok && enc_ok
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(n: usize) -> String {
        "0123456789abcdef".chars().cycle().take(n).collect()
    }

    #[test]
    fn supported_algorithms() {
        for (alg, n) in [("sha256", 64), ("sha384", 96), ("sha512", 128)] {
            let s = format!("{alg}:{}", hex(n));
            let d = Digest::parse(&s).unwrap();
            assert_eq!(d.as_str(), s);
            assert_eq!(d.algorithm(), alg);
            assert_eq!(d.encoded(), hex(n));
            assert!(matches!(
                Digest::parse(&format!("{alg}:{}", hex(n - 1))),
                Err(RefError::DigestLength { .. })
            ));
        }
    }

    #[test]
    fn refusals_keep_go_digest_reasons() {
        type Check = fn(&RefError) -> bool;
        let cases: [(String, Check); 7] = [
            ("".into(), |e| matches!(e, RefError::DigestFormat { .. })),
            ("sha256".into(), |e| {
                matches!(e, RefError::DigestFormat { .. })
            }),
            ("sha256:".into(), |e| {
                matches!(e, RefError::DigestFormat { .. })
            }),
            (format!(":{}", hex(64)), |e| {
                matches!(e, RefError::DigestFormat { .. })
            }),
            (format!("sha256:{}", hex(64).to_uppercase()), |e| {
                matches!(e, RefError::DigestFormat { .. })
            }),
            (format!("md5:{}", hex(32)), |e| {
                matches!(e, RefError::DigestUnsupported { .. })
            }),
            (format!("SHA256:{}", hex(64)), |e| {
                matches!(e, RefError::DigestFormat { .. })
            }),
        ];
        for (input, check) in cases {
            let e = Digest::parse(&input).unwrap_err();
            assert!(check(&e), "{input}: {e}");
        }
    }
}
