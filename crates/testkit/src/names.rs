use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (in this or another process) uses: `<prefix>-<pid>-<n>-<time>`,
/// lower case and within the rules of stream, table, bucket and index names.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    format!(
        "{prefix}-{:x}-{n}-{:x}",
        std::process::id(),
        nanos & 0xfffff
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_valid_bucket_names() {
        let a = super::unique_name("Orders_Test");
        let b = super::unique_name("Orders_Test");
        assert_ne!(a, b);
        assert!(a.starts_with("orders-test-"), "{a}");
        assert!(a.len() <= 63);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
