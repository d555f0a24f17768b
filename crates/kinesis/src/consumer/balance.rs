//! Which leases to take: a pure function of what the lease table holds, what this worker
//! observed of it over time, and this worker's identity (the KCL's LeaseTaker algorithm).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;

use super::lease::Lease;

/// Remembers, per lease, the counter last seen and when (by this worker's clock) it last
/// changed. Clocks of different workers are never compared, exactly as in the KCL.
#[derive(Debug, Default)]
pub struct ExpiryTracker {
    seen: HashMap<String, (u64, Instant)>,
}

impl ExpiryTracker {
    /// Records a scan of the table taken at `now`.
    pub fn observe(&mut self, leases: &[Lease], now: Instant, failover: Duration) {
        let mut next = HashMap::with_capacity(leases.len());
        for l in leases {
            let since = match self.seen.get(&l.key) {
                Some(&(counter, since)) if counter == l.counter => since,
                Some(_) => now,
                // First sight: an owned lease counts as renewed now (its owner gets a full
                // failover time to prove it is alive); an unowned one is free anyway.
                None if l.owner.is_some() => now,
                None => now.checked_sub(failover).unwrap_or(now),
            };
            next.insert(l.key.clone(), (l.counter, since));
        }
        self.seen = next;
    }

    pub fn is_expired(&self, key: &str, now: Instant, failover: Duration) -> bool {
        self.seen
            .get(key)
            .is_some_and(|&(_, since)| now.saturating_duration_since(since) > failover)
    }
}

/// What the planner needs to know about one lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub key: String,
    pub owner: Option<String>,
    /// Expired by this worker's observation.
    pub expired: bool,
    /// Checkpointed at SHARD_END: nothing left to read, not balanced.
    pub finished: bool,
}

impl LeaseView {
    pub fn of(lease: &Lease, expired: bool) -> Self {
        Self {
            key: lease.key.clone(),
            owner: lease.owner.clone(),
            expired,
            finished: lease.is_finished(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeReason {
    /// No owner (new or released lease).
    Unowned,
    /// The owner stopped renewing it (or it names this worker but this worker does not run it,
    /// e.g. after a restart with a fixed worker id).
    Expired,
    /// Taken from the most loaded worker to even out the load.
    Steal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    pub key: String,
    pub reason: TakeReason,
}

pub struct PlanInput<'a> {
    pub leases: &'a [LeaseView],
    pub worker: &'a str,
    /// Leases this worker is running now.
    pub held: &'a HashSet<String>,
    pub max_leases_per_worker: usize,
    pub max_leases_to_steal: usize,
}

/// The leases to take this round.
///
/// Fair share = ceil(active leases / workers), where workers are the owners of live leases
/// plus this worker, capped by `max_leases_per_worker`. Free and expired leases are taken
/// first (shuffled, so competing workers spread out); only when there are none, up to
/// `max_leases_to_steal` are stolen from the most loaded worker if it holds more than the fair
/// share (or as many, when this worker needs more than one).
pub fn plan(input: &PlanInput<'_>, rng: &mut impl Rng) -> Vec<Take> {
    let active: Vec<&LeaseView> = input.leases.iter().filter(|l| !l.finished).collect();
    if active.is_empty() {
        return Vec::new();
    }
    let mut available = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    counts.insert(input.worker, 0);
    for l in &active {
        let mine = l.owner.as_deref() == Some(input.worker);
        match &l.owner {
            None => available.push(Take {
                key: l.key.clone(),
                reason: TakeReason::Unowned,
            }),
            Some(_) if mine && input.held.contains(&l.key) => {
                *counts.entry(input.worker).or_default() += 1
            }
            Some(_) if l.expired || mine => available.push(Take {
                key: l.key.clone(),
                reason: TakeReason::Expired,
            }),
            Some(o) => *counts.entry(o.as_str()).or_default() += 1,
        }
    }
    let workers = counts.len();
    let target = if workers >= active.len() {
        1
    } else {
        active.len().div_ceil(workers)
    };
    let target = target.min(input.max_leases_per_worker);
    let mine = counts[input.worker];
    let Some(needed) = target.checked_sub(mine).filter(|n| *n > 0) else {
        return Vec::new();
    };

    if !available.is_empty() {
        available.shuffle(rng);
        available.truncate(needed);
        return available;
    }

    // Most loaded other worker; ties broken by name so the decision is stable.
    let Some((&victim, &most)) = counts
        .iter()
        .filter(|(w, _)| **w != input.worker)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
    else {
        return Vec::new();
    };
    if most < target {
        return Vec::new();
    }
    let mut to_steal = needed.min(most - target);
    if needed > 1 && to_steal == 0 {
        to_steal = 1;
    }
    to_steal = to_steal.min(input.max_leases_to_steal);
    let mut candidates: Vec<Take> = active
        .iter()
        .filter(|l| l.owner.as_deref() == Some(victim))
        .map(|l| Take {
            key: l.key.clone(),
            reason: TakeReason::Steal,
        })
        .collect();
    candidates.shuffle(rng);
    candidates.truncate(to_steal);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn view(key: &str, owner: Option<&str>) -> LeaseView {
        LeaseView {
            key: key.into(),
            owner: owner.map(Into::into),
            expired: false,
            finished: false,
        }
    }

    fn run(leases: &[LeaseView], worker: &str, held: &[&str], steal: usize) -> Vec<Take> {
        let held: HashSet<String> = held.iter().map(|s| s.to_string()).collect();
        let input = PlanInput {
            leases,
            worker,
            held: &held,
            max_leases_per_worker: 100,
            max_leases_to_steal: steal,
        };
        plan(&input, &mut StdRng::seed_from_u64(7))
    }

    #[test]
    fn takes_free_leases_up_to_fair_share() {
        let leases: Vec<_> = (0..4).map(|i| view(&format!("s{i}"), None)).collect();
        // Alone: everything.
        assert_eq!(run(&leases, "a", &[], 1).len(), 4);
        // Another worker is alive with one lease: fair share is 2.
        let mut leases = leases;
        leases[0].owner = Some("b".into());
        let takes = run(&leases, "a", &[], 1);
        assert_eq!(takes.len(), 2);
        assert!(
            takes
                .iter()
                .all(|t| t.reason == TakeReason::Unowned && t.key != "s0")
        );
    }

    #[test]
    fn expired_leases_are_taken_and_their_owner_does_not_count() {
        let mut leases: Vec<_> = (0..4)
            .map(|i| view(&format!("s{i}"), Some(if i < 2 { "a" } else { "b" })))
            .collect();
        leases[2].expired = true;
        leases[3].expired = true;
        let takes = run(&leases, "a", &["s0", "s1"], 1);
        // b owns only expired leases: a is the only worker, fair share 4.
        let mut keys: Vec<_> = takes.iter().map(|t| t.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["s2", "s3"]);
        assert!(takes.iter().all(|t| t.reason == TakeReason::Expired));
    }

    #[test]
    fn steals_a_bounded_number_from_the_most_loaded_worker() {
        let leases: Vec<_> = (0..6)
            .map(|i| view(&format!("s{i}"), Some(if i < 5 { "b" } else { "c" })))
            .collect();
        // 3 workers, 6 leases: fair share 2; a needs 2 but steals at most 1 per round, from b.
        let takes = run(&leases, "a", &[], 1);
        assert_eq!(takes.len(), 1);
        assert_eq!(takes[0].reason, TakeReason::Steal);
        assert!(leases[..5].iter().any(|l| l.key == takes[0].key));
        assert_eq!(run(&leases, "a", &[], 5).len(), 2);
    }

    #[test]
    fn balanced_state_is_stable() {
        // 3 leases, 2 workers: fair share 2; b holds 2, a holds 1: nothing to do.
        let leases = vec![
            view("s0", Some("a")),
            view("s1", Some("b")),
            view("s2", Some("b")),
        ];
        assert!(run(&leases, "a", &["s0"], 1).is_empty());
        // 4 leases over 3 workers (2,2,0): the empty worker steals one (needs 2, none over target).
        let leases = vec![
            view("s0", Some("a")),
            view("s1", Some("a")),
            view("s2", Some("b")),
            view("s3", Some("b")),
        ];
        let takes = run(&leases, "c", &[], 1);
        assert_eq!(takes.len(), 1);
        // Then (2,1,1): stable.
        let leases = vec![
            view("s0", Some("a")),
            view("s1", Some("a")),
            view("s2", Some("b")),
            view("s3", Some("c")),
        ];
        assert!(run(&leases, "c", &["s3"], 1).is_empty());
        assert!(run(&leases, "b", &["s2"], 1).is_empty());
    }

    #[test]
    fn finished_leases_are_ignored_and_own_unheld_leases_are_retaken() {
        let mut leases = vec![
            view("s0", Some("a")),
            view("s1", None),
            view("s2", Some("b")),
        ];
        leases[1].finished = true;
        // Lease s0 names a but a does not run it (restarted with the same id): take it back.
        let takes = run(&leases, "a", &[], 1);
        assert_eq!(
            takes,
            vec![Take {
                key: "s0".into(),
                reason: TakeReason::Expired
            }]
        );
    }

    #[test]
    fn respects_max_leases_per_worker() {
        let leases: Vec<_> = (0..10).map(|i| view(&format!("s{i}"), None)).collect();
        let held = HashSet::new();
        let input = PlanInput {
            leases: &leases,
            worker: "a",
            held: &held,
            max_leases_per_worker: 3,
            max_leases_to_steal: 1,
        };
        assert_eq!(plan(&input, &mut StdRng::seed_from_u64(1)).len(), 3);
    }

    fn lease(key: &str, owner: Option<&str>, counter: u64) -> Lease {
        use super::super::position::Checkpoint;
        Lease {
            key: key.into(),
            stream: "s".into(),
            shard_id: key.into(),
            owner: owner.map(Into::into),
            counter,
            checkpoint: Checkpoint::TrimHorizon,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: vec![],
            hash_key_range: None,
        }
    }

    #[test]
    fn expiry_follows_counter_changes_on_the_local_clock() {
        let failover = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut tr = ExpiryTracker::default();
        tr.observe(
            &[lease("a", Some("w"), 1), lease("b", None, 0)],
            t0,
            failover,
        );
        // An owned lease seen for the first time gets a full failover time.
        assert!(!tr.is_expired("a", t0 + Duration::from_secs(10), failover));
        assert!(tr.is_expired("b", t0 + Duration::from_millis(1), failover));
        // The counter moved at t0+5: expiry restarts from there.
        tr.observe(
            &[lease("a", Some("w"), 2)],
            t0 + Duration::from_secs(5),
            failover,
        );
        assert!(!tr.is_expired("a", t0 + Duration::from_secs(14), failover));
        tr.observe(
            &[lease("a", Some("w"), 2)],
            t0 + Duration::from_secs(14),
            failover,
        );
        assert!(tr.is_expired("a", t0 + Duration::from_secs(16), failover));
        // Leases that disappeared are forgotten.
        assert!(!tr.is_expired("b", t0 + Duration::from_secs(100), failover));
    }
}
