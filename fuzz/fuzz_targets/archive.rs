//! Any bytes as a build context or image archive: the readers never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stockade_engine_api::archive::build_dockerfile(data, "Dockerfile");
    let _ = stockade_engine_api::archive::load_names(data);
});
