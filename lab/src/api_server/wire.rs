//! Wire helpers of the lab API server, written independently of the agent:
//! Go's RFC 3339 time formats, protobuf JSON Duration/Timestamp, and a
//! small protojson reader with the server's error behaviour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Seconds and nanoseconds since the Unix epoch (negative for year 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

/// Go's zero `time.Time`: 0001-01-01T00:00:00Z.
pub const GO_ZERO_TIME: Instant = Instant {
    secs: -62_135_596_800,
    nanos: 0,
};

pub fn now() -> Instant {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Instant {
        secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 0001-01-01 (proleptic Gregorian), counted year by year in
/// 400-year cycles.
fn days_since_year_one(y: i64, m: i64, d: i64) -> i64 {
    let py = y - 1;
    let mut days = py * 365 + py.div_euclid(4) - py.div_euclid(100) + py.div_euclid(400);
    for mm in 1..m {
        days += month_days(y, mm);
    }
    days + d - 1
}

const EPOCH_DAYS: i64 = 719_162; // days from 0001-01-01 to 1970-01-01

fn date_of(days_since_epoch: i64) -> (i64, i64, i64) {
    let mut days = days_since_epoch + EPOCH_DAYS;
    let cycles = days.div_euclid(146_097);
    days -= cycles * 146_097;
    let mut y = 1 + cycles * 400;
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let mut m = 1;
    while days >= month_days(y, m) {
        days -= month_days(y, m);
        m += 1;
    }
    (y, m, days + 1)
}

fn frac_digits(nanos: u32) -> String {
    match nanos {
        0 => String::new(),
        n if n % 1_000_000 == 0 => format!(".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => format!(".{:06}", n / 1_000),
        n => format!(".{n:09}"),
    }
}

/// Go `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped).
pub fn rfc3339_nano(t: Instant) -> String {
    let mut frac = format!("{:09}", t.nanos);
    while frac.ends_with('0') {
        frac.pop();
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!("{}{frac}Z", date_time(t.secs))
}

/// Go `time.RFC3339` in UTC (seconds only): what the HMAC signs.
pub fn rfc3339(secs: i64) -> String {
    format!("{}Z", date_time(secs))
}

/// protojson `Timestamp`: 0, 3, 6 or 9 fraction digits.
pub fn proto_timestamp(t: Instant) -> String {
    format!("{}{}Z", date_time(t.secs), frac_digits(t.nanos))
}

/// protojson `Duration`.
pub fn proto_duration(d: Duration) -> String {
    format!("{}{}s", d.as_secs(), frac_digits(d.subsec_nanos()))
}

fn date_time(secs: i64) -> String {
    let (y, m, d) = date_of(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Parse RFC 3339 like Go's `time.Parse(time.RFC3339, ...)`: an offset or
/// `Z`, an optional fraction.
pub fn parse_rfc3339(s: &str) -> Option<Instant> {
    let num = |a: usize, b: usize| -> Option<i64> {
        let p = s.get(a..b)?;
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut digits = r[..n].to_owned();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
        rest = &r[n..];
    }
    let offset = if rest == "Z" {
        0
    } else {
        let sign = match rest.chars().next()? {
            '+' => 1,
            '-' => -1,
            _ => return None,
        };
        if rest.len() != 6 || rest.as_bytes()[3] != b':' {
            return None;
        }
        let oh: i64 = rest[1..3].parse().ok()?;
        let om: i64 = rest[4..6].parse().ok()?;
        sign * (oh * 3600 + om * 60)
    };
    let days = days_since_year_one(y, mo, d) - EPOCH_DAYS;
    Some(Instant {
        secs: days * 86_400 + h * 3600 + mi * 60 + se - offset,
        nanos,
    })
}

/// Parse a protojson `Duration` (`"1.5s"`, `"-2s"` refused here).
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let n = s.strip_suffix('s')?;
    let (w, f) = n.split_once('.').unwrap_or((n, ""));
    if w.is_empty() || !w.bytes().all(|c| c.is_ascii_digit()) || f.len() > 9 {
        return None;
    }
    if n.contains('.') && f.is_empty() {
        return None;
    }
    if !f.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut frac = f.to_owned();
    while frac.len() < 9 {
        frac.push('0');
    }
    Some(Duration::new(w.parse().ok()?, frac.parse().ok()?))
}

/// A protojson decoding or validation failure (`invalid_argument`).
#[derive(Debug, Clone)]
pub struct Invalid(pub String);

/// A JSON object read the way protojson does: by JSON name or proto name,
/// `null` = unset.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub obj: &'a Map<String, Value>,
    pub path: &'a str,
}

impl<'a> Msg<'a> {
    pub fn root(v: &'a Value) -> Result<Msg<'a>, Invalid> {
        match v {
            Value::Object(obj) => Ok(Msg { obj, path: "" }),
            _ => Err(Invalid(
                "proto: syntax error: unexpected token, want a JSON object".into(),
            )),
        }
    }

    fn get(&self, json: &str, proto: &str) -> Option<&'a Value> {
        self.obj
            .get(json)
            .or_else(|| self.obj.get(proto))
            .filter(|v| !v.is_null())
    }

    pub fn has(&self, json: &str, proto: &str) -> bool {
        self.get(json, proto).is_some()
    }

    pub fn string(&self, json: &str, proto: &str) -> Result<Option<String>, Invalid> {
        match self.get(json, proto) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Invalid(format!(
                "proto: invalid value for string field {proto}: {other}"
            ))),
        }
    }

    pub fn message(&self, json: &str, proto: &str) -> Result<Option<Map<String, Value>>, Invalid> {
        match self.get(json, proto) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(other) => Err(Invalid(format!(
                "proto: invalid value for message field {proto}: {other}"
            ))),
        }
    }

    pub fn list(&self, json: &str, proto: &str) -> Result<Vec<Value>, Invalid> {
        match self.get(json, proto) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(other) => Err(Invalid(format!(
                "proto: invalid value for repeated field {proto}: {other}"
            ))),
        }
    }

    /// A map field: `None` if absent or `null`, `Some` (maybe empty) if present.
    pub fn map(&self, json: &str, proto: &str) -> Result<Option<Map<String, Value>>, Invalid> {
        self.message(json, proto)
    }

    pub fn u64(&self, json: &str, proto: &str) -> Result<u64, Invalid> {
        match self.get(json, proto) {
            None => Ok(0),
            Some(v) => u64_value(v).ok_or_else(|| {
                Invalid(format!(
                    "proto: invalid value for uint64 field {proto}: {v}"
                ))
            }),
        }
    }
}

pub fn u64_value(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An enum value: a known name → its number, an unknown name → 0 (the
/// server decodes with DiscardUnknown), a number → itself.
pub fn enum_value(v: Option<&Value>, names: &[&str], field: &str) -> Result<i64, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => Ok(names
            .iter()
            .position(|n| n == s)
            .map(|i| i as i64)
            .unwrap_or(0)),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| Invalid(format!("proto: invalid value for enum field {field}: {n}"))),
        Some(other) => Err(Invalid(format!(
            "proto: invalid value for enum field {field}: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-08-21T12:35:06.001Z",
            "2000-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ] {
            let t = parse_rfc3339(s).unwrap();
            assert_eq!(proto_timestamp(t), s);
        }
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z").unwrap(), GO_ZERO_TIME);
        assert_eq!(
            parse_rfc3339("2026-08-21T12:00:00Z").unwrap().secs,
            1_787_313_600
        );
        assert_eq!(
            parse_rfc3339("2026-08-21T14:00:00+02:00").unwrap().secs,
            1_787_313_600
        );
        assert_eq!(
            rfc3339_nano(Instant {
                secs: 0,
                nanos: 1_200_000
            }),
            "1970-01-01T00:00:00.0012Z"
        );
        assert_eq!(proto_duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(
            parse_proto_duration("0.812345678s"),
            Some(Duration::from_nanos(812_345_678))
        );
        assert_eq!(parse_proto_duration("1.s"), None);
    }
}
