//! How the binary reports a command that failed: a message, and a hint saying what to do.

use std::fmt;

use crate::Output;

/// An error written for the person at the terminal. Commands return it (inside an
/// `anyhow::Error`) when they know what went wrong and how to fix it; any other error is
/// printed with its chain of causes and no hint.
#[derive(Debug)]
pub(crate) struct Failure {
    /// A stable `snake_case` code for `--output json` (the API's codes pass through).
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints a failed command's error: `error: …` and `  hint: …` on stderr, or with
/// `--output json` the API's error shape `{"error": {"code", "message", "hint"}}` on stdout.
pub(crate) fn report(error: &anyhow::Error, output: Output) {
    let (code, message, hint) = match error.downcast_ref::<Failure>() {
        Some(failure) => (
            failure.code.clone(),
            failure.message.clone(),
            failure.hint.clone(),
        ),
        None => ("error".to_owned(), format!("{error:#}"), None),
    };
    match output {
        Output::Text => {
            eprintln!("error: {message}");
            if let Some(hint) = hint {
                eprintln!("  hint: {hint}");
            }
        }
        Output::Json => {
            let body = serde_json::json!({
                "error": { "code": code, "message": message, "hint": hint }
            });
            println!("{body:#}");
        }
    }
}
