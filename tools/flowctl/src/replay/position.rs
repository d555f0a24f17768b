//! The resumable position: a small JSON file naming the last record of the acknowledged
//! prefix of the replay order.
//!
//! Why a file and not a DynamoDB item: a replay is one operator command run from one
//! place; a file needs no table, can be read and edited by hand, survives the stack
//! being rebuilt (disaster recovery is when replays happen), and an atomic rename makes
//! every write all-or-nothing. Where the command runs on ephemeral machines, keep the
//! file on a volume that outlives them.
//!
//! The file also holds the [`Plan`] it belongs to: a position means nothing for another
//! bucket, stream set, target or range, so such a run is refused instead of skipping the
//! wrong records.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use flowline_model::Timestamp;
use serde::{Deserialize, Serialize};

use super::options::Plan;
use super::order::SortKey;

const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub version: u32,
    pub plan: Plan,
    /// The last record of the acknowledged prefix: it and everything before it in the
    /// replay order is on the target streams. `None` before the first acknowledgement.
    pub acked: Option<SortKey>,
    /// Records acknowledged over all runs of this plan.
    pub acked_records: u64,
    /// The last run went through every record it found (informational: a later run
    /// still looks for hours archived since).
    pub finished: bool,
    pub updated_at: Timestamp,
}

/// The position of one plan, and where it is kept.
#[derive(Debug)]
pub struct PositionFile {
    path: PathBuf,
    pub position: Position,
}

impl PositionFile {
    /// The saved position of `plan`, or a fresh one when there is none (or `restart`).
    pub fn open(path: &Path, plan: &Plan, restart: bool) -> anyhow::Result<PositionFile> {
        let fresh = || PositionFile {
            path: path.to_path_buf(),
            position: Position {
                version: VERSION,
                plan: plan.clone(),
                acked: None,
                acked_records: 0,
                finished: false,
                updated_at: now(),
            },
        };
        if restart {
            return Ok(fresh());
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let position: Position = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a replay position file", path.display()))?;
        if position.version != VERSION {
            bail!(
                "{}: position file version {} (this flowctl writes {VERSION})",
                path.display(),
                position.version
            );
        }
        if &position.plan != plan {
            bail!(
                "{} belongs to another replay (bucket, streams, targets or range differ): {}; \
                 use another --position, or --restart to start this one from the beginning",
                path.display(),
                serde_json::to_string(&position.plan).unwrap_or_default()
            );
        }
        Ok(PositionFile {
            path: path.to_path_buf(),
            position,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `key` as acknowledged: the caller guarantees every record before it is.
    pub fn advance(&mut self, key: SortKey) {
        self.position.acked = Some(key);
        self.position.acked_records += 1;
        self.position.finished = false;
    }

    /// Writes the file atomically: a temporary file beside it, synced, then renamed.
    pub fn save(&mut self) -> anyhow::Result<()> {
        self.position.updated_at = now();
        let json = serde_json::to_vec_pretty(&self.position)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().with_context(|| format!("writing {}", self.path.display()))
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use flowline_model::StreamKind;

    use super::*;
    use crate::replay::hour::HourRange;
    use crate::replay::options::Source;

    fn plan(bucket: &str) -> Plan {
        Plan {
            bucket: bucket.into(),
            sources: vec![Source {
                kind: StreamKind::Sales,
                stream: "sales".into(),
                target: "sales-2".into(),
            }],
            range: HourRange::default(),
        }
    }

    fn key(line: &str) -> SortKey {
        SortKey {
            hour: "dt=2026-01-01/hour=00".parse().unwrap(),
            event_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            kind: StreamKind::Sales,
            stream: "sales".into(),
            line: line.into(),
        }
    }

    #[test]
    fn a_saved_position_is_resumed_for_the_same_plan_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos.json");
        let mut f = PositionFile::open(&path, &plan("a"), false).unwrap();
        assert_eq!(f.position.acked, None);
        f.advance(key("1"));
        f.advance(key("2"));
        f.save().unwrap();

        let again = PositionFile::open(&path, &plan("a"), false).unwrap();
        assert_eq!(again.position.acked, Some(key("2")));
        assert_eq!(again.position.acked_records, 2);

        let err = PositionFile::open(&path, &plan("b"), false).unwrap_err();
        assert!(err.to_string().contains("another replay"), "{err}");
        let restarted = PositionFile::open(&path, &plan("b"), true).unwrap();
        assert_eq!(restarted.position.acked, None);

        std::fs::write(&path, "garbage").unwrap();
        assert!(PositionFile::open(&path, &plan("a"), false).is_err());
    }
}
