//! Load time of a 100 KiB admin policy (parse, validate, merge), in the release profile:
//! `cargo bench -p stockade-policy --bench load`. The target is well under 10 ms.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::time::Instant;

use stockade_policy::{Policy, UserContext, BUILTIN_ADMIN_SETTINGS};

fn main() {
    let mut text = String::from(
        "{\n  \"configurationFileVersion\": 2,\n  \"enhancedContainerIsolation\": {\n    \"locked\": true,\n    \"value\": true,\n    \"dockerSocketMount\": {\n      \"imageList\": {\n        \"images\": [\n",
    );
    let mut images = 0;
    while text.len() < 100 * 1024 {
        let i = images;
        let _ = writeln!(
            text,
            "          \"registry{i}.example.com:5000/team{i}/image-{i}:v{i}\","
        );
        images += 1;
    }
    text.push_str("          \"*\"\n        ]\n      }\n    }\n  },\n  \"blockDockerLoad\"");
    let (_, rest) = BUILTIN_ADMIN_SETTINGS
        .split_once("\"blockDockerLoad\"")
        .unwrap();
    text.push_str(rest);

    let who = UserContext::new(1000, "/home/ann");
    let runs: u32 = 200;
    let start = Instant::now();
    for _ in 0..runs {
        let policy = Policy::parse("bench.json", text.as_bytes()).unwrap();
        std::hint::black_box(policy.effective(None, &who));
    }
    println!(
        "policy load: {} bytes, {images} images: {:?} per parse + validate + hash + effective ({runs} runs)",
        text.len(),
        start.elapsed() / runs
    );
}
