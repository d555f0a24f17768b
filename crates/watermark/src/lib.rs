//! Event-time watermarks (DESIGN.md section 4), shared by the joiner, the
//! aggregator and the rebuild.
//!
//! - A shard's watermark is the greatest event time it has delivered minus
//!   the allowed out-of-orderness.
//! - A set of shards (one stream or several) has the minimum over its active
//!   shards. A shard that has been caught up (`MillisBehindLatest` = 0) with
//!   empty reads for the idle timeout stops holding it back; when every shard
//!   is idle it follows the wall clock minus the out-of-orderness. A closed
//!   shard keeps counting until its children are known.
//! - What is published never goes backwards ([`Monotonic`]).
//!
//! [`WatermarkTracker`] holds the state of the shards one copy owns and
//! produces the [`ShardWatermark`] entries it publishes (in DynamoDB, after
//! the state derived from those records is durable). [`global_watermark`]
//! is the one rule, a pure function, used both locally and over the entries
//! every copy published. Time is always an argument (`now`); [`Clock`] is
//! for services to obtain it.

mod clock;
mod config;
mod global;
mod shard;
mod tracker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::WatermarkConfig;
pub use global::{Monotonic, global_watermark, retired_shards};
pub use shard::{ShardKey, ShardWatermark};
pub use tracker::{ShardState, TrackerSnapshot, WatermarkTracker};
