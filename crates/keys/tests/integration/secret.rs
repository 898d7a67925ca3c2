//! Secret hex parsing: round trip and hostile input.

use ikt_keys::{Ck, Error, Ik, SecretBytes, fingerprint};
use proptest::prelude::*;

proptest! {
    #[test]
    fn hex_round_trip_any_case(bytes in any::<[u8; 16]>(), upper in any::<bool>()) {
        let ck = Ck::from_bytes(bytes);
        let hex = ck.to_hex();
        prop_assert_eq!(hex.len(), 32);
        prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let input = if upper { hex.to_uppercase() } else { hex.to_string() };
        prop_assert_eq!(Ck::from_hex(&input).unwrap(), ck);
    }

    #[test]
    fn hex_parsing_arbitrary_strings_never_panics(s in ".{0,80}") {
        match Ik::from_hex(&s) {
            Ok(ik) => {
                let hex = ik.to_hex();
                prop_assert_eq!(hex.as_str(), s.to_ascii_lowercase());
            }
            Err(e) => {
                let expected = matches!(e, Error::SecretHex | Error::SecretLength { .. });
                prop_assert!(expected, "unexpected error {:?}", e);
            }
        }
        let _ = SecretBytes::from_hex(&s);
    }

    #[test]
    fn fingerprint_is_eight_lowercase_hex(ck in any::<[u8; 16]>(), ik in any::<[u8; 16]>()) {
        let f = fingerprint(&Ck::from_bytes(ck), &Ik::from_bytes(ik)).to_string();
        prop_assert_eq!(f.len(), 8);
        prop_assert!(f.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
