//! One version lookup: cache first, then the store.

use std::sync::Arc;

use flowline_model::Timestamp;

use crate::cache::{Known, VersionCache};
use crate::error::StoreError;
use crate::views::Versioned;

pub(crate) struct Lookup<'a> {
    pub(crate) id: &'a str,
    pub(crate) t: Timestamp,
    pub(crate) upto: Timestamp,
    pub(crate) limit: usize,
    /// Bypass the cache (its knowledge is replaced by the read).
    pub(crate) fresh: bool,
}

/// Version valid at `q.t`: from the cache, else one read of the newest
/// `limit` versions up to `q.upto` (which also warms the cache for later
/// sales), else, when the entity has many versions after `t`, one exact read.
pub(crate) async fn lookup<V, R, F, Fut>(
    cache: &mut VersionCache<V>,
    reads: &mut u64,
    q: Lookup<'_>,
    read: F,
) -> Result<Option<Arc<V>>, StoreError>
where
    V: Versioned + for<'r> From<&'r R>,
    F: Fn(Timestamp, usize) -> Fut,
    Fut: Future<Output = Result<Vec<R>, StoreError>>,
{
    if !q.fresh
        && let Some(hit) = cache.get(q.id, q.t)
    {
        return Ok(hit);
    }
    *reads += 1;
    let rows = read(q.upto, q.limit).await?;
    let known = Known::from_read(rows.iter().map(V::from).collect(), q.limit, q.upto);
    let answer = known.answer(q.t);
    cache.learn(q.id, known);
    if let Some(a) = answer {
        return Ok(a);
    }
    *reads += 1;
    let rows = read(q.t, 1).await?;
    Ok(rows.first().map(|r| Arc::new(V::from(r))))
}
