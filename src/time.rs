//! Time as text (pure): RFC 3339 timestamps and protobuf durations — the
//! one parser and formatter of points in time in the agent (the metal API's
//! wire formats, the status file).
//!
//! - v1 `X-Date`: `YYYY-MM-DDTHH:MM:SSZ` ([`format_rfc3339_seconds`]).
//! - v1 response times: RFC 3339 with nanoseconds; v1 durations are plain
//!   integers (nanoseconds) and need no help here.
//! - v2 `google.protobuf.Timestamp`: RFC 3339 in UTC with 0, 3, 6 or 9
//!   fraction digits ([`format_timestamp`]); `google.protobuf.Duration`:
//!   decimal seconds with an `s` suffix, e.g. `"0.812345678s"`
//!   ([`format_duration`], [`parse_duration`]).
//! - The Go zero time `0001-01-01T00:00:00Z` means "never"
//!   ([`parse_sync_time`] returns `None` for it and for anything before 1970).
//! - The status file: [`Timestamp`], RFC 3339 UTC with milliseconds.
//!
//! A date that does not exist (31 February, 29 February of a common year)
//! is refused, never rolled into the next month. Durations of the
//! configuration and the command line (`10s`, `1m30s`) are `humantime`'s.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days of month `m` (1..=12) of year `y` in the proleptic Gregorian calendar.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn fmt_date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` (Go's `time.RFC3339` of a UTC time).
pub fn format_rfc3339_seconds(unix_seconds: i64) -> String {
    format!("{}Z", fmt_date_time(unix_seconds))
}

/// 0, 3, 6 or 9 fraction digits, as protojson writes them.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

/// A proto3 JSON `Timestamp`: UTC, `Z`, 0/3/6/9 fraction digits.
pub fn format_timestamp(unix_seconds: i64, nanos: u32) -> String {
    format!("{}{}Z", fmt_date_time(unix_seconds), fraction(nanos))
}

/// A proto3 JSON `Duration`: `"15s"`, `"1.500s"`, `"0.812345678s"`.
pub fn format_duration(d: Duration) -> String {
    format!("{}{}s", d.as_secs(), fraction(d.subsec_nanos()))
}

/// Parse a proto3 JSON `Duration` (negative durations are refused).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a protobuf Duration like \"1.5s\"");
    let num = s.strip_suffix('s').ok_or_else(bad)?;
    let (whole, frac) = match num.split_once('.') {
        Some((_, "")) => return Err(bad()),
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration::new(secs, nanos))
}

/// Parse an RFC 3339 timestamp (any offset, up to 9 fraction digits) into
/// Unix seconds and nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<(i64, u32), String> {
    let bad = || format!("{s:?} is not an RFC 3339 timestamp");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60
    {
        return Err(bad());
    }
    let mut rest = s.get(19..).ok_or_else(bad)?;
    let mut nanos = 0u32;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        nanos = format!("{:0<9}", &f[..digits]).parse().map_err(|_| bad())?;
        rest = &f[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let o = rest.as_bytes();
            if o.len() != 6 || o[3] != b':' {
                return Err(bad());
            }
            let oh: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let om: i64 = rest[4..6].parse().map_err(|_| bad())?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok((days * 86_400 + h * 3600 + mi * 60 + se - offset, nanos))
}

/// A sync time from the API: `None` for "never" (the Go zero time
/// `0001-01-01T00:00:00Z`, or anything before 1970), else Unix seconds.
pub fn parse_sync_time(s: &str) -> Result<Option<i64>, String> {
    let (secs, _) = parse_rfc3339(s)?;
    Ok((secs >= 0).then_some(secs))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: UTC with milliseconds.
pub fn format_millis(unix_seconds: i64, nanos: u32) -> String {
    format!("{}.{:03}Z", fmt_date_time(unix_seconds), nanos / 1_000_000)
}

/// A point in time, written as RFC 3339 UTC with milliseconds (the status
/// file) and read with [`parse_rfc3339`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Seconds since the Unix epoch (0 for times before it).
    pub fn unix_seconds(self) -> f64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// A Unix time in whole seconds.
    pub fn from_unix(secs: u64) -> Timestamp {
        Timestamp(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// How long before `now` this was (zero when it lies ahead).
    pub fn age(self, now: SystemTime) -> Duration {
        now.duration_since(self.0).unwrap_or_default()
    }

    /// Parse an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let (secs, nanos) = parse_rfc3339(s)?;
        let t = if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(secs.unsigned_abs()))
                .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        };
        t.map(Timestamp)
            .ok_or_else(|| format!("{s:?} is out of range"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = match self.0.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (-whole, 0),
                    n => (-whole - 1, 1_000_000_000 - n),
                }
            }
        };
        f.write_str(&format_millis(secs, nanos))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for (s, secs, nanos) in [
            ("1970-01-01T00:00:00Z", 0, 0),
            ("2026-08-21T12:00:00Z", 1_787_313_600, 0),
            ("2026-03-09T11:42:52Z", 1_773_056_572, 0),
            ("2026-08-21T12:35:06.001Z", 1_787_315_706, 1_000_000),
            ("2000-02-29T23:59:59.000001Z", 951_868_799, 1_000),
            ("2026-08-21T12:35:06.001234567Z", 1_787_315_706, 1_234_567),
        ] {
            assert_eq!(parse_rfc3339(s).unwrap(), (secs, nanos), "{s}");
            assert_eq!(format_timestamp(secs, nanos), s);
        }
        assert_eq!(
            parse_rfc3339("2026-08-21T14:00:00+02:00").unwrap(),
            (1_787_313_600, 0)
        );
        assert_eq!(
            format_rfc3339_seconds(1_787_313_600),
            "2026-08-21T12:00:00Z"
        );
    }

    #[test]
    fn year_one_is_never() {
        assert_eq!(parse_sync_time("0001-01-01T00:00:00Z").unwrap(), None);
        assert_eq!(
            parse_sync_time("2026-08-21T12:35:06.001Z").unwrap(),
            Some(1_787_315_706)
        );
        assert!(parse_sync_time("yesterday").is_err());
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_err());
        // Dates that do not exist are refused, not rolled into March.
        for bad in [
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-00T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2026-08-21T12:00:00").is_err());
    }

    #[test]
    fn status_timestamps_have_milliseconds() {
        // `date -u -d @1790000000` = 2026-09-21T14:13:20Z.
        let t = Timestamp(UNIX_EPOCH + Duration::from_millis(1_790_000_000_250));
        assert_eq!(t.to_string(), "2026-09-21T14:13:20.250Z");
        assert_eq!(Timestamp::parse("2026-09-21T14:13:20.250Z").unwrap(), t);
        assert_eq!(
            Timestamp::parse("2026-09-21T16:13:20.250+02:00").unwrap(),
            t
        );
        let before = Timestamp(UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!(before.to_string(), "1969-12-31T23:59:58.500Z");
        assert_eq!(Timestamp::parse(&before.to_string()).unwrap(), before);
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(
            format_duration(Duration::from_nanos(812_345_678)),
            "0.812345678s"
        );
        assert_eq!(format_duration(Duration::from_micros(2)), "0.000002s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in ["0s", "15s", "1.500s", "0.812345678s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "1", "-1s", "1.0000000001s", "1.s", "x1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
