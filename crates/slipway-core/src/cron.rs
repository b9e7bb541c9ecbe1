//! Cron expressions of release-train schedules (`[[service.train]]`, `docs/releases.md`): the
//! five classic fields read in a time zone, and the next time an expression fires.
//!
//! Our own small parser rather than a crate: the cron crates compute in chrono's zones, and
//! slipway reads every zone with jiff (windows and freezes too), so one zone database decides.
//!
//! Daylight saving time, as most crons do it: a local time that does not exist (02:30 on the
//! spring-forward night) fires when the clocks have jumped, at the same distance past the gap
//! (03:30); a local time that happens twice (01:30 on the fall-back night) fires once, at the
//! first of the two.

use std::fmt;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{Disambiguation, TimeZone};

use crate::time::Time;

/// A parsed expression: `minute hour day-of-month month day-of-week`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether day-of-month / day-of-week were `*`: when both are restricted, a day matching
    /// either fires (the classic rule).
    any_day: bool,
    any_weekday: bool,
}

/// Why an expression cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The most days [`Cron::next_after`] looks ahead: `0 0 29 2 *` fires within 8 years.
const HORIZON_DAYS: i64 = 366 * 9;

impl Cron {
    /// Reads `0 9 * * 2`, `*/15 8-18 * * mon-fri`, `30 6 1,15 * *`, with month and weekday
    /// names (`jan`, `tue`) and weekday 7 for Sunday.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(CronError(format!(
                "`{text}` has {} fields; a cron expression has five: minute hour \
                 day-of-month month day-of-week",
                fields.len()
            )));
        };
        let minutes = field(minute, "minute", 0, 59, &[])?;
        let hours = field(hour, "hour", 0, 23, &[])?;
        let days = field(day, "day of month", 1, 31, &[])?;
        let months = field(month, "month", 1, 12, &MONTHS)?;
        let mut weekdays = field(weekday, "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Cron {
            text: fields.join(" "),
            minutes,
            hours: u32::try_from(hours).unwrap_or(u32::MAX),
            days: u32::try_from(days).unwrap_or(u32::MAX),
            months: u16::try_from(months).unwrap_or(u16::MAX),
            weekdays: u8::try_from(weekdays).unwrap_or(u8::MAX),
            any_day: *day == "*",
            any_weekday: *weekday == "*",
        })
    }

    /// The expression as written (fields separated by one space).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn fires_on(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << weekday_number(date.weekday())) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            _ => day && weekday,
        }
    }

    /// The first time after `after` (strictly) that the expression fires in `zone`; `None`
    /// when it never does (`0 0 31 2 *`).
    pub fn next_after(&self, after: Time, zone: &TimeZone) -> Option<Time> {
        let after = after.to_timestamp();
        // From the local day before, so a time pushed forward by a gap is not missed.
        let start = after.to_zoned(zone.clone()).date().yesterday().ok()?;
        let mut date = start;
        for _ in 0..HORIZON_DAYS {
            if self.fires_on(date) {
                for hour in 0..24i8 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let local = DateTime::new(
                            date.year(),
                            date.month(),
                            date.day(),
                            hour,
                            minute,
                            0,
                            0,
                        )
                        .ok()?;
                        let instant = zone
                            .to_ambiguous_timestamp(local)
                            .disambiguate(Disambiguation::Compatible)
                            .ok()?;
                        if instant > after {
                            return Some(Time::from_timestamp(instant));
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The newest time the expression fired in `(after, until]`, if any: what a scheduler that
    /// was down from `after` to `until` still owes (older ones are not caught up).
    pub fn latest_in(&self, after: Time, until: Time, zone: &TimeZone) -> Option<Time> {
        // The last eight days first, so a long gap is not walked fire by fire.
        let recent = Time::from_millis(until.as_millis().saturating_sub(8 * 86_400_000)).max(after);
        for start in [recent, after] {
            let mut latest = None;
            let mut cursor = start;
            for _ in 0..100_000 {
                match self.next_after(cursor, zone) {
                    Some(next) if next <= until => {
                        latest = Some(next);
                        cursor = next;
                    }
                    _ => break,
                }
            }
            if latest.is_some() || start == after {
                return latest;
            }
        }
        None
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn weekday_number(weekday: Weekday) -> u8 {
    u8::try_from(weekday.to_sunday_zero_offset()).unwrap_or(0)
}

/// One field as a bit set of the values it allows.
fn field(text: &str, name: &str, low: u32, high: u32, names: &[&str]) -> Result<u64, CronError> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    CronError(format!("the {name} step `{step}` is not a positive number"))
                })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, name, low, high, names)?,
                value(b, name, low, high, names)?,
            )
        } else {
            let single = value(range, name, low, high, names)?;
            // `5/15` means from 5 to the end, every 15.
            (single, if part.contains('/') { high } else { single })
        };
        if from > to {
            return Err(CronError(format!(
                "the {name} range `{range}` runs backwards"
            )));
        }
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn value(text: &str, name: &str, low: u32, high: u32, names: &[&str]) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, weekday names from 0.
        let offset = if names.len() == 12 { 1 } else { 0 };
        return Ok(u32::try_from(index).unwrap_or(0) + offset);
    }
    match text.parse::<u32>() {
        Ok(v) if (low..=high).contains(&v) => Ok(v),
        _ => Err(CronError(format!(
            "`{text}` is not a {name} ({low} to {high}{})",
            if names.is_empty() {
                String::new()
            } else {
                format!(" or {} to {}", names[0], names[names.len() - 1])
            }
        ))),
    }
}
