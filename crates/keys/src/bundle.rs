//! [`KeyBundle`]: one AKA challenge's CK/IK and the context needed to restore them, with its
//! protobuf encoding.
//!
//! The encoding is wire-compatible with `message KeyBundle` in `proto/ikt/v1/key_transport.proto`
//! (field numbers 1..=12, proto3 defaults omitted, fields written in number order, so the bytes
//! equal what prost produces). It is written by hand rather than with `prost::Message` because
//! this crate must not depend on the generated crate, and because hand encoding lets CK/IK go
//! straight from the input slice into their secret types and the output into one pre-sized,
//! wiped buffer: no intermediate `Vec` holding key bytes is ever grown, reallocated or dropped
//! without zeroizing.
//!
//! Decoding treats the input as hostile: total size and every string are bounded, `ck`/`ik`
//! must be exactly 16 bytes, strings must be UTF-8, unknown fields are skipped (forward
//! compatibility), groups are refused, and no input can panic.

use zeroize::Zeroizing;

use crate::secret::{Ck, Fingerprint, Ik, fingerprint};
use crate::{DecodeError, Error, Field};

/// Largest encoded bundle accepted or produced, in bytes.
pub const MAX_ENCODED_LEN: usize = 2048;
/// Longest realm, nonce, Call-ID, IMPU or IMPI accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 256;
/// Longest algorithm name accepted, in bytes.
pub const MAX_ALGORITHM_LEN: usize = 32;

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

/// One challenge's session keys and context (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBundle {
    /// Sender-assigned sequence number; acks refer to it. Not part of the content identity.
    pub seq: u64,
    /// Digest realm of the challenge.
    pub realm: String,
    /// Challenge nonce (base64 of RAND||AUTN): the lookup key on the p-side.
    pub nonce: String,
    /// Call-ID of the REGISTER transaction.
    pub call_id: String,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
    /// Public user identity being registered.
    pub impu: String,
    /// Private user identity being authenticated.
    pub impi: String,
    /// Cipher key.
    pub ck: Ck,
    /// Integrity key.
    pub ik: Ik,
    /// When the s-side issued the bundle, Unix milliseconds.
    pub issued_at_ms: u64,
    /// After this instant (Unix ms) the bundle must not be used; 0 means "no limit of its own".
    pub not_after_ms: u64,
    /// Challenge algorithm, e.g. `AKAv1-MD5`.
    pub algorithm: String,
}

fn varint_len(v: u64) -> usize {
    // 7 payload bits per byte; at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

impl KeyBundle {
    /// The log-safe fingerprint of this bundle's CK/IK.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.ck, &self.ik)
    }

    /// Whether `other` carries the same keys for the same challenge, so that receiving it again
    /// is a harmless duplicate: equal nonce, Call-ID, realm, IMPI, IMPU, algorithm, CK and IK.
    /// `seq`, `cseq` and the timestamps may differ (a retransmitted 401 is re-extracted later and
    /// re-sent under a new sequence number).
    pub fn same_content(&self, other: &KeyBundle) -> bool {
        // Non-short-circuit `&` so the key comparison runs whatever the other fields say.
        let keys = (self.ck == other.ck) & (self.ik == other.ik);
        keys & (self.nonce == other.nonce)
            & (self.call_id == other.call_id)
            & (self.realm == other.realm)
            & (self.impi == other.impi)
            & (self.impu == other.impu)
            & (self.algorithm == other.algorithm)
    }

    /// Checks the size limits that [`KeyBundle::decode`] enforces, so that whatever this crate
    /// encodes it can also decode. The nonce must be non-empty.
    pub fn validate(&self) -> Result<(), Error> {
        let fields = [
            (Field::Realm, &self.realm, MAX_FIELD_LEN),
            (Field::Nonce, &self.nonce, MAX_FIELD_LEN),
            (Field::CallId, &self.call_id, MAX_FIELD_LEN),
            (Field::Impu, &self.impu, MAX_FIELD_LEN),
            (Field::Impi, &self.impi, MAX_FIELD_LEN),
            (Field::Algorithm, &self.algorithm, MAX_ALGORITHM_LEN),
        ];
        for (field, value, max) in fields {
            if value.len() > max {
                return Err(Error::InvalidField(field));
            }
        }
        if self.nonce.is_empty() {
            return Err(Error::InvalidField(Field::Nonce));
        }
        Ok(())
    }

    /// Exact length of [`KeyBundle::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let vint = |v: u64| if v == 0 { 0 } else { 1 + varint_len(v) };
        let text = |s: &str| {
            if s.is_empty() {
                0
            } else {
                1 + varint_len(s.len() as u64) + s.len()
            }
        };
        vint(self.seq)
            + text(&self.realm)
            + text(&self.nonce)
            + text(&self.call_id)
            + vint(u64::from(self.cseq))
            + text(&self.impu)
            + text(&self.impi)
            + 2 * (1 + 1 + 16)
            + vint(self.issued_at_ms)
            + vint(self.not_after_ms)
            + text(&self.algorithm)
    }

    /// Encodes to protobuf in a buffer that is wiped when dropped.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut out = Zeroizing::new(Vec::new());
        self.encode_into(&mut out, 0)?;
        Ok(out)
    }

    /// Appends the encoding to `out` after reserving room for it plus `headroom` more bytes, so
    /// neither this call nor a later append of up to `headroom` bytes (an AEAD tag) reallocates
    /// and strands a copy of the keys in freed memory.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>, headroom: usize) -> Result<(), Error> {
        self.validate()?;
        let len = self.encoded_len();
        out.reserve_exact(len + headroom);
        let cap_before = out.capacity();
        let put_u = |out: &mut Vec<u8>, field: u32, v: u64| {
            if v != 0 {
                put_key(out, field, WIRE_VARINT);
                put_varint(out, v);
            }
        };
        let put_b = |out: &mut Vec<u8>, field: u32, b: &[u8]| {
            if !b.is_empty() {
                put_key(out, field, WIRE_LEN);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
        };
        put_u(out, 1, self.seq);
        put_b(out, 2, self.realm.as_bytes());
        put_b(out, 3, self.nonce.as_bytes());
        put_b(out, 4, self.call_id.as_bytes());
        put_u(out, 5, u64::from(self.cseq));
        put_b(out, 6, self.impu.as_bytes());
        put_b(out, 7, self.impi.as_bytes());
        put_b(out, 8, self.ck.expose_secret());
        put_b(out, 9, self.ik.expose_secret());
        put_u(out, 10, self.issued_at_ms);
        put_u(out, 11, self.not_after_ms);
        put_b(out, 12, self.algorithm.as_bytes());
        debug_assert_eq!(out.capacity(), cap_before, "encode reallocated");
        Ok(())
    }

    /// Decodes untrusted protobuf bytes.
    pub fn decode(buf: &[u8]) -> Result<KeyBundle, DecodeError> {
        if buf.len() > MAX_ENCODED_LEN {
            return Err(DecodeError::TooLarge {
                len: buf.len(),
                max: MAX_ENCODED_LEN,
            });
        }
        let mut r = Reader { buf, pos: 0 };
        let mut seq = 0;
        let mut cseq = 0;
        let mut issued_at_ms = 0;
        let mut not_after_ms = 0;
        let mut realm = String::new();
        let mut nonce = String::new();
        let mut call_id = String::new();
        let mut impu = String::new();
        let mut impi = String::new();
        let mut algorithm = String::new();
        let mut ck: Option<Ck> = None;
        let mut ik: Option<Ik> = None;
        let mut ck_len = 0;
        let mut ik_len = 0;
        while !r.done() {
            let key = r.varint()?;
            let wire = (key & 7) as u8;
            let number = key >> 3;
            if number == 0 || number > u64::from(u32::MAX >> 3) {
                return Err(DecodeError::BadTag);
            }
            let field = match number {
                1 => Some(Field::Seq),
                2 => Some(Field::Realm),
                3 => Some(Field::Nonce),
                4 => Some(Field::CallId),
                5 => Some(Field::Cseq),
                6 => Some(Field::Impu),
                7 => Some(Field::Impi),
                8 => Some(Field::Ck),
                9 => Some(Field::Ik),
                10 => Some(Field::IssuedAt),
                11 => Some(Field::NotAfter),
                12 => Some(Field::Algorithm),
                _ => None,
            };
            let Some(field) = field else {
                r.skip(wire)?;
                continue;
            };
            let want = match field {
                Field::Seq | Field::Cseq | Field::IssuedAt | Field::NotAfter => WIRE_VARINT,
                _ => WIRE_LEN,
            };
            if wire != want {
                return Err(DecodeError::WrongWireType(field));
            }
            match field {
                Field::Seq => seq = r.varint()?,
                Field::Cseq => {
                    cseq = u32::try_from(r.varint()?).map_err(|_| DecodeError::BadVarint)?;
                }
                Field::IssuedAt => issued_at_ms = r.varint()?,
                Field::NotAfter => not_after_ms = r.varint()?,
                Field::Ck => {
                    let b = r.bytes()?;
                    ck_len = b.len();
                    ck = Ck::from_slice(b).ok();
                }
                Field::Ik => {
                    let b = r.bytes()?;
                    ik_len = b.len();
                    ik = Ik::from_slice(b).ok();
                }
                Field::Realm => realm = r.text(field, MAX_FIELD_LEN)?,
                Field::Nonce => nonce = r.text(field, MAX_FIELD_LEN)?,
                Field::CallId => call_id = r.text(field, MAX_FIELD_LEN)?,
                Field::Impu => impu = r.text(field, MAX_FIELD_LEN)?,
                Field::Impi => impi = r.text(field, MAX_FIELD_LEN)?,
                Field::Algorithm => algorithm = r.text(field, MAX_ALGORITHM_LEN)?,
            }
        }
        let ck = ck.ok_or(DecodeError::BadKeyLength {
            field: Field::Ck,
            len: ck_len,
        })?;
        let ik = ik.ok_or(DecodeError::BadKeyLength {
            field: Field::Ik,
            len: ik_len,
        })?;
        if nonce.is_empty() {
            return Err(DecodeError::Missing(Field::Nonce));
        }
        Ok(KeyBundle {
            seq,
            realm,
            nonce,
            call_id,
            cseq,
            impu,
            impi,
            ck,
            ik,
            issued_at_ms,
            not_after_ms,
            algorithm,
        })
    }
}

/// Bounds-checked cursor over the input; every read returns an error instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(DecodeError::BadVarint);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.buf.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= rest)
            .ok_or(DecodeError::Truncated)?;
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        self.take(n)
    }

    fn text(&mut self, field: Field, max: usize) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        if b.len() > max {
            return Err(DecodeError::FieldTooLong(field));
        }
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8(field))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_I64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_I32 => self.take(4).map(drop),
            _ => Err(DecodeError::BadTag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mirror of the `.proto` message, used only to prove wire compatibility with prost.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ProstBundle {
        #[prost(uint64, tag = "1")]
        seq: u64,
        #[prost(string, tag = "2")]
        realm: String,
        #[prost(string, tag = "3")]
        nonce: String,
        #[prost(string, tag = "4")]
        call_id: String,
        #[prost(uint32, tag = "5")]
        cseq: u32,
        #[prost(string, tag = "6")]
        impu: String,
        #[prost(string, tag = "7")]
        impi: String,
        #[prost(bytes = "vec", tag = "8")]
        ck: Vec<u8>,
        #[prost(bytes = "vec", tag = "9")]
        ik: Vec<u8>,
        #[prost(uint64, tag = "10")]
        issued_at_ms: u64,
        #[prost(uint64, tag = "11")]
        not_after_ms: u64,
        #[prost(string, tag = "12")]
        algorithm: String,
    }

    fn sample() -> KeyBundle {
        KeyBundle {
            seq: 300,
            realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
            nonce: "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=".into(),
            call_id: "a84b4c76e66710@pc33.example".into(),
            cseq: 1,
            impu: "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into(),
            impi: "001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into(),
            ck: Ck::from_bytes([0x11; 16]),
            ik: Ik::from_bytes([0x22; 16]),
            issued_at_ms: 1_795_000_000_000,
            not_after_ms: 1_795_000_064_000,
            algorithm: "AKAv1-MD5".into(),
        }
    }

    #[test]
    fn bytes_equal_prost_encoding() {
        use prost::Message;
        let b = sample();
        let ours = b.encode().unwrap();
        assert_eq!(ours.len(), b.encoded_len());
        let p = ProstBundle {
            seq: b.seq,
            realm: b.realm.clone(),
            nonce: b.nonce.clone(),
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            impu: b.impu.clone(),
            impi: b.impi.clone(),
            ck: b.ck.expose_secret().to_vec(),
            ik: b.ik.expose_secret().to_vec(),
            issued_at_ms: b.issued_at_ms,
            not_after_ms: b.not_after_ms,
            algorithm: b.algorithm.clone(),
        };
        assert_eq!(p.encode_to_vec(), ours.as_slice());
        assert_eq!(ProstBundle::decode(ours.as_slice()).unwrap(), p);
        assert_eq!(KeyBundle::decode(&ours).unwrap(), b);
    }

    #[test]
    fn key_length_enforced() {
        use prost::Message;
        let mut p = ProstBundle {
            nonce: "n".into(),
            ck: vec![1; 16],
            ik: vec![2; 15],
            ..Default::default()
        };
        assert_eq!(
            KeyBundle::decode(&p.encode_to_vec()),
            Err(DecodeError::BadKeyLength {
                field: Field::Ik,
                len: 15
            })
        );
        p.ik = vec![];
        assert_eq!(
            KeyBundle::decode(&p.encode_to_vec()),
            Err(DecodeError::BadKeyLength {
                field: Field::Ik,
                len: 0
            })
        );
        p.ik = vec![2; 16];
        p.nonce.clear();
        assert_eq!(
            KeyBundle::decode(&p.encode_to_vec()),
            Err(DecodeError::Missing(Field::Nonce))
        );
    }

    #[test]
    fn unknown_fields_skipped_groups_refused() {
        let mut bytes = sample().encode().unwrap().to_vec();
        // field 99, varint 5; field 100, fixed32; field 101, length 2.
        bytes.extend_from_slice(&[
            0x98, 0x06, 0x05, 0xa5, 0x06, 1, 2, 3, 4, 0xaa, 0x06, 2, 9, 9,
        ]);
        assert_eq!(KeyBundle::decode(&bytes).unwrap(), sample());
        bytes.extend_from_slice(&[0xab, 0x06]); // field 101, start group
        assert_eq!(KeyBundle::decode(&bytes), Err(DecodeError::BadTag));
    }

    #[test]
    fn limits() {
        let mut b = sample();
        b.call_id = "x".repeat(MAX_FIELD_LEN + 1);
        assert_eq!(b.encode().err(), Some(Error::InvalidField(Field::CallId)));
        assert!(matches!(
            KeyBundle::decode(&vec![0u8; MAX_ENCODED_LEN + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            KeyBundle::decode(&[0x12, 0x05, b'a']),
            Err(DecodeError::Truncated)
        );
        assert_eq!(KeyBundle::decode(&[0x08; 11]), Err(DecodeError::Truncated));
        assert_eq!(
            KeyBundle::decode(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
            ]),
            Err(DecodeError::BadVarint)
        );
        assert_eq!(
            KeyBundle::decode(&[0x0a, 0x01]),
            Err(DecodeError::WrongWireType(Field::Seq))
        );
    }

    #[test]
    fn varint_len_matches() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }
}
