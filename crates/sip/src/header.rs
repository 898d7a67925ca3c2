//! Header identity: canonical names, compact forms and the byte ranges of one header field.

use std::ops::Range;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canon:literal, [$($alias:literal),*] ;)*) => {
        /// Canonical header identity; compact forms map to the long name (`v` -> Via, `i` -> Call-ID, ...).
        ///
        /// Names are matched case-insensitively. Anything not listed is `Other`; its spelling is
        /// available through [`crate::Message::name`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// A header this crate has no name for.
            Other,
        }

        impl HeaderName {
            /// The canonical long spelling (`None` for [`HeaderName::Other`]).
            pub fn as_str(self) -> Option<&'static str> {
                match self {
                    $( HeaderName::$variant => Some($canon), )*
                    HeaderName::Other => None,
                }
            }

            fn from_lower(lower: &[u8]) -> HeaderName {
                match lower {
                    $( $($alias)|* => HeaderName::$variant, )*
                    _ => HeaderName::Other,
                }
            }
        }
    };
}

// Each line: variant, canonical spelling, then every lowercase spelling that maps to it
// (the long form first, then the RFC 3261 / IANA compact form if any).
header_names! {
    /// `Via` / `v`.
    Via => "Via", [b"via", b"v"];
    /// `Call-ID` / `i`.
    CallId => "Call-ID", [b"call-id", b"i"];
    /// `CSeq`.
    CSeq => "CSeq", [b"cseq"];
    /// `From` / `f`.
    From => "From", [b"from", b"f"];
    /// `To` / `t`.
    To => "To", [b"to", b"t"];
    /// `Max-Forwards`.
    MaxForwards => "Max-Forwards", [b"max-forwards"];
    /// `Content-Length` / `l`.
    ContentLength => "Content-Length", [b"content-length", b"l"];
    /// `Content-Type` / `c`.
    ContentType => "Content-Type", [b"content-type", b"c"];
    /// `Content-Encoding` / `e`.
    ContentEncoding => "Content-Encoding", [b"content-encoding", b"e"];
    /// `Contact` / `m`.
    Contact => "Contact", [b"contact", b"m"];
    /// `Route`.
    Route => "Route", [b"route"];
    /// `Record-Route`.
    RecordRoute => "Record-Route", [b"record-route"];
    /// `Path` (RFC 3327).
    Path => "Path", [b"path"];
    /// `Service-Route` (RFC 3608).
    ServiceRoute => "Service-Route", [b"service-route"];
    /// `Expires`.
    Expires => "Expires", [b"expires"];
    /// `Min-Expires`.
    MinExpires => "Min-Expires", [b"min-expires"];
    /// `WWW-Authenticate`.
    WwwAuthenticate => "WWW-Authenticate", [b"www-authenticate"];
    /// `Proxy-Authenticate`.
    ProxyAuthenticate => "Proxy-Authenticate", [b"proxy-authenticate"];
    /// `Authorization`.
    Authorization => "Authorization", [b"authorization"];
    /// `Proxy-Authorization`.
    ProxyAuthorization => "Proxy-Authorization", [b"proxy-authorization"];
    /// `Authentication-Info`.
    AuthenticationInfo => "Authentication-Info", [b"authentication-info"];
    /// `Event` / `o`.
    Event => "Event", [b"event", b"o"];
    /// `Allow-Events` / `u`.
    AllowEvents => "Allow-Events", [b"allow-events", b"u"];
    /// `Subscription-State`.
    SubscriptionState => "Subscription-State", [b"subscription-state"];
    /// `Supported` / `k`.
    Supported => "Supported", [b"supported", b"k"];
    /// `Require`.
    Require => "Require", [b"require"];
    /// `Proxy-Require`.
    ProxyRequire => "Proxy-Require", [b"proxy-require"];
    /// `Unsupported`.
    Unsupported => "Unsupported", [b"unsupported"];
    /// `Allow`.
    Allow => "Allow", [b"allow"];
    /// `Accept`.
    Accept => "Accept", [b"accept"];
    /// `Subject` / `s`.
    Subject => "Subject", [b"subject", b"s"];
    /// `User-Agent`.
    UserAgent => "User-Agent", [b"user-agent"];
    /// `Server`.
    Server => "Server", [b"server"];
    /// `Retry-After`.
    RetryAfter => "Retry-After", [b"retry-after"];
    /// `Date`.
    Date => "Date", [b"date"];
    /// `Warning`.
    Warning => "Warning", [b"warning"];
    /// `Timestamp`.
    Timestamp => "Timestamp", [b"timestamp"];
    /// `Refer-To` / `r`.
    ReferTo => "Refer-To", [b"refer-to", b"r"];
    /// `Referred-By` / `b`.
    ReferredBy => "Referred-By", [b"referred-by", b"b"];
    /// `Session-Expires` / `x`.
    SessionExpires => "Session-Expires", [b"session-expires", b"x"];
    /// `Accept-Contact` / `a`.
    AcceptContact => "Accept-Contact", [b"accept-contact", b"a"];
    /// `Reject-Contact` / `j`.
    RejectContact => "Reject-Contact", [b"reject-contact", b"j"];
    /// `Request-Disposition` / `d`.
    RequestDisposition => "Request-Disposition", [b"request-disposition", b"d"];
    /// `Identity` / `y`.
    Identity => "Identity", [b"identity", b"y"];
    /// `P-Associated-URI` (RFC 7315).
    PAssociatedUri => "P-Associated-URI", [b"p-associated-uri"];
    /// `P-Asserted-Identity`.
    PAssertedIdentity => "P-Asserted-Identity", [b"p-asserted-identity"];
    /// `P-Preferred-Identity`.
    PPreferredIdentity => "P-Preferred-Identity", [b"p-preferred-identity"];
    /// `P-Visited-Network-ID`.
    PVisitedNetworkId => "P-Visited-Network-ID", [b"p-visited-network-id"];
    /// `P-Charging-Vector`.
    PChargingVector => "P-Charging-Vector", [b"p-charging-vector"];
    /// `P-Access-Network-Info`.
    PAccessNetworkInfo => "P-Access-Network-Info", [b"p-access-network-info"];
    /// `Security-Client` (RFC 3329).
    SecurityClient => "Security-Client", [b"security-client"];
    /// `Security-Server` (RFC 3329).
    SecurityServer => "Security-Server", [b"security-server"];
    /// `Security-Verify` (RFC 3329).
    SecurityVerify => "Security-Verify", [b"security-verify"];
}

/// Longest name we try to classify; longer names are always `Other`.
const MAX_KNOWN: usize = 24;

impl HeaderName {
    /// Classify a raw header name (any case, compact forms accepted); never allocates.
    pub fn parse(raw: &[u8]) -> HeaderName {
        if raw.is_empty() || raw.len() > MAX_KNOWN {
            return HeaderName::Other;
        }
        let mut lower = [0u8; MAX_KNOWN];
        for (d, s) in lower.iter_mut().zip(raw) {
            *d = s.to_ascii_lowercase();
        }
        HeaderName::from_lower(&lower[..raw.len()])
    }
}

/// One header field as byte ranges into the message (see [`crate::Message::bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical identity of the name.
    pub name: HeaderName,
    /// The whole field: name, colon, value, folded continuation lines and the final line ending.
    pub line: Range<usize>,
    /// The name as written (without the colon or white space before it).
    pub name_range: Range<usize>,
    /// The value as written: leading and trailing white space trimmed, folding kept as-is.
    pub value_range: Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::parse(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::parse(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::parse(b"VIA"), HeaderName::Via);
        assert_eq!(HeaderName::parse(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse(b"call-ID"), HeaderName::CallId);
        assert_eq!(HeaderName::parse(b"l"), HeaderName::ContentLength);
        assert_eq!(
            HeaderName::parse(b"www-AUTHENTICATE"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(
            HeaderName::parse(b"p-associated-uri"),
            HeaderName::PAssociatedUri
        );
        assert_eq!(HeaderName::parse(b"X-Foo"), HeaderName::Other);
        assert_eq!(HeaderName::parse(b""), HeaderName::Other);
        assert_eq!(HeaderName::parse(&[b'a'; 100]), HeaderName::Other);
        assert_eq!(HeaderName::Via.as_str(), Some("Via"));
        assert_eq!(HeaderName::Other.as_str(), None);
    }
}
