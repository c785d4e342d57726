//! Any bytes as the body of an inspected route: no panic, and the canonical form the gateway
//! forwards reads back to itself (what was checked is exactly what is sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade_engine_api::{Request, Route};

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1.41/containers/create"),
    ("POST", "/containers/abc/exec"),
    ("POST", "/exec/abc/start"),
    ("POST", "/containers/abc/update"),
    ("POST", "/volumes/create"),
    ("POST", "/networks/create"),
    ("POST", "/networks/n/connect"),
    ("POST", "/commit"),
    ("POST", "/auth"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[usize::from(pick) % ROUTES.len()];
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(route) = Route::parse(&method, path) else {
        return;
    };
    if let Ok(request) = Request::new(route.clone(), "", body) {
        let forwarded = request.body_bytes().unwrap_or_default();
        let again = Request::new(route, "", &forwarded)
            .unwrap_or_else(|e| panic!("the canonical body does not read back: {e}"));
        assert_eq!(again.body_bytes().unwrap_or_default(), forwarded);
    }
});
