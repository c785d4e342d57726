//! Every file under `tests/policy/bad/` must fail with exactly the diagnostics in its
//! `.expected` file (one per line, the file part being the bare file name); every file under
//! `tests/policy/good/` must load, with the "no effect on Linux" notes in its `.notes` file
//! when there is one. `STOCKADE_BLESS=1` rewrites the expectations (review the diff).
#![allow(clippy::unwrap_used)] // a test binary: a broken corpus should panic with its error

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use stockade_policy::Policy;

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/policy")
        .join(kind)
}

/// The `.json` files of a corpus directory, sorted.
fn json_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir(kind))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn bless() -> bool {
    std::env::var_os("STOCKADE_BLESS").is_some()
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn bad_files_fail_with_the_expected_messages() {
    let files = json_files("bad");
    assert!(
        files.len() >= 30,
        "the bad corpus has only {} files",
        files.len()
    );
    let mut failures = String::new();
    for path in &files {
        let bytes = fs::read(path).unwrap();
        let actual = match Policy::parse(&file_name(path), &bytes) {
            Ok(_) => {
                let _ = writeln!(failures, "{}: accepted, expected errors", path.display());
                continue;
            }
            Err(err) => format!("{err}\n"),
        };
        let expected_path = path.with_extension("expected");
        if bless() {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            let _ = writeln!(
                failures,
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn good_files_load() {
    let files = json_files("good");
    assert!(!files.is_empty());
    let mut failures = String::new();
    for path in &files {
        let policy = match Policy::load(path) {
            Ok(policy) => policy,
            Err(err) => {
                let _ = writeln!(failures, "{err}");
                continue;
            }
        };
        let notes: String = policy.notes().iter().map(|n| format!("{n}\n")).collect();
        let notes_path = path.with_extension("notes");
        if bless() {
            if notes.is_empty() {
                let _ = fs::remove_file(&notes_path);
            } else {
                fs::write(&notes_path, &notes).unwrap();
            }
            continue;
        }
        let expected = fs::read_to_string(&notes_path).unwrap_or_default();
        if notes != expected {
            let _ = writeln!(
                failures,
                "{}: notes differ\n--- expected\n{expected}--- actual\n{notes}",
                path.display()
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_expectation_has_its_file() {
    for kind in ["bad", "good"] {
        for entry in fs::read_dir(corpus_dir(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path
                .extension()
                .is_some_and(|ext| ext == "expected" || ext == "notes")
            {
                assert!(
                    path.with_extension("json").exists(),
                    "{} has no .json file",
                    path.display()
                );
            }
        }
    }
}
