//! Byte-preserving SIP message scanner and editor: start line, header ranges, Via, challenges, framing.
//!
//! Nothing here does I/O or copies a message to read it: [`scan`] records byte ranges into the
//! caller's buffer, accessors hand out `&str` slices of it, and the [`Editor`] writes a new
//! message by splicing, so untouched bytes leave exactly as they came in.
//!
//! ```
//! let raw = b"SIP/2.0 401 Unauthorized\r\n\
//! Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
//! CSeq: 1 REGISTER\r\n\
//! WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, \
//! ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\", qop=\"auth\"\r\n\
//! Content-Length: 0\r\n\r\n";
//! let m = ikt_sip::scan(raw)?;
//! assert_eq!(m.top_via().and_then(|v| v.branch()), Some("z9hG4bK1"));
//! assert_eq!(m.edit().finish(), raw); // untouched bytes are copied verbatim
//!
//! let stripped = ikt_sip::remove_keys(&m, 0)?;
//! let m2 = ikt_sip::scan(&stripped)?;
//! assert!(!m2.challenges()[0].has_keys());
//! let restored = ikt_sip::restore_keys(
//!     &m2, 0, "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100")?;
//! assert_eq!(restored, raw);
//! # Ok::<(), ikt_sip::Error>(())
//! ```
//!
//! # Layout
//! - [`message`](scan): the scanner, [`Message`], [`StartLine`], [`Limits`].
//! - `header`: [`HeaderName`] (compact forms, any case) and [`Header`] ranges.
//! - `via`: [`Via`] values across commas and headers.
//! - `addr`: [`NameAddr`] for From/To/Contact/Route/Path/Service-Route.
//! - `params`: `;name=value` lists ([`Params`]); `uri`: SIP/TEL URIs split into parts ([`Uri`]).
//! - `challenge`: WWW-/Proxy-Authenticate and Authorization as [`Challenge`]s, and the AKA key
//!   edits ([`remove_keys`], [`restore_keys`], [`replace_keys_with_param`]).
//! - `edit`: the splicing [`Editor`] and relay helpers ([`prepend_via`], [`remove_top_via`]).
//! - `framing`: the stream [`Framer`].
//! - `error`: [`ScanError`] (small, `Copy`, with byte offsets) and [`Error`].
#![forbid(unsafe_code)]

mod addr;
mod challenge;
mod edit;
mod error;
mod framing;
mod header;
mod lex;
mod message;
mod params;
mod uri;
mod via;

pub use addr::NameAddr;
pub use challenge::{
    AuthParam, Challenge, canonical_aka_challenge, insert_auth_param, remove_auth_params,
    remove_keys, replace_keys_with_param, restore_keys, restore_keys_in,
    write_canonical_aka_challenge,
};
pub use edit::{Editor, prepend_via, remove_top_via, set_max_forwards};
pub use error::{Error, ScanError};
pub use framing::Framer;
pub use header::{Header, HeaderName};
pub use message::{CSeq, Limits, Message, StartLine, scan, scan_with};
pub use params::{Param, Params};
pub use uri::Uri;
pub use via::Via;
