//! Any string as an image reference: no panic, and a parsed reference prints to a string that
//! parses to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade_imageref::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = Reference::parse_normalized(text) {
        let printed = reference.to_string();
        let again = Reference::parse_normalized(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
        assert_eq!(again, reference);
    }
});
