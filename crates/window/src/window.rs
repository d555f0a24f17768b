//! One window of the operator: its [`Partial`] plus what emission adds
//! (the last revision of every key, whether it was emitted, when it changed).

use flowline_model::{Timestamp, WindowMetric};

use crate::partial::{Partial, Touched};

#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub partial: Partial,
    /// Per dimension, per key id: last revision emitted (0 or missing
    /// before the first). Grown at emission, so the hot path never touches it.
    pub revisions: Vec<Vec<u32>>,
    /// The watermark passed the end and every key was emitted.
    pub emitted: bool,
    /// Checkpoint epoch of the last change.
    pub changed_epoch: u64,
}

impl Window {
    pub fn new(partial: Partial) -> Self {
        Window {
            revisions: vec![Vec::new(); partial.dims.len()],
            partial,
            emitted: false,
            changed_epoch: 0,
        }
    }

    pub fn start(&self) -> i64 {
        self.partial.start
    }

    pub fn end(&self) -> i64 {
        self.partial.end
    }

    /// First emission: every key, sorted by key within each dimension.
    pub fn emit_all(&mut self, out: &mut Vec<WindowMetric>) {
        for dim in 0..self.partial.dims.len() {
            for key in self.partial.sorted_keys(dim) {
                out.push(self.emit(dim, key));
            }
        }
        self.emitted = true;
    }

    /// Re-emission after a late update: the keys the order touched, by dimension.
    pub fn emit_touched(&mut self, touched: &Touched, out: &mut Vec<WindowMetric>) {
        for (dim, &key) in touched.iter().enumerate().take(self.partial.dims.len()) {
            out.push(self.emit(dim, key));
        }
        self.emitted = true;
    }

    /// Current values of every key (revision as last emitted, 0 if never).
    pub fn current(&self, out: &mut Vec<WindowMetric>) {
        for dim in 0..self.partial.dims.len() {
            for key in self.partial.sorted_keys(dim) {
                out.push(self.metric(dim, key, self.revision(dim, key)));
            }
        }
    }

    pub fn revision(&self, dim: usize, key: u32) -> u32 {
        self.revisions[dim].get(key as usize).copied().unwrap_or(0)
    }

    fn emit(&mut self, dim: usize, key: u32) -> WindowMetric {
        let revs = &mut self.revisions[dim];
        if revs.len() <= key as usize {
            revs.resize(key as usize + 1, 0);
        }
        revs[key as usize] += 1;
        let revision = revs[key as usize];
        self.metric(dim, key, revision)
    }

    fn metric(&self, dim: usize, key: u32, revision: u32) -> WindowMetric {
        self.partial
            .metric(dim, key, revision)
            .expect("one partial's totals are bounded when orders are added")
    }

    pub fn heap_bytes(&self) -> usize {
        self.partial.heap_bytes()
            + self
                .revisions
                .iter()
                .map(|r| r.capacity() * 4)
                .sum::<usize>()
    }
}

/// Window bounds are epoch-aligned multiples of the length; clamp the
/// (theoretical) ones past year 9999.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH.saturating_add_millis(ms)
}
