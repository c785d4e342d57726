//! How a subcommand fails: an exit code and one sentence naming the cause and the fix.

/// A failed subcommand.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// Exit 1: a policy or a check failed.
    pub fn check(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 1 with nothing more to say: the command already printed the outcome (a denial
    /// from `policy explain`).
    pub fn check_silent() -> Self {
        Self {
            code: 1,
            message: String::new(),
        }
    }

    /// Exit 2: the command line is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit 3: the environment is not safe or not ready.
    pub fn unsafe_env(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
        }
    }
}
