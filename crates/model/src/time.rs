//! Timestamps: RFC 3339 in, `YYYY-MM-DDTHH:MM:SS.mmmZ` out.
//!
//! A [`Timestamp`] is milliseconds since the Unix epoch in UTC: `Copy`,
//! totally ordered and cheap to compare, which is what the join and the
//! windows do all day. Input with an offset is converted to UTC; precision
//! finer than a millisecond is truncated (floored), so a time never moves
//! past the instant it names. Years are limited to 0000..=9999, the range
//! RFC 3339 can write.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

const MS_PER_DAY: i64 = 86_400_000;

/// An instant in UTC with millisecond precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00.000Z
    pub const MIN: Timestamp = Timestamp(days_from_civil(0, 1, 1) * MS_PER_DAY);
    /// 9999-12-31T23:59:59.999Z
    pub const MAX: Timestamp = Timestamp(days_from_civil(10000, 1, 1) * MS_PER_DAY - 1);
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// `None` outside years 0000..=9999.
    pub const fn from_millis(ms: i64) -> Option<Timestamp> {
        if ms < Self::MIN.0 || ms > Self::MAX.0 {
            None
        } else {
            Some(Timestamp(ms))
        }
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// `None` when the result leaves the representable range.
    pub fn checked_add_millis(self, delta: i64) -> Option<Timestamp> {
        self.0.checked_add(delta).and_then(Timestamp::from_millis)
    }

    /// Adds (or subtracts) and clamps to the representable range.
    pub fn saturating_add_millis(self, delta: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(delta).clamp(Self::MIN.0, Self::MAX.0))
    }

    /// Parses RFC 3339 with any offset and precision; the error is the reason
    /// only (the caller adds the field name).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        if let Some(ts) = parse_canonical(text.as_bytes()) {
            return Ok(ts);
        }
        let parsed =
            DateTime::parse_from_rfc3339(text).map_err(|e| format!("not RFC 3339: {e}"))?;
        Timestamp::from_millis(parsed.timestamp_millis())
            .ok_or_else(|| "out of range: years 0000 to 9999 in UTC".to_string())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).expect("a Timestamp is always in chrono's range")
    }

    /// `None` outside years 0000..=9999; sub-millisecond precision is floored.
    pub fn from_datetime(dt: DateTime<Utc>) -> Option<Timestamp> {
        Timestamp::from_millis(dt.timestamp_millis())
    }

    /// The canonical form `YYYY-MM-DDTHH:MM:SS.mmmZ`, written without
    /// allocating (hot path of every serialised event).
    pub fn write_canonical(self, out: &mut [u8; 24]) {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (mi, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        put_digits(&mut out[0..4], y as u32);
        out[4] = b'-';
        put_digits(&mut out[5..7], m);
        out[7] = b'-';
        put_digits(&mut out[8..10], d);
        out[10] = b'T';
        put_digits(&mut out[11..13], h as u32);
        out[13] = b':';
        put_digits(&mut out[14..16], mi as u32);
        out[16] = b':';
        put_digits(&mut out[17..19], s as u32);
        out[19] = b'.';
        put_digits(&mut out[20..23], ms as u32);
        out[23] = b'Z';
    }

    /// `YYYY-MM-DD` of the UTC day (daily index names, `dt=` partitions).
    pub fn date_string(self) -> String {
        let mut buf = [0u8; 24];
        self.write_canonical(&mut buf);
        String::from_utf8_lossy(&buf[..10]).into_owned()
    }

    /// Hour of the UTC day, 0..=23 (`hour=` partitions).
    pub fn hour(self) -> u32 {
        (self.0.rem_euclid(MS_PER_DAY) / 3_600_000) as u32
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        self.write_canonical(&mut buf);
        f.write_str(std::str::from_utf8(&buf).expect("ASCII"))
    }
}

impl FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        self.write_canonical(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Fast path for the form this platform writes; anything else (offsets,
/// other precisions, invalid dates) goes through chrono, which also words the
/// error.
fn parse_canonical(b: &[u8]) -> Option<Timestamp> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(Timestamp(
        days * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + ms,
    ))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn put_digits(out: &mut [u8], mut v: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn canonical_round_trip_and_format() {
        for s in [
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "1969-12-31T23:59:59.999Z",
            "2026-11-21T21:53:03.042Z",
        ] {
            assert_eq!(ts(s).to_string(), s);
        }
        assert_eq!(ts("1970-01-01T00:00:01.500Z").millis(), 1500);
        assert_eq!(ts("1969-12-31T23:59:59.999Z").millis(), -1);
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn fast_path_agrees_with_chrono_over_many_instants() {
        let mut ms = -62_000_000_000_000i64;
        while ms < 250_000_000_000_000 {
            let t = Timestamp(ms);
            let via_chrono = t.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(t.to_string(), via_chrono);
            assert_eq!(ts(&via_chrono), t);
            ms += 7_777_777_777;
        }
    }

    #[test]
    fn offsets_normalise_to_utc() {
        assert_eq!(
            ts("2024-01-01T02:00:00+02:00").to_string(),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            ts("2023-12-31T19:30:00.250-04:30").to_string(),
            "2024-01-01T00:00:00.250Z"
        );
        assert_eq!(
            ts("2024-01-01T00:00:00Z").to_string(),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            ts("2024-01-01t00:00:00z").to_string(),
            "2024-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn sub_millisecond_precision_is_floored() {
        assert_eq!(
            ts("2024-01-01T00:00:00.123999Z").to_string(),
            "2024-01-01T00:00:00.123Z"
        );
        assert_eq!(
            ts("2024-01-01T00:00:00.1Z").to_string(),
            "2024-01-01T00:00:00.100Z"
        );
        assert_eq!(ts("1969-12-31T23:59:59.9999Z").millis(), -1);
    }

    #[test]
    fn rejects_non_rfc3339_and_out_of_range() {
        for bad in [
            "2024-01-01",
            "2024-01-01 00:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00.000Z",
            "2024-01-01T24:00:00.000Z",
            "1704067200000",
            "",
        ] {
            let e = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(e.starts_with("not RFC 3339"), "{bad}: {e}");
        }
        let e = Timestamp::parse_rfc3339("9999-12-31T23:00:00-02:00").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn partitions_and_arithmetic() {
        let t = ts("2024-03-05T07:08:09.010Z");
        assert_eq!(t.date_string(), "2024-03-05");
        assert_eq!(t.hour(), 7);
        assert_eq!(
            t.checked_add_millis(1000).unwrap().to_string(),
            "2024-03-05T07:08:10.010Z"
        );
        assert_eq!(Timestamp::MAX.checked_add_millis(1), None);
        assert_eq!(Timestamp::MAX.saturating_add_millis(5), Timestamp::MAX);
    }

    #[test]
    fn serde_uses_canonical_form() {
        let t = ts("2024-01-01T01:00:00+01:00");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-01-01T00:00:00.000Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2024-01-01T00:00:00.000Z\"").unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }
}
