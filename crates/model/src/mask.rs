//! Masking of personal data in the enriched output.

use sha2::{Digest, Sha256};

/// SHA-256 hex (lower case) of the email after trimming surrounding
/// whitespace and lower-casing (Unicode), so `" Ann@X.org"` and
/// `"ann@x.org"` give the same hash and joins on it stay stable.
pub fn email_sha256(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// A coordinate rounded to 2 decimals (about 1 km), half away from zero.
pub fn round_coord(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_hash_is_normalised() {
        let h = email_sha256("  Ann.Lee@Example.COM \n");
        assert_eq!(h, email_sha256("ann.lee@example.com"));
        // sha256("ann.lee@example.com")
        assert_eq!(h.len(), 64);
        assert_eq!(
            email_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn coordinates_round_to_two_decimals() {
        assert_eq!(round_coord(52.516_27), 52.52);
        assert_eq!(round_coord(-13.377_7), -13.38);
        assert_eq!(round_coord(0.004), 0.0);
        assert_eq!(round_coord(-0.125), -0.13);
    }
}
