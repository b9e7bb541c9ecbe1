//! What `parse_config` reports when a `slipway.toml` is wrong: every mistake at once, each with
//! its file, line and column and, where we can tell, how to fix it.

use std::fmt;

/// What kind of mistake a [`ConfigError`] is, for programs that react to it (the CLI's JSON
/// output, tests). People read the message and hint instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The text is not valid TOML; nothing else was checked.
    Syntax,
    /// A key that slipway does not know at that place (often a typo).
    UnknownKey,
    /// A key that must be present is missing.
    MissingKey,
    /// A value of the wrong TOML type, such as an integer where a duration string belongs.
    WrongType,
    /// A value of the right type that does not make sense (`"15 minutes"`, `count = 0`).
    InvalidValue,
    /// A name that must be unique appears twice (services, regions, pools).
    Duplicate,
}

impl ConfigErrorKind {
    /// A stable `snake_case` code, used as the `code` of the CLI's JSON output.
    pub fn code(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::UnknownKey => "unknown_key",
            Self::MissingKey => "missing_key",
            Self::WrongType => "wrong_type",
            Self::InvalidValue => "invalid_value",
            Self::Duplicate => "duplicate",
        }
    }
}

/// One mistake in a config file.
///
/// Displays as two lines when there is a hint:
/// ```text
/// error: slipway.toml:12:1: unknown key `bak` in [environment.prod]
///   hint: did you mean `bake`?
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to `parse_config`, used only in messages.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub kind: ConfigErrorKind,
    /// What is wrong, in one line, without the position.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every mistake found in one config file, in the order they appear in the file.
///
/// Never empty when returned by `parse_config`. Displays one error after another, one per line
/// (plus its hint line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
