//! Development PKI: a private CA and per-agent certificates for mutual TLS.
//!
//! The agents authenticate each other with certificates from one private CA and authorise the
//! peer by its DNS SAN, which equals the agent id (e.g. `pcscf-1`). This crate makes such a CA
//! and its leaf certificates, in memory for tests or as PEM files for the demo and deployments.
//!
//! # Layout
//! - [`Ca`]: a self-signed CA that issues [`AgentCert`]s ([`Ca::issue`], [`IssueOptions`]).
//! - [`write_pki`] / [`init`]: the files written by `ikt-certs init` (`ca.pem`, `ca.key`,
//!   `AGENT.pem`, `AGENT.key`; keys with mode 0600).
//!
//! Private keys are held in [`zeroize::Zeroizing`] strings and never appear in `Debug` output.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use zeroize::Zeroizing;

/// Errors of the development PKI.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The agent id cannot be a DNS name or a file name.
    #[error(
        "invalid agent id {0:?}: use 1-63 characters of a-z, 0-9, '-' and '.', not starting with '-' or '.'"
    )]
    InvalidAgentId(String),
    /// The same agent id was given twice.
    #[error("agent id {0:?} given more than once")]
    DuplicateAgent(String),
    /// No agent was named.
    #[error("no agent given (use --agent NAME at least once)")]
    NoAgents,
    /// Validity of zero days, or more than 100 years.
    #[error("invalid validity of {0} days: use 1..=36500")]
    InvalidValidity(u32),
    /// rcgen failed to make a key or certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file would be overwritten without `force`.
    #[error("{0} already exists (pass --force to overwrite)")]
    Exists(PathBuf),
    /// Writing a file or creating the directory failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Validity period of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from yesterday (clock skew) for this many days from today.
    Days(u32),
    /// Expired: valid from 30 days ago until 2 days ago. For negative tests.
    Expired,
}

/// Options for a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueOptions {
    /// Validity period.
    pub validity: Validity,
    /// Add `DNS:localhost` and `IP:127.0.0.1` besides the agent id (handy on loopback).
    pub loopback_sans: bool,
}

impl Default for IssueOptions {
    fn default() -> Self {
        Self {
            validity: Validity::Days(365),
            loopback_sans: true,
        }
    }
}

/// A private certificate authority.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A leaf certificate for one agent, with its private key.
pub struct AgentCert {
    /// The agent id, which is also the certificate's DNS SAN.
    pub agent: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    key_pem: Zeroizing<String>,
}

impl AgentCert {
    /// The private key (PKCS#8, PEM). Secret: keep it out of logs.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for AgentCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCert")
            .field("agent", &self.agent)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Makes a self-signed CA named `common_name`, valid for `days` days.
    pub fn new(common_name: &str, days: u32) -> Result<Self, Error> {
        check_days(days)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(
            DnType::OrganizationName,
            "ims-key-transport development PKI",
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_window(&mut params, Validity::Days(days));
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            params,
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA private key, PEM. Secret.
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// Issues a leaf certificate whose DNS SAN is `agent`, usable as TLS client and server.
    pub fn issue(&self, agent: &str, opts: &IssueOptions) -> Result<AgentCert, Error> {
        check_agent_id(agent)?;
        if let Validity::Days(d) = opts.validity {
            check_days(d)?;
        }
        let mut sans = vec![agent.to_owned()];
        if opts.loopback_sans && agent != "localhost" {
            sans.push("localhost".to_owned());
        }
        let mut params = CertificateParams::new(sans)?;
        if opts.loopback_sans {
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        set_window(&mut params, opts.validity);
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(AgentCert {
            agent: agent.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

/// Checks that an agent id is usable as a DNS SAN and as a file name.
pub fn check_agent_id(agent: &str) -> Result<(), Error> {
    let ok = !agent.is_empty()
        && agent.len() <= 63
        && !agent.starts_with(['-', '.'])
        && !agent.ends_with(['-', '.'])
        && !agent.contains("..")
        && agent
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidAgentId(agent.to_owned()))
    }
}

fn check_days(days: u32) -> Result<(), Error> {
    if (1..=36_500).contains(&days) {
        Ok(())
    } else {
        Err(Error::InvalidValidity(days))
    }
}

/// Sets `not_before`/`not_after` at day granularity, computed without a date crate.
fn set_window(params: &mut CertificateParams, v: Validity) {
    let today = days_since_epoch();
    let (from, to) = match v {
        Validity::Days(d) => (today - 1, today + i64::from(d)),
        Validity::Expired => (today - 30, today - 2),
    };
    let (y, m, d) = civil_from_days(from);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(to);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

fn days_since_epoch() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Ranges are guaranteed by the arithmetic above; the fallbacks are unreachable.
    (
        i32::try_from(y).unwrap_or(1970),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

/// What [`init`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
}

/// Makes a CA and one certificate per agent and writes them to `dir` (see [`write_pki`]).
pub fn init(dir: &Path, agents: &[String], days: u32, force: bool) -> Result<Written, Error> {
    if agents.is_empty() {
        return Err(Error::NoAgents);
    }
    for (i, a) in agents.iter().enumerate() {
        check_agent_id(a)?;
        if agents[..i].contains(a) {
            return Err(Error::DuplicateAgent(a.clone()));
        }
    }
    let ca = Ca::new("ims-key-transport dev CA", days)?;
    let opts = IssueOptions {
        validity: Validity::Days(days),
        loopback_sans: true,
    };
    let certs = agents
        .iter()
        .map(|a| ca.issue(a, &opts))
        .collect::<Result<Vec<_>, _>>()?;
    write_pki(dir, &ca, &certs, force)
}

/// Writes `ca.pem`, `ca.key` and `AGENT.pem`/`AGENT.key` per agent; key files get mode 0600.
pub fn write_pki(dir: &Path, ca: &Ca, certs: &[AgentCert], force: bool) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut plan: Vec<(PathBuf, &str, bool)> = Vec::new();
    let ca_key = ca.key_pem();
    plan.push((dir.join("ca.pem"), ca.cert_pem(), false));
    plan.push((dir.join("ca.key"), ca_key.as_str(), true));
    for c in certs {
        plan.push((
            dir.join(format!("{}.pem", c.agent)),
            c.cert_pem.as_str(),
            false,
        ));
        plan.push((dir.join(format!("{}.key", c.agent)), c.key_pem(), true));
    }
    if let Some((p, _, _)) = plan.iter().find(|(p, _, _)| !force && p.exists()) {
        return Err(Error::Exists(p.clone()));
    }
    let mut files = Vec::with_capacity(plan.len());
    for (path, text, secret) in plan {
        write_file(&path, text.as_bytes(), secret)?;
        files.push(path);
    }
    Ok(Written { files })
}

fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), Error> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(io)?;
    // A pre-existing file keeps its old mode on open: set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn agent_ids() {
        for ok in ["pcscf-1", "scscf-1", "a", "p.example"] {
            check_agent_id(ok).expect(ok);
        }
        for bad in [
            "",
            "-a",
            "a-",
            "../x",
            "a/b",
            "A",
            "a b",
            "a..b",
            &"x".repeat(64),
        ] {
            assert!(check_agent_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issues_pem_and_redacts_debug() {
        let ca = Ca::new("test", 1).expect("ca");
        let leaf = ca.issue("pcscf-1", &IssueOptions::default()).expect("leaf");
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let dbg = format!("{leaf:?} {ca:?}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        assert!(ca.issue("Bad Name", &IssueOptions::default()).is_err());
        assert!(matches!(Ca::new("x", 0), Err(Error::InvalidValidity(0))));
    }

    #[test]
    fn init_writes_files_with_modes() {
        let dir = std::env::temp_dir().join(format!("ikt-certs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let agents = vec!["pcscf-1".to_owned(), "scscf-1".to_owned()];
        let w = init(&dir, &agents, 30, false).expect("init");
        assert_eq!(w.files.len(), 6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in &w.files {
                let mode = std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
                let is_key = f.extension().is_some_and(|e| e == "key");
                assert_eq!(mode, if is_key { 0o600 } else { 0o644 }, "{}", f.display());
            }
        }
        assert!(matches!(
            init(&dir, &agents, 30, false),
            Err(Error::Exists(_))
        ));
        init(&dir, &agents, 30, true).expect("force");
        let dup = vec!["a".to_owned(), "a".to_owned()];
        assert!(matches!(
            init(&dir, &dup, 30, true),
            Err(Error::DuplicateAgent(_))
        ));
        assert!(matches!(init(&dir, &[], 30, true), Err(Error::NoAgents)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
