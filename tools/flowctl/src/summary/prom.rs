//! Reading the services' `/metrics`: the Prometheus text format, parsed just enough for
//! counters, gauges and histograms, and histogram quantiles computed the way Prometheus'
//! `histogram_quantile` does (linear within the bucket), so figures match a dashboard's.

use std::collections::BTreeMap;
use std::time::Duration;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text format. Comment lines are skipped; a line that does not parse is
    /// skipped too, because one odd line must not hide every other figure.
    pub fn parse(text: &str) -> Scrape {
        Scrape {
            samples: text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(parse_line)
                .collect(),
        }
    }

    /// Samples named `name` whose labels include every `(key, value)` of `filter`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && filter
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum over the matching samples (0 when there are none).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        // A fold from +0.0: `Sum` for floats starts at -0.0, which prints as "-0".
        self.select(name, filter).fold(0.0, |acc, s| acc + s.value)
    }

    /// Sums of `name` grouped by the value of `label`.
    pub fn sum_by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.select(name, &[]) {
            let key = s.labels.get(label).cloned().unwrap_or_default();
            *out.entry(key).or_insert(0.0) += s.value;
        }
        out
    }

    /// Cumulative buckets `(le, count)` of histogram `name` (summed over series that
    /// match `filter`), sorted by bound, `+Inf` last.
    pub fn buckets(&self, name: &str, filter: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in self.select(&bucket, filter) {
            let Some(le) = s.labels.get("le").and_then(|v| parse_value(v)) else {
                continue;
            };
            // Order floats by their bits: bounds are positive, so bit order is numeric order.
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
        }
        by_le.into_values().collect()
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (name, rest, labels) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                &line[close + 1..],
                parse_labels(&line[open + 1..close])?,
            )
        }
        None => {
            let space = line.find(char::is_whitespace)?;
            (&line[..space], &line[space..], BTreeMap::new())
        }
    };
    // An optional timestamp may follow the value.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim().to_string(), value);
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The `q` quantile of cumulative buckets, as Prometheus' `histogram_quantile`: find the
/// bucket holding rank `q * count` and interpolate linearly inside it. `None` without
/// observations. A rank in the `+Inf` bucket answers the highest finite bound (the
/// histogram cannot say more).
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let in_bucket = count - below;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / in_bucket);
        }
        lower = le;
        below = count;
    }
    Some(lower)
}

/// GETs `url` (a service's `/metrics`) and parses it.
pub async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<Scrape> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?;
    Ok(Scrape::parse(&response.text().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP x_total X.
# TYPE x_total counter
x_total{stream="sales",mode="lake"} 7
x_total{stream="orders",mode="lake"} 3
plain 1.5e3
lat_bucket{family="orders",le="0.5"} 50
lat_bucket{family="orders",le="1"} 90
lat_bucket{family="orders",le="2"} 100
lat_bucket{family="orders",le="+Inf"} 100
lat_bucket{family="metrics",le="0.5"} 0
lat_bucket{family="metrics",le="1"} 0
lat_bucket{family="metrics",le="2"} 1
lat_bucket{family="metrics",le="+Inf"} 2
odd{reason="a \"quoted\", comma"} 2 1700000000000
"#;

    #[test]
    fn parses_labels_values_and_escapes() {
        let s = Scrape::parse(TEXT);
        assert_eq!(s.sum("x_total", &[]), 10.0);
        assert_eq!(s.sum("x_total", &[("stream", "sales")]), 7.0);
        assert_eq!(s.sum("plain", &[]), 1500.0);
        let odd = s.select("odd", &[]).next().unwrap();
        assert_eq!(odd.labels["reason"], "a \"quoted\", comma");
        assert_eq!(odd.value, 2.0);
        assert_eq!(s.sum_by("x_total", "stream")["orders"], 3.0);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let s = Scrape::parse(TEXT);
        let orders = s.buckets("lat", &[("family", "orders")]);
        assert_eq!(orders.len(), 4);
        assert_eq!(quantile(0.5, &orders), Some(0.5));
        assert!((quantile(0.99, &orders).unwrap() - 1.9).abs() < 1e-9);
        assert!((quantile(0.7, &orders).unwrap() - 0.75).abs() < 1e-9);
        // Half the observations above the last finite bound: the bound is all we know.
        let metrics = s.buckets("lat", &[("family", "metrics")]);
        assert_eq!(quantile(0.99, &metrics), Some(2.0));
        // Both families together.
        assert_eq!(s.buckets("lat", &[]).last().unwrap().1, 102.0);
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }
}
