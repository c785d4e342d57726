//! The published JSON Schema and the parser agree on every corpus file: the schema accepts every
//! good file and rejects every bad one, except the bad files whose problem a JSON Schema cannot
//! express. Those are listed below with the reason; everything else must agree.
#![allow(clippy::unwrap_used)] // a test binary: a broken corpus should panic with its error

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stockade_policy::schema::{admin_settings_schema, ADMIN_SETTINGS_SCHEMA};

/// Bad files that only the parser can reject, and why.
const PARSER_ONLY: &[(&str, &str)] = &[
    // Not JSON at all (or not UTF-8): a schema validates values, not text.
    ("byte-order-mark", "encoding: a schema sees parsed values"),
    ("not-utf8", "encoding: a schema sees parsed values"),
    ("empty-file", "syntax"),
    ("syntax-capitalised-literal", "syntax"),
    ("syntax-comment", "syntax"),
    ("syntax-invalid-escape", "syntax"),
    ("syntax-leading-zero", "syntax"),
    ("syntax-lone-surrogate", "syntax"),
    ("syntax-missing-comma", "syntax"),
    ("syntax-single-quotes", "syntax"),
    ("syntax-trailing-comma", "syntax"),
    ("syntax-trailing-data", "syntax"),
    ("syntax-unterminated-string", "syntax"),
    // JSON parsers keep one of two duplicate keys; the schema never sees the other.
    ("duplicate-nested-key", "duplicate keys are parser-only"),
    ("duplicate-top-level-key", "duplicate keys are parser-only"),
    // The value is a string holding JSON; a schema cannot parse it.
    ("daemon-options-array", "JSON inside a string"),
    ("daemon-options-hardening", "JSON inside a string"),
    ("daemon-options-not-json", "JSON inside a string"),
    // (The 1 MiB limit is parser-only too; it is tested in the crate's unit tests, not with a
    // 1 MiB corpus file.)
];

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/policy")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(ADMIN_SETTINGS_SCHEMA).unwrap();
    assert_eq!(
        schema,
        admin_settings_schema(),
        "checked-in schema is stale"
    );
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn schema_accepts_every_good_file() {
    let validator = validator();
    for path in corpus("good") {
        let instance: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
    let builtin: Value = serde_json::from_str(stockade_policy::BUILTIN_ADMIN_SETTINGS).unwrap();
    assert!(validator.is_valid(&builtin));
}

#[test]
fn schema_rejects_every_bad_file_it_can_express() {
    let validator = validator();
    for path in corpus("bad") {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(&path).unwrap();
        let parsed = serde_json::from_slice::<Value>(&bytes);
        match PARSER_ONLY.iter().find(|(name, _)| *name == stem) {
            Some((_, reason)) => {
                // Listed as parser-only: make sure the schema really cannot see the problem,
                // so the list stays minimal.
                if let Ok(instance) = parsed {
                    assert!(
                        validator.is_valid(&instance),
                        "{stem} is listed as parser-only ({reason}) but the schema rejects it: remove it from the list"
                    );
                }
            }
            None => {
                let instance = parsed.unwrap_or_else(|e| {
                    panic!("{stem}: not JSON ({e}); list it in PARSER_ONLY if that is the point")
                });
                assert!(
                    !validator.is_valid(&instance),
                    "{stem}: the parser rejects it but the schema accepts it"
                );
            }
        }
    }
    for (name, _) in PARSER_ONLY {
        assert!(
            corpus("bad")
                .iter()
                .any(|p| p.file_stem().is_some_and(|s| s == *name)),
            "PARSER_ONLY names {name}, which is not in the corpus"
        );
    }
}
