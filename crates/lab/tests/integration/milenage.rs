//! MILENAGE and AKAv1-MD5 against the shared conformance vectors, and the `milenage` CLI.

use std::collections::BTreeMap;
use std::process::Command;

use ikt_lab::digest::{self, DigestInput, Qop};
use ikt_lab::hex;
use ikt_lab::milenage::{self, Milenage};
use ikt_lab::secret::{K, Op, Opc};

type Table = BTreeMap<String, toml::Value>;

fn vectors() -> toml::Table {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/vectors/milenage.toml"
    );
    let text = std::fs::read_to_string(path).expect("vectors file");
    toml::from_str(&text).expect("vectors parse")
}

fn sets() -> Vec<Table> {
    let v = vectors();
    let sets: Vec<Table> = v["set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_table().unwrap().clone().into_iter().collect())
        .collect();
    assert_eq!(sets.len(), 6);
    sets
}

fn s<'a>(t: &'a Table, key: &str) -> &'a str {
    t[key].as_str().unwrap()
}

#[test]
fn all_six_sets_from_op_and_from_opc() {
    for set in sets() {
        let k = K::from_hex(s(&set, "k")).unwrap();
        let rand = hex::decode_array::<16>(s(&set, "rand")).unwrap();
        let sqn = hex::decode_array::<6>(s(&set, "sqn")).unwrap();
        let amf = hex::decode_array::<2>(s(&set, "amf")).unwrap();
        let from_op = Milenage::with_op(&k, &Op::from_hex(s(&set, "op")).unwrap());
        let from_opc = Milenage::with_opc(&k, Opc::from_hex(s(&set, "opc")).unwrap());
        assert_eq!(
            from_op.opc().to_hex().as_str(),
            s(&set, "opc"),
            "set {}",
            s(&set, "id")
        );
        for m in [from_op, from_opc] {
            let macs = m.f1_f1star(&rand, &sqn, &amf);
            let keys = m.f2345(&rand);
            let id = s(&set, "id");
            assert_eq!(hex::encode(&macs.mac_a), s(&set, "f1"), "f1 set {id}");
            assert_eq!(hex::encode(&macs.mac_s), s(&set, "f1star"), "f1* set {id}");
            assert_eq!(keys.res.to_hex().as_str(), s(&set, "f2"), "f2 set {id}");
            assert_eq!(keys.ck.to_hex().as_str(), s(&set, "f3"), "f3 set {id}");
            assert_eq!(keys.ik.to_hex().as_str(), s(&set, "f4"), "f4 set {id}");
            assert_eq!(keys.ak.to_hex().as_str(), s(&set, "f5"), "f5 set {id}");
            assert_eq!(
                m.f5star(&rand).to_hex().as_str(),
                s(&set, "f5star"),
                "f5* set {id}"
            );
            let autn = milenage::autn(&sqn, &keys.ak, &amf, &macs.mac_a);
            assert_eq!(hex::encode(&autn), s(&set, "autn"), "autn set {id}");
        }
    }
}

#[test]
fn akav1_md5_examples() {
    let v = vectors();
    let sets = sets();
    let examples = v["akav1_md5_example"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    for ex in examples {
        let ex: Table = ex.as_table().unwrap().clone().into_iter().collect();
        let set = sets.iter().find(|t| s(t, "id") == s(&ex, "set")).unwrap();
        let m = Milenage::with_op(
            &K::from_hex(s(set, "k")).unwrap(),
            &Op::from_hex(s(set, "op")).unwrap(),
        );
        let res = m
            .f2345(&hex::decode_array::<16>(s(set, "rand")).unwrap())
            .res;
        let input = DigestInput {
            method: s(&ex, "method"),
            uri: s(&ex, "uri"),
            username: s(&ex, "username"),
            realm: s(&ex, "realm"),
            nonce: s(&ex, "nonce"),
            qop: Some((
                Qop::parse(s(&ex, "qop")).unwrap(),
                s(&ex, "nc"),
                s(&ex, "cnonce"),
            )),
            body: b"",
        };
        assert_eq!(s(&ex, "nonce"), s(set, "nonce_b64"));
        assert_eq!(
            digest::ha1(input.username, input.realm, &res).as_str(),
            s(&ex, "ha1")
        );
        assert_eq!(digest::ha2(&input), s(&ex, "ha2"));
        assert_eq!(digest::response(&res, &input), s(&ex, "response"));
        assert!(digest::verify(&res, &input, s(&ex, "response")));
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ims-lab"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn cli_prints_exact_lines_for_every_set() {
    for set in sets() {
        for (flag, key) in [("--op", "op"), ("--opc", "opc")] {
            let (code, stdout, stderr) = run(&[
                "milenage",
                "--k",
                s(&set, "k"),
                flag,
                s(&set, key),
                "--rand",
                s(&set, "rand"),
                "--sqn",
                s(&set, "sqn"),
                "--amf",
                s(&set, "amf"),
            ]);
            assert_eq!(code, 0, "{stderr}");
            let expected: String = [
                "opc", "f1", "f1star", "f2", "f3", "f4", "f5", "f5star", "autn",
            ]
            .iter()
            .map(|n| format!("{n}={}\n", s(&set, n)))
            .collect();
            assert_eq!(stdout, expected);
        }
    }
}

#[test]
fn cli_rejects_bad_input_with_one_line_and_exit_2() {
    let set = &sets()[0];
    let base = |over: &[(&str, Option<&str>)]| {
        let mut args: Vec<String> = vec!["milenage".into()];
        for (flag, key) in [
            ("--k", "k"),
            ("--op", "op"),
            ("--rand", "rand"),
            ("--sqn", "sqn"),
            ("--amf", "amf"),
        ] {
            match over.iter().find(|(f, _)| *f == flag) {
                Some((_, Some(v))) => args.extend([flag.to_string(), v.to_string()]),
                Some((_, None)) => {}
                None => args.extend([flag.to_string(), s(set, key).to_string()]),
            }
        }
        for (f, v) in over {
            if *f == "--opc" {
                args.extend([f.to_string(), v.unwrap().to_string()]);
            }
        }
        args
    };
    let cases: Vec<Vec<String>> = vec![
        base(&[("--k", Some("465b5ce8b199b49faa5f0a2ee238a6b"))]),
        base(&[("--k", Some("465b5ce8b199b49faa5f0a2ee238a6bcff"))]),
        base(&[("--rand", Some("zz553cbe9637a89d218ae64dae47bf35"))]),
        base(&[("--sqn", Some("ff9bb4d0b6"))]),
        base(&[("--amf", Some("b9b9b9"))]),
        base(&[("--op", None)]),
        base(&[("--opc", Some(s(set, "opc")))]),
        base(&[("--k", None)]),
        vec!["milenage".into(), "--bogus".into()],
    ];
    for args in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&argv);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            !stderr.contains(s(set, "k")),
            "error echoes the key: {stderr}"
        );
    }
}
