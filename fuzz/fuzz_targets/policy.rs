//! Any bytes as an admin policy, a user settings file or a catalog: parsed or refused with
//! positioned errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = stockade_policy::Policy::parse("fuzz.json", data) {
        assert!(!e.errors().is_empty());
    }
    let _ = stockade_policy::UserSettings::parse("settings.json", data);
    let _ = stockade_policy::catalog::Catalog::parse("catalog.json", data);
});
