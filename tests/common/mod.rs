//! Helpers shared by the root package's test binaries (`e2e`, `reliability`), included into
//! each with `#[path]` so both use one copy.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh scratch directory (certificates, secrets, configs), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates it.
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ikt-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free for both TCP and UDP (gRPC and QUIC share the number; SIP uses UDP);
/// the test binds it again right after.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Subscriber TOML for these shared MILENAGE sets (`set<id>@ims.example.org`).
pub fn subscriber_file(ids: &[&str]) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vectors/milenage.toml"
    ))
    .unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    let mut out = String::new();
    for set in v["set"].as_array().unwrap() {
        let s = set.as_table().unwrap();
        let id = s["id"].as_str().unwrap();
        if !ids.contains(&id) {
            continue;
        }
        let g = |k: &str| s[k].as_str().unwrap().to_owned();
        out.push_str(&format!(
            "[[subscriber]]\nimpi = \"set{id}@ims.example.org\"\nimpus = [\"sip:set{id}@ims.example.org\"]\n\
             k = \"{}\"\nop = \"{}\"\namf = \"{}\"\nsqn = \"000000000100\"\n\n",
            g("k"),
            g("op"),
            g("amf")
        ));
    }
    out
}
