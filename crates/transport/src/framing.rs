//! Varint length-delimited protobuf frames, as used on QUIC streams: `len(varint) || message`.
//!
//! Lengths are bounded before anything is allocated, so a hostile peer cannot make us allocate
//! more than the configured maximum per frame.

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::Error;

/// Appends `msg` as one frame to `buf`; fails if it exceeds `max` bytes.
pub fn encode<M: Message>(msg: &M, max: usize, buf: &mut Vec<u8>) -> Result<(), Error> {
    let len = msg.encoded_len();
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    buf.reserve(len + prost::length_delimiter_len(len));
    msg.encode_length_delimited(buf)
        .map_err(|e| Error::Frame(e.to_string()))
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a new frame starts.
pub async fn read<M: Message + Default, R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    scratch: &mut Vec<u8>,
) -> Result<Option<M>, Error> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = match r.read_u8().await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && shift == 0 => {
                return Ok(None);
            }
            Err(e) => return Err(Error::Connection(e.to_string())),
        };
        if shift >= 63 {
            return Err(Error::Frame("length varint too long".into()));
        }
        len |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    scratch.clear();
    scratch.resize(len, 0);
    r.read_exact(scratch)
        .await
        .map_err(|e| Error::Connection(e.to_string()))?;
    let msg = M::decode(scratch.as_slice()).map_err(|e| Error::Frame(e.to_string()));
    // The scratch buffer may hold key bytes: wipe it before reuse or drop.
    zeroize::Zeroize::zeroize(scratch);
    msg.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ikt_proto::{DeliveryAck, KeyBundle};

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut b = KeyBundle::default();
        b.seq = 300;
        b.nonce = "n".repeat(100);
        b.ck = vec![9; 16];
        let mut buf = Vec::new();
        encode(&b, 4096, &mut buf).expect("encode");
        encode(
            &DeliveryAck {
                seq: 1,
                status: 1,
                reason: String::new(),
            },
            4096,
            &mut buf,
        )
        .expect("encode ack");
        assert!(matches!(
            encode(&b, 10, &mut Vec::new()),
            Err(Error::TooLarge { .. })
        ));

        let mut r = &buf[..];
        let mut scratch = Vec::new();
        let got: KeyBundle = read(&mut r, 4096, &mut scratch)
            .await
            .expect("read")
            .expect("frame");
        assert_eq!(got, b);
        let ack: DeliveryAck = read(&mut r, 4096, &mut scratch)
            .await
            .expect("read")
            .expect("ack");
        assert_eq!(ack.seq, 1);
        let end: Option<DeliveryAck> = read(&mut r, 4096, &mut scratch).await.expect("eof");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn hostile_input_is_an_error_not_a_panic() {
        let mut scratch = Vec::new();
        // Claims 1 GiB.
        let mut r: &[u8] = &[0x80, 0x80, 0x80, 0x80, 0x04];
        let e = read::<KeyBundle, _>(&mut r, 4096, &mut scratch).await;
        assert!(matches!(e, Err(Error::TooLarge { .. })));
        // Endless varint.
        let mut r: &[u8] = &[0xff; 20];
        assert!(matches!(
            read::<KeyBundle, _>(&mut r, 4096, &mut scratch).await,
            Err(Error::Frame(_))
        ));
        // Truncated body.
        let mut r: &[u8] = &[0x05, 1, 2];
        assert!(matches!(
            read::<KeyBundle, _>(&mut r, 4096, &mut scratch).await,
            Err(Error::Connection(_))
        ));
        // Garbage body.
        let mut r: &[u8] = &[0x03, 0xff, 0xff, 0xff];
        assert!(matches!(
            read::<KeyBundle, _>(&mut r, 4096, &mut scratch).await,
            Err(Error::Frame(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
            rt.block_on(async {
                let mut r = data.as_slice();
                let mut scratch = Vec::new();
                for _ in 0..64 {
                    match read::<KeyBundle, _>(&mut r, 256, &mut scratch).await {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            });
        }
    }
}
