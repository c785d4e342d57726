//! Differential fuzzing against the engine's own Go decoders (the oracle of
//! `crates/engine-api/tests/go-oracle`): for any body the gateway accepts, the engine must read
//! the raw body and the canonical body the gateway forwards as the same value.
//!
//! Build the oracle first and point `STOCKADE_GO_ORACLE` at it:
//! `GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/go-oracle ../crates/engine-api/tests/go-oracle`
//! then `STOCKADE_GO_ORACLE=/tmp/go-oracle cargo fuzz run -s none go_parity seeds/request_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use stockade_engine_api::{Request, Route};

struct Oracle {
    _child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Oracle {
    fn ask(&mut self, kind: &str, body: &[u8]) -> String {
        let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(self.input, "{kind} {hex}").expect("write to the oracle");
        self.input.flush().expect("flush the oracle");
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("read from the oracle");
        line
    }
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let path = std::env::var("STOCKADE_GO_ORACLE")
            .expect("set STOCKADE_GO_ORACLE to the built go-oracle (see the file's docs)");
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the oracle");
        let input = child.stdin.take().expect("oracle stdin");
        let output = BufReader::new(child.stdout.take().expect("oracle stdout"));
        Mutex::new(Oracle {
            _child: child,
            input,
            output,
        })
    })
}

const KINDS: &[(&str, &str, &str)] = &[
    ("create", "POST", "/v1.41/containers/create"),
    ("exec", "POST", "/containers/abc/exec"),
    ("update", "POST", "/containers/abc/update"),
    ("netconnect", "POST", "/networks/n/connect"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (kind, method, path) = KINDS[usize::from(pick) % KINDS.len()];
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(route) = Route::parse(&method, path) else {
        return;
    };
    let Ok(request) = Request::new(route, "", body) else {
        return;
    };
    let forwarded = request.body_bytes().unwrap_or_default();
    let mut oracle = oracle().lock().expect("oracle lock");
    let raw = oracle.ask(kind, body);
    let canonical = oracle.ask(kind, &forwarded);
    assert_eq!(
        raw, canonical,
        "the engine reads the accepted body and the forwarded one differently"
    );
});
