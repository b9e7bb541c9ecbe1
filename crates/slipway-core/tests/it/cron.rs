//! Cron expressions of train schedules: parsing with clear refusals, and the next fire time as
//! a table, across daylight saving time in both directions.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use slipway_core::cron::Cron;
use slipway_core::time::Time;

fn at(text: &str) -> Time {
    Time::from_timestamp(text.parse::<Timestamp>().expect("an RFC 3339 instant"))
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("a known zone")
}

fn next(cron: &str, zone_name: &str, after: &str) -> Option<String> {
    Cron::parse(cron)
        .unwrap()
        .next_after(at(after), &zone(zone_name))
        .map(|t| t.to_timestamp().to_string())
}

#[test]
fn the_next_fire_time_follows_the_zone_and_daylight_saving_time() {
    #[rustfmt::skip]
    let table: &[(&str, &str, &str, Option<&str>, &str)] = &[
        // cron, zone, after, next, why
        ("0 9 * * 2", "UTC", "2026-12-03T12:00:00Z", Some("2026-12-08T09:00:00Z"), "next Tuesday"),
        ("0 9 * * 2", "America/New_York", "2026-12-03T12:00:00Z", Some("2026-12-08T14:00:00Z"), "09:00 EST"),
        ("0 9 * * 2", "America/New_York", "2026-07-01T00:00:00Z", Some("2026-07-07T13:00:00Z"), "09:00 EDT"),
        ("0 9 * * 2", "UTC", "2026-12-08T09:00:00Z", Some("2026-12-15T09:00:00Z"), "strictly after"),
        ("0 9 * * 2", "UTC", "2026-12-08T08:59:59Z", Some("2026-12-08T09:00:00Z"), "the same day"),
        ("*/15 * * * *", "UTC", "2026-12-03T10:07:00Z", Some("2026-12-03T10:15:00Z"), "steps"),
        ("0 8-18/5 * * mon-fri", "UTC", "2026-12-04T19:00:00Z", Some("2026-12-07T08:00:00Z"), "Friday evening to Monday"),
        ("30 6 1,15 * *", "UTC", "2026-12-02T00:00:00Z", Some("2026-12-15T06:30:00Z"), "list of days"),
        ("0 0 1 jan *", "UTC", "2026-12-03T00:00:00Z", Some("2027-01-01T00:00:00Z"), "month names"),
        ("0 12 * * 7", "UTC", "2026-12-03T00:00:00Z", Some("2026-12-06T12:00:00Z"), "7 is Sunday"),
        ("0 0 13 * 5", "UTC", "2026-12-03T00:00:00Z", Some("2026-12-04T00:00:00Z"), "day of month OR weekday"),
        ("0 0 29 2 *", "UTC", "2026-12-03T00:00:00Z", Some("2028-02-29T00:00:00Z"), "leap day"),
        ("0 0 31 2 *", "UTC", "2026-12-03T00:00:00Z", None, "never"),
        // Spring forward in New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT.
        ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", Some("2026-03-08T07:30:00Z"), "02:30 does not exist: 03:30 EDT"),
        ("30 2 * * *", "America/New_York", "2026-03-08T07:30:00Z", Some("2026-03-09T06:30:00Z"), "then 02:30 EDT"),
        ("0 9 * * *", "America/New_York", "2026-03-07T15:00:00Z", Some("2026-03-08T13:00:00Z"), "09:00 EDT after the jump"),
        // Fall back, 1 November 2026: 02:00 EDT returns to 01:00 EST; 01:30 happens twice.
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", Some("2026-11-01T05:30:00Z"), "the first 01:30 (EDT)"),
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", Some("2026-11-02T06:30:00Z"), "not the second 01:30 (EST)"),
        ("0 * * * *", "America/New_York", "2026-11-01T05:00:00Z", Some("2026-11-01T07:00:00Z"), "hourly skips the repeated hour"),
        // Europe: 29 March 2026 at 01:00 UTC, 02:00 CET becomes 03:00 CEST.
        ("15 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", Some("2026-03-29T01:15:00Z"), "02:15 pushed to 03:15 CEST"),
    ];
    for (cron, zone_name, after, expected, why) in table {
        assert_eq!(
            next(cron, zone_name, after).as_deref(),
            *expected,
            "{cron} in {zone_name} after {after}: {why}"
        );
    }
}

#[test]
fn a_scheduler_that_was_down_owes_only_the_newest_missed_fire() {
    let cron = Cron::parse("0 9 * * *").unwrap();
    let utc = zone("UTC");
    assert_eq!(
        cron.latest_in(at("2026-12-01T10:00:00Z"), at("2026-12-05T08:00:00Z"), &utc),
        Some(at("2026-12-04T09:00:00Z"))
    );
    assert_eq!(
        cron.latest_in(at("2026-12-04T09:00:00Z"), at("2026-12-05T08:00:00Z"), &utc),
        None
    );
    // A long gap: the last eight days are looked at first.
    let monthly = Cron::parse("0 0 1 * *").unwrap();
    assert_eq!(
        monthly.latest_in(at("2026-01-15T00:00:00Z"), at("2026-12-20T00:00:00Z"), &utc),
        Some(at("2026-12-01T00:00:00Z"))
    );
}

#[test]
fn malformed_expressions_are_refused_saying_which_field() {
    for (text, expected) in [
        ("0 9 * *", "has 4 fields"),
        ("60 9 * * *", "is not a minute (0 to 59)"),
        ("0 24 * * *", "is not a hour (0 to 23)"),
        ("0 9 0 * *", "is not a day of month (1 to 31)"),
        ("0 9 * foo *", "is not a month (1 to 12 or jan to dec)"),
        ("0 9 * * 8", "is not a day of week (0 to 7 or sun to sat)"),
        ("*/0 * * * *", "step `0` is not a positive number"),
        ("0 18-8 * * *", "runs backwards"),
    ] {
        let error = Cron::parse(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    assert_eq!(
        Cron::parse(" 0  9 * *  TUE ").unwrap().as_str(),
        "0 9 * * TUE"
    );
}
