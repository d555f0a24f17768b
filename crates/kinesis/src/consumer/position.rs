//! Checkpoint values (KCL "extended sequence numbers") and their order.

use std::cmp::Ordering;
use std::fmt;

/// KCL sentinels stored in the lease table's `checkpoint` attribute.
pub const TRIM_HORIZON: &str = "TRIM_HORIZON";
pub const LATEST: &str = "LATEST";
pub const AT_TIMESTAMP: &str = "AT_TIMESTAMP";
pub const SHARD_END: &str = "SHARD_END";

/// A lease's checkpoint: an initial-position sentinel, a record position (sequence number plus
/// KPL sub-sequence number), or SHARD_END once every record of a closed shard is processed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    AtTimestamp,
    Sequence {
        sequence_number: String,
        sub_sequence_number: u64,
    },
    ShardEnd,
}

impl Checkpoint {
    pub fn sequence(sequence_number: impl Into<String>, sub_sequence_number: u64) -> Self {
        Self::Sequence {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
        }
    }

    /// From the lease table's `checkpoint` and `checkpointSubSequenceNumber` attributes.
    pub fn from_attributes(checkpoint: &str, sub_sequence_number: u64) -> Option<Self> {
        Some(match checkpoint {
            TRIM_HORIZON => Self::TrimHorizon,
            LATEST => Self::Latest,
            AT_TIMESTAMP => Self::AtTimestamp,
            SHARD_END => Self::ShardEnd,
            s if is_sequence_number(s) => Self::sequence(s, sub_sequence_number),
            _ => return None,
        })
    }

    /// The `checkpoint` attribute value.
    pub fn as_attribute(&self) -> &str {
        match self {
            Self::TrimHorizon => TRIM_HORIZON,
            Self::Latest => LATEST,
            Self::AtTimestamp => AT_TIMESTAMP,
            Self::ShardEnd => SHARD_END,
            Self::Sequence {
                sequence_number, ..
            } => sequence_number,
        }
    }

    pub fn sub_sequence_number(&self) -> u64 {
        match self {
            Self::Sequence {
                sub_sequence_number,
                ..
            } => *sub_sequence_number,
            _ => 0,
        }
    }

    pub fn is_sentinel_start(&self) -> bool {
        matches!(self, Self::TrimHorizon | Self::Latest | Self::AtTimestamp)
    }

    /// Progress order: every initial sentinel < any record position < SHARD_END; positions by
    /// sequence number (numerically: up to 56 decimal digits, beyond u128) then sub-sequence.
    /// Two different initial sentinels compare equal (neither is further than the other).
    pub fn progress_cmp(&self, other: &Self) -> Ordering {
        fn rank(c: &Checkpoint) -> u8 {
            match c {
                Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => 0,
                Checkpoint::Sequence { .. } => 1,
                Checkpoint::ShardEnd => 2,
            }
        }
        match (self, other) {
            (
                Self::Sequence {
                    sequence_number: a,
                    sub_sequence_number: sa,
                },
                Self::Sequence {
                    sequence_number: b,
                    sub_sequence_number: sb,
                },
            ) => compare_sequence_numbers(a, b).then(sa.cmp(sb)),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// Whether `self` is strictly further than `other`.
    pub fn is_after(&self, other: &Self) -> bool {
        self.progress_cmp(other) == Ordering::Greater
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sequence {
                sequence_number,
                sub_sequence_number,
            } => {
                write!(f, "{sequence_number}/{sub_sequence_number}")
            }
            other => f.write_str(other.as_attribute()),
        }
    }
}

pub(crate) fn is_sequence_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Numeric order of two decimal sequence numbers without parsing them.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_positions() {
        let small = Checkpoint::sequence("9", 0);
        let big = Checkpoint::sequence(
            "49680441071162798797634266923187370256899908164940464130",
            0,
        );
        let big_sub = Checkpoint::sequence(
            "49680441071162798797634266923187370256899908164940464130",
            3,
        );
        assert!(big.is_after(&small));
        assert!(big_sub.is_after(&big));
        assert!(!big.is_after(&big));
        assert!(small.is_after(&Checkpoint::TrimHorizon));
        assert!(Checkpoint::ShardEnd.is_after(&big_sub));
        assert!(!Checkpoint::Latest.is_after(&Checkpoint::TrimHorizon));
        assert_eq!(compare_sequence_numbers("0012", "12"), Ordering::Equal);
        assert_eq!(compare_sequence_numbers("100", "99"), Ordering::Greater);
    }

    #[test]
    fn attribute_round_trip() {
        for c in [
            Checkpoint::TrimHorizon,
            Checkpoint::Latest,
            Checkpoint::AtTimestamp,
            Checkpoint::ShardEnd,
            Checkpoint::sequence("123", 7),
        ] {
            assert_eq!(
                Checkpoint::from_attributes(c.as_attribute(), c.sub_sequence_number()),
                Some(c)
            );
        }
        assert_eq!(Checkpoint::from_attributes("garbage", 0), None);
    }
}
