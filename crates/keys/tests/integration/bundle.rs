//! KeyBundle codec: round trip and hostile input.

use ikt_keys::KeyBundle;
use proptest::prelude::*;

use crate::support::any_bundle;

proptest! {
    #[test]
    fn encode_decode_round_trip(b in any_bundle()) {
        let bytes = b.encode().unwrap();
        prop_assert_eq!(bytes.len(), b.encoded_len());
        prop_assert_eq!(KeyBundle::decode(&bytes).unwrap(), b);
    }

    #[test]
    fn decode_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = KeyBundle::decode(&bytes);
    }

    #[test]
    fn decode_mutated_encoding_never_panics(b in any_bundle(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = b.encode().unwrap().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(d) = KeyBundle::decode(&bytes) {
            // Whatever decodes still obeys the invariants.
            prop_assert!(!d.nonce.is_empty());
            prop_assert!(d.validate().is_ok());
        }
    }
}
