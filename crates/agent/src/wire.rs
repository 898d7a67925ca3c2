//! Conversions between the key store's [`ikt_keys::KeyBundle`] (secret types) and the protobuf
//! [`ikt_proto::KeyBundle`] that gRPC and QUIC carry.
//!
//! Both types wipe CK/IK on drop; these functions copy the keys straight from one into the other
//! without an intermediate buffer.

use ikt_keys::{Ck, Ik};

/// Why a received protobuf bundle was refused; never carries key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// `ck` is not 16 bytes.
    #[error("ck must be 16 bytes")]
    BadCk,
    /// `ik` is not 16 bytes.
    #[error("ik must be 16 bytes")]
    BadIk,
    /// A text field is empty or too long.
    #[error("invalid field {0}")]
    Field(&'static str),
}

/// The protobuf form of a bundle, for the out-of-band transports.
pub fn to_wire(b: &ikt_keys::KeyBundle) -> ikt_proto::KeyBundle {
    let mut w = ikt_proto::KeyBundle::default();
    w.seq = b.seq;
    w.realm = b.realm.clone();
    w.nonce = b.nonce.clone();
    w.call_id = b.call_id.clone();
    w.cseq = b.cseq;
    w.impu = b.impu.clone();
    w.impi = b.impi.clone();
    w.ck = b.ck.expose_secret().to_vec();
    w.ik = b.ik.expose_secret().to_vec();
    w.issued_at_ms = b.issued_at_ms;
    w.not_after_ms = b.not_after_ms;
    w.algorithm = b.algorithm.clone();
    w
}

/// The store form of a received protobuf bundle, checked (sizes, non-empty nonce).
pub fn from_wire(w: &ikt_proto::KeyBundle) -> Result<ikt_keys::KeyBundle, WireError> {
    let ck = Ck::from_slice(&w.ck).map_err(|_| WireError::BadCk)?;
    let ik = Ik::from_slice(&w.ik).map_err(|_| WireError::BadIk)?;
    let b = ikt_keys::KeyBundle {
        seq: w.seq,
        realm: w.realm.clone(),
        nonce: w.nonce.clone(),
        call_id: w.call_id.clone(),
        cseq: w.cseq,
        impu: w.impu.clone(),
        impi: w.impi.clone(),
        ck,
        ik,
        issued_at_ms: w.issued_at_ms,
        not_after_ms: w.not_after_ms,
        algorithm: w.algorithm.clone(),
    };
    b.validate().map_err(|e| match e {
        ikt_keys::Error::InvalidField(f) => WireError::Field(f.name()),
        _ => WireError::Field("bundle"),
    })?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ikt_keys::KeyBundle {
        ikt_keys::KeyBundle {
            seq: 3,
            realm: "ims.example.org".into(),
            nonce: "bm9uY2U=".into(),
            call_id: "c1@ue".into(),
            cseq: 2,
            impu: "sip:alice@ims.example.org".into(),
            impi: "alice@ims.example.org".into(),
            ck: Ck::from_bytes([1; 16]),
            ik: Ik::from_bytes([2; 16]),
            issued_at_ms: 10,
            not_after_ms: 20,
            algorithm: "AKAv1-MD5".into(),
        }
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let back = from_wire(&to_wire(&b)).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn refuses_bad_keys_and_fields() {
        let mut w = to_wire(&sample());
        w.ck.truncate(15);
        assert_eq!(from_wire(&w).unwrap_err(), WireError::BadCk);
        let mut w = to_wire(&sample());
        w.ik.push(0);
        assert_eq!(from_wire(&w).unwrap_err(), WireError::BadIk);
        let mut w = to_wire(&sample());
        w.nonce.clear();
        assert_eq!(from_wire(&w).unwrap_err(), WireError::Field("nonce"));
    }
}
