//! Diagnostics (`FILE:LINE:COL: key.path: message`) and the crate's error types.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// One problem found in a settings file.
///
/// Displayed as `FILE:LINE:COL: key.path: message`; problems without a position (an unreadable
/// file) display as `FILE: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file name as given to the parser (a path, or a bare name in tests).
    pub file: String,
    /// 1-based line; 0 when the problem has no position.
    pub line: usize,
    /// 1-based column, counted in characters; 0 when the problem has no position.
    pub column: usize,
    /// The key path (`proxy.exclude[2]`), or `(root)` for the document itself.
    pub path: String,
    /// What is wrong and how to fix it: lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.path, self.message
            )
        }
    }
}

/// Every problem found in one settings file (never just the first).
///
/// `Display` prints one diagnostic per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct PolicyError {
    diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyError {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        debug_assert!(!diagnostics.is_empty());
        PolicyError { diagnostics }
    }

    /// A problem with the file as a whole (unreadable, too large), without a position.
    pub(crate) fn file(file: &str, message: String) -> Self {
        PolicyError::new(vec![Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        }])
    }

    /// The diagnostics, in file order.
    pub fn errors(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// Why a user's settings file could not be used. Only the admin policy then applies to that
/// user; nothing in the file (not even a byte of it) is echoed, only its problems' positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSettingsError {
    /// An I/O error other than "does not exist" (a missing file is not an error).
    #[error("cannot read user settings {}: {message}: check that the file and its directories are readable", .path.display())]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The error kind.
        kind: io::ErrorKind,
        /// The operating system's description, lowercased.
        message: String,
    },
    /// A path component below the home directory is a symbolic link.
    #[error("user settings path {} is a symbolic link: replace the link with the real file or directory", .path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A path component is not what it should be (a directory, or a regular file at the end).
    #[error("user settings path {} is not a {expected}: replace it with a {expected}", .path.display())]
    WrongType {
        /// The offending path.
        path: PathBuf,
        /// `directory` or `regular file`.
        expected: &'static str,
    },
    /// The file (or a directory leading to it) belongs to someone else.
    #[error("user settings path {} is owned by uid {owner}, not by uid {uid}: chown it to the user", .path.display())]
    NotOwned {
        /// The offending path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user whose settings these are.
        uid: u32,
    },
    /// Other users could change the file.
    #[error("user settings file {} is writable by group or others: run `chmod go-w` on it", .path.display())]
    WritableByOthers {
        /// The file.
        path: PathBuf,
    },
    /// The file is over the size limit.
    #[error("user settings file {} is {size} bytes, over the {limit} byte limit: shrink it", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not a valid settings file.
    #[error("{0}")]
    Invalid(#[from] PolicyError),
}

impl UserSettingsError {
    pub(crate) fn io(path: &Path, err: &io::Error) -> Self {
        UserSettingsError::Io {
            path: path.to_owned(),
            kind: err.kind(),
            message: describe_io(err),
        }
    }
}

/// An I/O error in a lowercase, position-free phrase.
pub(crate) fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let text = err.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_one_line_per_error() {
        let d = |line, path: &str, message: &str| Diagnostic {
            file: "a.json".into(),
            line,
            column: 3,
            path: path.into(),
            message: message.into(),
        };
        let err = PolicyError::new(vec![d(1, "x", "bad"), d(2, "y.z", "worse")]);
        assert_eq!(
            err.to_string(),
            "a.json:1:3: x: bad\na.json:2:3: y.z: worse"
        );
        assert_eq!(err.errors().len(), 2);
        let file = PolicyError::file("b.json", "cannot read the file: permission denied".into());
        assert_eq!(
            file.to_string(),
            "b.json: cannot read the file: permission denied"
        );
    }

    #[test]
    fn io_errors_are_lowercase() {
        let err = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(describe_io(&err), "no such file or directory");
        let err = io::Error::other("Boom");
        assert_eq!(describe_io(&err), "boom");
    }
}
