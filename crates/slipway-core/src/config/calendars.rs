//! Attaching calendar files to a parsed [`Config`]: the core cannot read files, so the caller
//! lists them ([`Config::calendar_files`]), reads them, and hands the texts back
//! ([`Config::attach_calendars`]), which parses them or reports every problem with its file and
//! line.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use super::model::{CalendarFile, Config};
use crate::ics::Calendar;

impl Config {
    /// Every calendar file the environments name (holiday calendars, staffing calendars), each
    /// path once, where it is first written. Paths are as written: relative ones are relative to
    /// the config file's directory.
    pub fn calendar_files(&self) -> Vec<CalendarFile> {
        let mut files: Vec<CalendarFile> = Vec::new();
        for environment in &self.environments {
            let policy = &environment.policy;
            let named = policy
                .freeze_calendars
                .iter()
                .chain(policy.staffing.as_ref().map(|s| &s.calendar));
            for file in named {
                if !files.iter().any(|f| f.path == file.path) {
                    files.push(file.clone());
                }
            }
        }
        files
    }

    /// Parses the calendar files' texts into [`Config::calendars`]. `config_file` is the config
    /// file's name as shown in messages; `texts` maps each path of
    /// [`Config::calendar_files`] to its text, or to why it could not be read (a missing entry
    /// counts as unread). Every problem is reported: an unreadable file at the place in the
    /// config that names it, a malformed one at its own line.
    pub fn attach_calendars(
        &mut self,
        config_file: &str,
        texts: &BTreeMap<String, Result<String, String>>,
    ) -> Result<(), ConfigErrors> {
        let directory = Path::new(config_file).parent();
        let mut errors = Vec::new();
        let mut calendars = BTreeMap::new();
        for file in self.calendar_files() {
            let shown = match directory {
                Some(dir) if !dir.as_os_str().is_empty() && Path::new(&file.path).is_relative() => {
                    dir.join(&file.path).display().to_string()
                }
                _ => file.path.clone(),
            };
            let text = match texts.get(&file.path) {
                Some(Ok(text)) => text,
                unread => {
                    let why = match unread {
                        Some(Err(why)) => why.clone(),
                        _ => "not read".to_owned(),
                    };
                    errors.push(ConfigError {
                        file: config_file.to_owned(),
                        line: file.line,
                        column: file.column,
                        kind: ConfigErrorKind::InvalidValue,
                        message: format!("cannot read calendar `{}` ({shown}): {why}", file.path),
                        hint: Some(
                            "check the path: it is relative to the directory of the config \
                             file; export the calendar as an .ics file there"
                                .to_owned(),
                        ),
                    });
                    continue;
                }
            };
            match Calendar::parse(text) {
                Ok(calendar) => {
                    calendars.insert(file.path.clone(), calendar);
                }
                Err(error) => errors.push(ConfigError {
                    file: shown,
                    line: error.line,
                    column: 1,
                    kind: ConfigErrorKind::InvalidValue,
                    message: error.message,
                    hint: error.hint,
                }),
            }
        }
        if errors.is_empty() {
            self.calendars = calendars;
            Ok(())
        } else {
            Err(ConfigErrors { errors })
        }
    }
}
