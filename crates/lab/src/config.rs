//! Lab configuration: realm, registrar behaviour and the operator's re-authentication policy.
//! Validated into typed values before any socket opens.

use std::time::Duration;

use serde::Deserialize;

use crate::Error;
use crate::digest::Qop;

/// Failed authentication responses tolerated when the config does not say: an operator
/// choice, written once here and overridable by `[reauth] max_failed_attempts`.
pub const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 2;

/// What the S-CSCF does when an IMPI exceeds `max_failed_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExceededAction {
    /// Answer 403 and deregister every public identity of the IMPI, with NOTIFY terminated
    /// (contact event `rejected`) to the UE and the P-CSCF.
    Deregister,
    /// Answer 403 only; an existing registration runs until it expires.
    Reject,
}

impl ExceededAction {
    /// Name used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceededAction::Deregister => "deregister",
            ExceededAction::Reject => "reject",
        }
    }
}

/// `[reauth]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReauthFile {
    /// Consecutive failed authentication responses tolerated per IMPI (1..=1000).
    max_failed_attempts: Option<u32>,
    /// Action when exceeded: "deregister" (default) or "reject".
    on_exceeded: Option<ExceededAction>,
    /// Seconds left on a registration after a network-initiated re-authentication (1..=3600).
    shortened_expires: Option<u32>,
}

/// `[registrar]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrarFile {
    /// The qop offered in challenges: "auth,auth-int" (default), "auth", "auth-int" or "" (none).
    qop: Option<String>,
    /// Expires granted when the UE asks for none (seconds).
    default_expires: Option<u32>,
    /// Largest expires granted (seconds).
    max_expires: Option<u32>,
    /// The reg-await-auth timer in milliseconds (TS 24.229 §5.4.1.2.2; default 32000).
    reg_await_auth_ms: Option<u64>,
}

/// The config file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabFile {
    /// Home network realm (digest realm and domain of the core's URIs).
    realm: Option<String>,
    registrar: Option<RegistrarFile>,
    reauth: Option<ReauthFile>,
}

/// The re-authentication policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReauthPolicy {
    /// Consecutive failed authentication responses tolerated; exceeding it triggers `on_exceeded`.
    pub max_failed_attempts: u32,
    /// What happens then.
    pub on_exceeded: ExceededAction,
    /// Seconds left on a registration after a network-initiated re-authentication.
    pub shortened_expires: u32,
}

/// Validated lab configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// Home network realm.
    pub realm: String,
    /// qop values offered, in order (empty: no qop).
    pub qop: Vec<Qop>,
    /// Expires granted when none is asked for.
    pub default_expires: u32,
    /// Largest expires granted.
    pub max_expires: u32,
    /// The reg-await-auth timer.
    pub reg_await_auth: Duration,
    /// Re-authentication policy.
    pub reauth: ReauthPolicy,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            realm: "ims.example.org".into(),
            qop: vec![Qop::Auth, Qop::AuthInt],
            default_expires: 600,
            max_expires: 7200,
            reg_await_auth: Duration::from_secs(32),
            reauth: ReauthPolicy {
                max_failed_attempts: DEFAULT_MAX_FAILED_ATTEMPTS,
                on_exceeded: ExceededAction::Deregister,
                shortened_expires: 30,
            },
        }
    }
}

fn bad(field: &str, why: &str) -> Error {
    Error::Config(format!("{field}: {why}"))
}

/// Parses a qop list as written in config (`"auth,auth-int"`).
pub fn parse_qop(text: &str) -> Result<Vec<Qop>, Error> {
    let mut out = Vec::new();
    for t in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let q = Qop::parse(t)
            .ok_or_else(|| bad("registrar.qop", "only auth and auth-int are allowed"))?;
        if out.contains(&q) {
            return Err(bad("registrar.qop", "a value is repeated"));
        }
        out.push(q);
    }
    Ok(out)
}

impl LabConfig {
    /// Parses and validates a config file's text; absent fields take the documented defaults.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let f: LabFile =
            toml::from_str(text).map_err(|e| Error::Config(e.message().to_string()))?;
        let mut c = Self::default();
        if let Some(realm) = f.realm {
            if realm.is_empty()
                || realm.len() > 253
                || !realm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(bad("realm", "must be a domain name"));
            }
            c.realm = realm;
        }
        if let Some(r) = f.registrar {
            if let Some(q) = r.qop {
                c.qop = parse_qop(&q)?;
            }
            if let Some(e) = r.default_expires {
                c.default_expires = e;
            }
            if let Some(e) = r.max_expires {
                c.max_expires = e;
            }
            if let Some(ms) = r.reg_await_auth_ms {
                if !(10..=600_000).contains(&ms) {
                    return Err(bad("registrar.reg_await_auth_ms", "must be 10..=600000"));
                }
                c.reg_await_auth = Duration::from_millis(ms);
            }
        }
        if c.max_expires == 0 || c.default_expires == 0 || c.default_expires > c.max_expires {
            return Err(bad("registrar.default_expires", "must be 1..=max_expires"));
        }
        if let Some(r) = f.reauth {
            if let Some(n) = r.max_failed_attempts {
                if !(1..=1000).contains(&n) {
                    return Err(bad("reauth.max_failed_attempts", "must be 1..=1000"));
                }
                c.reauth.max_failed_attempts = n;
            }
            if let Some(a) = r.on_exceeded {
                c.reauth.on_exceeded = a;
            }
            if let Some(s) = r.shortened_expires {
                if !(1..=3600).contains(&s) {
                    return Err(bad("reauth.shortened_expires", "must be 1..=3600"));
                }
                c.reauth.shortened_expires = s;
            }
        }
        Ok(c)
    }

    /// The qop auth-param value offered (`auth,auth-int`), or `None` when no qop is configured.
    pub fn qop_param(&self) -> Option<String> {
        if self.qop.is_empty() {
            return None;
        }
        Some(
            self.qop
                .iter()
                .map(|q| q.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c = LabConfig::from_toml(
            "realm = \"ims.test\"\n[registrar]\nqop = \"auth\"\nreg_await_auth_ms = 500\n[reauth]\nmax_failed_attempts = 5\non_exceeded = \"reject\"\n",
        )
        .unwrap();
        assert_eq!(c.reauth.max_failed_attempts, 5);
        assert_eq!(c.reauth.on_exceeded, ExceededAction::Reject);
        assert_eq!(c.qop_param().as_deref(), Some("auth"));
        for (text, field) in [
            (
                "[reauth]\nmax_failed_attempts = 0\n",
                "reauth.max_failed_attempts",
            ),
            (
                "[reauth]\nmax_failed_attempts = 1001\n",
                "reauth.max_failed_attempts",
            ),
            ("[reauth]\nbogus = 1\n", "unknown field"),
            ("[reauth]\non_exceeded = \"explode\"\n", "unknown variant"),
            ("[registrar]\nqop = \"auth,foo\"\n", "registrar.qop"),
            ("realm = \"a b\"\n", "realm"),
        ] {
            let e = LabConfig::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(field), "{e} should name {field}");
        }
        assert_eq!(
            LabConfig::from_toml("[registrar]\nqop = \"\"\n")
                .unwrap()
                .qop_param(),
            None
        );
    }

    #[test]
    fn example_file_is_valid() {
        let c = LabConfig::from_toml(include_str!("../lab.example.toml")).unwrap();
        assert_eq!(c.reauth.max_failed_attempts, 4);
        assert_eq!(c.reg_await_auth, Duration::from_secs(32));
        assert_eq!(c.qop_param().as_deref(), Some("auth,auth-int"));
    }
}
