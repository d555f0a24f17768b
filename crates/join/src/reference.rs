//! Items and promos, held in memory and swapped whole when refreshed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use flowline_model::{Item, Promo};

/// One consistent snapshot of the reference data.
#[derive(Debug, Default)]
pub struct ReferenceData {
    items: HashMap<String, Item>,
    promos: HashMap<String, Promo>,
}

impl ReferenceData {
    /// Later rows win on duplicate ids (as a re-upload of a row would).
    pub fn new(
        items: impl IntoIterator<Item = Item>,
        promos: impl IntoIterator<Item = Promo>,
    ) -> ReferenceData {
        ReferenceData {
            items: items.into_iter().map(|i| (i.item_id.clone(), i)).collect(),
            promos: promos
                .into_iter()
                .map(|p| (p.promo_id.clone(), p))
                .collect(),
        }
    }

    pub fn item(&self, item_id: &str) -> Option<&Item> {
        self.items.get(item_id)
    }

    pub fn promo(&self, promo_id: &str) -> Option<&Promo> {
        self.promos.get(promo_id)
    }

    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    pub fn promo_count(&self) -> usize {
        self.promos.len()
    }
}

/// Shared handle: the refresher calls [`ReferenceHandle::replace`], the join
/// takes a [`ReferenceHandle::snapshot`] per watermark advance. The lock is
/// held only to clone or swap an `Arc`, never while joining.
#[derive(Debug)]
pub struct ReferenceHandle {
    current: RwLock<(u64, Arc<ReferenceData>)>,
}

impl ReferenceHandle {
    pub fn new(data: ReferenceData) -> Arc<ReferenceHandle> {
        Arc::new(ReferenceHandle {
            current: RwLock::new((0, Arc::new(data))),
        })
    }

    /// The current data and its generation (bumped by every replace).
    pub fn snapshot(&self) -> (u64, Arc<ReferenceData>) {
        let g = self.current.read().unwrap_or_else(|p| p.into_inner());
        (g.0, g.1.clone())
    }

    pub fn replace(&self, data: ReferenceData) {
        let mut g = self.current.write().unwrap_or_else(|p| p.into_inner());
        *g = (g.0 + 1, Arc::new(data));
    }
}
