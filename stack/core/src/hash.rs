//! Keyed hashing for maps whose keys an attacker chooses (4-tuples, remote addresses).
//!
//! An unkeyed hash (FxHash) lets anyone who can pick source addresses and ports put every
//! entry of a demux map into one bucket chain. [`KeyedState`] is foldhash's fast hasher with
//! a per-map secret seed: about as fast as FxHash on 12-byte keys (one folded multiply per
//! 8 bytes), and the bucket of a key is unpredictable without the seed. foldhash rather than
//! SipHash-1-3 (std's `RandomState`): the demux map is hashed per received segment, and
//! SipHash is several times slower on short keys; foldhash is the default hasher of
//! hashbrown and documents its (minimal) DoS resistance. The seed comes from the caller
//! (`EndpointSecrets::seed` in the endpoint): the core reads no RNG.

use std::collections::HashMap;

/// The keyed `BuildHasher`.
pub type KeyedState = foldhash::fast::FixedState;

/// A `HashMap` with a keyed hasher.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;

/// Mixed into the seed so the hash key differs from other uses of the same secret seed.
const DOMAIN: u64 = 0x6b65_7965_645f_6d61; // "keyed_ma"

/// The hasher for a map keyed with `seed` (a secret).
pub fn keyed_state(seed: u64) -> KeyedState {
    foldhash::fast::FixedState::with_seed(seed.rotate_left(29) ^ DOMAIN)
}

/// An empty map keyed with `seed`.
pub fn keyed_map<K, V>(seed: u64) -> KeyedMap<K, V> {
    HashMap::with_hasher(keyed_state(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn seed_changes_the_hash() {
        let k = (0xc612_0002u32, 443u16, 0xc612_0001u32, 61000u16);
        assert_ne!(keyed_state(1).hash_one(k), keyed_state(2).hash_one(k));
        assert_eq!(keyed_state(7).hash_one(k), keyed_state(7).hash_one(k));
    }
}
