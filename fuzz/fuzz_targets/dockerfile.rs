//! Any Dockerfile text and build argument: the base-image reader never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut args = BTreeMap::new();
    args.insert("A".to_owned(), Some("x".to_owned()));
    let _ = stockade_engine_api::dockerfile::image_sources(text, &args);
});
