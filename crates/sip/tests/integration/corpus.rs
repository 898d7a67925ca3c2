//! Deterministic checks of every corpus message: what each accessor must find.

use ikt_sip::{
    CSeq, Framer, HeaderName, Limits, StartLine, remove_keys, replace_keys_with_param,
    restore_keys, scan,
};

use crate::{corpus, file, invalid_corpus};

const CK: &str = "c4f1a5b0e3d2976f8a1b0c9d8e7f6a5b";
const IK: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";

#[test]
fn corpus_files_use_crlf() {
    for (name, bytes) in corpus() {
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "{name}: bare LF at {i}");
            }
        }
    }
}

#[test]
fn every_file_scans_and_round_trips() {
    for (name, bytes) in corpus() {
        let m = scan(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.edit().finish(), m.bytes(), "{name}");
        if !name.starts_with("stream_") {
            assert_eq!(m.bytes(), &bytes[..], "{name}: whole file is one message");
            assert_eq!(m.consumed(), bytes.len(), "{name}");
        }
        if let Some(cl) = m.content_length() {
            assert_eq!(m.body().len(), cl, "{name}");
        }
    }
}

#[test]
fn invalid_files_give_errors_with_offsets() {
    for (name, bytes) in invalid_corpus() {
        let e = scan(&bytes).expect_err(&name);
        assert!(e.offset() <= bytes.len(), "{name}: {e:?}");
    }
}

#[test]
fn register_with_empty_authorization() {
    let raw = file("register_initial.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.method(), Some("REGISTER"));
    assert_eq!(m.request_uri(), Some(format!("sip:{REALM}").as_str()));
    let cred = m.credentials();
    assert_eq!(cred.len(), 1);
    assert_eq!(cred[0].scheme, "Digest");
    assert_eq!(cred[0].param("nonce").unwrap().value, "");
    assert_eq!(cred[0].param("response").unwrap().value, "");
    assert_eq!(
        cred[0].unescaped("username").unwrap(),
        format!("001010000000001@{REALM}")
    );
    assert!(m.challenges().is_empty());
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            num: 1,
            method: "REGISTER"
        })
    );
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.expires(), Some(600000));
    assert_eq!(m.contacts()[0].expires(), Some(600000));
    assert!(m.header(HeaderName::SecurityClient).is_some());
    let v = m.top_via().unwrap();
    assert_eq!(
        (v.host(), v.port(), v.rport()),
        ("192.0.2.10", Some(5060), Some(None))
    );
    assert_eq!(m.from().unwrap().tag, Some("3a1f9c07"));
    assert_eq!(m.to().unwrap().tag, None);
    assert!(m.body().is_empty());
}

#[test]
fn register_through_agents_has_ikt_via_and_path() {
    let raw = file("register_via_agents.sip");
    let m = scan(&raw).unwrap();
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].param("ikt"), Some(Some("pcscf-agent-1")));
    assert_eq!(vias[2].received(), Some("192.0.2.10"));
    assert_eq!(vias[2].rport(), Some(Some(5060)));
    assert_eq!(m.path()[0].uri, format!("sip:term@pcscf.{REALM};lr"));
    assert_eq!(m.max_forwards(), Some(68));
}

#[test]
fn kamailio_401_keys_round_trip() {
    let raw = file("401_aka_kamailio.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.status(), Some(401));
    assert_eq!(m.reason(), Some("Unauthorized - Challenging the UE"));
    let ch = m.challenges();
    assert_eq!(ch.len(), 1);
    assert!(ch[0].is_aka());
    assert_eq!(ch[0].param("ck").unwrap().value, CK);
    assert_eq!(ch[0].param("ik").unwrap().value, IK);
    assert_eq!(ch[0].param("nonce").unwrap().value.len(), 44);
    assert_eq!(ch[0].param("qop").unwrap().value, "auth,auth-int");

    let stripped = remove_keys(&m, 0).unwrap();
    assert!(!contains(&stripped, CK.as_bytes()) && !contains(&stripped, IK.as_bytes()));
    // Only the WWW-Authenticate line changed.
    let ms = scan(&stripped).unwrap();
    assert_eq!(ms.headers().len(), m.headers().len());
    for (a, b) in m.headers().iter().zip(ms.headers()) {
        if a.name != HeaderName::WwwAuthenticate {
            assert_eq!(&raw[a.line.clone()], &stripped[b.line.clone()]);
        }
    }
    assert_eq!(restore_keys(&ms, 0, CK, IK).unwrap(), raw);

    let sealed = replace_keys_with_param(&m, 0, "kt", "ikt1.k1.c2VhbGVk").unwrap();
    let msealed = scan(&sealed).unwrap();
    let c = &msealed.challenges()[0];
    let names: Vec<&str> = c.params.iter().map(|p| p.name).collect();
    assert_eq!(names, ["realm", "nonce", "algorithm", "kt", "qop"]);
    assert_eq!(restore_keys(&msealed, 0, CK, IK).unwrap(), raw);
}

#[test]
fn several_challenges_and_lenient_401() {
    let raw = file("401_aka_extra_nonce_bytes.sip");
    let m = scan(&raw).unwrap();
    let ch = m.challenges();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].param("nonce").unwrap().value.len(), 48);
    assert_eq!(ch[1].param("qop").unwrap().value, "auth");
    for (i, c0) in ch.iter().enumerate() {
        let stripped = remove_keys(&m, i).unwrap();
        let ms = scan(&stripped).unwrap();
        let c = &ms.challenges()[i];
        let (ck, ik) = (c0.param("ck").unwrap().value, c0.param("ik").unwrap().value);
        assert_eq!(restore_keys(&ms, i, ck, ik).unwrap(), raw);
        assert!(!c.has_keys());
    }

    let raw = file("401_aka_lenient.sip");
    let m = scan(&raw).unwrap();
    let ch = &m.challenges()[0];
    assert_eq!(ch.scheme, "digest");
    assert_eq!(ch.param("ck").unwrap().value, CK);
    assert_eq!(ch.param("cknonce").unwrap().value, "not-a-key");
    assert!(ch.param("Nonce").unwrap().range.start > ch.range.start);
    let restored = restore_keys(&scan(&remove_keys(&m, 0).unwrap()).unwrap(), 0, CK, IK).unwrap();
    let mr = scan(&restored).unwrap();
    let text = mr.value(&mr.headers()[mr.challenges()[0].header_index]);
    let nonce = ch.param("nonce").unwrap().value;
    assert_eq!(
        text,
        format!(
            "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", QOP = \"auth\", cknonce=\"not-a-key\""
        )
    );
}

#[test]
fn proxy_authenticate_407() {
    let raw = file("407_proxy_auth.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.status(), Some(407));
    let ch = m.challenges();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        m.headers()[ch[0].header_index].name,
        HeaderName::ProxyAuthenticate
    );
    assert!(ch[0].is_aka() && !ch[1].is_aka());
    assert_eq!(ch[1].param("stale").unwrap().value, "FALSE");
    assert_eq!(
        m.from().unwrap().display_name,
        Some("\"Alice \\\"Ally\\\" Example\"")
    );
    let stripped = remove_keys(&m, 0).unwrap();
    assert_eq!(
        restore_keys(&scan(&stripped).unwrap(), 0, CK, IK).unwrap(),
        raw
    );
}

#[test]
fn ok_200_with_routes() {
    let raw = file("200_register.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(
        m.start_line(),
        StartLine::Response {
            code: 200,
            reason: "OK"
        }
    );
    assert_eq!(m.path().len(), 1);
    let sr: Vec<&str> = m.service_route().iter().map(|a| a.uri).collect();
    assert_eq!(
        sr,
        [
            format!("sip:orig@scscf.{REALM}:6060;lr"),
            format!("sip:orig2@scscf.{REALM}:6060;lr"),
            format!("sip:as.{REALM};lr")
        ]
    );
    let pau: Vec<&str> = m.p_associated_uris().iter().map(|a| a.uri).collect();
    assert_eq!(pau.len(), 3);
    assert_eq!(pau[2], "tel:+15551234567");
    assert_eq!(m.expires(), Some(600000));
}

#[test]
fn notify_with_xml_body() {
    let raw = file("notify_reginfo.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.method(), Some("NOTIFY"));
    assert_eq!(m.value_of(HeaderName::Event), Some("reg"));
    assert_eq!(
        m.value_of(HeaderName::ContentType),
        Some("application/reginfo+xml")
    );
    assert!(m.body().starts_with(b"<?xml"));
    assert!(m.body().ends_with(b"</reginfo>\r\n"));
    assert_eq!(m.route().len(), 1);
}

#[test]
fn invite_with_sdp() {
    let raw = file("invite_sdp.sip");
    let m = scan(&raw).unwrap();
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert_eq!(m.route().len(), 2);
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            num: 1,
            method: "INVITE"
        })
    );
    let out = {
        let mut e = m.edit();
        e.insert(m.bytes().len(), b"a=inactive\r\n");
        e.finish()
    };
    let m2 = scan(&out).unwrap();
    assert_eq!(m2.body().len(), m.body().len() + 12);
    assert_eq!(m2.content_length(), Some(m2.body().len()));
}

#[test]
fn tortuous_invite() {
    let raw = file("torture_tortuous_invite.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            num: 9,
            method: "INVITE"
        })
    );
    assert_eq!(m.to().unwrap().tag, Some("1918181833n"));
    assert_eq!(m.from().unwrap().tag, Some("98asjd8"));
    assert_eq!(m.from().unwrap().uri, "sip:jdrosen@example.com");
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!((vias[0].transport(), vias[0].host()), ("UDP", "192.0.2.2"));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(
        (vias[1].transport(), vias[1].host()),
        ("TCP", "spindle.example.com")
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    let c = &m.contacts()[0];
    assert_eq!(c.param("newparam"), Some(Some("newvalue")));
    assert_eq!(c.param("secondparam"), Some(None));
    assert_eq!(c.param("q"), Some(Some("0.33")));
    assert_eq!(
        m.route()[0].uri,
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value"
    );
    assert_eq!(m.value_of(HeaderName::Subject), Some(""));
    assert!(m.body().starts_with(b"v=0"));
    // Removing the folded top Via value keeps everything else intact.
    let out = ikt_sip::remove_top_via(&m);
    let m2 = scan(&out).unwrap();
    assert_eq!(m2.vias().len(), 2);
    assert_eq!(m2.body(), m.body());
}

#[test]
fn compact_forms_and_multi_via() {
    let raw = file("torture_compact_multi_via.sip");
    let m = scan(&raw).unwrap();
    let vias = m.vias();
    assert_eq!(vias.len(), 4);
    assert_eq!(vias[2].host(), "[2001:db8::9]");
    assert_eq!(vias[3].transport(), "SCTP");
    assert_eq!(m.call_id(), Some("compact-1@example.net"));
    assert_eq!(m.value_of(HeaderName::Supported), Some("path,gruu"));
    assert_eq!(m.value_of(HeaderName::AllowEvents), Some("reg, dialog"));
    assert_eq!(m.body(), b"ping\r\n");
    let once = ikt_sip::remove_top_via(&m);
    let m1 = scan(&once).unwrap();
    assert_eq!(m1.top_via().unwrap().branch(), Some("z9hG4bKb"));
    assert_eq!(m1.headers().len(), m.headers().len());
}

#[test]
fn escaped_quotes_and_utf8_body() {
    let raw = file("torture_escaped_quotes.sip");
    let m = scan(&raw).unwrap();
    let f = m.from().unwrap();
    assert_eq!(f.uri, "sip:bob@example.net");
    assert_eq!(f.tag, Some("esc1"));
    let cred = &m.credentials()[0];
    assert_eq!(cred.unescaped("username").unwrap(), "b\"o\\b");
    assert_eq!(cred.unescaped("nonce").unwrap(), "n\"1,2");
    assert_eq!(cred.param("uri").unwrap().value, "sip:bob@example.com");
    assert!(std::str::from_utf8(m.body()).unwrap().starts_with("Grüße"));
}

#[test]
fn lowercase_and_unknown_headers() {
    let raw = file("torture_lowercase_unknown.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.method(), Some("subscribe"));
    let v = m.top_via().unwrap();
    assert_eq!(v.received(), Some("198.51.100.7"));
    assert_eq!(v.rport(), Some(None));
    assert_eq!(m.from().unwrap().tag, Some("lc1"));
    assert_eq!(m.expires(), Some(3600));
    let x = m.headers_by_name("X-CUSTOM-HEADER").next().unwrap();
    assert_eq!(m.value(x), "some value; with=params, and, commas");
    let w = m.headers_by_name("p-weird-header").next().unwrap();
    assert_eq!(m.value(w), "value-without-space");
    assert_eq!(m.value(m.headers_by_name("x-empty").next().unwrap()), "");
}

#[test]
fn unusual_method_and_uri() {
    let raw = file("torture_method_and_uri.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(
        m.method(),
        Some("!interesting-Method0123456789_*+`.%indeed'~")
    );
    assert_eq!(m.cseq().unwrap().method, m.method().unwrap());
    assert_eq!(m.max_forwards(), Some(255));
    assert!(m.request_uri().unwrap().ends_with("@example.com"));
    assert!(
        m.headers_by_name("extensionHeader-!.%*+_`'~")
            .next()
            .is_some()
    );
}

#[test]
fn empty_reason_and_long_header() {
    let raw = file("torture_no_reason_long.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.reason(), Some(""));
    assert_eq!(m.record_route().len(), 3);
    let small = Limits {
        max_line: 1024,
        ..Limits::DEFAULT
    };
    let e = ikt_sip::scan_with(&raw, &small).unwrap_err();
    assert!(matches!(e, ikt_sip::ScanError::LineTooLong { .. }));
    assert_eq!(&raw[e.offset()..e.offset() + 8], b"X-Long: ");
}

#[test]
fn stream_with_zero_length_body_and_trailing_message() {
    let raw = file("stream_cl0_trailing.sip");
    let m = scan(&raw).unwrap();
    assert_eq!(m.status(), Some(180));
    assert!(m.body().is_empty());
    assert!(m.consumed() < raw.len());
    let next = scan(&raw[m.consumed()..]).unwrap();
    assert_eq!(next.method(), Some("MESSAGE"));
    assert_eq!(next.body(), b"hello over tcp\r\n");

    let mut f = Framer::new(Limits::DEFAULT);
    f.push(&raw);
    let a = f.next_message().unwrap().unwrap();
    let b = f.next_message().unwrap().unwrap();
    assert_eq!(f.next_message().unwrap(), None);
    assert_eq!(a, m.bytes());
    assert_eq!(b, next.bytes());
    assert_eq!(f.take_empty_lines(), 3);
    assert_eq!(f.buffered(), 0);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
