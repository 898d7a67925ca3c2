//! Property tests: byte preservation, key round trips, no panics, framing under any split,
//! Content-Length after edits.

use ikt_sip::{
    Framer, HeaderName, Limits, Message, Uri, prepend_via, remove_keys, remove_top_via,
    replace_keys_with_param, restore_keys, scan, scan_with, set_max_forwards,
};
use proptest::prelude::*;

use crate::corpus;

fn valid_corpus() -> Vec<Vec<u8>> {
    corpus().into_iter().map(|(_, b)| b).collect()
}

/// Call every accessor and helper; only panics matter here.
fn exercise(m: &Message<'_>) {
    let _ = (
        m.start_line(),
        m.version(),
        m.method(),
        m.status(),
        m.reason(),
        m.request_uri(),
    );
    let _ = (
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.expires(),
        m.body(),
        m.head_text(),
    );
    for h in m.headers() {
        let _ = (m.value(h), m.name(h));
    }
    for v in m.vias() {
        let _ = (
            v.transport(),
            v.host(),
            v.port(),
            v.branch(),
            v.received(),
            v.rport(),
        );
        let _ = v.params().count();
    }
    let _ = m.top_via();
    let _ = (
        m.from(),
        m.to(),
        m.contacts(),
        m.route(),
        m.record_route(),
        m.path(),
    );
    let _ = (m.service_route(), m.p_associated_uris());
    for c in m.contacts() {
        let _ = c.expires();
    }
    for a in m.route().iter().chain(&m.path()).chain(&m.record_route()) {
        let _ = Uri::parse(a.uri).map(|u| (u.transport(), u.is_loose_route()));
    }
    let _ = m.request_uri().map(Uri::parse);
    for v in m.vias() {
        let mut e = m.edit();
        e.remove_value(v.header_index, v.range);
        let _ = e.finish();
    }
    let _ = m.credentials();
    let challenges = m.challenges();
    for (i, c) in challenges.iter().enumerate() {
        let _ = (c.unescaped("nonce"), c.is_aka(), c.has_keys());
        let _ = remove_keys(m, i);
        let _ = replace_keys_with_param(m, i, "kt", "ikt1.k.abc");
        let _ = restore_keys(
            m,
            i,
            "0123456789abcdef0123456789abcdef",
            "fedcba9876543210fedcba9876543210",
        );
    }
    let _ = prepend_via(m, b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp");
    let _ = remove_top_via(m);
    let _ = set_max_forwards(m, 69);
    let _ = format!("{m:?}");
}

/// A corpus message with a random mutation: flipped bytes, an insertion, a truncation.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let files = valid_corpus();
    (
        0..files.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(i, flips, cut, truncate)| {
            let mut b = files[i].clone();
            for (at, byte) in flips {
                let at = at.index(b.len());
                if byte % 3 == 0 {
                    b.insert(at, byte);
                } else {
                    b[at] = byte;
                }
            }
            if truncate {
                b.truncate(cut.index(b.len() + 1));
            }
            b
        })
}

/// Canonical Kamailio challenge parts: realm, nonce (base64-ish), ck, ik, optional qop.
fn canonical_parts() -> impl Strategy<Value = (String, String, String, String, Option<String>)> {
    (
        "[a-z0-9.-]{1,40}",
        "[A-Za-z0-9+/]{0,64}={0,2}",
        "[0-9a-f]{32}",
        "[0-9a-f]{32}",
        prop::option::of(
            prop::sample::select(vec!["auth", "auth-int", "auth,auth-int"]).prop_map(String::from),
        ),
    )
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=20000 for a longer run.

    #[test]
    fn unedited_corpus_is_byte_identical(i in 0usize..64) {
        let files = valid_corpus();
        let raw = &files[i % files.len()];
        let m = scan(raw).unwrap();
        prop_assert_eq!(m.edit().finish(), m.bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(m) = scan(&data) {
            exercise(&m);
        }
        let mut f = Framer::new(Limits::DEFAULT);
        f.push(&data);
        for _ in 0..8 {
            if !matches!(f.next_message(), Ok(Some(_))) {
                break;
            }
        }
    }

    #[test]
    fn sip_like_bytes_never_panic(
        lines in prop::collection::vec("[A-Za-z:;,=<>\"\\\\ \t/@.0-9-]{0,40}", 0..12),
        start in prop::sample::select(vec!["REGISTER sip:a SIP/2.0", "SIP/2.0 401 x", "X y SIP/2.0", ""]),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::from(start);
        for l in &lines {
            text.push_str(eol);
            text.push_str(l);
        }
        text.push_str(eol);
        text.push_str(eol);
        if let Ok(m) = scan(text.as_bytes()) {
            exercise(&m);
        }
    }

    #[test]
    fn uri_parse_never_panics(s in "\\PC{0,60}", t in "(sips?|tel):[a-z0-9@:;=\\[\\]?.+-]{0,40}") {
        for text in [s.as_str(), t.as_str()] {
            if let Some(u) = Uri::parse(text) {
                let _ = (u.transport(), u.is_loose_route(), u.param("user"));
                prop_assert!(!u.scheme.is_empty());
            }
        }
    }

    #[test]
    fn mutated_corpus_never_panics(data in mutated()) {
        match scan(&data) {
            Ok(m) => {
                exercise(&m);
                prop_assert_eq!(m.edit().finish(), m.bytes());
            }
            Err(e) => prop_assert!(e.offset() <= data.len()),
        }
        let small = Limits { max_message: 700, max_headers: 8, max_line: 120 };
        if let Ok(m) = scan_with(&data, &small) {
            exercise(&m);
        }
        let mut f = Framer::new(small);
        f.push(&data);
        for _ in 0..4 {
            if !matches!(f.next_message(), Ok(Some(_))) {
                break;
            }
        }
    }

    #[test]
    fn keys_removed_and_restored_give_original_bytes(
        (realm, nonce, ck, ik, qop) in canonical_parts(),
        header in prop::sample::select(vec!["WWW-Authenticate", "Proxy-Authenticate"]),
        before in 0usize..3,
    ) {
        let mut chal = format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, ck=\"{ck}\", ik=\"{ik}\"");
        if let Some(q) = &qop {
            chal.push_str(&format!(", qop=\"{q}\""));
        }
        let mut raw = String::from("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n");
        // Unrelated challenges before ours must not confuse the index.
        for k in 0..before {
            raw.push_str(&format!("{header}: Digest realm=\"other{k}\", nonce=\"x\", algorithm=MD5\r\n"));
        }
        raw.push_str(&format!("{header}: {chal}\r\nContent-Length: 0\r\n\r\n"));
        let m = scan(raw.as_bytes()).unwrap();
        let stripped = remove_keys(&m, before).unwrap();
        let text = String::from_utf8(stripped.clone()).unwrap();
        let leaked = text.contains(ck.as_str()) || text.contains(ik.as_str());
        prop_assert!(!leaked);
        let ms = scan(&stripped).unwrap();
        prop_assert!(!ms.challenges()[before].has_keys());
        prop_assert_eq!(restore_keys(&ms, before, &ck, &ik).unwrap(), raw.as_bytes());

        let sealed = replace_keys_with_param(&m, before, "kt", "ikt1.kid.AbC-_").unwrap();
        let msealed = scan(&sealed).unwrap();
        prop_assert_eq!(restore_keys(&msealed, before, &ck, &ik).unwrap(), raw.as_bytes());
    }

    #[test]
    fn corpus_keys_round_trip(i in 0usize..64) {
        let files = valid_corpus();
        let raw = &files[i % files.len()];
        let m = scan(raw).unwrap();
        for (k, c) in m.challenges().iter().enumerate() {
            let (Some(ck), Some(ik)) = (c.param("ck"), c.param("ik")) else { continue };
            let stripped = remove_keys(&m, k).unwrap();
            let ms = scan(&stripped).unwrap();
            let restored = restore_keys(&ms, k, ck.value, ik.value).unwrap();
            let mr = scan(&restored).unwrap();
            let rc = &mr.challenges()[k];
            // Same params with the same values, whatever order the original used.
            let mut want: Vec<(String, &str)> = c.params.iter().map(|p| (p.name.to_ascii_lowercase(), p.value)).collect();
            let mut got: Vec<(String, &str)> = rc.params.iter().map(|p| (p.name.to_ascii_lowercase(), p.value)).collect();
            want.sort();
            got.sort();
            prop_assert_eq!(got, want);
            let canonical = ["realm", "nonce", "algorithm", "ck", "ik"];
            let first: Vec<String> = rc.params.iter().take(5).map(|p| p.name.to_string()).collect();
            prop_assert_eq!(first, canonical);
            if c.params.iter().take(5).map(|p| p.name).eq(canonical) && c.range.len() == rc.range.len() {
                prop_assert_eq!(&restored, raw);
            }
        }
    }

    #[test]
    fn framer_yields_same_messages_under_any_split(
        picks in prop::collection::vec(0usize..64, 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        keepalive in any::<bool>(),
    ) {
        let files: Vec<Vec<u8>> = valid_corpus()
            .into_iter()
            .filter(|b| scan(b).map(|m| m.content_length().is_some() && m.consumed() == b.len()).unwrap_or(false))
            .collect();
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for p in picks {
            let f = &files[p % files.len()];
            if keepalive {
                stream.extend_from_slice(b"\r\n\r\n");
            }
            stream.extend_from_slice(f);
            want.push(f.clone());
        }
        let mut cut_at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cut_at.push(0);
        cut_at.push(stream.len());
        cut_at.sort_unstable();
        cut_at.dedup();
        let mut framer = Framer::new(Limits::DEFAULT);
        let mut got = Vec::new();
        for w in cut_at.windows(2) {
            framer.push(&stream[w[0]..w[1]]);
            while let Some(m) = framer.next_message().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn body_edits_keep_content_length_right(
        i in 0usize..64,
        ins in prop::collection::vec(any::<u8>(), 0..200),
        cut in any::<prop::sample::Index>(),
        cut_len in 0usize..50,
    ) {
        let files = valid_corpus();
        let raw = &files[i % files.len()];
        let m = scan(raw).unwrap();
        prop_assume!(m.content_length().is_some());
        let body_len = m.body().len();
        let at = m.body_start() + cut.index(body_len + 1);
        let end = (at + cut_len).min(m.bytes().len());
        let mut e = m.edit();
        e.remove(at..end).insert(end, &ins);
        let out = e.finish();
        let m2 = scan(&out).unwrap();
        prop_assert_eq!(m2.content_length(), Some(m2.body().len()));
        prop_assert_eq!(m2.body().len(), body_len - (end - at) + ins.len());
        prop_assert_eq!(m2.consumed(), out.len());
        // Only the Content-Length line of the header section changed.
        prop_assert_eq!(m2.headers().len(), m.headers().len());
        for (a, b) in m.headers().iter().zip(m2.headers()) {
            if a.name != HeaderName::ContentLength {
                prop_assert_eq!(&m.bytes()[a.line.clone()], &out[b.line.clone()]);
            }
        }
    }

    #[test]
    fn header_edits_leave_other_bytes_alone(i in 0usize..64, which in any::<prop::sample::Index>()) {
        let files = valid_corpus();
        let raw = &files[i % files.len()];
        let m = scan(raw).unwrap();
        let h = which.get(m.headers()).clone();
        let mut e = m.edit();
        e.remove_header(&h);
        let out = e.finish();
        let mut want = m.bytes()[..h.line.start].to_vec();
        want.extend_from_slice(&m.bytes()[h.line.end..]);
        prop_assert_eq!(out, want);
    }
}
