//! Protobuf decoding of untrusted bytes: the hand-written `ikt_keys::KeyBundle::decode` and the
//! prost-generated `KeyBundle` / `DeliveryAck`, cross-checked against each other.
#![no_main]

use ikt_keys::KeyBundle;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let ours = KeyBundle::decode(data);
    let theirs = ikt_proto::KeyBundle::decode(data);
    let _ = ikt_proto::DeliveryAck::decode(data);
    let _ = ikt_proto::DeliveryAck::decode_length_delimited(data);
    let _ = ikt_proto::KeyBundle::decode_length_delimited(data);
    if let Ok(b) = ours {
        // Whatever our decoder accepts, prost (the peer's encoder) agrees on.
        let w = theirs.expect("ikt_keys accepted a bundle prost refuses");
        assert_eq!(w.nonce, b.nonce);
        assert_eq!(w.realm, b.realm);
        assert_eq!(w.call_id, b.call_id);
        assert_eq!(w.seq, b.seq);
        assert_eq!(w.cseq, b.cseq);
        assert_eq!(w.issued_at_ms, b.issued_at_ms);
        assert_eq!(w.ck.as_slice(), b.ck.expose_secret());
        assert_eq!(w.ik.as_slice(), b.ik.expose_secret());
        // Re-encoding is canonical and decodes to the same bundle.
        let again = b.encode().expect("a decoded bundle re-encodes");
        let b2 = KeyBundle::decode(&again).expect("re-encoded bundle decodes");
        assert_eq!(b, b2);
        let p = ikt_proto::KeyBundle::decode(again.as_slice()).expect("prost decodes ours");
        assert_eq!(p.encode_to_vec().as_slice(), again.as_slice());
    }
});
