//! Hour partitions of the raw archive (`dt=YYYY-MM-DD/hour=HH`, UTC, DESIGN.md section 2)
//! and the `--from`/`--to` range over them.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One hour partition. Ordered by date then hour (the date is fixed-width, so string
/// order is time order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hour {
    /// `YYYY-MM-DD`, a valid date.
    pub date: String,
    pub hour: u8,
}

impl Hour {
    pub fn new(date: &str, hour: u8) -> Result<Hour, String> {
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .filter(|_| date.len() == 10)
            .ok_or_else(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?;
        if hour > 23 {
            return Err(format!("hour {hour} is not 00..=23"));
        }
        Ok(Hour {
            date: date.to_string(),
            hour,
        })
    }

    /// The partition of two key segments, `dt=YYYY-MM-DD` and `hour=HH`.
    pub fn from_segments(dt: &str, hour: &str) -> Option<Hour> {
        let date = dt.strip_prefix("dt=")?;
        let hour = hour.strip_prefix("hour=")?;
        if hour.len() != 2 {
            return None;
        }
        Hour::new(date, hour.parse().ok()?).ok()
    }

    /// A `--from`/`--to` bound: `YYYY-MM-DD` (the whole day: its first hour as a lower
    /// bound, its last as an upper one) or `YYYY-MM-DDTHH` (that hour).
    pub fn parse_bound(text: &str, upper: bool) -> Result<Hour, String> {
        let bad = || format!("{text:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH (UTC)");
        match text.split_once(['T', 't', ' ']) {
            None => {
                Hour::new(text, if upper { 23 } else { 0 }).map_err(|e| format!("{}: {e}", bad()))
            }
            Some((date, hour)) if hour.len() == 2 => {
                let hour = hour.parse::<u8>().map_err(|_| bad())?;
                Hour::new(date, hour).map_err(|e| format!("{}: {e}", bad()))
            }
            Some(_) => Err(bad()),
        }
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dt={}/hour={:02}", self.date, self.hour)
    }
}

impl FromStr for Hour {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_once('/')
            .and_then(|(dt, hour)| Hour::from_segments(dt, hour))
            .ok_or_else(|| format!("{s:?} is not a partition (dt=YYYY-MM-DD/hour=HH)"))
    }
}

impl TryFrom<String> for Hour {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Hour> for String {
    fn from(h: Hour) -> String {
        h.to_string()
    }
}

/// The partitions to replay, both ends inclusive; `None` is open.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourRange {
    pub from: Option<Hour>,
    pub to: Option<Hour>,
}

impl HourRange {
    pub fn contains(&self, h: &Hour) -> bool {
        self.from.as_ref().is_none_or(|f| h >= f) && self.to.as_ref().is_none_or(|t| h <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_whole_days_or_single_hours() {
        let from = Hour::parse_bound("2026-01-01", false).unwrap();
        let to = Hour::parse_bound("2026-01-02", true).unwrap();
        assert_eq!(from.to_string(), "dt=2026-01-01/hour=00");
        assert_eq!(to.to_string(), "dt=2026-01-02/hour=23");
        let h = Hour::parse_bound("2026-01-01T07", true).unwrap();
        assert_eq!(h.to_string(), "dt=2026-01-01/hour=07");
        for bad in [
            "2026-1-1",
            "2026-01-01T7",
            "2026-01-01T24",
            "2026-02-30",
            "yesterday",
        ] {
            assert!(Hour::parse_bound(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn range_is_inclusive_and_ordered_by_time() {
        let h = |s: &str| s.parse::<Hour>().unwrap();
        let r = HourRange {
            from: Some(h("dt=2026-01-01/hour=22")),
            to: Some(h("dt=2026-01-02/hour=01")),
        };
        assert!(!r.contains(&h("dt=2026-01-01/hour=21")));
        assert!(r.contains(&h("dt=2026-01-01/hour=22")));
        assert!(r.contains(&h("dt=2026-01-02/hour=00")));
        assert!(r.contains(&h("dt=2026-01-02/hour=01")));
        assert!(!r.contains(&h("dt=2026-01-02/hour=02")));
        assert!(HourRange::default().contains(&h("dt=1999-12-31/hour=23")));
    }

    #[test]
    fn key_segments_parse_strictly() {
        assert!(Hour::from_segments("dt=2026-01-01", "hour=05").is_some());
        assert!(Hour::from_segments("dt=2026-01-01", "hour=5").is_none());
        assert!(Hour::from_segments("date=2026-01-01", "hour=05").is_none());
        let json = serde_json::to_string(&Hour::new("2026-03-04", 9).unwrap()).unwrap();
        assert_eq!(json, "\"dt=2026-03-04/hour=09\"");
        assert_eq!(serde_json::from_str::<Hour>(&json).unwrap().hour, 9);
    }
}
