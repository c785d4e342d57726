//! Signed checkpoints: every so often (and when the log closes) the writer signs the head of
//! the chain (sequence number, record hash, time) with an ed25519 key only root can read, and
//! appends the signed checkpoint to `NAME.checkpoints` and to syslog when that is on. A copy of
//! the checkpoints held elsewhere proves which records existed, so removing records from the
//! end of the log (which the chain alone cannot show) is detected by
//! [`verify_checkpoints`].
//!
//! A checkpoint line: `{"seq":N,"head":"<sha256 of record N's line>","time":"...",
//! "signature":"<hex>","public_key":"<hex>"}`; the signed message is
//! `stockade-audit-checkpoint 1 <seq> <head> <time>`.

use crate::record::{line_hash, Record};
use crate::AuditError;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The signing key of the checkpoints.
pub struct CheckpointKey {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("public_key", &self.public_hex())
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl CheckpointKey {
    /// Reads the key at `path`, or creates it (mode 0600) if missing. A key file others can
    /// read, or that root does not own, is refused: anyone who can read it can forge
    /// checkpoints.
    ///
    /// # Errors
    /// [`AuditError::Key`] naming the path and the fix.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let bad = |reason: String| AuditError::Key {
            path: path.to_owned(),
            reason,
        };
        if !path.exists() {
            let mut seed = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut seed))
                .map_err(|e| bad(format!("cannot read random bytes: {e}")))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| bad(format!("cannot create it: {e}")))?;
            file.write_all(hex(&seed).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| bad(format!("cannot write it: {e}")))?;
        }
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 || meta.uid() != nix_uid() {
            return Err(bad(format!(
                "the key can be read by others (mode {:o}, owner {}); run `chown root {} && chmod 0600 {}`",
                meta.permissions().mode() & 0o777,
                meta.uid(),
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let seed: [u8; 32] =
            unhex(&text).ok_or_else(|| bad("not a 64-character hex ed25519 seed".to_owned()))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public key, hex: what a verifier needs.
    #[must_use]
    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// A signed checkpoint line for record `seq` whose line hashes to `head`.
    #[must_use]
    pub fn checkpoint(&self, seq: u64, head: &str, time: &str) -> String {
        let message = message(seq, head, time);
        let signature = self.key.sign(message.as_bytes());
        serde_json::json!({
            "seq": seq,
            "head": head,
            "time": time,
            "signature": hex(&signature.to_bytes()),
            "public_key": self.public_hex(),
        })
        .to_string()
    }
}

/// The process's effective uid, for the key's owner check.
fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn message(seq: u64, head: &str, time: &str) -> String {
    format!("stockade-audit-checkpoint 1 {seq} {head} {time}")
}

/// Where checkpoints of the log at `path` are written.
#[must_use]
pub fn checkpoints_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.checkpoints", path.display()))
}

/// What [`verify_checkpoints`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCheckpoints {
    /// Checkpoints whose signature and record matched.
    pub checkpoints: usize,
    /// The highest sequence number a checkpoint proves.
    pub last_seq: u64,
}

/// Checks every checkpoint in `checkpoints` against `public_key` (hex) and against the log
/// files (oldest first): each signature must be valid and the log must hold the signed record
/// with that exact hash. A checkpoint beyond the log's last record means records were removed
/// from the end.
///
/// # Errors
/// The first problem, as a sentence naming the checkpoint.
pub fn verify_checkpoints(
    files: &[PathBuf],
    checkpoints: &Path,
    public_key: &str,
) -> Result<CheckedCheckpoints, String> {
    let key_bytes: [u8; 32] = unhex(public_key).ok_or("the public key is not 64 hex characters")?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|e| format!("bad public key: {e}"))?;
    let mut hashes: HashMap<u64, String> = HashMap::new();
    let mut last = 0;
    for file in files {
        let reader = BufReader::new(
            std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?,
        );
        for line in reader.split(b'\n') {
            let line = line.map_err(|e| format!("{}: {e}", file.display()))?;
            if line.is_empty() {
                continue;
            }
            let record: Record = serde_json::from_slice(&line)
                .map_err(|e| format!("{}: a record does not parse: {e}", file.display()))?;
            last = last.max(record.seq);
            hashes.insert(record.seq, line_hash(&line));
        }
    }
    let text = std::fs::read_to_string(checkpoints)
        .map_err(|e| format!("{}: {e}", checkpoints.display()))?;
    let mut checked = CheckedCheckpoints {
        checkpoints: 0,
        last_seq: 0,
    };
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = format!("{} line {}", checkpoints.display(), n + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{at}: not a checkpoint: {e}"))?;
        let seq = value["seq"].as_u64().ok_or(format!("{at}: no seq"))?;
        let head = value["head"].as_str().ok_or(format!("{at}: no head"))?;
        let time = value["time"].as_str().ok_or(format!("{at}: no time"))?;
        let signature: [u8; 64] = value["signature"]
            .as_str()
            .and_then(unhex)
            .ok_or(format!("{at}: no signature"))?;
        key.verify(
            message(seq, head, time).as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            format!("{at}: the signature does not match this public key (forged or edited)")
        })?;
        if seq > last {
            return Err(format!(
                "{at}: a checkpoint signed record {seq}, but the log ends at record {last}: records were removed from the end"
            ));
        }
        match hashes.get(&seq) {
            Some(hash) if hash == head => {}
            Some(_) => {
                return Err(format!(
                    "{at}: record {seq} is not the record that was signed (edited)"
                ))
            }
            None => {
                return Err(format!(
                    "{at}: record {seq} is not in the files given (give every file, oldest first)"
                ))
            }
        }
        checked.checkpoints += 1;
        checked.last_seq = checked.last_seq.max(seq);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_checkpoints_prove_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("audit.key");
        let key = CheckpointKey::load_or_create(&key_path).unwrap();
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            CheckpointKey::load_or_create(&key_path)
                .unwrap()
                .public_hex(),
            key.public_hex()
        );
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CheckpointKey::load_or_create(&key_path)
            .unwrap_err()
            .to_string()
            .contains("chmod 0600"));
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let line = key.checkpoint(3, &"a".repeat(64), "2026-11-24T00:00:00Z");
        let other = dir.path().join("other.key");
        let other = CheckpointKey::load_or_create(&other).unwrap();
        assert_ne!(other.public_hex(), key.public_hex());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["seq"], 3);
    }
}
