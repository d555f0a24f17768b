//! Per-test names (everything under one `flowctl bootstrap --prefix`) and the TOML file
//! each consuming service runs with.
//!
//! The timings are shorter than the defaults so a test finishes in a minute or two; the
//! semantics are the defaults' except for the window length (see [`WINDOW_MS`]).

/// Window length the aggregator runs with in these tests. 10 s instead of the default 1 min:
/// the last window closes when the wall clock passes its end (DESIGN.md: idle shards let the
/// watermark follow the wall clock), so a shorter window bounds how long a test waits. The
/// recomputation uses the same length.
pub const WINDOW_MS: i64 = 10_000;
/// The joiner's join timeout here; a partial order's `enriched_at` is `event_time` plus this.
pub const JOIN_TIMEOUT_MS: i64 = 5_000;

/// Every name of one test's environment.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.prefix)
    }

    /// The lease application of `service` (its table is `<application>-leases`, the name
    /// `flowctl bootstrap --prefix` creates and `flowctl status --prefix` reads).
    pub fn application(&self, service: &str) -> String {
        format!("{}{service}", self.prefix)
    }

    pub fn bucket(&self) -> String {
        format!("{}analytics-lake", self.prefix)
    }

    /// Alias of the orders indices. Not under the shared templates' `orders-*` pattern, so
    /// the indexer's own template for this name applies.
    pub fn orders_index(&self) -> String {
        format!("{}orders", self.prefix)
    }

    pub fn metrics_index(&self) -> String {
        format!("{}order-metrics", self.prefix)
    }
}

/// The Kinesis producer inside a service: the emulator can take longer than the default 6 s
/// per PutRecords on a loaded machine, and a record given up on fails the service's
/// delivery; these budgets only matter when the machine is slow.
pub const KINESIS: &str = r#"[kinesis]
linger = "20ms"
request_timeout = "30s"
record_ttl = "5m"
"#;

/// Lease timings shared by every consumer: quick failover so a killed copy's shards move on
/// within seconds.
fn consumer(names: &Names, service: &str) -> String {
    format!(
        r#"[consumer]
application_name = "{app}"
failover_time = "3s"
take_interval = "1s"
shard_sync_interval = "5s"
{extra}
[consumer.polling]
idle_time_between_reads = "200ms"
"#,
        app = names.application(service),
        extra = match service {
            "aggregator" => format!("streams = [{:?}]", names.stream("orders-enriched")),
            "archiver" => {
                let all: Vec<String> = RAW_AND_DERIVED
                    .iter()
                    .map(|s| format!("{:?}", names.stream(s)))
                    .collect();
                // The default LATEST would skip whatever was put before the lease was taken.
                format!(
                    "streams = [{}]\ninitial_position = \"TRIM_HORIZON\"",
                    all.join(", ")
                )
            }
            _ => String::new(),
        }
    )
}

/// Every stream, in the archiver's `[streams]` key order.
pub const RAW_AND_DERIVED: [&str; 6] = [
    "customers",
    "addresses",
    "sales",
    "orders-enriched",
    "order-metrics",
    "dead-letters",
];

pub fn joiner(names: &Names) -> String {
    format!(
        r#"{consumer}
[streams]
customers = {customers:?}
addresses = {addresses:?}
sales = {sales:?}

[output]
stream = {output:?}

[dead_letters]
stream = {dead_letters:?}

[state]
table = {state:?}

[reference]
bucket = {bucket:?}

[watermark]
idle_timeout = "3s"

[join]
join_timeout = "{JOIN_TIMEOUT_MS}ms"

[emit]
interval = "200ms"


{KINESIS}
[shutdown]
drain_timeout = "20s"
"#,
        consumer = consumer(names, "enrichment-joiner"),
        customers = names.stream("customers"),
        addresses = names.stream("addresses"),
        sales = names.stream("sales"),
        output = names.stream("orders-enriched"),
        dead_letters = names.stream("dead-letters"),
        state = names.stream("enrichment-joiner-state"),
        bucket = names.bucket(),
    )
}

pub fn aggregator(names: &Names) -> String {
    format!(
        r#"{consumer}
[output]
stream = {output:?}
dead_letters = {dead_letters:?}


{KINESIS}
[watermarks]
idle_timeout = "3s"

[state]
table = {state:?}
create_table = false
emit_interval = "300ms"
publish_interval = "300ms"

[windows]
length = "{WINDOW_MS}ms"
# The aggregator runs long before the first order exists, so the wall-clock watermark of
# its idle input has passed the first windows by the time their orders arrive: they are
# counted as late updates. A lateness longer than any test keeps every order in its window
# (none may be dead-lettered as late; the verification checks that).
allowed_lateness = "10m"

[shutdown]
drain_timeout = "20s"
"#,
        consumer = consumer(names, "aggregator"),
        output = names.stream("order-metrics"),
        dead_letters = names.stream("dead-letters"),
        state = names.stream("aggregator-state"),
    )
}

pub fn indexer(names: &Names) -> String {
    format!(
        r#"{consumer}
[input]
orders = {orders:?}
metrics = {metrics:?}

[dead_letters]
stream = {dead_letters:?}

[indices]
orders = {orders_index:?}
order_metrics = {metrics_index:?}

[templates]
replicas = 0

[bulk]
flush_interval = "200ms"
max_backoff = "1s"


{KINESIS}
[shutdown]
drain_timeout = "20s"
"#,
        consumer = consumer(names, "indexer"),
        orders = names.stream("orders-enriched"),
        metrics = names.stream("order-metrics"),
        dead_letters = names.stream("dead-letters"),
        orders_index = names.orders_index(),
        metrics_index = names.metrics_index(),
    )
}

pub fn archiver(names: &Names) -> String {
    let mut streams = String::new();
    for s in RAW_AND_DERIVED {
        streams.push_str(&format!(
            "{} = {:?}\n",
            s.replace('-', "_"),
            names.stream(s)
        ));
    }
    format!(
        r#"{consumer}
[streams]
{streams}
[lake]
bucket = {bucket:?}

[lake.buffer]
interval = "3s"
wall_clock_grace = "1s"

[shutdown]
drain_timeout = "20s"
"#,
        consumer = consumer(names, "archiver"),
        bucket = names.bucket(),
    )
}
