//! Bad archive lines go to `errors/replay/<error-type>/dt=YYYY-MM-DD/<object>.jsonl.gz`
//! as dead-letter envelopes (DESIGN.md section 4) with the reason and the exact bytes.
//!
//! One error object per (error type, archive object), named after the archive object:
//! a resumed or repeated run rewrites the same objects instead of adding copies. The
//! day is the archive partition's, so errors sit next to the data they came from.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use flowline_lake::encode::encode_dead_letters;
use flowline_lake::layout::safe_segment;
use flowline_model::{DeadLetter, RecordSource, Timestamp};

use super::archive::BadLine;
use super::hour::Hour;
use super::options::Source;

/// `stage` on the envelopes, and the prefix under `errors/`.
pub const STAGE: &str = "replay";

/// The shard an archive object came from: its name is `<stream>_<shard>_<first>_<last>`
/// (see `flowline_lake::layout`); empty when the name does not follow that pattern.
fn shard_of(stream: &str, object_key: &str) -> String {
    let name = object_key.rsplit('/').next().unwrap_or_default();
    name.strip_prefix(&format!("{}_", safe_segment(stream)))
        .and_then(|rest| rest.split('_').next())
        .unwrap_or_default()
        .to_string()
}

/// The error objects for the bad lines of one hour: key → envelopes.
pub fn error_objects(
    hour: &Hour,
    bad: &[BadLine],
    sources: &[Source],
    now: Timestamp,
) -> BTreeMap<String, Vec<DeadLetter>> {
    let mut out: BTreeMap<String, Vec<DeadLetter>> = BTreeMap::new();
    for b in bad {
        let source = &sources[b.source];
        let name = b.object.rsplit('/').next().unwrap_or_default();
        let key = format!(
            "errors/{STAGE}/{}/dt={}/{name}",
            safe_segment(b.error_type),
            hour.date
        );
        let origin = RecordSource {
            stream: source.stream.clone(),
            shard_id: shard_of(&source.stream, &b.object),
            // Lines carry no sequence number of their own; the reason names the object
            // and line instead.
            sequence_number: String::new(),
        };
        let place = if b.line_no == 0 {
            format!("{}: ", b.object)
        } else {
            format!("{} line {}: ", b.object, b.line_no)
        };
        out.entry(key).or_default().push(DeadLetter::new(
            STAGE,
            b.error_type,
            &format!("{place}{}", b.reason),
            &origin,
            &b.bytes,
            now,
        ));
    }
    out
}

/// Uploads the error objects (an existing object of the same name is replaced).
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: BTreeMap<String, Vec<DeadLetter>>,
) -> anyhow::Result<usize> {
    let n = objects.len();
    for (key, letters) in objects {
        let body = encode_dead_letters(&letters, 6)?;
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("writing s3://{bucket}/{key}"))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowline_model::StreamKind;

    use super::*;

    #[test]
    fn bad_lines_group_by_type_and_object_with_reason_and_bytes() {
        let sources = vec![Source {
            kind: StreamKind::Sales,
            stream: "sales".into(),
            target: "sales".into(),
        }];
        let object: Arc<str> =
            "raw/sales/dt=2026-01-01/hour=03/sales_shardId-000000000001_10_20.jsonl.gz".into();
        let bad = |line_no, error_type, bytes: &[u8]| BadLine {
            source: 0,
            object: object.clone(),
            line_no,
            error_type,
            reason: "why".into(),
            bytes: bytes.to_vec(),
        };
        let hour: Hour = "dt=2026-01-01/hour=03".parse().unwrap();
        let now = "2026-02-01T00:00:00Z".parse().unwrap();
        let out = error_objects(
            &hour,
            &[
                bad(2, "bad_json", b"nope"),
                bad(5, "missing_field", b"{}"),
                bad(7, "bad_json", b"x"),
            ],
            &sources,
            now,
        );
        let keys: Vec<&String> = out.keys().collect();
        assert_eq!(
            keys,
            [
                "errors/replay/bad_json/dt=2026-01-01/sales_shardId-000000000001_10_20.jsonl.gz",
                "errors/replay/missing_field/dt=2026-01-01/sales_shardId-000000000001_10_20.jsonl.gz"
            ]
        );
        let first = &out[keys[0]];
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].stage, "replay");
        assert_eq!(first[0].error_type, "bad_json");
        assert_eq!(first[0].source_stream, "sales");
        assert_eq!(first[0].shard_id, "shardId-000000000001");
        assert_eq!(first[0].payload().unwrap(), b"nope");
        assert!(
            first[0].reason.ends_with("line 2: why"),
            "{}",
            first[0].reason
        );
    }
}
