//! The key-leak scan: every log line and every message toward the UE is searched for the hex
//! (both cases) and base64 forms of every key in play.
//!
//! Keys in play: K, OP and OPc of every shared MILENAGE set (tests/data/vectors/milenage.toml),
//! and CK, IK and RES recomputed for every RAND the text itself mentions (any base64 nonce
//! RAND||AUTN, or any 32-digit hex that could be a RAND) under every set's K/OP. That is how the
//! lab's registrations are found again without trusting any component's own report.
//!
//! Logs come from a trace-level subscriber this binary installs for its whole run (file
//! `target/leak-logs/reliability-trace-<pid>.log`), from the lab chain driven here, and, when
//! `IKT_LEAK_DIR` is set (scripts/leak-check.sh), from every file in that directory.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ikt_agent::Mode;
use ikt_lab::milenage::Milenage;
use tokio::net::UdpSocket;

use crate::record;

/// Where this binary's trace log goes.
pub fn log_path() -> PathBuf {
    let dir = std::env::var_os("IKT_LEAK_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/leak-logs"));
    std::fs::create_dir_all(&dir).unwrap();
    // One file per process: nextest runs each test in its own process.
    dir.join(format!("reliability-trace-{}.log", std::process::id()))
}

struct FileWriter(Arc<Mutex<std::fs::File>>);

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Installs the trace-level subscriber once for the whole test binary.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let file = std::fs::File::create(log_path()).unwrap();
        let file = Arc::new(Mutex::new(file));
        // Our crates at trace; chatty protocol internals (frames, packets) at debug.
        let filter = tracing_subscriber::EnvFilter::new(
            "trace,h2=debug,hyper=debug,hyper_util=debug,quinn_proto=debug,quinn=debug,rustls=debug,tower=debug,tonic=debug,mio=info,tokio=info",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || FileWriter(file.clone()))
            .try_init();
    });
}

/// Every text form a key can leak in.
pub fn forms(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut v = vec![
        hex.to_uppercase(),
        hex,
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    v.sort();
    v.dedup();
    v
}

/// A named secret.
#[derive(Clone)]
pub struct Secret {
    /// What it is (never its value).
    pub label: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The shared MILENAGE sets: (id, K, OP).
pub fn vector_sets() -> Vec<(String, [u8; 16], [u8; 16])> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vectors/milenage.toml"
    ))
    .unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    v["set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let g = |k: &str| parse_hex::<16>(s[k].as_str().unwrap()).unwrap();
            (s["id"].as_str().unwrap().to_owned(), g("k"), g("op"))
        })
        .collect()
}

fn milenage(k: &[u8; 16], op: &[u8; 16]) -> Milenage {
    Milenage::with_op(&ikt_lab::secret::K::new(*k), &ikt_lab::secret::Op::new(*op))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')
}

/// Candidate RANDs mentioned in `text`: base64 runs decoding to 16..=64 bytes (a nonce is
/// base64 of RAND||AUTN, extra bytes allowed) and runs of exactly 32 hex digits.
pub fn candidate_rands(text: &str) -> BTreeSet<[u8; 16]> {
    let mut out = BTreeSet::new();
    for run in text.split(|c: char| !is_token_char(c)) {
        if (22..=88).contains(&run.len()) {
            let bare = run.trim_end_matches('=');
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                if let Ok(b) = engine.decode(bare)
                    && (16..=64).contains(&b.len())
                {
                    out.insert(b[..16].try_into().unwrap());
                }
            }
        }
        if let Some(r) = parse_hex::<16>(run) {
            out.insert(r);
        }
    }
    out
}

/// Every secret in play for `text`: K/OP/OPc of every set, and CK/IK/RES for every candidate
/// RAND under every set.
pub fn secrets_for(text: &str) -> Vec<Secret> {
    let sets = vector_sets();
    let mut out = Vec::new();
    for (id, k, op) in &sets {
        let m = milenage(k, op);
        out.push(Secret {
            label: format!("K of set {id}"),
            bytes: k.to_vec(),
        });
        out.push(Secret {
            label: format!("OP of set {id}"),
            bytes: op.to_vec(),
        });
        out.push(Secret {
            label: format!("OPc of set {id}"),
            bytes: m.opc().expose().to_vec(),
        });
    }
    let rands = candidate_rands(text);
    for rand in &rands {
        for (id, k, op) in &sets {
            let keys = milenage(k, op).f2345(rand);
            let tag = format!("set {id}, RAND {:02x}{:02x}..", rand[0], rand[1]);
            out.push(Secret {
                label: format!("CK ({tag})"),
                bytes: keys.ck.expose().to_vec(),
            });
            out.push(Secret {
                label: format!("IK ({tag})"),
                bytes: keys.ik.expose().to_vec(),
            });
            out.push(Secret {
                label: format!("RES ({tag})"),
                bytes: keys.res.expose().to_vec(),
            });
        }
    }
    out
}

/// A hit: which secret, in which form (described, not shown), where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Secret label.
    pub secret: String,
    /// Where (file name or capture name).
    pub place: String,
}

/// Scans `text` (from `place`) for every form of `secrets`, also inside longer runs (say CK
/// and IK written back to back): every window of every needle length over every run of
/// hex/base64 characters is looked up, so the cost is linear in the text.
pub fn scan(text: &str, place: &str, secrets: &[Secret]) -> Vec<Hit> {
    let mut needles: HashMap<String, &str> = HashMap::new();
    for s in secrets {
        for f in forms(&s.bytes) {
            needles.entry(f).or_insert(&s.label);
        }
    }
    let lens: BTreeSet<usize> = needles.keys().map(String::len).collect();
    let mut found: BTreeSet<&str> = BTreeSet::new();
    for run in text.split(|c: char| !is_token_char(c)) {
        for &l in &lens {
            if run.len() < l {
                continue;
            }
            for off in 0..=run.len() - l {
                if let Some(label) = needles.get(&run[off..off + l]) {
                    found.insert(label);
                }
            }
        }
    }
    let mut hits: Vec<Hit> = found
        .into_iter()
        .map(|label| Hit {
            secret: label.to_owned(),
            place: place.to_owned(),
        })
        .collect();
    // Keys nobody can recompute (another HSS, a test's own): any `ck`/`ik` param holding 32
    // hex digits is a leak whatever its value.
    let named = named_key_params(text);
    if named > 0 {
        hits.push(Hit {
            secret: format!("{named} ck/ik params with 32 hex digits"),
            place: place.to_owned(),
        });
    }
    hits
}

/// Occurrences of `ck` or `ik` (a whole word, any case) followed by `=` or `:`, optional
/// spaces and quotes, then exactly 32 hex digits.
pub fn named_key_params(text: &str) -> usize {
    let b = text.as_bytes();
    let mut n = 0;
    for i in 0..b.len().saturating_sub(2) {
        let name = [b[i].to_ascii_lowercase(), b[i + 1].to_ascii_lowercase()];
        if (name != *b"ck" && name != *b"ik")
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            continue;
        }
        let mut j = i + 2;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j >= b.len() || !matches!(b[j], b'=' | b':') {
            continue;
        }
        j += 1;
        while j < b.len() && matches!(b[j], b' ' | b'"' | b'\\') {
            j += 1;
        }
        let hex = b[j..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if hex == 32 {
            n += 1;
        }
    }
    n
}

/// Scans every file under `dir` (recursively): the RANDs of all files together define the
/// CK/IK/RES in play, then each file is searched.
pub fn scan_dir(dir: &Path) -> (usize, Vec<Hit>) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|p| {
            std::fs::read(p).ok().map(|b| {
                (
                    p.display().to_string(),
                    String::from_utf8_lossy(&b).into_owned(),
                )
            })
        })
        .collect();
    let all: String = texts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let secrets = secrets_for(&all);
    let mut hits = Vec::new();
    for (place, t) in &texts {
        hits.extend(scan(t, place, &secrets));
    }
    (texts.len(), hits)
}

/// A UDP forwarder in front of the P-CSCF that records every datagram toward the UE.
struct UeSideCapture {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl UeSideCapture {
    async fn start(pcscf: SocketAddr) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let ue: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let (f2, b2, s2, u2) = (front.clone(), back.clone(), seen.clone(), ue.clone());
        let task = tokio::spawn(async move {
            let toward_ue = async {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, _)) = b2.recv_from(&mut buf).await {
                    s2.lock().unwrap().push(buf[..n].to_vec());
                    let to = *u2.lock().unwrap();
                    if let Some(to) = to {
                        let _ = f2.send_to(&buf[..n], to).await;
                    }
                }
            };
            let toward_pcscf = async {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *ue.lock().unwrap() = Some(from);
                    let _ = back.send_to(&buf[..n], pcscf).await;
                }
            };
            tokio::join!(toward_ue, toward_pcscf);
        });
        Self { addr, seen, task }
    }
}

impl Drop for UeSideCapture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The lab core with both agents, in every mode: registrations (and a re-registration) of every
/// subscriber through a capture in front of the P-CSCF; then the capture and this binary's
/// trace log so far are scanned for every key in play. Also checks the UE-side capture really
/// saw the challenges (so the scan is not vacuous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_in_logs_or_toward_the_ue() {
    init_logging();
    let mut captured: Vec<Vec<u8>> = Vec::new();
    for mode in [Mode::Plain, Mode::Sealed, Mode::Grpc, Mode::Quic] {
        tracing::info!(%mode, "leak scan: chain start");
        let c = crate::support::LabChain::start(mode).await;
        for round in 0..2 {
            for i in 0..c.provisioned.len() {
                let cap = UeSideCapture::start(c.net.addrs().pcscf).await;
                let cfg = ikt_lab::ue::UeConfig::from_provisioned(
                    &c.provisioned[i],
                    &c.lab.realm,
                    cap.addr,
                );
                let ue = ikt_lab::ue::Ue::spawn(cfg).await.unwrap();
                let fp = match ue.register_and_wait(crate::support::WAIT).await {
                    Ok(ikt_lab::ue::UeEvent::Registered { fingerprint, .. }) => fingerprint,
                    other => panic!("{mode}: registration failed: {other:?}"),
                };
                assert_eq!(
                    c.net.pcscf_fingerprint(ue.impi()),
                    Some(fp),
                    "{mode} round {round}"
                );
                assert_eq!(ue.status().keys_seen_in_401, 0, "{mode}");
                captured.extend(cap.seen.lock().unwrap().drain(..));
            }
        }
        if mode != Mode::Plain {
            // In plain mode the keys cross in clear by definition (3GPP baseline).
            assert_eq!(
                c.tap.with_clear_keys(),
                0,
                "{mode}: clear keys between the agents"
            );
            captured.extend(c.tap.messages());
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(log_path()).unwrap_or_default();
    // Toward the UE: the challenges (nonces) must be there, or the scan proves nothing.
    let toward_ue: String = captured
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        toward_ue.contains("401 Unauthorized"),
        "capture saw no challenge"
    );
    let secrets = secrets_for(&format!("{toward_ue}\n{log}"));
    let rands = candidate_rands(&toward_ue).len();
    assert!(rands >= 12, "only {rands} RANDs found toward the UE");
    let mut hits = scan(
        &toward_ue,
        "messages toward the UE and between the agents",
        &secrets,
    );
    hits.extend(scan(&log, "reliability trace log", &secrets));
    record::row(
        "leak",
        "lab chain, 4 modes x 2 rounds x 3 subscribers: trace log, messages toward the UE and between the agents",
        &hits.len().to_string(),
    );
    record::row(
        "leakinfo",
        "lab chain scan: messages / KiB of trace log / secrets in play",
        &format!(
            "{} / {} / {}",
            captured.len(),
            log.len() / 1024,
            secrets.len()
        ),
    );
    for h in &hits {
        eprintln!("LEAK: {} in {}", h.secret, h.place);
    }
    assert!(hits.is_empty(), "{} key leaks: {hits:?}", hits.len());
}

/// `IKT_LEAK_DIR` (set by scripts/leak-check.sh after running the e2e tests, this binary and
/// the lab demo with trace logs): every file there is scanned. Without it, this binary's own
/// trace log directory is scanned.
#[test]
fn no_key_in_collected_logs() {
    let dir = std::env::var_os("IKT_LEAK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| log_path().parent().unwrap().to_owned());
    let (files, hits) = scan_dir(&dir);
    record::row(
        "leak",
        "collected log files (scripts/leak-check.sh: e2e, reliability, demo in every mode)",
        &hits.len().to_string(),
    );
    record::row(
        "leakinfo",
        "collected log files scanned",
        &format!("{files} in {}", dir.display()),
    );
    for h in &hits {
        eprintln!("LEAK: {} in {}", h.secret, h.place);
    }
    assert!(hits.is_empty(), "{} key leaks: {hits:?}", hits.len());
}

/// The scanner finds a planted leak in every form, in text and in a directory, and only then.
#[test]
fn planted_leak_is_found() {
    let (_, k, op) = vector_sets().into_iter().find(|s| s.0 == "3").unwrap();
    let rand = [0x42u8; 16];
    let keys = milenage(&k, &op).f2345(&rand);
    let nonce = STANDARD.encode([rand.as_slice(), &[7u8; 16]].concat());
    let clean = format!(
        "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest nonce=\"{nonce}\", algorithm=AKAv1-MD5\r\n"
    );
    let secrets = secrets_for(&clean);
    assert!(scan(&clean, "clean", &secrets).is_empty(), "false positive");
    for form in forms(keys.ck.expose())
        .into_iter()
        .chain(forms(keys.ik.expose()))
    {
        let dirty = format!("{clean}DEBUG restored key={form} done\n");
        let hits = scan(&dirty, "planted", &secrets_for(&dirty));
        assert!(
            !hits.is_empty(),
            "planted form {} chars not found",
            form.len()
        );
    }
    for planted in [
        STANDARD.encode(k),
        format!("{:02X?}", op).replace([' ', ',', '[', ']'], ""),
    ] {
        let hits = scan(&planted, "planted", &secrets);
        assert!(!hits.is_empty(), "planted K/OP not found");
    }
    // A key param nobody can recompute is still found; a longer or shorter hex is not a key.
    assert_eq!(
        named_key_params(&format!(
            "x ck=\"{}\", IK = {}",
            "ab".repeat(16),
            "CD".repeat(16)
        )),
        2
    );
    assert_eq!(
        named_key_params(&format!(
            "cknonce=\"{0}\" ck={0}00 tick={0}",
            "ab".repeat(16)
        )),
        0
    );
    // Directory form: the nonce in one file, the leaked CK in another.
    let dir = std::env::temp_dir().join(format!("ikt-leak-selftest-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.log"), &clean).unwrap();
    std::fs::write(
        dir.join("sub/b.log"),
        format!("ck={}", forms(keys.ck.expose())[0]),
    )
    .unwrap();
    let (files, hits) = scan_dir(&dir);
    std::fs::remove_file(dir.join("sub/b.log")).unwrap();
    let (_, clean_hits) = scan_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(files, 2);
    assert!(
        hits.iter()
            .any(|h| h.secret.starts_with("CK") && h.place.ends_with("b.log")),
        "{hits:?}"
    );
    assert!(clean_hits.is_empty(), "{clean_hits:?}");
    record::row(
        "selftest",
        "leak scanner: a planted CK/IK/K/OP in every form is found, a clean text has no hit",
        "passed",
    );
}
