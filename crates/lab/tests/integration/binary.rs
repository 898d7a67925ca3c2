//! The `ims-lab` binary: `serve` with `ctl`, SIPp as a real UE, and the demo's logs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use ikt_lab::hex;
use ikt_lab::hss::{self, OperatorKey};
use ikt_lab::milenage::Milenage;
use ikt_lab::ue::{self, Ue, UeConfig, UeEvent};

use crate::support::{self, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_ims-lab");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ims-lab-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ims-lab serve` on free loopback ports; returns the child and the printed addresses.
struct Served {
    child: Child,
    addrs: std::collections::HashMap<String, String>,
}

impl Served {
    fn start(subscribers: &std::path::Path) -> Served {
        Self::start_mode(subscribers, "none")
    }

    /// `serve --mode M`: both agents run beside the lab as processes (their binaries are built
    /// next to `ims-lab` by `cargo build --bins`, which scripts/test.sh does first).
    fn start_mode(subscribers: &std::path::Path, mode: &str) -> Served {
        let bin_dir = std::path::Path::new(BIN).parent().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--sipp-compat", "--mode", mode, "--agents-dir"])
            .arg(bin_dir)
            .arg("--subscribers")
            .arg(subscribers)
            .args([
                "--pcscf",
                "127.0.0.1:0",
                "--icscf",
                "127.0.0.1:0",
                "--scscf",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = std::collections::HashMap::new();
        while ["pcscf", "icscf", "scscf", "admin"]
            .iter()
            .any(|k| !addrs.contains_key(*k))
        {
            let line = lines.next().expect("serve printed its addresses").unwrap();
            let (k, v) = line.split_once('=').unwrap();
            addrs.insert(k.to_string(), v.to_string());
        }
        Served { child, addrs }
    }

    fn ctl(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(BIN)
            .args(["ctl", "--admin", &self.addrs["admin"]])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn stop(mut self) -> i32 {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_ctl_reauth() {
    let dir = scratch("serve");
    let file = dir.join("subscribers.toml");
    std::fs::write(&file, support::subscriber_file(&["2"], "000000000040")).unwrap();
    let served = Served::start(&file);
    let p = hss::parse_provisioning(&std::fs::read_to_string(&file).unwrap())
        .unwrap()
        .remove(0);
    let ue = Ue::spawn(UeConfig::from_provisioned(
        &p,
        "ims.example.org",
        served.addrs["pcscf"].parse().unwrap(),
    ))
    .await
    .unwrap();
    let UeEvent::Registered { fingerprint, .. } = ue.register_and_wait(WAIT).await.unwrap() else {
        panic!("not registered")
    };
    let (code, out) = served.ctl(&["fingerprint", "set2@ims.example.org"]);
    assert_eq!((code, out.trim()), (0, fingerprint.as_str()));
    let mut rx = ue.events();
    let (code, out) = served.ctl(&["reauth", "set2@ims.example.org"]);
    assert_eq!(code, 0, "{out}");
    ue::wait_for(&mut rx, WAIT, |e| *e == UeEvent::Shortened)
        .await
        .unwrap();
    ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    let (code, stats) = served.ctl(&["stats"]);
    assert_eq!(code, 0);
    assert!(stats.contains("scscf_reauths 1\n"), "{stats}");
    assert!(stats.contains("scscf_registrations 2\n"), "{stats}");
    let (code, out) = served.ctl(&["reauth", "nobody@ims.example.org"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("not registered"), "{out}");
    assert_eq!(served.stop(), 0, "serve exits cleanly on SIGTERM");
}

#[test]
fn sipp_registers_through_serve_with_sets_2_3_and_5() {
    sipp_through_serve("none");
}

#[test]
fn sipp_registers_through_serve_with_agents_in_every_mode() {
    for mode in ikt_lab::agents::MODES {
        sipp_through_serve(mode);
    }
}

fn sipp_through_serve(mode: &str) {
    let dir = scratch(&format!("sipp-{mode}"));
    let file = dir.join("subscribers.toml");
    std::fs::write(
        &file,
        support::subscriber_file(&["2", "3", "5"], "000000000040"),
    )
    .unwrap();
    let served = Served::start_mode(&file, mode);
    let sets = support::vector_sets();
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sipp/ims_aka_register.xml"
    ))
    .unwrap();
    for id in ["2", "3", "5"] {
        let s = &sets[id];
        let g = |k: &str| s[k].as_str().unwrap().to_string();
        let scenario = dir.join(format!("set{id}.xml"));
        let text = template
            .replace("@IMPI@", &format!("set{id}@ims.example.org"))
            .replace("@USER@", &format!("set{id}"))
            .replace("@REALM@", "ims.example.org")
            .replace("@K@", &g("k"))
            .replace("@OP@", &g("op"))
            .replace("@AMF@", &g("amf"));
        std::fs::write(&scenario, text).unwrap();
        let out = Command::new("sipp")
            .current_dir(&dir)
            .arg(&served.addrs["pcscf"])
            .arg("-sf")
            .arg(&scenario)
            .args([
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "-nostdin",
                "-nd",
                "-timeout",
                "30s",
                "-timeout_error",
                "-trace_err",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("sipp runs");
        let errors = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>();
        assert_eq!(
            out.status.code(),
            Some(0),
            "mode {mode}, set {id}: sipp failed\n{}\n{errors}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, fp) = served.ctl(&["fingerprint", &format!("set{id}@ims.example.org")]);
        assert_eq!(code, 0, "set {id}: the P-CSCF holds no keys: {fp}");
        // SIPp cannot report its CK/IK; the P-CSCF's keys are checked against the HSS below.
        assert_eq!(fp.trim().len(), 8);
        // The P-CSCF holds exactly what MILENAGE gives for the RAND SIPp answered.
        let (code, check) = served.ctl(&["check", &format!("set{id}@ims.example.org")]);
        assert_eq!(code, 0, "set {id}: {check}");
    }
    let (_, stats) = served.ctl(&["stats"]);
    assert!(stats.contains("scscf_registrations 3\n"), "{stats}");
    assert!(stats.contains("scscf_auth_failures 0\n"), "{stats}");
    assert_eq!(served.stop(), 0);
}

/// Every textual form a 16- or 8-byte secret could take in a log line.
fn forms(bytes: &[u8]) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let h = hex::encode(bytes);
    let mut v = vec![
        h.clone(),
        h.to_uppercase(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    // Debug of a byte array, e.g. `[70, 91, ...]`.
    v.push(format!("{bytes:?}"));
    v
}

#[test]
fn demo_trace_logs_carry_no_key_material() {
    let dir = scratch("demo");
    let file = dir.join("subscribers.toml");
    let text = support::subscriber_file(&["2", "3", "5"], "000000000040");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--subscribers"])
        .arg(&file)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    assert!(stdout.contains("keys matched UE<->P-CSCF: 3/3"), "{stdout}");
    assert!(
        stdout.contains("re-registered with new keys, matched"),
        "{stdout}"
    );
    assert!(stdout.contains("policy actions: 1"), "{stdout}");
    let all = format!("{stdout}\n{stderr}");

    // Every RAND of the run, as the HSS logged it (RAND is public: it is in the nonce).
    let rands: Vec<[u8; 16]> = all
        .lines()
        .filter(|l| l.contains("hss: authentication vector"))
        .filter_map(|l| l.split("rand=").nth(1))
        .filter_map(|r| hex::decode_array::<16>(&r[..32.min(r.len())]).ok())
        .collect();
    // 3 registrations, 1 re-authentication, and at least one challenge of the wrong-K UE.
    assert!(
        rands.len() >= 5,
        "expected every vector's RAND in the trace log, found {}",
        rands.len()
    );

    let provisioned = hss::parse_provisioning(&text).unwrap();
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &provisioned {
        let OperatorKey::Op(op) = &p.operator_key else {
            unreachable!("test subscribers use OP")
        };
        for (label, k) in [
            ("K", p.k.clone()),
            ("wrong K", ikt_lab::demo::wrong_k(&p.k)),
        ] {
            let m = Milenage::with_op(&k, op);
            secrets.push((format!("{label} of {}", p.impi), k.expose().to_vec()));
            secrets.push((
                format!("OPc ({label}) of {}", p.impi),
                m.opc().expose().to_vec(),
            ));
            for rand in &rands {
                let keys = m.f2345(rand);
                secrets.push((
                    format!("CK ({label}) of {}", p.impi),
                    keys.ck.expose().to_vec(),
                ));
                secrets.push((
                    format!("IK ({label}) of {}", p.impi),
                    keys.ik.expose().to_vec(),
                ));
                secrets.push((
                    format!("RES ({label}) of {}", p.impi),
                    keys.res.expose().to_vec(),
                ));
            }
        }
        secrets.push((format!("OP of {}", p.impi), op.expose().to_vec()));
    }
    let mut checked = 0;
    for (what, bytes) in &secrets {
        for form in forms(bytes) {
            assert!(
                !all.contains(&form),
                "{what} appears in the demo output as {form}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn serve_rejects_bad_files_naming_the_field() {
    let dir = scratch("badcfg");
    let subs = dir.join("subscribers.toml");
    std::fs::write(
        &subs,
        support::subscriber_file(&["2"], "000000000040").replace("af17", "af1"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--subscribers"])
        .arg(&subs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("subscriber[0].amf"), "{err}");
    assert!(
        !err.contains("0396eb317b6d1c36f19c1c84cd6ffd16"),
        "the error echoes K: {err}"
    );
    std::fs::write(&subs, support::subscriber_file(&["2"], "000000000040")).unwrap();
    let cfg = dir.join("lab.toml");
    std::fs::write(&cfg, "[reauth]\nmax_failed_attempts = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--subscribers"])
        .arg(&subs)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("reauth.max_failed_attempts"), "{err}");
}

/// README's main command: the lab with both agents, every mode, and its comparison table.
#[test]
fn demo_with_agents_in_every_mode() {
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--mode", "all", "--agents-dir"])
        .arg(bin_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mode in ikt_lab::agents::MODES {
        assert!(text.contains(&format!("== mode {mode} ==")), "{text}");
    }
    // Clear keys between the agents only in plain; none anywhere else.
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("mode    registered"))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(table.len(), 4, "{text}");
    for row in table {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], "3/3", "{row}");
        assert_eq!(cols[2], "3/3", "{row}");
        let clear: u64 = cols[3].parse().unwrap();
        if cols[0] == "plain" {
            assert!(clear > 0, "{row}");
        } else {
            assert_eq!(clear, 0, "{row}");
        }
        assert_eq!(cols[4], "0", "no 503 in a healthy run: {row}");
    }
    assert!(text.contains("all modes ok"), "{text}");
}
