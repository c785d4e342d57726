//! Any request line: the route table and the query parser never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade_engine_api::{Query, Route};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    for method in [
        http::Method::GET,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
    ] {
        if let Ok(route) = Route::parse(&method, path) {
            if let Ok(parsed) = Query::parse(query) {
                let _ = parsed.check_for(&route.operation);
            }
        }
    }
});
