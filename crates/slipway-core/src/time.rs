//! Time as plain data: an instant (`Time`) and a length of time (`Span`), both in milliseconds.
//!
//! The core never reads a clock: every function that needs "now" takes a `Time`. Milliseconds keep
//! the canonical form of events simple and make deterministic simulation exact.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub i64);

impl Time {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The instant `span` after this one (saturating).
    pub fn after(self, span: Span) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(span.0).unwrap_or(i64::MAX)),
        )
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Span {
        Span(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// This instant as a `jiff::Timestamp`, for calendars and display.
    pub fn to_timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    pub fn from_timestamp(ts: jiff::Timestamp) -> Self {
        Self(ts.as_millisecond())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_timestamp())
    }
}

/// A non-negative length of time in milliseconds. Written in config as `90s`, `15m`, `1h30m`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Span(pub u64);

impl Span {
    pub const ZERO: Span = Span(0);

    /// A `std` duration, to the millisecond (saturating).
    pub fn from_duration(duration: std::time::Duration) -> Self {
        Span(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1000)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses the compact form used in `slipway.toml`: one or more `<number><unit>` pairs with
    /// units `ms`, `s`, `m`, `h`, `d` and no spaces (`15m`, `1h30m`, `500ms`).
    pub fn parse(text: &str) -> Result<Span, SpanError> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(SpanError::Empty);
        }
        if rest == "0" {
            return Ok(Span::ZERO);
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(SpanError::Invalid);
            }
            let number: u64 = rest[..digits].parse().map_err(|_| SpanError::TooLarge)?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(SpanError::Invalid),
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(unit)
                .and_then(|ms| total.checked_add(ms))
                .ok_or(SpanError::TooLarge)?;
        }
        Ok(Span(total))
    }

    /// Best effort reading of a longer spelling (`15 minutes`, `1 hour 30 mins`), used only to
    /// suggest the compact form in an error hint.
    pub fn parse_lenient(text: &str) -> Option<Span> {
        let mut total: u64 = 0;
        let mut number: Option<u64> = None;
        let mut seen = false;
        let lower = text
            .to_ascii_lowercase()
            .replace(',', " ")
            .replace(" and ", " ");
        let mut tokens: Vec<String> = Vec::new();
        for word in lower.split_whitespace() {
            // Split "15min" into "15" and "min".
            let digits = word.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && digits < word.len() {
                tokens.push(word[..digits].to_owned());
                tokens.push(word[digits..].to_owned());
            } else {
                tokens.push(word.to_owned());
            }
        }
        for token in tokens {
            if let Ok(n) = token.parse::<u64>() {
                if number.is_some() {
                    return None;
                }
                number = Some(n);
                continue;
            }
            let unit = match token.as_str() {
                "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
                "s" | "sec" | "secs" | "second" | "seconds" => 1000,
                "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
                "d" | "day" | "days" => 86_400_000,
                _ => return None,
            };
            total = total.checked_add(number.take()?.checked_mul(unit)?)?;
            seen = true;
        }
        (seen && number.is_none()).then_some(Span(total))
    }
}

impl fmt::Display for Span {
    /// The compact form `parse` accepts: `1h30m`, `15m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut ms = self.0;
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

/// Why a duration did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// The text was empty.
    #[error("empty duration")]
    Empty,
    /// The text is not `<number><unit>` pairs.
    #[error("not a duration")]
    Invalid,
    /// The duration overflows 64-bit milliseconds.
    #[error("duration too large")]
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_durations_parse_and_print_round_trip() {
        for (text, ms) in [
            ("15m", 900_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("2d", 172_800_000),
            ("0", 0),
        ] {
            let span = Span::parse(text).unwrap();
            assert_eq!(span.as_millis(), ms, "{text}");
            assert_eq!(Span::parse(&span.to_string()).unwrap(), span);
        }
    }

    #[test]
    fn long_spellings_are_refused_but_understood_for_hints() {
        assert_eq!(Span::parse("15 minutes"), Err(SpanError::Invalid));
        assert_eq!(
            Span::parse_lenient("15 minutes"),
            Some(Span::from_secs(900))
        );
        assert_eq!(
            Span::parse_lenient("1 hour and 30 mins"),
            Some(Span::from_secs(5400))
        );
        assert_eq!(Span::parse_lenient("soon"), None);
    }
}
