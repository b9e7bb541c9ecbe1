//! Deploy windows, freezes, holiday calendars and the staffing rule: across time zones and
//! daylight-saving changes, in both hemispheres; `next_open`; the ICS reader; the config keys.

use std::collections::BTreeMap;

use slipway_core::config::{Config, parse_config};
use slipway_core::ics::Calendar;
use slipway_core::schedule::{Gate, Reason, Schedule, Slot};
use slipway_core::time::Time;

/// An instant written in RFC 3339 (`2026-03-09T13:00:00Z`).
fn at(text: &str) -> Time {
    Time::from_timestamp(text.parse().unwrap_or_else(|e| panic!("{text}: {e}")))
}

/// A config with one service and a `prod` environment whose body is `environment`, with
/// `calendars` (path → text) attached.
fn config(environment: &str, calendars: &[(&str, &str)]) -> Config {
    let text = format!(
        "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n\n[environment.prod]\n{environment}\n"
    );
    let mut config = parse_config("slipway.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let texts: BTreeMap<String, Result<String, String>> = calendars
        .iter()
        .map(|(path, text)| ((*path).to_owned(), Ok((*text).to_owned())))
        .collect();
    config
        .attach_calendars("slipway.toml", &texts)
        .unwrap_or_else(|e| panic!("{e}"));
    config
}

fn schedule(environment: &str, calendars: &[(&str, &str)]) -> Schedule {
    Schedule::for_environment(&config(environment, calendars), "prod").unwrap()
}

fn is_open(schedule: &Schedule, now: Time) -> bool {
    schedule.gate(now) == Gate::Open
}

fn reasons(schedule: &Schedule, now: Time) -> Vec<String> {
    match schedule.gate(now) {
        Gate::Open => Vec::new(),
        Gate::Closed { reasons, .. } => reasons.iter().map(ToString::to_string).collect(),
    }
}

/// Calendars use CRLF line ends; the tests write `\n` and convert.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn windows_open_at_local_wall_clock_time_across_zones_and_daylight_saving_changes() {
    // (window, instant, open?, why the row matters)
    let table = [
        // New York: EST (UTC-5) until 2026-03-08, EDT (UTC-4) until 2026-11-01.
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-05T14:00:00Z",
            true,
            "Thu 09:00 EST",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-05T13:59:00Z",
            false,
            "Thu 08:59 EST",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-09T13:00:00Z",
            true,
            "Mon 09:00 EDT, after spring forward",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-09T12:59:00Z",
            false,
            "Mon 08:59 EDT",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-09T19:59:00Z",
            true,
            "Mon 15:59 EDT",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-09T20:00:00Z",
            false,
            "Mon 16:00 EDT, end exclusive",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-10-29T13:00:00Z",
            true,
            "Thu 09:00 EDT",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-11-02T14:00:00Z",
            true,
            "Mon 09:00 EST, after fall back",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-11-02T13:30:00Z",
            false,
            "Mon 08:30 EST",
        ),
        (
            "mon-thu 09:00-16:00 America/New_York",
            "2026-03-06T15:00:00Z",
            false,
            "Friday",
        ),
        // Berlin: CET (UTC+1), CEST (UTC+2) from 2026-03-29 to 2026-10-25.
        (
            "mon-fri 10:00-12:00 Europe/Berlin",
            "2026-03-27T09:00:00Z",
            true,
            "Fri 10:00 CET",
        ),
        (
            "mon-fri 10:00-12:00 Europe/Berlin",
            "2026-03-30T08:00:00Z",
            true,
            "Mon 10:00 CEST",
        ),
        (
            "mon-fri 10:00-12:00 Europe/Berlin",
            "2026-03-30T10:00:00Z",
            false,
            "Mon 12:00 CEST",
        ),
        (
            "mon-fri 10:00-12:00 Europe/Berlin",
            "2026-10-26T09:00:00Z",
            true,
            "Mon 10:00 CET",
        ),
        (
            "mon-fri 10:00-12:00 Europe/Berlin",
            "2026-10-26T08:30:00Z",
            false,
            "Mon 09:30 CET",
        ),
        // Sydney, southern hemisphere: AEDT (UTC+11) until 2026-04-05, AEST (UTC+10) until
        // 2026-10-04, AEDT again after.
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-04-01T22:00:00Z",
            true,
            "Thu 09:00 AEDT",
        ),
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-04-01T21:59:00Z",
            false,
            "Thu 08:59 AEDT",
        ),
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-04-05T23:00:00Z",
            true,
            "Mon 09:00 AEST, after fall back",
        ),
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-04-05T22:30:00Z",
            false,
            "Mon 08:30 AEST",
        ),
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-10-04T22:00:00Z",
            true,
            "Mon 09:00 AEDT, after spring forward",
        ),
        (
            "mon-fri 09:00-17:00 Australia/Sydney",
            "2026-10-04T21:30:00Z",
            false,
            "Mon 08:30 AEDT",
        ),
        // Kolkata: UTC+05:30, no daylight saving.
        (
            "mon-fri 09:30-18:00 Asia/Kolkata",
            "2026-03-09T04:00:00Z",
            true,
            "Mon 09:30 IST",
        ),
        (
            "mon-fri 09:30-18:00 Asia/Kolkata",
            "2026-03-09T03:59:00Z",
            false,
            "Mon 09:29 IST",
        ),
        (
            "mon-fri 09:30-18:00 Asia/Kolkata",
            "2026-03-09T12:29:00Z",
            true,
            "Mon 17:59 IST",
        ),
        (
            "mon-fri 09:30-18:00 Asia/Kolkata",
            "2026-03-09T12:30:00Z",
            false,
            "Mon 18:00 IST",
        ),
        // UTC, a whole day.
        (
            "sat 00:00-24:00 UTC",
            "2026-03-07T23:59:59Z",
            true,
            "Sat 23:59:59",
        ),
        (
            "sat 00:00-24:00 UTC",
            "2026-03-08T00:00:00Z",
            false,
            "Sun 00:00",
        ),
        // A start the spring-forward skips (02:30 New York on 2026-03-08) moves forward by
        // the gap: 03:30 EDT.
        (
            "sun 02:30-04:00 America/New_York",
            "2026-03-08T07:29:00Z",
            false,
            "03:29 EDT",
        ),
        (
            "sun 02:30-04:00 America/New_York",
            "2026-03-08T07:30:00Z",
            true,
            "03:30 EDT",
        ),
        // Times the fall-back repeats (01:00-01:30 on 2026-11-01) are their first occurrence.
        (
            "sun 01:00-01:30 America/New_York",
            "2026-11-01T05:15:00Z",
            true,
            "first 01:15, EDT",
        ),
        (
            "sun 01:00-01:30 America/New_York",
            "2026-11-01T06:15:00Z",
            false,
            "second 01:15, EST",
        ),
    ];
    for (window, instant, open, why) in table {
        let schedule = schedule(&format!("windows = [\"{window}\"]"), &[]);
        assert_eq!(
            is_open(&schedule, at(instant)),
            open,
            "{window} at {instant} ({why})"
        );
    }
}

#[test]
fn next_open_finds_the_next_window_across_daylight_saving_changes() {
    // (window or freeze lines, now, next open)
    let table = [
        // Friday 16:00 EST → Monday 09:00 EDT, across the spring-forward.
        (
            "windows = [\"mon-thu 09:00-16:00 America/New_York\"]",
            "2026-03-06T21:00:00Z",
            "2026-03-09T13:00:00Z",
        ),
        // Friday evening in Sydney → Monday 09:00 AEST, across the autumn change.
        (
            "windows = [\"mon-fri 09:00-17:00 Australia/Sydney\"]",
            "2026-04-03T07:00:00Z",
            "2026-04-05T23:00:00Z",
        ),
        // Berlin, across the autumn change.
        (
            "windows = [\"mon-fri 10:00-12:00 Europe/Berlin\"]",
            "2026-10-23T12:00:00Z",
            "2026-10-26T09:00:00Z",
        ),
        // Kolkata, a Saturday.
        (
            "windows = [\"mon-fri 09:30-18:00 Asia/Kolkata\"]",
            "2026-03-07T06:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
        // Already open: now.
        (
            "windows = [\"mon-fri 09:30-18:00 Asia/Kolkata\"]",
            "2026-03-09T05:00:00Z",
            "2026-03-09T05:00:00Z",
        ),
        // Two windows: the earlier of them.
        (
            "windows = [\"tue 09:00-10:00 UTC\", \"mon 15:00-16:00 Asia/Kolkata\"]",
            "2026-03-09T00:00:00Z",
            "2026-03-09T09:30:00Z",
        ),
        // A window inside a freeze: after the freeze.
        (
            "windows = [\"mon-fri 09:00-17:00 UTC\"]\nfreezes = [\"2026-03-09..2026-03-11 migration\"]",
            "2026-03-09T10:00:00Z",
            "2026-03-12T09:00:00Z",
        ),
        // Winter break in New York then the first window: Tuesday 5 January 2027, 09:00 EST.
        (
            "windows = [\"mon-thu 09:00-16:00 America/New_York\"]\nfreezes = [\"fri\", \"2026-12-21..2027-01-04 winter break\"]",
            "2026-12-18T15:00:00Z",
            "2027-01-05T14:00:00Z",
        ),
    ];
    for (policy, now, expected) in table {
        let schedule = schedule(policy, &[]);
        assert_eq!(
            schedule.next_open(at(now)),
            Some(at(expected)),
            "{policy} from {now}"
        );
        if let Gate::Closed { until, .. } = schedule.gate(at(now)) {
            assert_eq!(
                until,
                Some(at(expected)),
                "gate's until: {policy} from {now}"
            );
        }
    }
}

#[test]
fn next_open_is_none_when_nothing_opens_within_the_horizon() {
    let schedule = schedule("freezes = [\"mon-sun always\"]", &[]);
    assert_eq!(schedule.next_open(at("2026-03-09T00:00:00Z")), None);
    let Gate::Closed { until, reasons } = schedule.gate(at("2026-03-09T00:00:00Z")) else {
        panic!("frozen every day");
    };
    assert_eq!(until, None);
    assert_eq!(reasons[0].to_string(), "frozen: always (`mon-sun always`)");
}

#[test]
fn weekday_freezes_cover_whole_local_days_in_the_environment_time_zone() {
    // Friday 6 March 2026 in Sydney (AEDT, UTC+11) is 5 March 13:00Z to 6 March 13:00Z.
    let sydney = schedule("time_zone = \"Australia/Sydney\"\nfreezes = [\"fri\"]", &[]);
    let table = [
        ("2026-03-05T12:59:59Z", true),
        ("2026-03-05T13:00:00Z", false),
        ("2026-03-06T12:59:59Z", false),
        ("2026-03-06T13:00:00Z", true),
    ];
    for (instant, open) in table {
        assert_eq!(is_open(&sydney, at(instant)), open, "Sydney at {instant}");
    }
    assert_eq!(
        sydney.next_open(at("2026-03-05T15:00:00Z")),
        Some(at("2026-03-06T13:00:00Z"))
    );
    // Without `time_zone`, the windows' zone: Friday in New York.
    let new_york = schedule(
        "windows = [\"mon-sun 00:00-24:00 America/New_York\"]\nfreezes = [\"fri\"]",
        &[],
    );
    assert_eq!(new_york.time_zone_name(), "America/New_York");
    assert!(is_open(&new_york, at("2026-03-06T04:59:00Z")));
    assert!(!is_open(&new_york, at("2026-03-06T05:00:00Z")));
    // Without either, UTC.
    let utc = schedule("freezes = [\"sat-sun weekend\"]", &[]);
    assert_eq!(utc.time_zone_name(), "UTC");
    assert!(!is_open(&utc, at("2026-03-07T00:00:00Z")));
    assert!(is_open(&utc, at("2026-03-09T00:00:00Z")));
    assert_eq!(
        reasons(&utc, at("2026-03-08T12:00:00Z")),
        ["frozen: weekend (`sat-sun weekend`)"]
    );
}

#[test]
fn date_range_freezes_cover_both_end_days_in_the_environment_time_zone() {
    let schedule = schedule(
        "time_zone = \"Europe/Berlin\"\nfreezes = [\"2026-12-21..2027-01-04 winter break\"]",
        &[],
    );
    // 21 December 00:00 CET is 20 December 23:00Z; 5 January 00:00 CET is 4 January 23:00Z.
    let table = [
        ("2026-12-20T22:59:59Z", true),
        ("2026-12-20T23:00:00Z", false),
        ("2027-01-04T22:59:59Z", false),
        ("2027-01-04T23:00:00Z", true),
    ];
    for (instant, open) in table {
        assert_eq!(is_open(&schedule, at(instant)), open, "at {instant}");
    }
    assert_eq!(
        reasons(&schedule, at("2026-12-25T12:00:00Z")),
        ["frozen: winter break (`2026-12-21..2027-01-04 winter break`)"]
    );
    let closures = schedule.closures(at("2026-12-01T00:00:00Z"), at("2027-02-01T00:00:00Z"));
    assert_eq!(closures.len(), 1);
    assert_eq!(
        (closures[0].start, closures[0].end),
        (at("2026-12-20T23:00:00Z"), at("2027-01-04T23:00:00Z"))
    );
}

const HOLIDAYS: &str = "BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//slipway tests//EN
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:christmas
DTSTART;VALUE=DATE:20261225
DTEND;VALUE=DATE:20261226
SUMMARY:Christmas Day
RRULE:FREQ=YEARLY
END:VEVENT
BEGIN:VEVENT
UID:thanksgiving
DTSTART;VALUE=DATE:20261126
SUMMARY:Thanksgiving
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH
END:VEVENT
BEGIN:VEVENT
UID:all-hands
DTSTART;TZID=Europe/Berlin:20260615T100000
DTEND;TZID=Europe/Berlin:20260615T120000
SUMMARY:Company all-hands\\, with a summary long enough to be fol
 ded over two lines
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:reminder
TRIGGER:-PT15M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:maintenance
DTSTART:20260701T150000Z
DURATION:PT2H
SUMMARY:Datacenter maintenance
END:VEVENT
BEGIN:VEVENT
UID:shutdown
DTSTART;VALUE=DATE:20260803
DTEND;VALUE=DATE:20260808
SUMMARY:Summer shutdown
END:VEVENT
BEGIN:VEVENT
UID:cancelled
DTSTART;VALUE=DATE:20260910
SUMMARY:Cancelled offsite
STATUS:CANCELLED
END:VEVENT
END:VCALENDAR
";

#[test]
fn holiday_calendars_freeze_all_day_timed_and_yearly_events() {
    let holidays = crlf(HOLIDAYS);
    let schedule = schedule(
        "time_zone = \"America/New_York\"\nfreeze_calendars = [\"holidays.ics\"]",
        &[("holidays.ics", &holidays)],
    );
    let table = [
        // All-day, in the environment's zone (EST, UTC-5).
        ("2026-12-25T04:59:59Z", true, "24 December, 23:59 New York"),
        ("2026-12-25T05:00:00Z", false, "Christmas 2026"),
        ("2026-12-26T04:59:59Z", false, "Christmas 2026, last second"),
        ("2026-12-26T05:00:00Z", true, "26 December"),
        // Yearly recurrence.
        ("2027-12-25T12:00:00Z", false, "Christmas 2027"),
        ("2030-12-25T12:00:00Z", false, "Christmas 2030"),
        // The fourth Thursday of November: 26 November 2026, 25 November 2027.
        ("2026-11-26T12:00:00Z", false, "Thanksgiving 2026"),
        ("2027-11-25T12:00:00Z", false, "Thanksgiving 2027"),
        (
            "2027-11-26T12:00:00Z",
            true,
            "the day after Thanksgiving 2027",
        ),
        // Timed with TZID: 10:00-12:00 CEST is 08:00-10:00Z.
        ("2026-06-15T07:59:00Z", true, "before the all-hands"),
        ("2026-06-15T08:00:00Z", false, "all-hands"),
        ("2026-06-15T10:00:00Z", true, "after the all-hands"),
        // UTC with a DURATION.
        ("2026-07-01T16:59:00Z", false, "maintenance"),
        ("2026-07-01T17:00:00Z", true, "after maintenance"),
        // Several days: 3 to 7 August.
        ("2026-08-07T12:00:00Z", false, "summer shutdown, last day"),
        ("2026-08-08T12:00:00Z", true, "after the summer shutdown"),
        // Cancelled events freeze nothing.
        ("2026-09-10T12:00:00Z", true, "cancelled offsite"),
    ];
    for (instant, open, why) in table {
        assert_eq!(is_open(&schedule, at(instant)), open, "{instant}: {why}");
    }
    assert_eq!(
        reasons(&schedule, at("2026-06-15T09:00:00Z")),
        [
            "holiday: Company all-hands, with a summary long enough to be folded over two lines \
          (holidays.ics)"
        ]
    );
    assert_eq!(
        schedule.next_open(at("2026-08-03T12:00:00Z")),
        Some(at("2026-08-08T04:00:00Z"))
    );
}

#[test]
fn calendar_reader_understands_the_documented_subset() {
    let calendar = Calendar::parse(&crlf(HOLIDAYS)).unwrap();
    assert_eq!(calendar.events.len(), 5, "the cancelled event is dropped");
    let zone = jiff::tz::TimeZone::UTC;
    // Yearly with COUNT and UNTIL, monthly by position, weekly by day.
    let rules = [
        (
            "DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=2",
            "2026-01-01,2027-01-01",
        ),
        (
            "DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;UNTIL=20280101",
            "2026-01-01,2027-01-01,2028-01-01",
        ),
        (
            "DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3",
            "2026-01-05,2026-01-30,2026-02-27",
        ),
        (
            "DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4",
            "2026-01-05,2026-01-07,2026-01-12,2026-01-14",
        ),
        (
            "DTSTART;VALUE=DATE:20260131\nRRULE:FREQ=MONTHLY;COUNT=3",
            "2026-01-31,2026-03-31,2026-05-31",
        ),
        (
            "DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=DAILY;INTERVAL=10;COUNT=3\nEXDATE;VALUE=DATE:20260111",
            "2026-01-01,2026-01-21",
        ),
        (
            "DTSTART;VALUE=DATE:20240229\nRRULE:FREQ=YEARLY;COUNT=2",
            "2024-02-29,2028-02-29",
        ),
    ];
    for (event, dates) in rules {
        let text = format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\n{event}\nEND:VEVENT\nEND:VCALENDAR\n");
        let calendar = Calendar::parse(&text).unwrap_or_else(|e| panic!("{event}: {e}"));
        let found: Vec<String> = calendar
            .occurrences(
                &zone,
                at("2020-01-01T00:00:00Z"),
                at("2035-01-01T00:00:00Z"),
            )
            .iter()
            .map(|o| {
                o.start
                    .to_timestamp()
                    .to_zoned(zone.clone())
                    .date()
                    .to_string()
            })
            .collect();
        assert_eq!(found.join(","), dates, "{event}");
    }
}

#[test]
fn calendar_mistakes_name_their_line_and_how_to_fix_them() {
    let table = [
        ("BEGIN:VEVENT\nEND:VEVENT\n", 1, "not an iCalendar file"),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n",
            2,
            "has no DTSTART",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261301\nEND:VEVENT\nEND:VCALENDAR\n",
            3,
            "is not a date",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=Mars/Olympus:20260101T090000\nEND:VEVENT\nEND:VCALENDAR\n",
            3,
            "unknown time zone `Mars/Olympus`",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MONTHLY;BYSETPOS=-1\nEND:VEVENT\nEND:VCALENDAR\n",
            4,
            "BYSETPOS=-1 in RRULE: not supported",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=HOURLY\nEND:VEVENT\nEND:VCALENDAR\n",
            4,
            "this frequency is not supported",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nEND:VCALENDAR\n",
            4,
            "END:VCALENDAR closes BEGIN:VEVENT of line 2",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nEND:VEVENT\n",
            1,
            "BEGIN:VCALENDAR is never closed",
        ),
        (
            "BEGIN:VCALENDAR\nnonsense\nEND:VCALENDAR\n",
            2,
            "is not a calendar property",
        ),
    ];
    for (text, line, message) in table {
        let error = Calendar::parse(text).expect_err(text);
        assert_eq!(error.line, line, "{text}: {error}");
        assert!(error.message.contains(message), "{text}: {error}");
        assert!(error.hint.is_some() || line == 4, "{text}: a hint");
    }
}

const ABSENCES: &str = "BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260309
DTEND;VALUE=DATE:20260314
SUMMARY:Vacation
ATTENDEE;CN=\"Alice Smith\";ROLE=REQ-PARTICIPANT:mailto:alice@example.com
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260310
DTEND;VALUE=DATE:20260312
SUMMARY:Conference
ATTENDEE:mailto:Bob@Example.com
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260311
DTEND;VALUE=DATE:20260312
SUMMARY:Carol
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260311
DTEND;VALUE=DATE:20260313
SUMMARY:Dentist, then a day off
ATTENDEE;CN=Alice Smith:mailto:alice@example.com
END:VEVENT
END:VCALENDAR
";

#[test]
fn staffing_allows_exactly_max_out_people_away_and_refuses_one_more() {
    let absences = crlf(ABSENCES);
    let schedule = schedule(
        "staffing = { calendar = \"absences.ics\", max_out = 2, team = 6 }",
        &[("absences.ics", &absences)],
    );
    // 9 March: Alice. 10 March: Alice and Bob (= max_out). 11 March: Alice (twice: one
    // person), Bob and Carol. 12 March: Alice. 14 March: nobody.
    let table = [
        ("2026-03-09T12:00:00Z", 1, true),
        ("2026-03-10T12:00:00Z", 2, true),
        ("2026-03-11T12:00:00Z", 3, false),
        ("2026-03-12T12:00:00Z", 1, true),
        ("2026-03-14T12:00:00Z", 0, true),
    ];
    for (instant, out, open) in table {
        let (people, max_out, team) = schedule.people_out(at(instant)).unwrap();
        assert_eq!(people.len(), out, "{instant}: {people:?}");
        assert_eq!((max_out, team), (2, Some(6)));
        assert_eq!(is_open(&schedule, at(instant)), open, "{instant}");
    }
    let Gate::Closed { reasons, until } = schedule.gate(at("2026-03-11T12:00:00Z")) else {
        panic!("three people out");
    };
    assert_eq!(until, Some(at("2026-03-12T00:00:00Z")));
    assert_eq!(
        reasons,
        [Reason::Staffing {
            calendar: "absences.ics".to_owned(),
            out: vec![
                "Alice Smith".to_owned(),
                "Carol".to_owned(),
                "bob@example.com".to_owned()
            ],
            max_out: 2,
            team: Some(6),
        }]
    );
    assert_eq!(
        reasons[0].to_string(),
        "3 of 6 people out (Alice Smith, Carol, bob@example.com), more than the 2 allowed"
    );
}

#[test]
fn slots_list_the_open_stretches_between_closures() {
    let schedule = schedule(
        "windows = [\"mon-fri 09:00-17:00 UTC\"]\nfreezes = [\"wed\"]",
        &[],
    );
    let now = at("2026-03-09T10:00:00Z"); // Monday
    let slots = schedule.slots(now, at("2026-03-14T00:00:00Z"), 10);
    let expected = [
        ("2026-03-09T10:00:00Z", "2026-03-09T17:00:00Z"),
        ("2026-03-10T09:00:00Z", "2026-03-10T17:00:00Z"),
        ("2026-03-12T09:00:00Z", "2026-03-12T17:00:00Z"),
        ("2026-03-13T09:00:00Z", "2026-03-13T17:00:00Z"),
    ];
    let expected: Vec<Slot> = expected
        .iter()
        .map(|(start, end)| Slot {
            start: at(start),
            end: Some(at(end)),
        })
        .collect();
    assert_eq!(slots, expected);
    // A slot that starts before the listing's end keeps its true end.
    assert_eq!(
        schedule.slots(now, at("2026-03-09T12:00:00Z"), 10),
        [expected[0]]
    );
    // A run of frozen days is listed whole, even when the listing ends inside it.
    let weekend = self::schedule("freezes = [\"sat-sun\"]", &[]);
    let closures = weekend.closures(now, at("2026-03-14T12:00:00Z"));
    assert_eq!(
        closures
            .iter()
            .map(|c| (c.start, c.end))
            .collect::<Vec<_>>(),
        [(at("2026-03-14T00:00:00Z"), at("2026-03-16T00:00:00Z"))]
    );
    assert_eq!(
        schedule.window_at(now).map(|w| w.text.as_str()),
        Some("mon-fri 09:00-17:00 UTC")
    );
    let unrestricted = self::schedule("", &[]);
    assert!(unrestricted.is_unrestricted());
    assert_eq!(
        unrestricted.slots(now, at("2026-03-14T00:00:00Z"), 10),
        [Slot {
            start: now,
            end: None
        }]
    );
}

#[test]
fn schedule_config_keys_are_read_and_their_mistakes_explained() {
    let config = config(
        "windows = [\"mon-thu 09:00-16:00 America/New_York\"]\ntime_zone = \"europe/berlin\"\n\
         freeze_calendars = [\"holidays.ics\"]\n\
         staffing = { calendar = \"team/absences.ics\", max_out = 2 }",
        &[
            ("holidays.ics", &crlf(HOLIDAYS)),
            ("team/absences.ics", &crlf(ABSENCES)),
        ],
    );
    let policy = &config.environment("prod").unwrap().policy;
    assert_eq!(policy.time_zone, "Europe/Berlin");
    assert_eq!(policy.freeze_calendars[0].path, "holidays.ics");
    assert_eq!(policy.freeze_calendars[0].line, 8);
    let staffing = policy.staffing.as_ref().unwrap();
    assert_eq!((staffing.max_out, staffing.team), (2, None));
    let files: Vec<String> = config
        .calendar_files()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, ["holidays.ics", "team/absences.ics"]);
    assert_eq!(config.calendars.len(), 2);

    let errors = |environment: &str| {
        let text = format!(
            "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n\n[environment.prod]\n{environment}\n"
        );
        parse_config("slipway.toml", &text)
            .expect_err(environment)
            .to_string()
    };
    let table = [
        (
            "time_zone = \"Mars/Olympus\"",
            "error: slipway.toml:6:13: `time_zone` in [environment.prod]: unknown time zone `Mars/Olympus`",
        ),
        (
            "time_zone = \"America/New_Yrok\"",
            "hint: did you mean `America/New_York`?",
        ),
        (
            "freeze_calendars = \"holidays.ics\"",
            "hint: write a list: freeze_calendars = [\"holidays.ics\"]",
        ),
        ("freeze_calendars = [\"\"]", "the calendar path is empty"),
        (
            "staffing = 2",
            "hint: write staffing = { calendar = \"absences.ics\", max_out = 2 }",
        ),
        (
            "staffing = { max_out = 2 }",
            "missing `calendar` in `staffing` of [environment.prod]",
        ),
        (
            "staffing = { calendar = \"a.ics\" }",
            "missing `max_out` in `staffing` of [environment.prod]",
        ),
        (
            "staffing = { calendar = \"a.ics\", max_out = -1 }",
            "must be at least 0, found -1",
        ),
        (
            "staffing = { calendar = \"a.ics\", max_out = 2, team = 2 }",
            "max_out = 2 is not less than team = 2",
        ),
        (
            "staffing = { calendar = \"a.ics\", max_ot = 2 }",
            "hint: did you mean `max_out`?",
        ),
    ];
    for (environment, expected) in table {
        let message = errors(environment);
        assert!(message.contains(expected), "{environment}:\n{message}");
    }

    // Calendar files: unreadable at the place that names them, malformed at their own line.
    let text = "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n\n[environment.prod]\n\
                freeze_calendars = [\"holidays.ics\"]\n\
                staffing = { calendar = \"absences.ics\", max_out = 1 }\n";
    let mut config = parse_config("conf/slipway.toml", text).unwrap();
    let texts = BTreeMap::from([
        (
            "holidays.ics".to_owned(),
            Err("No such file or directory".to_owned()),
        ),
        (
            "absences.ics".to_owned(),
            Ok(
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2026\nEND:VEVENT\nEND:VCALENDAR\n"
                    .to_owned(),
            ),
        ),
    ]);
    let message = config
        .attach_calendars("conf/slipway.toml", &texts)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "error: conf/slipway.toml:6:21: cannot read calendar `holidays.ics` \
             (conf/holidays.ics): No such file or directory"
        ),
        "{message}"
    );
    assert!(
        message
            .contains("hint: check the path: it is relative to the directory of the config file"),
        "{message}"
    );
    assert!(
        message.contains("error: conf/absences.ics:3:1: `2026` in DTSTART is not a date"),
        "{message}"
    );
    // A schedule refuses to be built without its calendars.
    let unattached = parse_config("slipway.toml", text).unwrap();
    assert!(Schedule::for_environment(&unattached, "prod").is_err());
}
