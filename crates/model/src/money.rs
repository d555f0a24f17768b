//! Exact money and percentages, and the one definition of the order amounts.
//!
//! Money is integer cents ([`Money`]) and a discount is integer hundredths of
//! a percent ([`DiscountPct`]), so `gross = quantity × unit_price`,
//! `discount = gross × pct / 100` and `net = gross − discount` are exact
//! integer arithmetic with a single rounding to cents, half away from zero,
//! as DESIGN.md section 4 asks. Floating point never touches an amount.
//!
//! On the wire both are JSON numbers. Money is always written with two
//! decimals (`12.50`), percentages without trailing zeros (`15`, `12.5`).
//! Input may use any JSON number spelling as long as it has at most two
//! significant decimals (`12.5`, `12.500`, `1.25e1` are fine, `12.345` is not).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::value::RawValue;

/// Largest absolute amount: 10^13 units (10^15 cents), far below 2^53 so
/// every amount is also exact as an f64 for consumers that read it as one.
pub const MAX_CENTS: i64 = 1_000_000_000_000_000;

/// An amount of money in cents.
///
/// `Serialize` emits a JSON number token through serde_json's raw values, so
/// it is meant for serde_json (including `to_value`); for other formats
/// (CSV, Parquet, DynamoDB attributes) use `Display` or [`Money::cents`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// `None` when |cents| exceeds [`MAX_CENTS`].
    pub const fn from_cents(cents: i64) -> Option<Money> {
        if cents > MAX_CENTS || cents < -MAX_CENTS {
            None
        } else {
            Some(Money(cents))
        }
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// Parses the text of a JSON number (or a CSV cell) exactly.
    pub fn parse_decimal(text: &str) -> Result<Money, String> {
        let cents = parse_hundredths(text)?;
        Money::from_cents(cents).ok_or_else(|| "out of range".to_string())
    }

    /// `None` on overflow of the money range.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).and_then(Money::from_cents)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).and_then(Money::from_cents)
    }

    /// As a float, for consumers that need one (never for arithmetic here).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = NumBuf::new();
        f.write_str(buf.hundredths(self.0, false))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = NumBuf::new();
        serialize_number_text(buf.hundredths(self.0, false), serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let cents = deserializer.deserialize_any(HundredthsVisitor)?;
        Money::from_cents(cents).ok_or_else(|| de::Error::custom("money out of range"))
    }
}

/// A discount in hundredths of a percent, 0..=100.00 %.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiscountPct(u32);

impl DiscountPct {
    pub const ZERO: DiscountPct = DiscountPct(0);

    /// `None` above 100 %.
    pub const fn from_hundredths(h: u32) -> Option<DiscountPct> {
        if h > 10_000 {
            None
        } else {
            Some(DiscountPct(h))
        }
    }

    /// Whole percent, `None` above 100.
    pub const fn from_percent(p: u32) -> Option<DiscountPct> {
        if p > 100 {
            None
        } else {
            Some(DiscountPct(p * 100))
        }
    }

    pub const fn hundredths(self) -> u32 {
        self.0
    }

    pub fn parse_decimal(text: &str) -> Result<DiscountPct, String> {
        let h = parse_hundredths(text)?;
        Self::checked(h)
    }

    fn checked(h: i64) -> Result<DiscountPct, String> {
        if !(0..=10_000).contains(&h) {
            return Err("must be between 0 and 100".to_string());
        }
        Ok(DiscountPct(h as u32))
    }

    pub fn to_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for DiscountPct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = NumBuf::new();
        f.write_str(buf.hundredths(i64::from(self.0), true))
    }
}

impl Serialize for DiscountPct {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = NumBuf::new();
        serialize_number_text(buf.hundredths(i64::from(self.0), true), serializer)
    }
}

impl<'de> Deserialize<'de> for DiscountPct {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let h = deserializer.deserialize_any(HundredthsVisitor)?;
        DiscountPct::checked(h).map_err(de::Error::custom)
    }
}

/// The three amounts of an order line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderAmounts {
    pub gross: Money,
    pub discount: Money,
    pub net: Money,
}

/// `gross = quantity × unit_price`, `discount = gross × pct / 100`,
/// `net = gross − discount`, each in cents rounded half away from zero.
/// `None` when the gross leaves the money range.
pub fn order_amounts(
    quantity: u32,
    unit_price: Money,
    discount: DiscountPct,
) -> Option<OrderAmounts> {
    let gross = i128::from(quantity) * i128::from(unit_price.cents());
    let gross = Money::from_cents(i64::try_from(gross).ok()?)?;
    // gross in cents × hundredths of a percent / (100 % × 100 hundredths).
    let discount = round_div(
        i128::from(gross.cents()) * i128::from(discount.hundredths()),
        10_000,
    );
    let discount = Money(discount as i64); // |discount| <= |gross|
    Some(OrderAmounts {
        gross,
        discount,
        net: Money(gross.cents() - discount.cents()),
    })
}

/// `total / count` rounded to cents half away from zero (average order
/// value); `None` when `count` is 0.
pub fn average(total: Money, count: u64) -> Option<Money> {
    (count > 0).then(|| Money(round_div(i128::from(total.cents()), i128::from(count)) as i64))
}

/// Integer division rounding half away from zero, symmetric in sign.
/// `den` must be positive.
pub fn round_div(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

/// Appends `v` hundredths as the decimal text `Serialize` writes for money (`trim`
/// false: always two decimals) or for a percentage or quantity (`trim`: no trailing zero
/// decimals, nor the point). For writers that build JSON by hand (the rebuild's output).
pub fn write_hundredths(out: &mut Vec<u8>, v: i64, trim: bool) {
    out.extend_from_slice(NumBuf::new().hundredths(v, trim).as_bytes());
}

/// Writes an integer number of hundredths as a decimal into a stack buffer.
struct NumBuf([u8; 32]);

impl NumBuf {
    fn new() -> Self {
        NumBuf([0; 32])
    }

    fn hundredths(&mut self, v: i64, trim: bool) -> &str {
        let buf = &mut self.0;
        let mut pos = buf.len();
        let mut abs = v.unsigned_abs();
        let frac = abs % 100;
        abs /= 100;
        let digits: &[u8] = match (trim, frac) {
            (true, 0) => &[],
            (true, f) if f % 10 == 0 => &[b'0' + (f / 10) as u8],
            _ => &[b'0' + (frac / 10) as u8, b'0' + (frac % 10) as u8],
        };
        if !digits.is_empty() {
            pos -= digits.len();
            buf[pos..pos + digits.len()].copy_from_slice(digits);
            pos -= 1;
            buf[pos] = b'.';
        }
        loop {
            pos -= 1;
            buf[pos] = b'0' + (abs % 10) as u8;
            abs /= 10;
            if abs == 0 {
                break;
            }
        }
        if v < 0 {
            pos -= 1;
            buf[pos] = b'-';
        }
        std::str::from_utf8(&buf[pos..]).expect("ASCII")
    }
}

/// Emits `text` as a JSON number token (not a string): through serde_json's
/// raw value, which borrows the text and does not allocate.
fn serialize_number_text<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(serializer)
}

/// Exact decimal parse of a number with at most two significant decimals,
/// into hundredths. Accepts JSON number syntax (and plain CSV decimals).
pub(crate) fn parse_hundredths(text: &str) -> Result<i64, String> {
    const SHAPE: &str = "must be a number with at most 2 decimals";
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if body.contains(['e', 'E']) {
        // Rare exponent spelling: go through f64 and insist it is exact.
        let v: f64 = t.parse().map_err(|_| SHAPE.to_string())?;
        return hundredths_from_f64(v).ok_or_else(|| SHAPE.to_string());
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return Err(SHAPE.to_string());
    }
    if frac.len() > 2 && frac[2..].bytes().any(|b| b != b'0') {
        return Err(SHAPE.to_string());
    }
    let int = int.trim_start_matches('0');
    if int.len() > 15 {
        return Err("out of range".to_string());
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| SHAPE.to_string())?
    };
    let f = frac.as_bytes();
    let digit = |i: usize| f.get(i).map_or(0, |b| i64::from(b - b'0'));
    let h = whole * 100 + digit(0) * 10 + digit(1);
    Ok(if neg { -h } else { h })
}

/// Exact only: `v` must be the double nearest to a two-decimal number.
fn hundredths_from_f64(v: f64) -> Option<i64> {
    if !v.is_finite() || v.abs() > (MAX_CENTS / 100) as f64 {
        return None;
    }
    let h = (v * 100.0).round();
    // Division is correctly rounded, so this recovers exactly the double a
    // parser produces for the two-decimal spelling of `h`.
    (h / 100.0 == v).then_some(h as i64)
}

struct HundredthsVisitor;

impl de::Visitor<'_> for HundredthsVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number with at most 2 decimals")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(100).ok_or_else(|| E::custom("out of range"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(100))
            .ok_or_else(|| E::custom("out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        hundredths_from_f64(v).ok_or_else(|| E::custom("must be a number with at most 2 decimals"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse_decimal(s).unwrap()
    }

    fn pct(p: u32) -> DiscountPct {
        DiscountPct::from_percent(p).unwrap()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(m("12.5").cents(), 1250);
        assert_eq!(m("12.50").cents(), 1250);
        assert_eq!(m("12.500").cents(), 1250);
        assert_eq!(m("0.07").cents(), 7);
        assert_eq!(m("7").cents(), 700);
        assert_eq!(m("-3.1").cents(), -310);
        assert_eq!(m("1.25e1").cents(), 1250);
        assert_eq!(m("0").cents(), 0);
        assert_eq!(m("9999999999999.99").cents(), 999_999_999_999_999);
        for bad in [
            "12.345", "abc", "", ".5", "5.", "1e-3", "--1", "+1", "1.2.3",
        ] {
            assert!(Money::parse_decimal(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Money::parse_decimal("10000000000000.01").unwrap_err(),
            "out of range"
        );
    }

    #[test]
    fn writes_two_decimals_as_json_numbers() {
        let cases = [
            (1250, "12.50"),
            (7, "0.07"),
            (0, "0.00"),
            (-310, "-3.10"),
            (100, "1.00"),
        ];
        for (cents, text) in cases {
            let money = Money::from_cents(cents).unwrap();
            assert_eq!(money.to_string(), text);
            assert_eq!(serde_json::to_string(&money).unwrap(), text);
            assert_eq!(serde_json::from_str::<Money>(text).unwrap(), money);
        }
        // Inside a struct and through serde_json::Value alike.
        let v = serde_json::to_value(Money::from_cents(1250).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!(12.5));
        assert!(serde_json::from_str::<Money>("\"12.50\"").is_err());
        assert!(serde_json::from_str::<Money>("12.345").is_err());
    }

    #[test]
    fn percentages_trim_trailing_zeros() {
        let cases = [
            (1500, "15"),
            (1250, "12.5"),
            (1234, "12.34"),
            (0, "0"),
            (10_000, "100"),
        ];
        for (h, text) in cases {
            let p = DiscountPct::from_hundredths(h).unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), text);
            assert_eq!(serde_json::from_str::<DiscountPct>(text).unwrap(), p);
        }
        assert!(DiscountPct::parse_decimal("100.01").is_err());
        assert!(DiscountPct::parse_decimal("-1").is_err());
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_symmetric() {
        assert_eq!(round_div(125, 1000), 0);
        assert_eq!(round_div(1250, 10_000), 0);
        assert_eq!(round_div(5, 10), 1);
        assert_eq!(round_div(-5, 10), -1);
        assert_eq!(round_div(15, 10), 2);
        assert_eq!(round_div(-15, 10), -2);
        assert_eq!(round_div(14, 10), 1);
        assert_eq!(round_div(-14, 10), -1);
        for n in -1000..1000 {
            assert_eq!(round_div(-n, 7), -round_div(n, 7));
        }
    }

    #[test]
    fn order_amounts_round_each_to_cents() {
        // 0.25 × 50 % = 0.125 → 0.13; net 0.12.
        let a = order_amounts(1, m("0.25"), pct(50)).unwrap();
        assert_eq!(
            (a.gross, a.discount, a.net),
            (m("0.25"), m("0.13"), m("0.12"))
        );
        // 3 × 19.99 = 59.97; 15 % = 8.9955 → 9.00; net 50.97.
        let a = order_amounts(3, m("19.99"), pct(15)).unwrap();
        assert_eq!(
            (a.gross, a.discount, a.net),
            (m("59.97"), m("9.00"), m("50.97"))
        );
        // 12.5 % of 0.01 = 0.00125 → 0.00.
        let p = DiscountPct::parse_decimal("12.5").unwrap();
        let a = order_amounts(1, m("0.01"), p).unwrap();
        assert_eq!((a.discount, a.net), (m("0"), m("0.01")));
        // 33.33 % of 0.03 = 0.009999 → 0.01.
        let p = DiscountPct::parse_decimal("33.33").unwrap();
        assert_eq!(order_amounts(1, m("0.03"), p).unwrap().discount, m("0.01"));
        // No promo, zero quantity.
        let a = order_amounts(0, m("5"), DiscountPct::ZERO).unwrap();
        assert_eq!(
            (a.gross, a.discount, a.net),
            (Money::ZERO, Money::ZERO, Money::ZERO)
        );
        // Negative amounts round symmetrically (refund-like input).
        let a = order_amounts(1, m("-0.25"), pct(50)).unwrap();
        assert_eq!((a.discount, a.net), (m("-0.13"), m("-0.12")));
        // Overflow is reported, not wrapped.
        assert!(order_amounts(u32::MAX, m("9999999999999"), pct(0)).is_none());
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        assert_eq!(average(m("10.00"), 3), Some(m("3.33")));
        assert_eq!(average(m("0.05"), 2), Some(m("0.03")));
        assert_eq!(average(m("-0.05"), 2), Some(m("-0.03")));
        assert_eq!(average(m("1"), 0), None);
    }
}
