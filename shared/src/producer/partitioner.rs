//! Where a keyed record goes, exactly as the Java producer decides it, so our orders share
//! partitions with any Java, librdkafka (`murmur2_random`) or kafka-python producer writing the
//! same keys.
//!
//! Java hashes the key bytes with its 32-bit MurmurHash2 variant (seed 0x9747b28c) and masks
//! the sign bit — `hash & 0x7fffffff`, not `abs`, which differs for negative hashes — before
//! taking the remainder by the partition count. Records without a key are not this module's
//! business: the producer spreads those itself.

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// Java's `Utils.murmur2`: 4-byte little-endian blocks, then the tail, then a final mix.
pub fn murmur2(data: &[u8]) -> i32 {
    let mut h = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Java's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_the_java_clients_test_vectors() {
        let vectors: [(&str, i32); 5] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("abc", 479_470_107),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
        ];
        for (key, hash) in vectors {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
        }
    }

    /// Partitions the Java producer chose for these keys, as reported in node-rdkafka
    /// issues #616 and #817 (see the Kafka reference §3).
    #[test]
    fn keys_land_where_the_java_producer_puts_them() {
        assert_eq!(
            partition_for_key(b"354afe16-939a-4ea8-8e17-8bb0840b6886", 10),
            4
        );
        assert_eq!(
            partition_for_key(b"f562ac3b-2224-4e25-a0ab-56094e10c239", 10),
            5
        );
        assert_eq!(
            partition_for_key(b"fd7af248-ce5c-46a5-93d7-1c0c9005b99d", 32),
            26
        );
        assert_eq!(partition_for_key(b"order-1", 3), 1);
        assert_eq!(partition_for_key(b"order-1", 6), 4);
        assert_eq!(partition_for_key(b"order-1", 12), 10);
    }

    #[test]
    fn the_sign_bit_is_masked_not_negated() {
        // "21" hashes negative; abs() would give a different partition than the mask.
        let hash = murmur2(b"21");
        assert!(hash < 0);
        assert_eq!(partition_for_key(b"21", 7), (hash & 0x7fff_ffff) % 7);
        assert_ne!((hash & 0x7fff_ffff) % 7, hash.unsigned_abs() as i32 % 7);
    }

    #[test]
    fn the_empty_key_is_hashed_too() {
        assert_eq!(murmur2(b""), murmur2(&[]));
        assert!((0..6).contains(&partition_for_key(b"", 6)));
    }
}
