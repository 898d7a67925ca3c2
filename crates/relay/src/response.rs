//! Building responses statelessly: answer a request, or turn one response into another.
//!
//! Both copy the Via, From, To, Call-ID and CSeq lines verbatim (so the result routes exactly like
//! the original would), add the caller's extra headers and an empty body.

use ikt_sip::{HeaderName, Message};
use sha2::{Digest, Sha256};

const COPIED: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// Builds a response with `code` and `reason` to `request`, as a stateless proxy or UAS would.
///
/// If the To header has no tag, a deterministic one (derived from Call-ID and the top Via
/// branch) is added, so a retransmitted request gets an identical response.
/// `extra` headers are written as `Name: value` after the copied ones.
pub fn response_to(
    request: &Message<'_>,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = status_line(code, reason);
    let bytes = request.bytes();
    for h in request.headers() {
        if !COPIED.contains(&h.name) {
            continue;
        }
        let needs_tag = h.name == HeaderName::To && request.to().is_some_and(|t| t.tag.is_none());
        if needs_tag {
            out.extend_from_slice(&bytes[h.line.start..h.value_range.end]);
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(to_tag(request).as_bytes());
            out.extend_from_slice(&bytes[h.value_range.end..h.line.end]);
        } else {
            out.extend_from_slice(&bytes[h.line.clone()]);
        }
    }
    finish(out, extra)
}

/// Turns `response` into another response (e.g. 401 into 503 with Retry-After), keeping its
/// Via, From, To, Call-ID and CSeq lines byte for byte and dropping everything else.
pub fn rewrite_response(
    response: &Message<'_>,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = status_line(code, reason);
    let bytes = response.bytes();
    for h in response
        .headers()
        .iter()
        .filter(|h| COPIED.contains(&h.name))
    {
        out.extend_from_slice(&bytes[h.line.clone()]);
    }
    finish(out, extra)
}

fn status_line(code: u16, reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(single_line(reason).as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn finish(mut out: Vec<u8>, extra: &[(&str, &str)]) -> Vec<u8> {
    for (name, value) in extra {
        out.extend_from_slice(single_line(name).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(single_line(value).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// Cuts a caller-supplied string at the first line break so it cannot inject header lines.
fn single_line(s: &str) -> &str {
    s.split(['\r', '\n']).next().unwrap_or("")
}

fn to_tag(request: &Message<'_>) -> String {
    let mut h = Sha256::new();
    h.update(request.call_id().unwrap_or("").as_bytes());
    h.update([0u8]);
    h.update(
        request
            .top_via()
            .and_then(|v| v.branch())
            .unwrap_or("")
            .as_bytes(),
    );
    let d = h.finalize();
    d[..6].iter().map(|b| format!("{b:02x}")).collect()
}
