//! When an environment may be deployed to: its weekly windows, its freezes (days of the week,
//! date ranges, holiday calendars) and its staffing rule, as one [`Schedule`].
//!
//! Every rule is turned into *closed intervals* (`Block`s) over a stretch of time; the
//! environment is open at an instant no block contains. The next open instant is therefore `now`
//! or the end of some block, so [`Schedule::next_open`] only tries those candidates — never a
//! minute-by-minute scan — within a bounded horizon ([`Schedule::HORIZON`]).
//!
//! Times of day are wall-clock times: a window `09:00-16:00 America/New_York` opens at 09:00 New
//! York time on both sides of a daylight-saving change. A local time the change skips moves
//! forward by the gap (a window starting at 02:30 on the spring-forward night opens at 03:30); a
//! repeated local time is its first occurrence (jiff's "compatible" rule, the one RFC 5545 uses).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::config::{Config, EnvironmentConfig, Freeze, FreezeKind, Window};
use crate::ics::Calendar;
use crate::time::{Span, Time};

/// The rules of one environment, with its calendars attached.
#[derive(Clone, Debug)]
pub struct Schedule {
    environment: String,
    zone: TimeZone,
    zone_name: String,
    windows: Vec<(Window, TimeZone)>,
    freezes: Vec<Freeze>,
    /// Holiday calendars by path as written.
    holidays: Vec<(String, Calendar)>,
    staffing: Option<StaffingRule>,
}

#[derive(Clone, Debug)]
struct StaffingRule {
    path: String,
    max_out: u32,
    team: Option<u32>,
    calendar: Calendar,
}

/// Why a schedule cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The environment is not in the config.
    #[error("unknown environment `{0}`")]
    UnknownEnvironment(String),
    /// A calendar the environment names was not attached to the config
    /// ([`Config::attach_calendars`]); the schedule would be wrong without it.
    #[error("calendar `{0}` was not loaded")]
    CalendarNotLoaded(String),
}

/// Why the environment is closed at some instant: one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Windows are configured and none is open.
    OutsideWindows { windows: Vec<String> },
    /// A freeze of the `freezes` list.
    Freeze {
        text: String,
        reason: Option<String>,
    },
    /// An event of a holiday calendar.
    Holiday { calendar: String, title: String },
    /// More people are out than the staffing rule allows.
    Staffing {
        calendar: String,
        out: Vec<String>,
        max_out: u32,
        team: Option<u32>,
    },
}

impl Reason {
    /// A short stable name of the rule kind: `window`, `freeze`, `holiday`, `staffing`.
    pub fn rule(&self) -> &'static str {
        match self {
            Reason::OutsideWindows { .. } => "window",
            Reason::Freeze { .. } => "freeze",
            Reason::Holiday { .. } => "holiday",
            Reason::Staffing { .. } => "staffing",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::OutsideWindows { windows } => {
                let plural = if windows.len() == 1 { "" } else { "s" };
                write!(
                    f,
                    "outside the deploy window{plural} {}",
                    windows.join(", ")
                )
            }
            Reason::Freeze { text, reason } => match reason {
                Some(reason) => write!(f, "frozen: {reason} (`{text}`)"),
                None => write!(f, "frozen: `{text}`"),
            },
            Reason::Holiday { calendar, title } => write!(f, "holiday: {title} ({calendar})"),
            Reason::Staffing {
                out, max_out, team, ..
            } => {
                let of = team.map(|t| format!(" of {t}")).unwrap_or_default();
                write!(
                    f,
                    "{}{of} people out ({}), more than the {max_out} allowed",
                    out.len(),
                    out.join(", ")
                )
            }
        }
    }
}

/// A stretch of time closed by one rule, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub start: Time,
    pub end: Time,
    pub reason: Reason,
}

/// Whether a deploy may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Every rule that closes it now, and when all of them next allow a deploy (`None`: not
    /// within [`Schedule::HORIZON`]).
    Closed {
        reasons: Vec<Reason>,
        until: Option<Time>,
    },
}

/// A stretch of time when every rule allows a deploy. `end` is `None` when it lasts past the
/// horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub start: Time,
    pub end: Option<Time>,
}

const DAY: Span = Span::from_secs(24 * 60 * 60);

impl Schedule {
    /// How far ahead [`Schedule::next_open`] and the listings look.
    pub const HORIZON: Span = Span::from_secs(366 * 24 * 60 * 60);

    /// The schedule of `environment` in `config`, with the calendars attached to `config`.
    pub fn for_environment(config: &Config, environment: &str) -> Result<Schedule, ScheduleError> {
        let env = config
            .environment(environment)
            .ok_or_else(|| ScheduleError::UnknownEnvironment(environment.to_owned()))?;
        Schedule::new(env, &config.calendars)
    }

    /// The schedule of one environment; `calendars` maps each path the policy names to its
    /// parsed calendar.
    pub fn new(
        environment: &EnvironmentConfig,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Result<Schedule, ScheduleError> {
        let policy = &environment.policy;
        let calendar = |path: &str| {
            calendars
                .get(path)
                .cloned()
                .ok_or_else(|| ScheduleError::CalendarNotLoaded(path.to_owned()))
        };
        let zone = TimeZone::get(&policy.time_zone).unwrap_or(TimeZone::UTC);
        let holidays = policy
            .freeze_calendars
            .iter()
            .map(|file| Ok((file.path.clone(), calendar(&file.path)?)))
            .collect::<Result<Vec<_>, ScheduleError>>()?;
        let staffing = match &policy.staffing {
            Some(staffing) => Some(StaffingRule {
                path: staffing.calendar.path.clone(),
                max_out: staffing.max_out,
                team: staffing.team,
                calendar: calendar(&staffing.calendar.path)?,
            }),
            None => None,
        };
        Ok(Schedule {
            environment: environment.name.clone(),
            zone,
            zone_name: policy.time_zone.clone(),
            windows: policy
                .windows
                .iter()
                .map(|w| {
                    let zone = TimeZone::get(&w.time_zone).unwrap_or(TimeZone::UTC);
                    (w.clone(), zone)
                })
                .collect(),
            freezes: policy.freezes.clone(),
            holidays,
            staffing,
        })
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The environment's time zone: where freezes by day and date, all-day holidays and
    /// absences are read.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    pub fn time_zone_name(&self) -> &str {
        &self.zone_name
    }

    /// An instant in the environment's zone and in UTC: `Mon 2026-03-09 09:00 EDT (13:00 UTC)`,
    /// with the UTC date too when it differs.
    pub fn describe(&self, time: Time) -> String {
        let local = time.to_timestamp().to_zoned(self.zone.clone());
        let utc = time.to_timestamp().to_zoned(TimeZone::UTC);
        let local_text = local.strftime("%a %Y-%m-%d %H:%M %Z").to_string();
        if self.zone_name == "UTC" {
            return local_text;
        }
        let utc_text = if utc.date() == local.date() {
            utc.strftime("%H:%M UTC").to_string()
        } else {
            utc.strftime("%a %Y-%m-%d %H:%M UTC").to_string()
        };
        format!("{local_text} ({utc_text})")
    }

    /// Whether any rule is configured at all.
    pub fn is_unrestricted(&self) -> bool {
        self.windows.is_empty()
            && self.freezes.is_empty()
            && self.holidays.is_empty()
            && self.staffing.is_none()
    }

    /// Whether a deploy may start at `now`, and if not, why and until when.
    pub fn gate(&self, now: Time) -> Gate {
        let reasons: Vec<Reason> = self
            .blocks(now, now.after(Span::from_millis(1)))
            .into_iter()
            .filter(|block| block.start <= now && now < block.end)
            .map(|block| block.reason)
            .fold(Vec::new(), |mut reasons, reason| {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
                reasons
            });
        if reasons.is_empty() {
            Gate::Open
        } else {
            Gate::Closed {
                reasons,
                until: self.next_open(now),
            }
        }
    }

    /// The first instant at or after `now` when every rule allows a deploy, within
    /// [`Schedule::HORIZON`].
    pub fn next_open(&self, now: Time) -> Option<Time> {
        let horizon = now.after(Self::HORIZON);
        let blocks = self.blocks(now, horizon);
        first_open(&blocks, now, horizon)
    }

    /// The open slots from `now` until `until` (at most `limit`), in order. The first starts at
    /// `now` when the environment is open now.
    pub fn slots(&self, now: Time, until: Time, limit: usize) -> Vec<Slot> {
        let horizon = now.after(Self::HORIZON);
        let until = until.min(horizon);
        // Blocks over the whole horizon, so a slot that starts before `until` gets its true end.
        let blocks = self.blocks(now, horizon);
        let mut slots = Vec::new();
        let mut from = now;
        while slots.len() < limit {
            let Some(start) = first_open(&blocks, from, until) else {
                break;
            };
            let end = blocks
                .iter()
                .filter(|block| block.start > start)
                .map(|block| block.start)
                .min()
                .filter(|end| *end < horizon);
            slots.push(Slot { start, end });
            match end {
                Some(end) => from = end,
                None => break,
            }
        }
        slots
    }

    /// The freezes, holidays and staffing shortfalls overlapping `[from, to)`, in start order
    /// (times outside the windows are not listed: the slots show them).
    pub fn closures(&self, from: Time, to: Time) -> Vec<Block> {
        // A week more on each side, so a run of frozen days is listed with its true ends.
        let week = Span::from_millis(DAY.as_millis() * 8);
        let earlier = Time(
            from.0
                .saturating_sub(i64::try_from(week.as_millis()).unwrap_or(0)),
        );
        let mut blocks: Vec<Block> = self
            .blocks(earlier, to.after(week))
            .into_iter()
            .filter(|block| !matches!(block.reason, Reason::OutsideWindows { .. }))
            .filter(|block| block.end > from && block.start < to)
            .collect();
        blocks.sort_by_key(|block| (block.start, block.end));
        blocks
    }

    /// The window open at `now`, if any.
    pub fn window_at(&self, now: Time) -> Option<&Window> {
        self.windows
            .iter()
            .find(|(window, zone)| {
                Self::window_intervals(window, zone, now, now.after(Span::from_millis(1)))
                    .iter()
                    .any(|(start, end)| *start <= now && now < *end)
            })
            .map(|(window, _)| window)
    }

    /// The people the staffing calendar has out at `now` (distinct, sorted), with the rule's
    /// limit and team size; `None` without a staffing rule.
    pub fn people_out(&self, now: Time) -> Option<(Vec<String>, u32, Option<u32>)> {
        let rule = self.staffing.as_ref()?;
        let people: BTreeSet<String> = rule
            .calendar
            .occurrences(&self.zone, now, now.after(Span::from_millis(1)))
            .iter()
            .filter(|o| o.start <= now && now < o.end)
            .map(|o| o.event.person())
            .collect();
        Some((dedup_people(people), rule.max_out, rule.team))
    }

    /// The windows as written.
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.iter().map(|(w, _)| w)
    }

    /// Every closed stretch overlapping `[from, to)` (stretches from window gaps may reach a
    /// few days beyond either end).
    fn blocks(&self, from: Time, to: Time) -> Vec<Block> {
        let mut blocks = Vec::new();
        self.window_gaps(from, to, &mut blocks);
        self.freeze_blocks(from, to, &mut blocks);
        for (path, calendar) in &self.holidays {
            for occurrence in calendar.occurrences(&self.zone, from, to) {
                if occurrence.end > occurrence.start {
                    blocks.push(Block {
                        start: occurrence.start,
                        end: occurrence.end,
                        reason: Reason::Holiday {
                            calendar: path.clone(),
                            title: occurrence.event.title(),
                        },
                    });
                }
            }
        }
        if let Some(rule) = &self.staffing {
            staffing_blocks(rule, &self.zone, from, to, &mut blocks);
        }
        blocks.sort_by_key(|block| (block.start, block.end));
        blocks
    }

    /// The open intervals of one window whose days touch `[from, to)`, widened by a day on each
    /// side so a window in a zone far from UTC is not missed.
    fn window_intervals(
        window: &Window,
        zone: &TimeZone,
        from: Time,
        to: Time,
    ) -> Vec<(Time, Time)> {
        let mut intervals = Vec::new();
        for date in local_dates(zone, from, to, 1) {
            let weekday = u8::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
            if !window.days.contains(&weekday) {
                continue;
            }
            let start = at_minute(zone, date, window.start_minute);
            let end = at_minute(zone, date, window.end_minute);
            if end > start {
                intervals.push((start, end));
            }
        }
        intervals
    }

    /// Outside every window: the gaps between the union of all windows' intervals, over
    /// `[from - 8 days, to + 8 days)` so a gap's true ends are found when the windows are
    /// sparse (one day a week).
    fn window_gaps(&self, from: Time, to: Time, blocks: &mut Vec<Block>) {
        if self.windows.is_empty() {
            return;
        }
        let margin = Span::from_millis(DAY.as_millis() * 8);
        let low = Time(
            from.0
                .saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(0)),
        );
        let high = to.after(margin);
        let mut intervals: Vec<(Time, Time)> = self
            .windows
            .iter()
            .flat_map(|(window, zone)| Self::window_intervals(window, zone, low, high))
            .collect();
        intervals.sort();
        let reason = Reason::OutsideWindows {
            windows: self.windows.iter().map(|(w, _)| w.text.clone()).collect(),
        };
        let mut cursor = low;
        for (start, end) in intervals {
            if start > cursor {
                blocks.push(Block {
                    start: cursor,
                    end: start,
                    reason: reason.clone(),
                });
            }
            cursor = cursor.max(end);
        }
        if cursor < high {
            blocks.push(Block {
                start: cursor,
                end: high,
                reason,
            });
        }
    }

    /// Freezes by weekday (whole local days) and by date range, in the environment's zone;
    /// consecutive frozen days of one freeze are one block.
    fn freeze_blocks(&self, from: Time, to: Time, blocks: &mut Vec<Block>) {
        for freeze in &self.freezes {
            let reason = Reason::Freeze {
                text: freeze.text.clone(),
                reason: freeze.reason.clone(),
            };
            let mut spans: Vec<(Time, Time)> = Vec::new();
            match &freeze.kind {
                FreezeKind::Weekdays(days) => {
                    for date in local_dates(&self.zone, from, to, 1) {
                        let weekday =
                            u8::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
                        if days.contains(&weekday) {
                            spans.push(day_span(&self.zone, date));
                        }
                    }
                }
                FreezeKind::Dates { first, last } => {
                    let (Ok(first), Ok(last)) = (first.parse::<Date>(), last.parse::<Date>())
                    else {
                        continue;
                    };
                    let start = day_span(&self.zone, first).0;
                    let end = day_span(&self.zone, last).1;
                    if start < to && end > from {
                        spans.push((start, end));
                    }
                }
            }
            let mut merged: Vec<(Time, Time)> = Vec::new();
            for (start, end) in spans {
                match merged.last_mut() {
                    Some(last) if last.1 >= start => last.1 = last.1.max(end),
                    _ => merged.push((start, end)),
                }
            }
            blocks.extend(merged.into_iter().map(|(start, end)| Block {
                start,
                end,
                reason: reason.clone(),
            }));
        }
    }
}

/// The first instant in `[from, horizon)` no block contains: `from` itself or a block's end.
fn first_open(blocks: &[Block], from: Time, horizon: Time) -> Option<Time> {
    let mut candidates: Vec<Time> = std::iter::once(from)
        .chain(blocks.iter().map(|b| b.end).filter(|end| *end > from))
        .filter(|t| *t < horizon)
        .collect();
    candidates.sort();
    candidates.dedup();
    candidates
        .into_iter()
        .find(|t| !blocks.iter().any(|b| b.start <= *t && *t < b.end))
}

/// Stretches when more than `max_out` distinct people are out: a sweep over the starts and
/// ends of every absence.
fn staffing_blocks(
    rule: &StaffingRule,
    zone: &TimeZone,
    from: Time,
    to: Time,
    blocks: &mut Vec<Block>,
) {
    let absences = rule.calendar.occurrences(zone, from, to);
    let mut edges: Vec<Time> = absences.iter().flat_map(|a| [a.start, a.end]).collect();
    edges.sort();
    edges.dedup();
    let mut previous: Option<Block> = None;
    for pair in edges.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let people: BTreeSet<String> = absences
            .iter()
            .filter(|a| a.start <= start && end <= a.end)
            .map(|a| a.event.person())
            .collect();
        let out = dedup_people(people);
        if out.len() as u64 <= u64::from(rule.max_out) {
            blocks.extend(previous.take());
            continue;
        }
        let reason = Reason::Staffing {
            calendar: rule.path.clone(),
            out,
            max_out: rule.max_out,
            team: rule.team,
        };
        match &mut previous {
            Some(block) if block.end == start && block.reason == reason => block.end = end,
            _ => {
                blocks.extend(previous.take());
                previous = Some(Block { start, end, reason });
            }
        }
    }
    blocks.extend(previous);
}

/// People named the same up to letter case are one person; the first spelling is kept.
fn dedup_people(people: BTreeSet<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    people
        .into_iter()
        .filter(|p| seen.insert(p.to_lowercase()))
        .collect()
}

/// Local dates in `zone` from the one holding `from` to the one holding `to`, widened by
/// `margin` days on each side.
fn local_dates(zone: &TimeZone, from: Time, to: Time, margin: i64) -> Vec<Date> {
    let date = |t: Time| t.to_timestamp().to_zoned(zone.clone()).date();
    let widen = |d: Date, days: i64| d.checked_add(jiff::Span::new().days(days)).unwrap_or(d);
    let (first, last) = (widen(date(from), -margin), widen(date(to), margin));
    let mut dates = Vec::new();
    let mut day = first;
    while day <= last {
        dates.push(day);
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    dates
}

/// The instant of `minute` minutes after midnight of `date` in `zone` (1440 is the next day's
/// midnight), by the compatible rule.
fn at_minute(zone: &TimeZone, date: Date, minute: u16) -> Time {
    let (date, minute) = if minute >= 24 * 60 {
        (date.tomorrow().unwrap_or(date), minute - 24 * 60)
    } else {
        (date, minute)
    };
    let hour = i8::try_from(minute / 60).unwrap_or(0);
    let minute = i8::try_from(minute % 60).unwrap_or(0);
    local_instant(zone, date.at(hour, minute, 0, 0))
}

/// A local time in `zone` as an instant, by the compatible rule.
pub fn local_instant(zone: &TimeZone, local: DateTime) -> Time {
    zone.to_ambiguous_timestamp(local)
        .compatible()
        .map(Time::from_timestamp)
        .unwrap_or(Time(i64::MAX))
}

/// The whole local day `date` in `zone`: from its first instant to the next day's.
fn day_span(zone: &TimeZone, date: Date) -> (Time, Time) {
    let next = date.tomorrow().unwrap_or(date);
    (at_minute(zone, date, 0), at_minute(zone, next, 0))
}
