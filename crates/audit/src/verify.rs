//! Checking a chain: every line must parse, count up by one, and name the hash of the line before.

use crate::record::{line_hash, Record, FORMAT_VERSION, GENESIS};
use std::io::BufRead;

/// Where a chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The 1-based line number in the file.
    pub line: u64,
    /// The sequence number expected at that line.
    pub expected_seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// What a chain that verified contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// Sequence number of the first record (1 unless the file continues a rotated one).
    pub first_seq: u64,
    /// Sequence number of the last record.
    pub last_seq: u64,
    /// Hash of the last line: the head of the chain.
    pub head: String,
}

/// Where the chain to check starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// A log's first file: sequence 1 after the genesis hash.
    Genesis,
    /// A file that continues another: the next sequence number and the head hash it follows.
    After {
        /// The sequence number of the first record.
        seq: u64,
        /// The hash its `prev` must name.
        head: String,
    },
    /// Trust the first record's own `seq` and `prev` (a rotated file checked alone).
    FirstRecord,
}

/// Verifies the lines of `reader` from `anchor`.
///
/// # Errors
/// The first [`Break`]: an unreadable, unparsable, out-of-sequence or unchained line, or a last
/// line cut short.
pub fn verify(reader: impl BufRead, anchor: Anchor) -> Result<Verified, Break> {
    let (mut expected_seq, mut prev) = match anchor {
        Anchor::Genesis => (Some(1), GENESIS.to_owned()),
        Anchor::After { seq, head } => (Some(seq), head),
        Anchor::FirstRecord => (None, String::new()),
    };
    let mut verified = Verified {
        records: 0,
        first_seq: 0,
        last_seq: 0,
        head: prev.clone(),
    };
    let mut reader = reader;
    let mut line_no = 0u64;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader.read_until(b'\n', &mut buffer).map_err(|e| Break {
            line: line_no + 1,
            expected_seq: expected_seq.unwrap_or(0),
            reason: format!("cannot read: {e}"),
        })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let seq_here = expected_seq.unwrap_or(0);
        let broken = |reason: String| Break {
            line: line_no,
            expected_seq: seq_here,
            reason,
        };
        let Some(line) = buffer.strip_suffix(b"\n") else {
            return Err(broken(
                "the last record is cut short (no newline): the log was truncated".into(),
            ));
        };
        let record: Record =
            serde_json::from_slice(line).map_err(|e| broken(format!("not a valid record: {e}")))?;
        if record.v != FORMAT_VERSION {
            return Err(broken(format!("unknown format version {}", record.v)));
        }
        match expected_seq {
            Some(seq) if record.seq != seq => {
                return Err(broken(format!(
                    "sequence number {} where {seq} was expected: records were removed, inserted or reordered",
                    record.seq
                )));
            }
            None => {
                verified.first_seq = record.seq;
                prev.clone_from(&record.prev);
            }
            Some(seq) => {
                if verified.records == 0 {
                    verified.first_seq = seq;
                }
            }
        }
        if record.prev != prev {
            return Err(broken(format!(
                "record {} does not chain to the record before it: that record was edited, or records were removed, inserted or reordered",
                record.seq
            )));
        }
        prev = line_hash(line);
        verified.records += 1;
        verified.last_seq = record.seq;
        expected_seq = Some(record.seq + 1);
    }
    verified.head = prev;
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, Record};

    fn log(n: u64) -> Vec<Vec<u8>> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let event = Event {
                    route: Some(format!("GET /r{seq}")),
                    ..Event::default()
                };
                let line = Record::new(event, seq, seq * 1000, prev.clone()).to_line();
                prev = line_hash(&line);
                line
            })
            .collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    }

    fn check(lines: &[Vec<u8>]) -> Result<Verified, Break> {
        verify(&join(lines)[..], Anchor::Genesis)
    }

    #[test]
    fn intact_chain_verifies() {
        let lines = log(5);
        let verified = check(&lines).unwrap();
        assert_eq!(
            (verified.records, verified.first_seq, verified.last_seq),
            (5, 1, 5)
        );
        assert_eq!(verified.head, line_hash(&lines[4]));
        assert_eq!(check(&[]).unwrap().records, 0);
    }

    #[test]
    fn edit_is_found_at_the_next_record() {
        let mut lines = log(5);
        let edited = String::from_utf8(lines[1].clone())
            .unwrap()
            .replace("/r2", "/rX");
        lines[1] = edited.into_bytes();
        let broken = check(&lines).unwrap_err();
        assert_eq!((broken.line, broken.expected_seq), (3, 3));
    }

    #[test]
    fn removal_insertion_reordering_are_found() {
        let lines = log(5);
        let mut removed = lines.clone();
        removed.remove(2);
        assert_eq!(check(&removed).unwrap_err().expected_seq, 3);
        let mut inserted = lines.clone();
        inserted.insert(2, lines[1].clone());
        assert_eq!(check(&inserted).unwrap_err().expected_seq, 3);
        let mut reordered = lines.clone();
        reordered.swap(1, 2);
        assert_eq!(check(&reordered).unwrap_err().expected_seq, 2);
        let mut first_gone = lines;
        first_gone.remove(0);
        assert_eq!(check(&first_gone).unwrap_err().expected_seq, 1);
    }

    #[test]
    fn cut_short_and_garbage_are_found() {
        let lines = log(3);
        let mut bytes = join(&lines);
        bytes.truncate(bytes.len() - 5);
        let broken = verify(&bytes[..], Anchor::Genesis).unwrap_err();
        assert_eq!(broken.line, 3);
        assert!(broken.reason.contains("cut short"));
        let mut garbage = lines;
        garbage[1] = b"not json".to_vec();
        assert_eq!(check(&garbage).unwrap_err().line, 2);
    }

    #[test]
    fn rotated_file_checks_from_its_first_record_or_an_anchor() {
        let lines = log(6);
        let tail = join(&lines[3..]);
        let alone = verify(&tail[..], Anchor::FirstRecord).unwrap();
        assert_eq!((alone.first_seq, alone.last_seq), (4, 6));
        let anchored = verify(
            &tail[..],
            Anchor::After {
                seq: 4,
                head: line_hash(&lines[2]),
            },
        )
        .unwrap();
        assert_eq!(anchored.records, 3);
        let wrong = verify(
            &tail[..],
            Anchor::After {
                seq: 4,
                head: line_hash(&lines[1]),
            },
        );
        assert!(wrong.is_err());
    }
}
