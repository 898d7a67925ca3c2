//! The p-cscf-agent's TOML config: every field has a default and a doc comment, and the whole file is
//! validated into [`Config`] before any socket opens, with errors that name the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ikt_agent::config::{invalid, valid_agent_id, valid_host_port};
use serde::Deserialize;

/// The file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// This agent's identity: the `ikt` Via param it adds and the DNS SAN of its certificate.
    pub id: String,
    /// SIP side.
    #[serde(default)]
    pub sip: SipFile,
    /// Key handling: waits, lifetimes, bounds and the downgrade policy.
    #[serde(default)]
    pub keys: KeysFile,
    /// Key transport listeners (grpc, quic) and their mutual TLS material.
    pub transport: Option<TransportFile>,
    /// Admin endpoint (`/metrics`, `/healthz`).
    #[serde(default)]
    pub admin: AdminFile,
    /// Local API for a P-CSCF that takes keys natively instead of reading the restored 401.
    pub local_api: Option<LocalApiFile>,
    /// The s-cscf-agents allowed to deliver or seal keys for this agent.
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerFile>,
}

/// `[sip]`: where the agent listens and where the core is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipFile {
    /// Address the P-CSCF sends toward the core (this agent is its next hop); UDP and TCP.
    pub listen: SocketAddr,
    /// Next hop toward the core (I-CSCF or S-CSCF side): `ip:port` or `name:port` (resolved at
    /// start).
    pub core: String,
    /// Host[:port] written into this agent's Via; defaults to `listen`.
    pub via_host: Option<String>,
    /// Also listen on TCP.
    pub tcp: bool,
}

impl Default for SipFile {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5062)),
            core: "127.0.0.1:5070".into(),
            via_host: None,
            tcp: true,
        }
    }
}

/// `[keys]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysFile {
    /// Longest a 401 is held waiting for its out-of-band keys, in milliseconds.
    pub key_wait_ms: u64,
    /// How long a received bundle is kept for retransmitted 401s, in seconds (2 x Timer F).
    pub key_ttl_s: u64,
    /// Most 401s held at once; beyond it a 401 without keys fails closed at once.
    pub max_parked: usize,
    /// Most bundles kept in the store.
    pub store_capacity: usize,
    /// Accept 401s that arrive with ck/ik in clear (3GPP baseline). Off = treat as a downgrade.
    pub accept_plain: bool,
    /// What a downgrade does when `accept_plain = false`: `reject` (503) or `pass` (count, log, forward).
    pub downgrade_action: DowngradeAction,
    /// `Retry-After` seconds on the 503 sent toward the P-CSCF when keys cannot be restored.
    pub retry_after_s: u32,
    /// Oldest sealed token accepted, in seconds.
    pub max_age_s: u64,
}

impl Default for KeysFile {
    fn default() -> Self {
        Self {
            key_wait_ms: 200,
            key_ttl_s: 64,
            max_parked: 10_000,
            store_capacity: 100_000,
            accept_plain: true,
            downgrade_action: DowngradeAction::Reject,
            retry_after_s: 5,
            max_age_s: 30,
        }
    }
}

/// Handling of a 401 with clear keys when `accept_plain = false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DowngradeAction {
    /// Fail closed: 503 with Retry-After toward the P-CSCF.
    Reject,
    /// Count and log (without keys), then forward.
    Pass,
}

/// `[transport]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportFile {
    /// gRPC key transport listener (TLS 1.3, mutual auth).
    pub grpc_listen: Option<SocketAddr>,
    /// QUIC key transport listener (TLS 1.3, mutual auth, ALPN ikt/1).
    pub quic_listen: Option<SocketAddr>,
    /// CA bundle that signs the s-cscf-agents' certificates.
    pub ca: PathBuf,
    /// This agent's certificate chain (its SAN is `id`).
    pub cert: PathBuf,
    /// This agent's private key.
    pub key: PathBuf,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    /// Address of the `/metrics` and `/healthz` endpoint; empty string disables it.
    pub listen: String,
}

impl Default for AdminFile {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9102".into(),
        }
    }
}

/// `[local_api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalApiFile {
    /// Unix socket path of the `KeyStore` gRPC service (Take, Watch).
    pub socket: PathBuf,
}

/// One `[[peer]]`: an s-cscf-agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    /// The peer's agent id: its certificate's DNS SAN and the sealing pair's s-side id.
    pub id: String,
    /// Sealing secrets of this pair, one per kid; several during a rotation.
    #[serde(default)]
    pub sealing: Vec<SealingFile>,
}

/// One sealing secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealingFile {
    /// Key id as written in tokens.
    pub kid: String,
    /// File holding the shared secret as hex (at least 32 bytes).
    pub secret_file: PathBuf,
}

/// The validated config.
#[derive(Debug)]
pub struct Config {
    /// This agent's id.
    pub id: String,
    /// SIP side.
    pub sip: SipFile,
    /// Key handling.
    pub keys: KeysFile,
    /// Key transport.
    pub transport: Option<TransportFile>,
    /// Admin endpoint address, if enabled.
    pub admin: Option<SocketAddr>,
    /// Local API socket, if enabled.
    pub local_api: Option<PathBuf>,
    /// Peers by id.
    pub peers: BTreeMap<String, PeerFile>,
}

impl Config {
    /// Longest hold of a 401.
    pub fn key_wait(&self) -> Duration {
        Duration::from_millis(self.keys.key_wait_ms)
    }
    /// Bundle lifetime.
    pub fn key_ttl(&self) -> Duration {
        Duration::from_secs(self.keys.key_ttl_s)
    }
}

/// Loads and validates the config file.
pub fn load(path: &Path) -> Result<Config, ikt_agent::Error> {
    let file: File = ikt_agent::config::load(path)?;
    validate(path, file)
}

/// Validates a parsed file into a [`Config`].
pub fn validate(path: &Path, file: File) -> Result<Config, ikt_agent::Error> {
    if !valid_agent_id(&file.id) {
        return Err(invalid(
            path,
            "id",
            "must be 1-63 of [a-z0-9.-], not starting with '-'",
        ));
    }
    if !valid_host_port(&file.sip.core) {
        return Err(invalid(path, "sip.core", "must be ip:port or name:port"));
    }
    if file.sip.core.parse::<SocketAddr>().ok() == Some(file.sip.listen) {
        return Err(invalid(path, "sip.core", "must differ from sip.listen"));
    }
    let k = &file.keys;
    if !(1..=10_000).contains(&k.key_wait_ms) {
        return Err(invalid(path, "keys.key_wait_ms", "must be 1..=10000"));
    }
    if !(1..=3600).contains(&k.key_ttl_s) {
        return Err(invalid(path, "keys.key_ttl_s", "must be 1..=3600"));
    }
    if !(1..=1_000_000).contains(&k.max_parked) {
        return Err(invalid(path, "keys.max_parked", "must be 1..=1000000"));
    }
    if !(1..=10_000_000).contains(&k.store_capacity) {
        return Err(invalid(path, "keys.store_capacity", "must be 1..=10000000"));
    }
    if !(1..=3600).contains(&k.max_age_s) {
        return Err(invalid(path, "keys.max_age_s", "must be 1..=3600"));
    }
    let admin = match file.admin.listen.trim() {
        "" => None,
        s => Some(
            s.parse()
                .map_err(|e| invalid(path, "admin.listen", format!("{s:?}: {e}")))?,
        ),
    };
    if let Some(t) = &file.transport {
        if t.grpc_listen.is_none() && t.quic_listen.is_none() {
            return Err(invalid(
                path,
                "transport",
                "set grpc_listen and/or quic_listen, or remove [transport]",
            ));
        }
        for (f, p) in [
            ("transport.ca", &t.ca),
            ("transport.cert", &t.cert),
            ("transport.key", &t.key),
        ] {
            if !p.is_file() {
                return Err(invalid(
                    path,
                    f,
                    format!("{} is not a readable file", p.display()),
                ));
            }
        }
    }
    let mut peers = BTreeMap::new();
    for (i, p) in file.peers.into_iter().enumerate() {
        if !valid_agent_id(&p.id) {
            return Err(invalid(
                path,
                &format!("peer[{i}].id"),
                "must be 1-63 of [a-z0-9.-]",
            ));
        }
        for (j, s) in p.sealing.iter().enumerate() {
            let f = format!("peer[{i}].sealing[{j}]");
            if s.kid.is_empty() || s.kid.len() > 32 || s.kid.contains(['.', '"', ' ']) {
                return Err(invalid(
                    path,
                    &format!("{f}.kid"),
                    "must be 1-32 chars without '.', '\"' or spaces",
                ));
            }
            ikt_agent::secret::read_hex_secret(&s.secret_file)?;
        }
        let id = p.id.clone();
        if peers.insert(id.clone(), p).is_some() {
            return Err(invalid(
                path,
                &format!("peer[{i}].id"),
                format!("duplicate peer {id:?}"),
            ));
        }
    }
    Ok(Config {
        id: file.id,
        sip: file.sip,
        keys: file.keys,
        transport: file.transport,
        admin,
        local_api: file.local_api.map(|l| l.socket),
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, String> {
        let file: File = ikt_agent::config::parse(text)?;
        validate(Path::new("test.toml"), file).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = check("id = \"pcscf-1\"\n").unwrap();
        assert_eq!(c.key_wait(), Duration::from_millis(200));
        assert_eq!(c.key_ttl(), Duration::from_secs(64));
        assert!(c.keys.accept_plain);
        assert!(c.transport.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e = check("id = \"p\"\n[keys]\nkey_wait_ms = 0\n").unwrap_err();
        assert!(e.contains("keys.key_wait_ms"), "{e}");
        let e = check("id = \"p\"\n[transport]\nca = \"/x\"\ncert = \"/x\"\nkey = \"/x\"\n")
            .unwrap_err();
        assert!(e.contains("transport"), "{e}");
        let e = check("id = \"p\"\n[keys]\naccept_plan = true\n").unwrap_err();
        assert!(e.contains("accept_plan"), "{e}");
    }
}
