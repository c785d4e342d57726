//! Any client byte stream of a plain-HTTP connection, split into pieces at any points: the
//! request-stream parser of the transparent proxy never panics, never lets more bytes through
//! than it was given, and reaches the same verdict (bytes forwarded, cut or not) however the
//! bytes arrive — a relay reads whatever the socket holds, so a verdict that depended on the
//! split would let a client steer it by timing its writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade_egress::http_stream::RequestStream;

/// Drives the parser as the relay does: bytes arrive in `pieces`; what it cannot decide yet
/// waits for more. Returns the bytes forwarded and whether the connection was cut.
fn relay(decided: Option<&str>, data: &[u8], pieces: &[usize]) -> (usize, bool) {
    let mut parser = RequestStream::new(decided.map(str::to_owned), 4096);
    let mut pending: Vec<u8> = Vec::new();
    let mut forwarded = 0;
    let mut at = 0;
    let mut cuts = pieces.iter().copied().chain(std::iter::repeat(usize::MAX));
    while at < data.len() {
        let len = cuts.next().unwrap_or(usize::MAX).clamp(1, data.len() - at);
        pending.extend_from_slice(&data[at..at + len]);
        at += len;
        loop {
            match parser.advance(&pending) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(n <= pending.len(), "forwarded more than it was given");
                    forwarded += n;
                    pending.drain(..n);
                }
                Err(_) => return (forwarded, true),
            }
        }
    }
    (forwarded, false)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, rest)) = input.split_first() else {
        return;
    };
    // The first byte chooses the decided host and how many split points follow.
    let decided = if control & 1 == 0 {
        Some("a.example")
    } else {
        None
    };
    let splits = usize::from(control >> 1) % 8;
    if rest.len() < splits {
        return;
    }
    let (cuts, data) = rest.split_at(splits);
    let pieces: Vec<usize> = cuts.iter().map(|&c| usize::from(c) + 1).collect();
    let whole = relay(decided, data, &[]);
    let split = relay(decided, data, &pieces);
    let bytewise = relay(decided, data, &[1; 64]);
    assert!(whole.0 <= data.len());
    assert_eq!(whole, split, "the verdict depends on how the bytes arrive");
    assert_eq!(
        whole, bytewise,
        "the verdict depends on how the bytes arrive"
    );
});
