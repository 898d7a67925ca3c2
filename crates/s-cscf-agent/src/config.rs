//! The s-cscf-agent's TOML config: every field has a default and a doc comment, and the whole file is
//! validated into [`Config`] before any socket opens, with errors that name the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ikt_agent::Mode;
use ikt_agent::config::{invalid, valid_agent_id, valid_host_port};
use serde::Deserialize;

/// The file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// This agent's identity: the DNS SAN of its certificate, checked by every p-cscf-agent.
    pub id: String,
    /// SIP side.
    #[serde(default)]
    pub sip: SipFile,
    /// What to do when keys cannot be carried as the peer's mode says.
    #[serde(default)]
    pub policy: PolicyFile,
    /// Mutual TLS material for the grpc and quic modes.
    pub tls: Option<TlsFile>,
    /// Admin endpoint (`/metrics`, `/healthz`).
    #[serde(default)]
    pub admin: AdminFile,
    /// Local API for an S-CSCF that publishes keys natively instead of relaying through the agent.
    pub local_api: Option<LocalApiFile>,
    /// The p-cscf-agents this agent delivers keys to.
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerFile>,
}

/// `[sip]`: where the agent listens and where the S-CSCF is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipFile {
    /// Address the core (I-CSCF) sends to; UDP and TCP both listen here.
    pub listen: SocketAddr,
    /// The S-CSCF this agent sits in front of: `ip:port` or `name:port` (resolved at start and
    /// on SIGHUP).
    pub scscf: String,
    /// Host[:port] written into this agent's Via; defaults to `listen`.
    pub via_host: Option<String>,
    /// Also listen on TCP.
    pub tcp: bool,
}

impl Default for SipFile {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5070)),
            scscf: "127.0.0.1:5060".into(),
            via_host: None,
            tcp: true,
        }
    }
}

/// `[policy]`: failure handling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyFile {
    /// When a grpc/quic peer is down: `sealed` (if the peer has a sealing secret) or `reject` (503).
    pub fallback: Fallback,
    /// Allow the last-resort fallback to clear keys (`plain`). Off by default: a downgrade exposes keys.
    pub allow_plain_fallback: bool,
    /// Wait for the peer's ack before forwarding the 401 (slower; for comparison with pipelining).
    pub ack_before_forward: bool,
    /// How long to wait for an ack when `ack_before_forward` is on, in milliseconds.
    pub ack_timeout_ms: u64,
    /// `Retry-After` seconds on the 503 sent toward the core when keys cannot be carried.
    pub retry_after_s: u32,
    /// What to do with a 401 whose REGISTER named no known p-cscf-agent: `reject` (503) or `plain`.
    pub unknown_peer: UnknownPeer,
    /// Lifetime given to a bundle (`not_after`), in seconds: 2 x Timer F by default.
    pub key_ttl_s: u64,
}

impl Default for PolicyFile {
    fn default() -> Self {
        Self {
            fallback: Fallback::Sealed,
            allow_plain_fallback: false,
            ack_before_forward: false,
            ack_timeout_ms: 100,
            retry_after_s: 5,
            unknown_peer: UnknownPeer::Reject,
            key_ttl_s: 64,
        }
    }
}

/// Fallback when a peer's out-of-band transport is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Seal the keys into the 401 instead.
    Sealed,
    /// Answer 503 with Retry-After toward the core.
    Reject,
}

/// Handling of a 401 whose REGISTER named no known p-cscf-agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPeer {
    /// 503 toward the core: the keys would otherwise cross the path in clear.
    Reject,
    /// Forward unchanged (3GPP baseline), for P-CSCFs without an agent.
    Plain,
}

/// `[tls]`: PEM files; reloaded on SIGHUP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// CA bundle that signs the p-cscf-agents' certificates.
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
            listen: "127.0.0.1:9101".into(),
        }
    }
}

/// `[local_api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalApiFile {
    /// Unix socket path of the `KeyPublisher` gRPC service.
    pub socket: PathBuf,
}

/// One `[[peer]]`: a p-cscf-agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    /// The peer's agent id: its `ikt` Via param and its certificate's DNS SAN.
    pub id: String,
    /// How keys travel to this peer.
    pub mode: Mode,
    /// The peer's gRPC key transport address (mode grpc).
    pub grpc: Option<String>,
    /// The peer's QUIC key transport address (mode quic).
    pub quic: Option<String>,
    /// TLS server name to verify; defaults to `id`.
    pub server_name: Option<String>,
    /// Sealing secret for mode sealed and for the sealed fallback.
    pub sealing: Option<SealingFile>,
    /// SIP hosts (as in a Path URI) that identify this peer when the REGISTER carries no `ikt` Via.
    #[serde(default)]
    pub path_hosts: Vec<String>,
}

/// Sealing secret of a peer pair.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealingFile {
    /// Key id written into tokens; rotate by giving the p-side the new kid first.
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
    /// Failure policy.
    pub policy: PolicyFile,
    /// TLS material, present whenever a peer uses grpc or quic.
    pub tls: Option<TlsFile>,
    /// Admin endpoint address, if enabled.
    pub admin: Option<SocketAddr>,
    /// Local API socket, if enabled.
    pub local_api: Option<PathBuf>,
    /// Peers by id.
    pub peers: BTreeMap<String, PeerFile>,
}

impl Config {
    /// Ack wait when `ack_before_forward` is on.
    pub fn ack_timeout(&self) -> Duration {
        Duration::from_millis(self.policy.ack_timeout_ms)
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
    if !valid_host_port(&file.sip.scscf) {
        return Err(invalid(path, "sip.scscf", "must be ip:port or name:port"));
    }
    if file.sip.scscf.parse::<SocketAddr>().ok() == Some(file.sip.listen) {
        return Err(invalid(path, "sip.scscf", "must differ from sip.listen"));
    }
    if file.policy.ack_before_forward && file.policy.ack_timeout_ms == 0 {
        return Err(invalid(path, "policy.ack_timeout_ms", "must be > 0"));
    }
    if !(1..=3600).contains(&file.policy.key_ttl_s) {
        return Err(invalid(path, "policy.key_ttl_s", "must be 1..=3600"));
    }
    let admin = match file.admin.listen.trim() {
        "" => None,
        s => Some(
            s.parse()
                .map_err(|e| invalid(path, "admin.listen", format!("{s:?}: {e}")))?,
        ),
    };
    let mut peers = BTreeMap::new();
    let mut needs_tls = false;
    for (i, p) in file.peers.into_iter().enumerate() {
        let field = |f: &str| format!("peer[{i}].{f}");
        if !valid_agent_id(&p.id) {
            return Err(invalid(path, &field("id"), "must be 1-63 of [a-z0-9.-]"));
        }
        match p.mode {
            Mode::Grpc if p.grpc.is_none() => {
                return Err(invalid(path, &field("grpc"), "required for mode grpc"));
            }
            Mode::Quic if p.quic.is_none() => {
                return Err(invalid(path, &field("quic"), "required for mode quic"));
            }
            Mode::Sealed if p.sealing.is_none() => {
                return Err(invalid(path, &field("sealing"), "required for mode sealed"));
            }
            _ => {}
        }
        if p.mode.out_of_band() {
            needs_tls = true;
        }
        if let Some(s) = &p.sealing {
            if s.kid.is_empty() || s.kid.len() > 32 || s.kid.contains(['.', '"', ' ']) {
                return Err(invalid(
                    path,
                    &field("sealing.kid"),
                    "must be 1-32 chars without '.', '\"' or spaces",
                ));
            }
            // Read now so a bad secret fails at start, not on the first 401.
            ikt_agent::secret::read_hex_secret(&s.secret_file)?;
        }
        let id = p.id.clone();
        if peers.insert(id.clone(), p).is_some() {
            return Err(invalid(
                path,
                &field("id"),
                format!("duplicate peer {id:?}"),
            ));
        }
    }
    if needs_tls && file.tls.is_none() {
        return Err(invalid(
            path,
            "tls",
            "required when a peer uses grpc or quic",
        ));
    }
    if let Some(t) = &file.tls {
        for (f, p) in [
            ("tls.ca", &t.ca),
            ("tls.cert", &t.cert),
            ("tls.key", &t.key),
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
    Ok(Config {
        id: file.id,
        sip: file.sip,
        policy: file.policy,
        tls: file.tls,
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
    fn minimal_plain_config_has_defaults() {
        let c = check("id = \"scscf-1\"\n[[peer]]\nid = \"pcscf-1\"\nmode = \"plain\"\n").unwrap();
        assert_eq!(c.policy.fallback, Fallback::Sealed);
        assert!(!c.policy.allow_plain_fallback);
        assert_eq!(c.admin, Some("127.0.0.1:9101".parse().unwrap()));
        assert!(c.peers.contains_key("pcscf-1"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = check("id = \"Bad Id\"\n").unwrap_err();
        assert!(e.contains("id:"), "{e}");
        let e = check("id = \"s\"\n[[peer]]\nid = \"p\"\nmode = \"grpc\"\n").unwrap_err();
        assert!(e.contains("peer[0].grpc"), "{e}");
        let e =
            check("id = \"s\"\n[[peer]]\nid = \"p\"\nmode = \"grpc\"\ngrpc = \"127.0.0.1:1\"\n")
                .unwrap_err();
        assert!(e.contains("tls"), "{e}");
        let e = check("id = \"s\"\n[policy]\nfallbak = \"sealed\"\n").unwrap_err();
        assert!(e.contains("fallbak"), "{e}");
        let e = check("id = \"s\"\n[[peer]]\nid = \"p\"\nmode = \"tls\"\n").unwrap_err();
        assert!(e.contains("tls"), "{e}");
    }
}
