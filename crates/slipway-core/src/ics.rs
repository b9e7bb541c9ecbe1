//! The part of iCalendar (RFC 5545) that holiday and absence calendars use: events with a start,
//! an end and an optional yearly, monthly, weekly or daily recurrence.
//!
//! Our own small reader rather than a crate: the Rust iCalendar crates either stop at the
//! lexical layer or bring chrono and a second time zone database, and slipway resolves every
//! time with jiff. What is understood is listed in `docs/schedule.md`; anything a calendar says
//! that would change *when* an event happens and that we do not understand (an `RRULE` part such
//! as `BYSETPOS`, an unknown time zone) is an error naming its line, never silently ignored.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::time::Time;

/// The largest `INTERVAL` of a recurrence rule slipway accepts.
const MAX_INTERVAL: u32 = 1000;

/// A parsed calendar file: its events, in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    pub events: Vec<CalendarEvent>,
}

/// One `VEVENT`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalendarEvent {
    /// Line of its `BEGIN:VEVENT`, for messages.
    pub line: usize,
    pub summary: Option<String>,
    /// Each `ATTENDEE`: its `CN`, else its address without `mailto:`.
    pub attendees: Vec<String>,
    pub start: EventTime,
    /// Exclusive. For an all-day event without `DTEND`, the next day.
    pub end: EventTime,
    pub recurrence: Option<Recurrence>,
    /// `EXDATE`: starts of occurrences that do not happen.
    pub exceptions: Vec<EventTime>,
}

/// A `DTSTART`, `DTEND` or `EXDATE` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTime {
    /// `VALUE=DATE`: a whole day, in the time zone of whoever reads the calendar.
    Date(Date),
    /// A local time without zone ("floating"), also read in the reader's time zone.
    Floating(DateTime),
    /// `TZID=America/New_York:20261224T090000`.
    Zoned { local: DateTime, zone: String },
    /// `20261224T140000Z`, kept as the UTC clock reading.
    Utc(DateTime),
}

impl EventTime {
    /// The instant this is, reading dates and floating times in `zone`. A local time skipped or
    /// repeated by a daylight-saving change is resolved the way RFC 5545 says (jiff's
    /// "compatible" rule): a skipped time moves forward by the gap, a repeated one is the first.
    pub fn instant(&self, zone: &TimeZone) -> Time {
        let resolve =
            |local: DateTime, zone: &TimeZone| crate::schedule::local_instant(zone, local);
        match self {
            EventTime::Date(date) => resolve(date.to_datetime(jiff::civil::Time::midnight()), zone),
            EventTime::Floating(local) => resolve(*local, zone),
            EventTime::Zoned { local, zone: name } => {
                let own = TimeZone::get(name).unwrap_or(TimeZone::UTC);
                resolve(*local, &own)
            }
            EventTime::Utc(local) => resolve(*local, &TimeZone::UTC),
        }
    }

    /// Its calendar date (in its own frame: the zone it names, UTC, or as written).
    pub fn date(&self) -> Date {
        match self {
            EventTime::Date(date) => *date,
            EventTime::Floating(local) | EventTime::Utc(local) => local.date(),
            EventTime::Zoned { local, .. } => local.date(),
        }
    }

    /// The same kind of value `days` calendar days later (the wall-clock time kept).
    fn shifted(&self, days: i64) -> EventTime {
        let shift_date = |date: Date| {
            date.checked_add(jiff::Span::new().days(days))
                .unwrap_or(date)
        };
        let shift = |local: DateTime| local.with().date(shift_date(local.date())).build();
        match self {
            EventTime::Date(date) => EventTime::Date(shift_date(*date)),
            EventTime::Floating(local) => EventTime::Floating(shift(*local).unwrap_or(*local)),
            EventTime::Zoned { local, zone } => EventTime::Zoned {
                local: shift(*local).unwrap_or(*local),
                zone: zone.clone(),
            },
            EventTime::Utc(local) => EventTime::Utc(shift(*local).unwrap_or(*local)),
        }
    }
}

/// How often an event repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// An `RRULE`, restricted to the parts slipway understands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub frequency: Frequency,
    /// Every `interval` days, weeks, months or years (at least 1).
    pub interval: u32,
    /// At most this many occurrences, the first one included.
    pub count: Option<u32>,
    /// No occurrence starts after this.
    pub until: Option<EventTime>,
    /// `BYMONTH`, 1 to 12.
    pub by_month: Vec<i8>,
    /// `BYMONTHDAY`, 1 to 31 or -31 to -1 (from the end of the month).
    pub by_month_day: Vec<i8>,
    /// `BYDAY`: a weekday (Monday = 0) and an optional position in the month (`4TH`, `-1MO`),
    /// 0 meaning every such weekday.
    pub by_day: Vec<(i8, u8)>,
}

/// One occurrence of an event.
#[derive(Clone, Debug)]
pub struct Occurrence<'c> {
    pub start: Time,
    /// Exclusive.
    pub end: Time,
    pub event: &'c CalendarEvent,
}

/// What is wrong in a calendar file: a line and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IcsError {
    /// 1-based line of the (first physical line of the) property.
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Periods looked at before a rule is given up as runaway (a daily rule over 270 years).
const MAX_PERIODS: u32 = 100_000;

impl Calendar {
    /// Reads the text of an `.ics` file.
    pub fn parse(text: &str) -> Result<Calendar, IcsError> {
        let lines = unfold(text);
        let mut events = Vec::new();
        // Components open around the current line, innermost last.
        let mut open: Vec<(String, usize)> = Vec::new();
        let mut event: Option<EventBuilder> = None;
        let mut seen_calendar = false;
        for (line, content) in &lines {
            let line = *line;
            if content.trim().is_empty() {
                continue;
            }
            let property = Property::parse(content, line)?;
            match property.name.as_str() {
                "BEGIN" => {
                    let component = property.value.trim().to_ascii_uppercase();
                    if component == "VCALENDAR" {
                        seen_calendar = true;
                    } else if !seen_calendar {
                        return Err(not_a_calendar(line));
                    }
                    if component == "VEVENT" && open.last().is_some_and(|(c, _)| c == "VCALENDAR") {
                        event = Some(EventBuilder::new(line));
                    }
                    open.push((component, line));
                }
                "END" => {
                    let component = property.value.trim().to_ascii_uppercase();
                    match open.pop() {
                        Some((opened, _)) if opened == component => {}
                        Some((opened, opened_at)) => {
                            return Err(IcsError {
                                line,
                                message: format!(
                                    "END:{component} closes BEGIN:{opened} of line {opened_at}"
                                ),
                                hint: Some(format!("add END:{opened} before this line")),
                            });
                        }
                        None => {
                            return Err(IcsError {
                                line,
                                message: format!("END:{component} without a BEGIN"),
                                hint: None,
                            });
                        }
                    }
                    if component == "VEVENT"
                        && open.len() == 1
                        && let Some(builder) = event.take()
                        && let Some(built) = builder.build(line)?
                    {
                        events.push(built);
                    }
                }
                _ if !seen_calendar => return Err(not_a_calendar(line)),
                _ => {
                    // Properties of the event itself, not of an alarm inside it.
                    let in_event = open.len() == 2 && open[1].0 == "VEVENT";
                    if let (true, Some(builder)) = (in_event, event.as_mut()) {
                        builder.add(property)?;
                    }
                }
            }
        }
        if let Some((component, line)) = open.pop() {
            return Err(IcsError {
                line,
                message: format!("BEGIN:{component} is never closed"),
                hint: Some(format!("end the file with END:{component}")),
            });
        }
        if !seen_calendar {
            return Err(not_a_calendar(1));
        }
        Ok(Calendar { events })
    }

    /// Every occurrence of every event that overlaps `[from, to)`, in start order; dates and
    /// floating times are read in `zone`.
    pub fn occurrences(&self, zone: &TimeZone, from: Time, to: Time) -> Vec<Occurrence<'_>> {
        let mut found: Vec<Occurrence<'_>> = self
            .events
            .iter()
            .flat_map(|event| event.occurrences(zone, from, to))
            .collect();
        found.sort_by_key(|o| (o.start, o.end));
        found
    }
}

impl CalendarEvent {
    /// How messages name it: its summary, else its start.
    pub fn title(&self) -> String {
        match &self.summary {
            Some(summary) => summary.clone(),
            None => format!("event of line {}", self.line),
        }
    }

    /// The person away, for an absence: the first attendee, else the summary.
    pub fn person(&self) -> String {
        self.attendees
            .first()
            .cloned()
            .or_else(|| self.summary.clone())
            .unwrap_or_else(|| format!("someone (line {})", self.line))
    }

    /// The occurrences overlapping `[from, to)`.
    pub fn occurrences(&self, zone: &TimeZone, from: Time, to: Time) -> Vec<Occurrence<'_>> {
        let mut found = Vec::new();
        let mut push = |start: EventTime, end: EventTime| {
            let (start_at, end_at) = (start.instant(zone), end.instant(zone));
            let excluded = self.exceptions.iter().any(|exception| match exception {
                EventTime::Date(date) => *date == start.date(),
                other => other.instant(zone) == start_at,
            });
            if !excluded && start_at < to && end_at > from {
                found.push(Occurrence {
                    start: start_at,
                    end: end_at,
                    event: self,
                });
            }
        };
        let Some(rule) = &self.recurrence else {
            push(self.start.clone(), self.end.clone());
            return found;
        };
        let first = self.start.date();
        // No occurrence that starts after `to` matters; a day of slack covers every zone.
        let last_start = to.to_timestamp().to_zoned(TimeZone::UTC).date();
        let last_start = last_start.tomorrow().unwrap_or(last_start);
        let until = rule.until.as_ref();
        for date in rule.dates(first, last_start) {
            let days = (date - first).get_days();
            let start = self.start.shifted(i64::from(days));
            if let Some(until) = until {
                let after = match until {
                    EventTime::Date(last) => start.date() > *last,
                    other => start.instant(zone) > other.instant(zone),
                };
                if after {
                    break;
                }
            }
            push(start, self.end.shifted(i64::from(days)));
        }
        found
    }
}

impl Recurrence {
    /// The dates the rule gives from `first` (the event's own start, always included) up to
    /// `last`, in order, `COUNT` applied.
    fn dates(&self, first: Date, last: Date) -> Vec<Date> {
        let mut dates = vec![first];
        let limit = self.count.map_or(usize::MAX, |c| c as usize);
        let interval = i64::from(self.interval.max(1));
        'periods: for period in 0..i64::from(MAX_PERIODS) {
            let step = period * interval;
            let candidates = match self.frequency {
                Frequency::Yearly => {
                    let Some(year) = i64::from(first.year())
                        .checked_add(step)
                        .and_then(|y| i16::try_from(y).ok())
                        .filter(|y| *y <= 9999)
                    else {
                        break;
                    };
                    if year > last.year() {
                        break;
                    }
                    let months: Vec<i8> = if !self.by_month.is_empty() {
                        self.by_month.clone()
                    } else if !self.by_month_day.is_empty() || !self.by_day.is_empty() {
                        (1..=12).collect()
                    } else {
                        vec![first.month()]
                    };
                    months
                        .iter()
                        .flat_map(|month| self.days_of_month(year, *month, first.day()))
                        .collect::<Vec<_>>()
                }
                Frequency::Monthly => {
                    let index = i64::from(first.year()) * 12 + i64::from(first.month() - 1) + step;
                    let Ok(year) = i16::try_from(index.div_euclid(12)) else {
                        break;
                    };
                    if year > last.year() || year > 9999 {
                        break;
                    }
                    let month = i8::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
                    if !self.by_month.is_empty() && !self.by_month.contains(&month) {
                        continue;
                    }
                    self.days_of_month(year, month, first.day())
                }
                Frequency::Weekly => {
                    let monday = first
                        .checked_sub(
                            jiff::Span::new()
                                .days(i64::from(first.weekday().to_monday_zero_offset())),
                        )
                        .ok()
                        .and_then(|monday| monday.checked_add(jiff::Span::new().weeks(step)).ok());
                    let Some(monday) = monday else { break };
                    if monday > last {
                        break;
                    }
                    let weekdays: Vec<u8> = if self.by_day.is_empty() {
                        vec![u8::try_from(first.weekday().to_monday_zero_offset()).unwrap_or(0)]
                    } else {
                        self.by_day.iter().map(|(_, day)| *day).collect()
                    };
                    weekdays
                        .iter()
                        .filter_map(|day| {
                            monday
                                .checked_add(jiff::Span::new().days(i64::from(*day)))
                                .ok()
                        })
                        .filter(|date| {
                            self.by_month.is_empty() || self.by_month.contains(&date.month())
                        })
                        .collect()
                }
                Frequency::Daily => {
                    let Ok(date) = first.checked_add(jiff::Span::new().days(step)) else {
                        break;
                    };
                    if date > last {
                        break;
                    }
                    let keep = (self.by_month.is_empty() || self.by_month.contains(&date.month()))
                        && (self.by_month_day.is_empty()
                            || self
                                .by_month_day
                                .iter()
                                .any(|d| month_day(date.year(), date.month(), *d) == Some(date)))
                        && (self.by_day.is_empty()
                            || self
                                .by_day
                                .iter()
                                .any(|(_, day)| weekday_index(date) == *day));
                    if keep { vec![date] } else { Vec::new() }
                }
            };
            let mut candidates = candidates;
            candidates.sort();
            candidates.dedup();
            for date in candidates {
                if date <= first {
                    continue;
                }
                if date > last || dates.len() >= limit {
                    break 'periods;
                }
                dates.push(date);
            }
        }
        dates.truncate(limit.max(1));
        dates
    }

    /// The days of one month the rule picks: `BYMONTHDAY`, else `BYDAY`, else the start's day.
    fn days_of_month(&self, year: i16, month: i8, start_day: i8) -> Vec<Date> {
        if !self.by_month_day.is_empty() {
            return self
                .by_month_day
                .iter()
                .filter_map(|day| month_day(year, month, *day))
                .filter(|date| {
                    self.by_day.is_empty()
                        || self.by_day.iter().any(|(_, d)| weekday_index(*date) == *d)
                })
                .collect();
        }
        if !self.by_day.is_empty() {
            let Ok(first) = Date::new(year, month, 1) else {
                return Vec::new();
            };
            let days: Vec<Date> = (0..first.days_in_month())
                .filter_map(|offset| first.checked_add(jiff::Span::new().days(offset)).ok())
                .collect();
            let mut picked = Vec::new();
            for (position, weekday) in &self.by_day {
                let matching: Vec<Date> = days
                    .iter()
                    .copied()
                    .filter(|date| weekday_index(*date) == *weekday)
                    .collect();
                let chosen = match *position {
                    0 => matching,
                    n if n > 0 => matching.get(n as usize - 1).copied().into_iter().collect(),
                    n => matching
                        .len()
                        .checked_sub(n.unsigned_abs() as usize)
                        .and_then(|i| matching.get(i).copied())
                        .into_iter()
                        .collect(),
                };
                picked.extend(chosen);
            }
            return picked;
        }
        month_day(year, month, start_day).into_iter().collect()
    }
}

/// Day `day` of a month, counting from its end when negative; `None` when it has no such day.
fn month_day(year: i16, month: i8, day: i8) -> Option<Date> {
    let first = Date::new(year, month, 1).ok()?;
    let length = first.days_in_month();
    let day = if day < 0 { length + 1 + day } else { day };
    (1..=length)
        .contains(&day)
        .then(|| Date::new(year, month, day).ok())
        .flatten()
}

fn weekday_index(date: Date) -> u8 {
    u8::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0)
}

fn not_a_calendar(line: usize) -> IcsError {
    IcsError {
        line,
        message: "not an iCalendar file".to_owned(),
        hint: Some(
            "a calendar starts with BEGIN:VCALENDAR; export it from your calendar as .ics"
                .to_owned(),
        ),
    }
}

/// Logical lines with the number of their first physical line: a line that starts with a
/// space or a tab continues the previous one (RFC 5545 §3.1), without that character.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let raw = if index == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ => lines.push((index + 1, raw.to_owned())),
        }
    }
    lines
}

/// One content line: `NAME;PARAM=VALUE;…:VALUE`.
struct Property {
    line: usize,
    /// Upper case.
    name: String,
    /// Parameter names upper case, values unquoted.
    parameters: Vec<(String, String)>,
    value: String,
}

impl Property {
    fn parse(content: &str, line: usize) -> Result<Property, IcsError> {
        let malformed = || IcsError {
            line,
            message: format!("`{}` is not a calendar property", shorten(content)),
            hint: Some("each line is NAME:VALUE or NAME;PARAMETER=VALUE:VALUE".to_owned()),
        };
        let name_end = content.find([';', ':']).ok_or_else(malformed)?;
        let name = content[..name_end].trim().to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(malformed());
        }
        let mut parameters = Vec::new();
        let mut rest = &content[name_end..];
        while let Some(after) = rest.strip_prefix(';') {
            let equals = after.find('=').ok_or_else(malformed)?;
            let parameter = after[..equals].trim().to_ascii_uppercase();
            let mut value_text = &after[equals + 1..];
            let mut value = String::new();
            // Values are comma separated, each possibly quoted (a quoted one may hold : ; ,).
            loop {
                if let Some(quoted) = value_text.strip_prefix('"') {
                    let close = quoted.find('"').ok_or_else(malformed)?;
                    value.push_str(&quoted[..close]);
                    value_text = &quoted[close + 1..];
                } else {
                    let end = value_text.find([',', ';', ':']).ok_or_else(malformed)?;
                    value.push_str(&value_text[..end]);
                    value_text = &value_text[end..];
                }
                match value_text.strip_prefix(',') {
                    Some(more) => {
                        value.push(',');
                        value_text = more;
                    }
                    None => break,
                }
            }
            parameters.push((parameter, value));
            rest = value_text;
        }
        let value = rest.strip_prefix(':').ok_or_else(malformed)?;
        Ok(Property {
            line,
            name,
            parameters,
            value: value.to_owned(),
        })
    }

    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn error(&self, message: impl Into<String>, hint: impl Into<String>) -> IcsError {
        IcsError {
            line: self.line,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// TEXT values: `\n`, `\,`, `\;` and `\\` escapes.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A `VEVENT` while its properties are read.
struct EventBuilder {
    line: usize,
    summary: Option<String>,
    attendees: Vec<String>,
    start: Option<(EventTime, usize)>,
    end: Option<EventTime>,
    duration: Option<(jiff::Span, usize)>,
    recurrence: Option<Recurrence>,
    exceptions: Vec<EventTime>,
    cancelled: bool,
}

impl EventBuilder {
    fn new(line: usize) -> Self {
        Self {
            line,
            summary: None,
            attendees: Vec::new(),
            start: None,
            end: None,
            duration: None,
            recurrence: None,
            exceptions: Vec::new(),
            cancelled: false,
        }
    }

    fn add(&mut self, property: Property) -> Result<(), IcsError> {
        match property.name.as_str() {
            "SUMMARY" => self.summary = Some(unescape(property.value.trim())),
            "ATTENDEE" => {
                let name = match property.parameter("CN") {
                    Some(cn) if !cn.trim().is_empty() => cn.trim().to_owned(),
                    _ => {
                        let value = property.value.trim();
                        let address = value
                            .get(..7)
                            .filter(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
                            .map_or(value, |_| &value[7..]);
                        address.to_ascii_lowercase()
                    }
                };
                if !name.is_empty() {
                    self.attendees.push(name);
                }
            }
            "DTSTART" => self.start = Some((event_time(&property)?, property.line)),
            "DTEND" => self.end = Some(event_time(&property)?),
            "DURATION" => {
                self.duration = Some((duration(&property)?, property.line));
            }
            "RRULE" => self.recurrence = Some(recurrence(&property)?),
            "EXDATE" => {
                for value in property.value.split(',') {
                    let single = Property {
                        line: property.line,
                        name: property.name.clone(),
                        parameters: property.parameters.clone(),
                        value: value.to_owned(),
                    };
                    self.exceptions.push(event_time(&single)?);
                }
            }
            "RDATE" => {
                return Err(property.error(
                    "RDATE is not supported",
                    "write each extra date as an event of its own, or use an RRULE",
                ));
            }
            "STATUS" => self.cancelled = property.value.trim().eq_ignore_ascii_case("CANCELLED"),
            _ => {}
        }
        Ok(())
    }

    /// The event, or `None` when it was cancelled.
    fn build(self, end_line: usize) -> Result<Option<CalendarEvent>, IcsError> {
        if self.cancelled {
            return Ok(None);
        }
        let Some((start, start_line)) = self.start else {
            return Err(IcsError {
                line: self.line,
                message: format!("the event of lines {}-{end_line} has no DTSTART", self.line),
                hint: Some("add DTSTART;VALUE=DATE:YYYYMMDD for an all-day event".to_owned()),
            });
        };
        let end = match (self.end, self.duration) {
            (Some(end), _) => end,
            (None, Some((span, line))) => add_duration(&start, span).ok_or_else(|| IcsError {
                line,
                message: "the event ends beyond the calendar's range".to_owned(),
                hint: None,
            })?,
            // RFC 5545: an all-day event without an end lasts the day; a timed one, no time.
            (None, None) => match &start {
                EventTime::Date(date) => EventTime::Date(date.tomorrow().unwrap_or(*date)),
                other => other.clone(),
            },
        };
        let utc = TimeZone::UTC;
        if end.instant(&utc) < start.instant(&utc) && matches!(start, EventTime::Date(_)) {
            return Err(IcsError {
                line: start_line,
                message: "the event ends before it starts".to_owned(),
                hint: Some("DTEND is exclusive: an event on one day ends the next day".to_owned()),
            });
        }
        Ok(Some(CalendarEvent {
            line: self.line,
            summary: self.summary,
            attendees: self.attendees,
            start,
            end,
            recurrence: self.recurrence,
            exceptions: self.exceptions,
        }))
    }
}

/// `start` plus a `DURATION`: whole days as calendar days, the rest as clock time.
fn add_duration(start: &EventTime, span: jiff::Span) -> Option<EventTime> {
    let add = |local: DateTime| local.checked_add(span).ok();
    Some(match start {
        EventTime::Date(date) => {
            if span.get_hours() != 0 || span.get_minutes() != 0 || span.get_seconds() != 0 {
                EventTime::Floating(add(date.to_datetime(jiff::civil::Time::midnight()))?)
            } else {
                EventTime::Date(date.checked_add(span).ok()?)
            }
        }
        EventTime::Floating(local) => EventTime::Floating(add(*local)?),
        EventTime::Zoned { local, zone } => EventTime::Zoned {
            local: add(*local)?,
            zone: zone.clone(),
        },
        EventTime::Utc(local) => EventTime::Utc(add(*local)?),
    })
}

/// A `DTSTART`, `DTEND` or single `EXDATE` value: a DATE, a UTC DATE-TIME (`Z`), one with
/// `TZID`, or a floating one.
fn event_time(property: &Property) -> Result<EventTime, IcsError> {
    let value = property.value.trim();
    let is_date = property
        .parameter("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && !value.contains('T'));
    let bad = |what: &str, example: &str| {
        property.error(
            format!("`{value}` in {} is not {what}", property.name),
            format!("write {example}"),
        )
    };
    if is_date {
        return parse_date(value)
            .map(EventTime::Date)
            .ok_or_else(|| bad("a date", "a DATE as YYYYMMDD, e.g. 20261224"));
    }
    let (text, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(text) => (text, true),
        None => (value, false),
    };
    let local = parse_date_time(text).ok_or_else(|| {
        bad(
            "a date and time",
            "a DATE-TIME as YYYYMMDDTHHMMSS, e.g. 20261224T090000 (Z at the end for UTC)",
        )
    })?;
    if utc {
        return Ok(EventTime::Utc(local));
    }
    match property.parameter("TZID") {
        Some(tzid) => Ok(EventTime::Zoned {
            local,
            zone: zone_name(tzid).ok_or_else(|| {
                property.error(
                    format!("unknown time zone `{tzid}`"),
                    "use an IANA time zone name in TZID, e.g. TZID=America/New_York",
                )
            })?,
        }),
        None => Ok(EventTime::Floating(local)),
    }
}

/// The IANA name of a `TZID`, also when a producer prefixes it (`/mozilla.org/…/Europe/Berlin`).
fn zone_name(tzid: &str) -> Option<String> {
    let tzid = tzid.trim();
    let candidates =
        std::iter::once(tzid).chain(tzid.match_indices('/').map(|(index, _)| &tzid[index + 1..]));
    for candidate in candidates {
        if candidate.is_empty() {
            continue;
        }
        if let Ok(zone) = TimeZone::get(candidate) {
            return Some(zone.iana_name().unwrap_or(candidate).to_owned());
        }
    }
    None
}

fn parse_date(text: &str) -> Option<Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i16 = text[..4].parse().ok()?;
    let month: i8 = text[4..6].parse().ok()?;
    let day: i8 = text[6..8].parse().ok()?;
    Date::new(year, month, day).ok()
}

fn parse_date_time(text: &str) -> Option<DateTime> {
    let (date, time) = text.split_once(['T', 't'])?;
    let date = parse_date(date)?;
    if time.len() != 6 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hour: i8 = time[..2].parse().ok()?;
    let minute: i8 = time[2..4].parse().ok()?;
    // A leap second (60) is read as the last second of its minute.
    let second: i8 = time[4..6].parse::<i8>().ok()?.min(59);
    let time = jiff::civil::Time::new(hour, minute, second, 0).ok()?;
    Some(date.to_datetime(time))
}

/// A `DURATION` value: `P1D`, `PT8H`, `P1DT12H`, `P2W`.
fn duration(property: &Property) -> Result<jiff::Span, IcsError> {
    let value = property.value.trim();
    let bad = || {
        property.error(
            format!("`{value}` is not a duration"),
            "write an RFC 5545 duration such as P1D, PT8H or P1DT12H",
        )
    };
    let text = value.strip_prefix('+').unwrap_or(value);
    if text.starts_with('-') {
        return Err(property.error(
            format!("`{value}` is negative"),
            "an event's DURATION must be positive",
        ));
    }
    let text = text.strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let mut span = jiff::Span::new();
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in text.chars() {
        match c.to_ascii_uppercase() {
            'T' if number.is_empty() => in_time = true,
            digit if digit.is_ascii_digit() => number.push(digit),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                span = match (unit, in_time) {
                    ('W', false) => span.try_weeks(n),
                    ('D', false) => span.try_days(n),
                    ('H', true) => span.try_hours(n),
                    ('M', true) => span.try_minutes(n),
                    ('S', true) => span.try_seconds(n),
                    _ => return Err(bad()),
                }
                .map_err(|_| bad())?;
            }
        }
    }
    if !any || !number.is_empty() {
        return Err(bad());
    }
    // Weeks become days so dates can take them.
    let days = span.get_weeks() as i64 * 7 + span.get_days() as i64;
    span.weeks(0).try_days(days).map_err(|_| bad())
}

/// An `RRULE` value.
fn recurrence(property: &Property) -> Result<Recurrence, IcsError> {
    let mut frequency = None;
    let mut rule = Recurrence {
        frequency: Frequency::Yearly,
        interval: 1,
        count: None,
        until: None,
        by_month: Vec::new(),
        by_month_day: Vec::new(),
        by_day: Vec::new(),
    };
    let supported = "slipway understands FREQ=YEARLY, MONTHLY, WEEKLY or DAILY with INTERVAL, \
                     COUNT, UNTIL, BYMONTH, BYMONTHDAY and BYDAY";
    for part in property.value.trim().split(';').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            property.error(format!("`{part}` in RRULE is not KEY=VALUE"), supported)
        })?;
        let key = key.trim().to_ascii_uppercase();
        let value = value.trim();
        let bad = |what: &str| property.error(format!("{key}={value} in RRULE: {what}"), supported);
        let numbers = |low: i32, high: i32| -> Result<Vec<i8>, IcsError> {
            value
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n != 0 && (low..=high).contains(n))
                        .and_then(|n| i8::try_from(n).ok())
                        .ok_or_else(|| bad(&format!("`{n}` is not between {low} and {high}")))
                })
                .collect()
        };
        match key.as_str() {
            "FREQ" => {
                frequency = Some(match value.to_ascii_uppercase().as_str() {
                    "YEARLY" => Frequency::Yearly,
                    "MONTHLY" => Frequency::Monthly,
                    "WEEKLY" => Frequency::Weekly,
                    "DAILY" => Frequency::Daily,
                    _ => return Err(bad("this frequency is not supported")),
                });
            }
            "INTERVAL" => {
                // Bounded so that stepping by it can never overflow a date (jiff panics past
                // about 20,000 years): a thousand periods is beyond any real calendar.
                rule.interval = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_INTERVAL).contains(n))
                    .ok_or_else(|| bad("not a whole number from 1 to 1000"))?;
            }
            "COUNT" => {
                rule.count = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("not a whole number of at least 1"))?,
                );
            }
            "UNTIL" => {
                let until = Property {
                    line: property.line,
                    name: "UNTIL".to_owned(),
                    parameters: Vec::new(),
                    value: value.to_owned(),
                };
                rule.until = Some(event_time(&until)?);
            }
            "BYMONTH" => rule.by_month = numbers(1, 12)?,
            "BYMONTHDAY" => rule.by_month_day = numbers(-31, 31)?,
            "BYDAY" => {
                for item in value.split(',') {
                    let item = item.trim().to_ascii_uppercase();
                    let split = item.len().saturating_sub(2);
                    let (position, day) = item.split_at(split);
                    let day = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
                        .iter()
                        .position(|d| *d == day)
                        .and_then(|d| u8::try_from(d).ok())
                        .ok_or_else(|| bad(&format!("`{item}` is not a day such as MO or 4TH")))?;
                    let position = match position {
                        "" => 0,
                        text => text
                            .strip_prefix('+')
                            .unwrap_or(text)
                            .parse::<i8>()
                            .ok()
                            .filter(|n| *n != 0 && (-5..=5).contains(n))
                            .ok_or_else(|| {
                                bad(&format!(
                                    "`{item}`: a position in the month is 1 to 5 or -1 to -5"
                                ))
                            })?,
                    };
                    rule.by_day.push((position, day));
                }
            }
            // Only changes weekly rules with an interval above 1; weeks start on Monday here.
            "WKST" => {}
            _ => return Err(bad("not supported")),
        }
    }
    rule.frequency = frequency.ok_or_else(|| {
        property.error(
            "RRULE without FREQ",
            "start the rule with FREQ=YEARLY (or MONTHLY, WEEKLY, DAILY)",
        )
    })?;
    if rule.count.is_some() && rule.until.is_some() {
        return Err(property.error(
            "RRULE has both COUNT and UNTIL",
            "keep one of them (RFC 5545 allows only one)",
        ));
    }
    let positioned = rule.by_day.iter().any(|(position, _)| *position != 0);
    let positions_allowed = match rule.frequency {
        Frequency::Monthly => true,
        Frequency::Yearly => !rule.by_month.is_empty(),
        Frequency::Weekly | Frequency::Daily => false,
    };
    if positioned && !positions_allowed {
        return Err(property.error(
            "a position in BYDAY (like 4TH) needs FREQ=MONTHLY, or FREQ=YEARLY with BYMONTH",
            "e.g. RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH for the fourth Thursday of November",
        ));
    }
    Ok(rule)
}
