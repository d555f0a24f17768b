//! Where objects go (DESIGN.md section 2): Hive-style partitions in UTC and object
//! names derived from the records they hold.
//!
//! ```text
//! raw/<stream>/dt=YYYY-MM-DD/hour=HH/<object>.jsonl.gz
//! curated/orders/dt=YYYY-MM-DD/hour=HH/<object>.parquet
//! curated/order_metrics/dt=YYYY-MM-DD/hour=HH/<object>.parquet
//! errors/<stage>/<error-type>/dt=YYYY-MM-DD/<object>.jsonl.gz
//! <object> = <stream>_<shard>_<first position>_<last position>
//! ```
//!
//! A position is the Kinesis sequence number, with `.<sub>` appended for a user record of
//! a KPL aggregate (sub-sequence number > 0). Names depend only on the records, never on
//! the clock, so writing the same records again overwrites the same object (see
//! `writer.rs` for when the cut is the same after a restart).

use std::cmp::Ordering;
use std::fmt;

use flowline_model::Timestamp;

/// A record's place in its shard: sequence number plus KPL sub-sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    pub sequence_number: String,
    pub sub_sequence_number: u64,
}

impl Position {
    pub fn new(sequence_number: impl Into<String>, sub_sequence_number: u64) -> Self {
        Position {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
        }
    }
}

/// Sequence numbers are decimal strings without leading zeros, longer than 64 bits:
/// compare them as numbers (shorter is smaller), then by sub-sequence number.
impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.sequence_number, &other.sequence_number);
        a.len()
            .cmp(&b.len())
            .then_with(|| a.cmp(b))
            .then_with(|| self.sub_sequence_number.cmp(&other.sub_sequence_number))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sub_sequence_number == 0 {
            f.write_str(&self.sequence_number)
        } else {
            write!(f, "{}.{}", self.sequence_number, self.sub_sequence_number)
        }
    }
}

/// The top-level prefix: a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrefixKind {
    Raw,
    Curated,
    Errors,
}

impl PrefixKind {
    pub const ALL: [PrefixKind; 3] = [PrefixKind::Raw, PrefixKind::Curated, PrefixKind::Errors];

    pub fn as_str(self) -> &'static str {
        match self {
            PrefixKind::Raw => "raw",
            PrefixKind::Curated => "curated",
            PrefixKind::Errors => "errors",
        }
    }
}

/// What a buffer holds, which decides its prefix and file format.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// Records of a raw stream, as received (JSON Lines, gzip).
    Raw { stream: String },
    /// Enriched orders (Parquet).
    CuratedOrders,
    /// Window metrics (Parquet).
    CuratedMetrics,
    /// Dead-letter envelopes (JSON Lines, gzip). `stage` and `error_type` come from
    /// untrusted records: they are reduced to safe path segments here.
    Errors { stage: String, error_type: String },
}

impl Dataset {
    pub fn errors(stage: &str, error_type: &str) -> Dataset {
        Dataset::Errors {
            stage: safe_segment(stage),
            error_type: safe_segment(error_type),
        }
    }

    pub fn raw(stream: &str) -> Dataset {
        Dataset::Raw {
            stream: safe_segment(stream),
        }
    }

    pub fn kind(&self) -> PrefixKind {
        match self {
            Dataset::Raw { .. } => PrefixKind::Raw,
            Dataset::CuratedOrders | Dataset::CuratedMetrics => PrefixKind::Curated,
            Dataset::Errors { .. } => PrefixKind::Errors,
        }
    }

    /// Prefix up to (not including) the partition.
    pub fn prefix(&self) -> String {
        match self {
            Dataset::Raw { stream } => format!("raw/{stream}"),
            Dataset::CuratedOrders => "curated/orders".to_string(),
            Dataset::CuratedMetrics => "curated/order_metrics".to_string(),
            Dataset::Errors { stage, error_type } => format!("errors/{stage}/{error_type}"),
        }
    }

    pub fn extension(&self) -> &'static str {
        match self.kind() {
            PrefixKind::Curated => "parquet",
            PrefixKind::Raw | PrefixKind::Errors => "jsonl.gz",
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self.kind() {
            PrefixKind::Curated => "application/vnd.apache.parquet",
            PrefixKind::Raw | PrefixKind::Errors => "application/x-ndjson",
        }
    }

    /// Errors are partitioned by day only (they are few); the rest by day and hour.
    pub fn partition(&self, time: Timestamp) -> Partition {
        Partition {
            date: time.date_string(),
            hour: match self {
                Dataset::Errors { .. } => None,
                _ => Some(time.hour() as u8),
            },
        }
    }
}

/// A Hive-style partition: `dt=YYYY-MM-DD[/hour=HH]`, UTC.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub date: String,
    pub hour: Option<u8>,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hour {
            Some(h) => write!(f, "dt={}/hour={h:02}", self.date),
            None => write!(f, "dt={}", self.date),
        }
    }
}

/// The object key for records `first..=last` of `stream`/`shard` in `dataset`/`partition`.
pub fn object_key(
    dataset: &Dataset,
    partition: &Partition,
    stream: &str,
    shard: &str,
    first: &Position,
    last: &Position,
) -> String {
    format!(
        "{}/{}/{}_{}_{}_{}.{}",
        dataset.prefix(),
        partition,
        safe_segment(stream),
        safe_segment(shard),
        first,
        last,
        dataset.extension()
    )
}

/// A path segment that cannot escape its place in the key: ASCII letters, digits, `-`,
/// `_` and `.` (not leading, so never `..`), at most 64 characters; anything else
/// becomes `_`, and an empty segment `unknown`.
pub fn safe_segment(s: &str) -> String {
    let out: String = s
        .chars()
        .take(64)
        .enumerate()
        .map(|(i, c)| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            '.' if i > 0 => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() {
        "unknown".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keys_follow_the_design_layout() {
        let t = ts("2024-03-05T07:59:59.999Z");
        let (first, last) = (Position::new("495", 0), Position::new("497", 3));
        let k = |d: &Dataset| {
            object_key(
                d,
                &d.partition(t),
                "sales",
                "shardId-000000000001",
                &first,
                &last,
            )
        };
        assert_eq!(
            k(&Dataset::raw("sales")),
            "raw/sales/dt=2024-03-05/hour=07/sales_shardId-000000000001_495_497.3.jsonl.gz"
        );
        assert_eq!(
            k(&Dataset::CuratedOrders),
            "curated/orders/dt=2024-03-05/hour=07/sales_shardId-000000000001_495_497.3.parquet"
        );
        assert_eq!(
            k(&Dataset::CuratedMetrics),
            "curated/order_metrics/dt=2024-03-05/hour=07/sales_shardId-000000000001_495_497.3.parquet"
        );
        assert_eq!(
            k(&Dataset::errors("aggregator", "late")),
            "errors/aggregator/late/dt=2024-03-05/sales_shardId-000000000001_495_497.3.jsonl.gz"
        );
    }

    #[test]
    fn partitions_are_utc_hours() {
        let d = Dataset::CuratedOrders;
        assert_eq!(
            d.partition(ts("2024-12-31T23:00:00+02:00")).to_string(),
            "dt=2024-12-31/hour=21"
        );
        assert_eq!(
            d.partition(ts("2025-01-01T00:00:00Z")).to_string(),
            "dt=2025-01-01/hour=00"
        );
    }

    #[test]
    fn untrusted_segments_cannot_escape() {
        assert_eq!(safe_segment("../../etc"), "_._.._etc");
        assert_eq!(safe_segment("a/b c"), "a_b_c");
        assert_eq!(safe_segment(""), "unknown");
        assert_eq!(safe_segment(&"x".repeat(100)).len(), 64);
        let d = Dataset::errors("..", "bad/json");
        assert_eq!(d.prefix(), "errors/_./bad_json");
    }

    #[test]
    fn positions_order_numerically() {
        let p = |s: &str, sub| Position::new(s, sub);
        assert!(p("99", 0) < p("100", 0));
        assert!(p("100", 1) > p("100", 0));
        assert!(
            p(
                "49590338271490256608559692538361571095921575989136588898",
                0
            ) > p("4959033827149025660855969253836157109592157598913658889", 9)
        );
        assert_eq!(p("7", 0).to_string(), "7");
        assert_eq!(p("7", 2).to_string(), "7.2");
    }
}
