//! Deterministic randomness for the simulator: a SplitMix64 generator and a stable FNV-1a string hash, so that the same seed always yields the same organisation and the same costs on every platform.

/// FNV-1a 64-bit hash of a byte string. Stable across platforms and Rust versions
/// (unlike `std::hash`), which is what makes the simulator's numbers reproducible.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = FNV_OFFSET_BASIS;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Mixes two 64-bit values into one well-distributed value (the SplitMix64 finaliser applied
/// to a combination of both). Used to derive independent streams from a seed and a key.
pub fn mix_u64(left: u64, right: u64) -> u64 {
    let mut value = left ^ right.wrapping_add(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Hash of a seed and a list of string parts, order-sensitive. `stable_hash(s, &["a","bc"])`
/// differs from `stable_hash(s, &["ab","c"])` because every part is length-prefixed.
pub fn stable_hash(seed: u64, parts: &[&str]) -> u64 {
    let mut hash = mix_u64(seed, 0x5350_4f54_434f_5354);
    for part in parts {
        hash = mix_u64(hash, part.len() as u64);
        hash = mix_u64(hash, fnv1a_64(part.as_bytes()));
    }
    hash
}

/// The SplitMix64 pseudo-random generator (Steele, Lea, Flood 2014): tiny, fast, and good
/// enough for synthetic data. Not for cryptography.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// A generator for a key under a seed, e.g. `SplitMix64::keyed(seed, &["sig-1234", "slot", "3"])`.
    pub fn keyed(seed: u64, parts: &[&str]) -> SplitMix64 {
        SplitMix64::new(stable_hash(seed, parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.state;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    /// Uniform in `0..bound` (returns 0 when `bound` is 0). Uses the multiply-shift method;
    /// the bias is negligible for the small bounds the simulator uses.
    pub fn next_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `low..=high` (inclusive). Returns `low` when `high < low`.
    pub fn next_in_range(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = (high - low) as u64 + 1;
        low + self.next_below(span) as i64
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with the given probability (clamped to 0..=1).
    pub fn chance(&mut self, probability: f64) -> bool {
        self.next_unit_f64() < probability.clamp(0.0, 1.0)
    }

    /// A uniformly chosen element of a non-empty slice (the first element for an empty-safe
    /// fallback is not possible, so callers pass non-empty slices).
    pub fn pick<'a, T>(&mut self, choices: &'a [T]) -> &'a T {
        let index = self.next_below(choices.len() as u64) as usize;
        &choices[index.min(choices.len().saturating_sub(1))]
    }

    /// `length` lower-case hex digits.
    pub fn hex_string(&mut self, length: usize) -> String {
        const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(length);
        for _ in 0..length {
            text.push(char::from(HEX_DIGITS[self.next_below(16) as usize]));
        }
        text
    }

    /// `length` lower-case alphanumeric characters.
    pub fn alphanumeric_string(&mut self, length: usize) -> String {
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut text = String::with_capacity(length);
        for _ in 0..length {
            text.push(char::from(ALPHABET[self.next_below(36) as usize]));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence_for_seed_zero() {
        // Reference values from the C implementation by Sebastiano Vigna.
        let mut generator = SplitMix64::new(0);
        assert_eq!(generator.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(generator.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn stable_hash_is_order_and_boundary_sensitive() {
        assert_ne!(stable_hash(1, &["ab", "c"]), stable_hash(1, &["a", "bc"]));
        assert_ne!(stable_hash(1, &["a", "b"]), stable_hash(1, &["b", "a"]));
        assert_ne!(stable_hash(1, &["a"]), stable_hash(2, &["a"]));
        assert_eq!(stable_hash(7, &["x", "y"]), stable_hash(7, &["x", "y"]));
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut generator = SplitMix64::new(99);
        for _ in 0..10_000 {
            let value = generator.next_in_range(-3, 5);
            assert!((-3..=5).contains(&value));
            assert!(generator.next_below(7) < 7);
            let unit = generator.next_unit_f64();
            assert!((0.0..1.0).contains(&unit));
        }
        assert_eq!(generator.next_below(0), 0);
        assert_eq!(generator.next_in_range(4, 4), 4);
    }
}
