//! The `milenage` subcommand's computation: every output line from K, OP or OPc, RAND, SQN, AMF.

use crate::Error;
use crate::hex;
use crate::milenage::{self, Milenage};
use crate::secret::{K, Op, Opc};

/// Computes the `milenage` subcommand's output: `opc=`, `f1=`, `f1star=`, `f2=`, `f3=`, `f4=`,
/// `f5=`, `f5star=`, `autn=` lines in lowercase hex. Exactly one of `op` and `opc` must be given.
/// The result holds key material and is zeroized on drop.
pub fn report(
    k: &str,
    op: Option<&str>,
    opc: Option<&str>,
    rand: &str,
    sqn: &str,
    amf: &str,
) -> Result<zeroize::Zeroizing<String>, Error> {
    let bad = |field: &str, e: hex::HexError| Error::Config(format!("--{field}: {e}"));
    let k = K::from_hex(k).map_err(|e| bad("k", e))?;
    let m = match (op, opc) {
        (Some(op), None) => Milenage::with_op(&k, &Op::from_hex(op).map_err(|e| bad("op", e))?),
        (None, Some(opc)) => Milenage::with_opc(&k, Opc::from_hex(opc).map_err(|e| bad("opc", e))?),
        _ => return Err(Error::Config("give exactly one of --op and --opc".into())),
    };
    let rand = hex::decode_array::<16>(rand).map_err(|e| bad("rand", e))?;
    let sqn = hex::decode_array::<6>(sqn).map_err(|e| bad("sqn", e))?;
    let amf = hex::decode_array::<2>(amf).map_err(|e| bad("amf", e))?;
    let macs = m.f1_f1star(&rand, &sqn, &amf);
    let keys = m.f2345(&rand);
    let ak_star = m.f5star(&rand);
    let autn = milenage::autn(&sqn, &keys.ak, &amf, &macs.mac_a);
    let mut out = zeroize::Zeroizing::new(String::with_capacity(400));
    for (name, value) in [
        ("opc", m.opc().to_hex()),
        ("f1", zeroize::Zeroizing::new(hex::encode(&macs.mac_a))),
        ("f1star", zeroize::Zeroizing::new(hex::encode(&macs.mac_s))),
        ("f2", keys.res.to_hex()),
        ("f3", keys.ck.to_hex()),
        ("f4", keys.ik.to_hex()),
        ("f5", keys.ak.to_hex()),
        ("f5star", ak_star.to_hex()),
        ("autn", zeroize::Zeroizing::new(hex::encode(&autn))),
    ] {
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    }
    Ok(out)
}
