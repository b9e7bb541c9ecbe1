//! The small languages inside `slipway.toml` strings: durations (`15m`), percentages (`10%`),
//! thresholds (`1%`, `500ms`), deploy windows (`mon-thu 09:00-16:00 America/New_York`) and
//! freezes (`fri`, `2026-12-21..2027-01-04 winter break`).
//!
//! Each parser takes the string alone and says what is wrong with it; the caller adds the file
//! position and which key it was.

use crate::time::Span;

use super::model::{Freeze, FreezeKind, Threshold, Window};
use super::suggest;

/// What is wrong with a value, before it gets a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

pub(crate) const DURATION_HINT: &str =
    "write a number and a unit (ms, s, m, h, d) without spaces, e.g. \"15m\" or \"1h30m\"";

/// A duration in the compact form `Span::parse` accepts; the hint rewrites longer spellings.
pub(crate) fn duration(text: &str) -> Result<Span, Problem> {
    Span::parse(text).map_err(|_| {
        let problem = Problem::new(format!("\"{text}\" is not a duration"));
        match Span::parse_lenient(text) {
            Some(span) => problem.hint(format!("write `{span}`")),
            None => problem.hint(DURATION_HINT),
        }
    })
}

/// A percentage from 0% to 100% with at most two decimals, in basis points (`"10%"` → 1000).
pub(crate) fn percent_basis_points(text: &str) -> Result<u32, Problem> {
    let trimmed = text.trim();
    let Some(number) = trimmed.strip_suffix('%') else {
        let problem = Problem::new(format!("\"{text}\" is not a percentage"));
        return Err(if trimmed.parse::<f64>().is_ok() {
            problem.hint(format!("write `\"{trimmed}%\"`"))
        } else {
            problem.hint("write a percentage like \"10%\"")
        });
    };
    let number = number.trim_end();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err(Problem::new(format!("\"{text}\" is not a percentage"))
            .hint("write a percentage like \"10%\" or \"0.5%\""));
    }
    if fraction.len() > 2 {
        return Err(
            Problem::new(format!("\"{text}\" is more precise than slipway can use"))
                .hint("use at most two decimals, e.g. \"0.25%\""),
        );
    }
    let whole: u64 = whole.parse().unwrap_or(u64::MAX);
    let fraction: u64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    let basis_points = whole.saturating_mul(100).saturating_add(fraction);
    if basis_points > 10_000 {
        return Err(Problem::new(format!("\"{text}\" is more than 100%")));
    }
    Ok(u32::try_from(basis_points).unwrap_or(u32::MAX))
}

/// A threshold written as a string: a ratio (`"1%"`), or a duration (`"500ms"`, `"2s"`).
/// Plain numbers are written as TOML numbers and never reach this function.
pub(crate) fn threshold(text: &str) -> Result<Threshold, Problem> {
    let trimmed = text.trim();
    if let Some(number) = trimmed.strip_suffix('%') {
        return match number.trim_end().parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Ok(Threshold::Ratio(value / 100.0)),
            _ => Err(Problem::new(format!("\"{text}\" is not a percentage"))
                .hint("write a percentage like \"1%\" or \"0.5%\"")),
        };
    }
    if let Ok(span) = Span::parse(trimmed) {
        // Spans are milliseconds; as f64 they stay exact far beyond any sensible threshold.
        return Ok(Threshold::Millis(span.as_millis() as f64));
    }
    let problem = Problem::new(format!("\"{text}\" is not a threshold"));
    if trimmed.parse::<f64>().is_ok() {
        return Err(problem.hint(format!("write plain numbers without quotes: {trimmed}")));
    }
    if let Some(span) = Span::parse_lenient(trimmed) {
        return Err(problem.hint(format!("write `{span}`")));
    }
    Err(problem.hint(
        "use a percentage like \"1%\", a duration like \"500ms\", or a plain number like 0.5",
    ))
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const DAYS_HINT: &str = "write days as mon, tue, wed, thu, fri, sat, sun, ranges like mon-thu, \
                         or lists like mon,wed";

fn day(text: &str) -> Result<u8, Problem> {
    let lower = text.trim().to_ascii_lowercase();
    let position = DAY_NAMES
        .iter()
        .position(|d| *d == lower)
        .or_else(|| FULL_DAY_NAMES.iter().position(|d| *d == lower));
    match position {
        Some(index) => Ok(u8::try_from(index).unwrap_or(0)),
        None => {
            let problem = Problem::new(format!("`{text}` is not a day of the week"));
            Err(
                match suggest::closest(&lower, DAY_NAMES.into_iter().chain(FULL_DAY_NAMES)) {
                    Some(near) => {
                        let index = DAY_NAMES
                            .iter()
                            .chain(FULL_DAY_NAMES.iter())
                            .position(|d| *d == near)
                            .unwrap_or(0);
                        problem.hint(format!("did you mean `{}`?", DAY_NAMES[index % 7]))
                    }
                    None => problem.hint(DAYS_HINT),
                },
            )
        }
    }
}

/// Days of the week: `mon`, `sat-sun`, `mon,wed`, `mon-wed,fri`. A range may wrap around the
/// week (`fri-mon`). Returns sorted, distinct days, Monday = 0.
pub(crate) fn days(text: &str) -> Result<Vec<u8>, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::new("no days given").hint(DAYS_HINT));
    }
    let mut days = Vec::new();
    for item in text.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let mut d = first;
                loop {
                    days.push(d);
                    if d == last {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days.push(day(item)?),
        }
    }
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

/// `HH:MM` as minutes since midnight; `24:00` is allowed as an end.
fn clock(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.is_empty()
        || hours.len() > 2
        || minutes.len() != 2
        || !hours
            .bytes()
            .chain(minutes.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 24 * 60).then_some(total)
}

const WINDOW_EXAMPLE: &str = "\"mon-thu 09:00-16:00 America/New_York\"";

/// A weekly deploy window: `DAYS HH:MM-HH:MM TIME_ZONE`.
pub(crate) fn window(text: &str) -> Result<Window, Problem> {
    let mut parts = text.split_whitespace();
    let (Some(days_text), Some(times_text)) = (parts.next(), parts.next()) else {
        return Err(
            Problem::new(format!("\"{text}\" is not a deploy window")).hint(format!(
                "write days, hours and a time zone, e.g. {WINDOW_EXAMPLE}"
            )),
        );
    };
    let zone_text = parts.collect::<Vec<_>>().join(" ");
    let days = days(days_text)?;
    let bad_times = || {
        Problem::new(format!("`{times_text}` is not a time range")).hint(format!(
            "write hours as HH:MM-HH:MM on a 24-hour clock, e.g. {WINDOW_EXAMPLE}"
        ))
    };
    let (start, end) = times_text.split_once('-').ok_or_else(bad_times)?;
    let (start_minute, end_minute) = match (clock(start), clock(end)) {
        (Some(start), Some(end)) if start < 24 * 60 => (start, end),
        _ => return Err(bad_times()),
    };
    if start_minute >= end_minute {
        return Err(
            Problem::new(format!("`{times_text}` ends before it starts")).hint(
                "a window cannot cross midnight: split it in two, e.g. \"mon 22:00-24:00 UTC\" \
                 and \"tue 00:00-02:00 UTC\"",
            ),
        );
    }
    if zone_text.is_empty() {
        return Err(
            Problem::new(format!("\"{text}\" has no time zone")).hint(format!(
                "add an IANA time zone, e.g. \"{days_text} {times_text} UTC\""
            )),
        );
    }
    let time_zone = time_zone(&zone_text)?;
    Ok(Window {
        text: text.to_owned(),
        days,
        start_minute,
        end_minute,
        time_zone,
    })
}

/// An IANA time zone name, returned in its canonical spelling (`america/new_york` →
/// `America/New_York`).
pub(crate) fn time_zone(text: &str) -> Result<String, Problem> {
    match jiff::tz::TimeZone::get(text) {
        Ok(zone) => Ok(zone.iana_name().unwrap_or(text).to_owned()),
        Err(_) => {
            let problem = Problem::new(format!("unknown time zone `{text}`"));
            Err(match suggest::closest_time_zone(text) {
                Some(near) => problem.hint(format!("did you mean `{near}`?")),
                None => problem.hint(
                    "use an IANA time zone name such as `America/New_York`, `Europe/Berlin` or `UTC`",
                ),
            })
        }
    }
}

fn date(text: &str) -> Result<jiff::civil::Date, Problem> {
    let looks_like_a_date = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let bad = || Problem::new(format!("`{text}` is not a date"));
    if !looks_like_a_date {
        return Err(bad().hint("write dates as YYYY-MM-DD, e.g. 2026-12-21"));
    }
    text.parse::<jiff::civil::Date>()
        .map_err(|_| bad().hint("that day does not exist in the calendar"))
}

/// A freeze: days of the week (`fri`, `sat-sun`) or a date range (`2026-12-21..2027-01-04`)
/// or one date, then optionally a reason (`winter break`).
pub(crate) fn freeze(text: &str) -> Result<Freeze, Problem> {
    let trimmed = text.trim();
    let (first_word, reason) = match trimmed.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, Some(rest.trim().to_owned())),
        None => (trimmed, None),
    };
    if first_word.is_empty() {
        return Err(Problem::new("empty freeze").hint(
            "write days (\"fri\", \"sat-sun\") or dates (\"2026-12-21..2027-01-04 winter break\")",
        ));
    }
    let starts_with_digit = first_word.starts_with(|c: char| c.is_ascii_digit());
    let kind = if starts_with_digit || first_word.contains("..") {
        let (first, last) = first_word
            .split_once("..")
            .unwrap_or((first_word, first_word));
        let (first_date, last_date) = (date(first)?, date(last)?);
        if first_date > last_date {
            return Err(
                Problem::new(format!("`{first_word}` ends before it starts"))
                    .hint(format!("write the earlier date first: `{last}..{first}`")),
            );
        }
        FreezeKind::Dates {
            first: first_date.to_string(),
            last: last_date.to_string(),
        }
    } else {
        FreezeKind::Weekdays(days(first_word).map_err(|problem| {
            if problem.hint.as_deref() == Some(DAYS_HINT) {
                problem.hint(
                    "write days (\"fri\", \"sat-sun\") or dates (\"2026-12-21..2027-01-04 \
                     winter break\"), then an optional reason",
                )
            } else {
                problem
            }
        })?)
    };
    Ok(Freeze {
        text: text.to_owned(),
        kind,
        reason: reason.filter(|r| !r.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(percent_basis_points("10%"), Ok(1000));
        assert_eq!(percent_basis_points("0.5%"), Ok(50));
        assert_eq!(percent_basis_points("100%"), Ok(10_000));
        assert!(percent_basis_points("101%").is_err());
        assert!(percent_basis_points("10").is_err());
        assert!(percent_basis_points("-1%").is_err());
        assert!(percent_basis_points("0.125%").is_err());
    }

    #[test]
    fn day_lists_and_ranges_expand_including_wrapping_ranges() {
        assert_eq!(days("mon-thu"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(days("mon,wed"), Ok(vec![0, 2]));
        assert_eq!(days("fri-mon"), Ok(vec![0, 4, 5, 6]));
        assert_eq!(days("Sunday"), Ok(vec![6]));
        let error = days("thur").unwrap_err();
        assert_eq!(error.hint.as_deref(), Some("did you mean `thu`?"));
    }

    #[test]
    fn windows_read_days_hours_and_zone() {
        let window = window("mon-thu 09:00-16:00 america/new_york").unwrap();
        assert_eq!(window.days, vec![0, 1, 2, 3]);
        assert_eq!((window.start_minute, window.end_minute), (540, 960));
        assert_eq!(window.time_zone, "America/New_York");
        assert!(super::window("mon 16:00-09:00 UTC").is_err());
        assert!(super::window("mon 09:00-24:00 UTC").is_ok());
        assert!(super::window("mon 9:00-25:00 UTC").is_err());
    }

    #[test]
    fn freezes_read_days_or_dates_and_a_reason() {
        let freeze = freeze("2026-12-21..2027-01-04 winter break").unwrap();
        assert_eq!(
            freeze.kind,
            FreezeKind::Dates {
                first: "2026-12-21".into(),
                last: "2027-01-04".into()
            }
        );
        assert_eq!(freeze.reason.as_deref(), Some("winter break"));
        assert_eq!(
            super::freeze("fri").unwrap().kind,
            FreezeKind::Weekdays(vec![4])
        );
        assert!(super::freeze("2026-02-30").is_err());
        assert!(super::freeze("2027-01-04..2026-12-21").is_err());
    }
}
