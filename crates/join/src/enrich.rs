//! The join rules of DESIGN.md section 4 as one pure function.

use flowline_model::{
    DiscountPct, EnrichedOrder, JoinStatus, Missing, Promo, Sale, Timestamp, order_amounts,
};

use crate::reference::ReferenceData;
use crate::views::{AddressView, CustomerView};

/// What a sale references, resolved at its `event_time`.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    /// The customer version valid at `event_time`.
    pub customer: Option<&'a CustomerView>,
    /// The version, valid at `event_time`, of the address the chosen
    /// customer version names.
    pub address: Option<&'a AddressView>,
}

/// The promo that applies, if any. `Err(())` when `promo_id` names no promo
/// at all (missing); `Ok(None)` when it names one that does not apply (other
/// item, or not active at `event_time`: not missing).
fn applicable_promo<'r>(sale: &Sale, refs: &'r ReferenceData) -> Result<Option<&'r Promo>, ()> {
    let Some(id) = sale.promo_id.as_deref() else {
        return Ok(None);
    };
    let promo = refs.promo(id).ok_or(())?;
    Ok(promo
        .applies_to(&sale.item_id, sale.event_time)
        .then_some(promo))
}

/// Referenced but not joinable, in DESIGN's order. A missing customer means
/// the address is unknown, so it is not also listed.
pub fn missing(sale: &Sale, r: Resolved<'_>, refs: &ReferenceData) -> Vec<Missing> {
    let mut m = Vec::new();
    if r.customer.is_none() {
        m.push(Missing::Customer);
    } else if r.address.is_none() {
        m.push(Missing::Address);
    }
    if refs.item(&sale.item_id).is_none() {
        m.push(Missing::Item);
    }
    if applicable_promo(sale, refs).is_err() {
        m.push(Missing::Promo);
    }
    m
}

/// The enriched order (takes the sale to move its strings into the order).
/// Panics only if the sale's amounts leave the money range, which
/// [`crate::JoinCore::add_sale`] refuses up front.
pub fn enrich(
    sale: Sale,
    r: Resolved<'_>,
    refs: &ReferenceData,
    enriched_at: Timestamp,
) -> EnrichedOrder {
    let missing = missing(&sale, r, refs);
    enrich_with(sale, r, refs, missing, enriched_at)
}

/// [`enrich`] with `missing` already computed by [`missing`] for the same
/// inputs (the core needs it first to decide whether to emit).
pub(crate) fn enrich_with(
    sale: Sale,
    r: Resolved<'_>,
    refs: &ReferenceData,
    missing: Vec<Missing>,
    enriched_at: Timestamp,
) -> EnrichedOrder {
    let item = refs.item(&sale.item_id);
    let promo = applicable_promo(&sale, refs).ok().flatten();
    let discount_pct = promo.map_or(DiscountPct::ZERO, |p| p.discount_pct);
    let amounts = order_amounts(sale.quantity, sale.unit_price, discount_pct)
        .expect("sale amounts are checked on add_sale");
    let c = r.customer;
    let a = r.address;
    EnrichedOrder {
        order_id: sale.sale_id,
        event_time: sale.event_time,
        customer_id: sale.customer_id,
        customer_segment: c.map(|c| c.segment().to_owned()),
        email_sha256: c.map(|c| c.email_sha256().to_owned()),
        address_id: c.map(|c| c.address_id().to_owned()),
        city: a.map(|a| a.city().to_owned()),
        state: a.map(|a| a.state().to_owned()),
        postcode: a.map(|a| a.postcode().to_owned()),
        country: a.map(|a| a.country().to_owned()),
        location: a.map(|a| a.location),
        item_id: sale.item_id,
        item_name: item.map(|i| i.name.clone()),
        category: item.map(|i| i.category.clone()),
        brand: item.map(|i| i.brand.clone()),
        promo_id: promo.map(|p| p.promo_id.clone()),
        discount_pct,
        quantity: sale.quantity,
        unit_price: sale.unit_price,
        gross_amount: amounts.gross,
        discount_amount: amounts.discount,
        net_amount: amounts.net,
        join_status: if missing.is_empty() {
            JoinStatus::Complete
        } else {
            JoinStatus::Partial
        },
        missing,
        enriched_at,
    }
}
