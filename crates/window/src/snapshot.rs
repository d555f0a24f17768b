//! Checkpoint format: one small operator item plus one item per open window.
//!
//! A window's item holds everything needed to continue exactly where it
//! was: the order ids seen (dedup), the interned customers, and per key the
//! totals, the customer ids and the last revision emitted. It is JSON
//! compressed with deflate (ids compress well); at high rates a window can
//! still outgrow a 400 KB DynamoDB item, so [`WindowSnapshot::encode_parts`]
//! splits the bytes into parts of a chosen size, written together and joined
//! back in order by [`WindowSnapshot::decode_parts`].
//!
//! The body of a window item is its [`Partial`]; a service keeping one
//! partial per shard stores exactly that body ([`Partial::encode`],
//! [`WindowSpec::decode_partial`]), without the operator's revisions.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flowline_model::{Dimension, MAX_CENTS, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hashing::IdSet;
use crate::interner::Interner;
use crate::partial::{Acc, DimState, Partial};
use crate::spec::WindowSpec;
use crate::window::{Window, ts};

/// Version of every item format; bumped on any incompatible change
/// (2: partials, shared with per-shard state, and revisions apart).
const FORMAT: u32 = 2;

/// Largest decoded window item accepted (guards against corrupt input).
const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Operator-wide state: the watermark and the settings the windows were
/// built under. Small; store it with the lease checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSnapshot {
    format: u32,
    window_length_ms: i64,
    dimensions: Vec<Dimension>,
    watermark: Option<Timestamp>,
}

impl OperatorSnapshot {
    pub(crate) fn new(
        window_length_ms: i64,
        dimensions: Vec<Dimension>,
        watermark: Option<Timestamp>,
    ) -> Self {
        Self {
            format: FORMAT,
            window_length_ms,
            dimensions,
            watermark,
        }
    }

    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::CorruptState(format!("operator: {e}")))
    }

    pub(crate) fn check(&self, window_length_ms: i64, dimensions: &[Dimension]) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::IncompatibleState(format!(
                "format {} (this build reads {FORMAT})",
                self.format
            )));
        }
        check_shape(
            self.window_length_ms,
            &self.dimensions,
            window_length_ms,
            dimensions,
        )
    }
}

/// One [`Partial`] as stored: the order ids seen (dedup), the customers,
/// and per key its totals and customer ids. Also the body of a
/// [`WindowSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartialSnapshot {
    #[serde(rename = "v")]
    format: u32,
    #[serde(rename = "s")]
    start_ms: i64,
    #[serde(rename = "l")]
    length_ms: i64,
    /// Order ids counted, in interning order.
    #[serde(rename = "o")]
    orders: IdList,
    /// Customer ids, in interning order (index = id).
    #[serde(rename = "c")]
    customers: IdList,
    #[serde(rename = "d")]
    dimensions: Vec<DimSnapshot>,
}

/// Everything about one open window of the operator (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSnapshot {
    #[serde(rename = "p")]
    partial: PartialSnapshot,
    #[serde(rename = "e")]
    emitted: bool,
    /// Per dimension, per key id: the last revision emitted (0 = never).
    #[serde(rename = "r")]
    revisions: Vec<Vec<u32>>,
}

/// Strings as one concatenated text plus their lengths: far cheaper to
/// write and read than one JSON string each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct IdList {
    #[serde(rename = "t")]
    text: String,
    #[serde(rename = "l")]
    lens: Vec<u32>,
}

impl IdList {
    fn of(i: &Interner) -> Self {
        let (text, lens) = i.to_text_and_lens();
        IdList { text, lens }
    }

    /// Interns every string back in order; an error names what is wrong.
    fn intern_into(&self, into: &mut Interner, what: &str) -> Result<(), String> {
        let mut at = 0usize;
        for &len in &self.lens {
            let s = at
                .checked_add(len as usize)
                .and_then(|end| self.text.get(at..end))
                .ok_or_else(|| format!("{what} list is cut short"))?;
            if !into.intern(s).1 {
                return Err(format!("{what} {s:?} listed twice"));
            }
            at += len as usize;
        }
        if at != self.text.len() {
            return Err(format!("{what} list has trailing text"));
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.lens.len()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DimSnapshot {
    #[serde(rename = "d")]
    dimension: Dimension,
    /// Keys in interning order (index = key id).
    #[serde(rename = "k")]
    keys: Vec<KeySnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct KeySnapshot {
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "o")]
    orders: u64,
    #[serde(rename = "u")]
    units: u64,
    #[serde(rename = "g")]
    gross_cents: i64,
    #[serde(rename = "n")]
    net_cents: i64,
    /// Sorted customer ids (sorted so equal state encodes to equal bytes).
    #[serde(rename = "c")]
    customers: Vec<u32>,
}

/// JSON first, then one compression call: flate2's writer costs a buffer
/// fill per write, and serde_json writes in tiny pieces.
fn compress<T: Serialize>(value: &T) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("plain data serialises");
    let mut enc = DeflateEncoder::new(Vec::with_capacity(json.len() / 3), Compression::fast());
    enc.write_all(&json).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

fn decompress<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    let mut json = Vec::new();
    DeflateDecoder::new(bytes)
        .take(MAX_DECODED_BYTES)
        .read_to_end(&mut json)
        .map_err(|e| Error::CorruptState(format!("{what}: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| Error::CorruptState(format!("{what}: {e}")))
}

impl PartialSnapshot {
    pub(crate) fn of(p: &Partial) -> Self {
        PartialSnapshot {
            format: FORMAT,
            start_ms: p.start,
            length_ms: p.end - p.start,
            orders: IdList::of(&p.orders),
            customers: IdList::of(&p.customers),
            dimensions: p
                .dims
                .iter()
                .map(|d| DimSnapshot {
                    dimension: d.dimension,
                    keys: d
                        .accs
                        .iter()
                        .enumerate()
                        .map(|(id, a)| {
                            let mut customers: Vec<u32> = a.customers.iter().copied().collect();
                            customers.sort_unstable();
                            KeySnapshot {
                                key: d.keys.resolve(id as u32).to_owned(),
                                orders: a.orders,
                                units: a.units,
                                gross_cents: a.gross,
                                net_cents: a.net,
                                customers,
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        compress(self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        decompress(bytes, "window partial")
    }

    /// Rebuilds the partial, checking it against the settings and itself.
    pub(crate) fn into_partial(self, spec: &WindowSpec) -> Result<Partial> {
        let corrupt =
            |what: String| Error::CorruptState(format!("window {}: {what}", ts(self.start_ms)));
        if self.format != FORMAT {
            return Err(Error::IncompatibleState(format!(
                "window item format {} (this build reads {FORMAT})",
                self.format
            )));
        }
        let length_ms = spec.length_ms();
        let snap_dims: Vec<Dimension> = self.dimensions.iter().map(|d| d.dimension).collect();
        check_shape(self.length_ms, &snap_dims, length_ms, spec.dimensions())?;
        if self.start_ms.rem_euclid(length_ms) != 0 {
            return Err(corrupt("start is not aligned to the window length".into()));
        }
        let mut p = Partial::with_capacity(
            self.start_ms,
            self.start_ms + length_ms,
            spec.dimensions(),
            None,
        );
        p.orders = Interner::with_capacity(self.orders.len(), 0);
        p.customers = Interner::with_capacity(self.customers.len(), 0);
        self.orders
            .intern_into(&mut p.orders, "order")
            .map_err(&corrupt)?;
        self.customers
            .intern_into(&mut p.customers, "customer")
            .map_err(&corrupt)?;
        for (dim, snap) in p.dims.iter_mut().zip(self.dimensions) {
            *dim = dim_from_snapshot(snap, p.customers.len(), p.orders.len()).map_err(&corrupt)?;
        }
        // Every dimension partitions the same orders; the first gives the totals.
        if let Some(d) = p.dims.first() {
            p.gross_total = d.accs.iter().map(|a| a.gross).sum();
            p.net_total = d.accs.iter().map(|a| a.net).sum();
        }
        if p.gross_total.abs() > MAX_CENTS || p.net_total.abs() > MAX_CENTS {
            return Err(corrupt("totals beyond the money range".into()));
        }
        Ok(p)
    }
}

impl WindowSnapshot {
    /// The window's start: the natural item key.
    pub fn window_start(&self) -> Timestamp {
        ts(self.partial.start_ms)
    }

    /// Orders counted in the window.
    pub fn orders(&self) -> usize {
        self.partial.orders.len()
    }

    /// Compressed bytes of the item.
    pub fn encode(&self) -> Vec<u8> {
        compress(self)
    }

    /// [`encode`](Self::encode) split into parts of at most `max_part_bytes`.
    pub fn encode_parts(&self, max_part_bytes: usize) -> Vec<Vec<u8>> {
        let bytes = self.encode();
        bytes
            .chunks(max_part_bytes.max(1))
            .map(<[u8]>::to_vec)
            .collect()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_parts(&[bytes])
    }

    /// Joins parts from [`encode_parts`](Self::encode_parts), in order.
    pub fn decode_parts<B: AsRef<[u8]>>(parts: &[B]) -> Result<Self> {
        let joined: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.as_ref().iter().copied())
            .collect();
        decompress(&joined, "window item")
    }

    pub(crate) fn from_window(w: &Window) -> Self {
        WindowSnapshot {
            partial: PartialSnapshot::of(&w.partial),
            emitted: w.emitted,
            revisions: (0..w.partial.dims.len())
                .map(|d| {
                    (0..w.partial.dims[d].accs.len() as u32)
                        .map(|k| w.revision(d, k))
                        .collect()
                })
                .collect(),
        }
    }

    /// Rebuilds the window, checking it against the settings and itself.
    pub(crate) fn into_window(self, spec: &WindowSpec) -> Result<Window> {
        let start = ts(self.partial.start_ms);
        let partial = self.partial.into_partial(spec)?;
        let shape_ok = self.revisions.len() == partial.dims.len()
            && self
                .revisions
                .iter()
                .zip(&partial.dims)
                .all(|(r, d)| r.len() == d.accs.len());
        if !shape_ok {
            return Err(Error::CorruptState(format!(
                "window {start}: revisions do not match the keys"
            )));
        }
        let mut w = Window::new(partial);
        w.emitted = self.emitted;
        w.revisions = self.revisions;
        Ok(w)
    }
}

fn dim_from_snapshot(
    snap: DimSnapshot,
    customers: usize,
    orders: usize,
) -> Result<DimState, String> {
    let mut d = DimState {
        dimension: snap.dimension,
        keys: Interner::default(),
        accs: Vec::with_capacity(snap.keys.len()),
    };
    let mut total = 0u64;
    for k in snap.keys {
        if !d.keys.intern(&k.key).1 {
            return Err(format!(
                "{} key {:?} listed twice",
                snap.dimension.as_str(),
                k.key
            ));
        }
        if k.orders == 0 || k.customers.iter().any(|&c| c as usize >= customers) {
            return Err(format!(
                "{} key {:?} is inconsistent",
                snap.dimension.as_str(),
                k.key
            ));
        }
        total += k.orders;
        let mut set = IdSet::with_capacity_and_hasher(k.customers.len(), Default::default());
        set.extend(k.customers);
        d.accs.push(Acc {
            orders: k.orders,
            units: k.units,
            gross: k.gross_cents,
            net: k.net_cents,
            customers: set,
        });
    }
    if total != orders as u64 {
        return Err(format!(
            "{} keys count {total} orders, the window {orders}",
            snap.dimension.as_str()
        ));
    }
    if snap.dimension == flowline_model::Dimension::All
        && (d.accs.len() != 1 || d.keys.resolve(0) != crate::order::ALL_KEY)
    {
        return Err("dimension all must have the single key \"all\"".into());
    }
    Ok(d)
}

fn check_shape(
    saved_length_ms: i64,
    saved_dims: &[Dimension],
    length_ms: i64,
    dimensions: &[Dimension],
) -> Result<()> {
    if saved_length_ms != length_ms {
        return Err(Error::IncompatibleState(format!(
            "saved with window length {saved_length_ms} ms, configured {length_ms} ms"
        )));
    }
    if saved_dims != dimensions {
        let names = |d: &[Dimension]| d.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
        return Err(Error::IncompatibleState(format!(
            "saved with dimensions [{}], configured [{}]",
            names(saved_dims),
            names(dimensions)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str, lens: &[u32]) -> IdList {
        IdList {
            text: text.into(),
            lens: lens.to_vec(),
        }
    }

    #[test]
    fn id_lists_round_trip_and_reject_damage() {
        let mut i = Interner::default();
        for s in ["o-1", "", "o-22"] {
            i.intern(s);
        }
        let l = IdList::of(&i);
        assert_eq!(l, list("o-1o-22", &[3, 0, 4]));
        let mut back = Interner::default();
        l.intern_into(&mut back, "order").unwrap();
        assert_eq!(back.iter().collect::<Vec<_>>(), vec!["o-1", "", "o-22"]);

        let err = |l: IdList| {
            l.intern_into(&mut Interner::default(), "order")
                .unwrap_err()
        };
        assert!(err(list("abc", &[2, 2])).contains("cut short"));
        assert!(err(list("abcd", &[2])).contains("trailing"));
        assert!(err(list("abab", &[2, 2])).contains("twice"));
        // A length that splits a UTF-8 character is damage, not a panic.
        assert!(err(list("é", &[1, 1])).contains("cut short"));
    }
}
