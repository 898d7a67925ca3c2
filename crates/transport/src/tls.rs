//! Mutual TLS 1.3 material shared by both transports: certificates reloadable without restart,
//! peer authorisation by DNS SAN, and counters of refused handshakes by reason.
//!
//! A [`TlsHandle`] owns the PEM source (files or memory), the parsed material, the injected
//! crypto provider and the [`PeerTable`]. Every new handshake asks it for a fresh rustls config,
//! so [`TlsHandle::reload`] takes effect for new connections while existing ones keep running.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::Error;

/// Where the certificate, private key and CA come from.
#[derive(Clone)]
pub enum TlsSource {
    /// PEM files, re-read on every [`TlsHandle::reload`].
    Files {
        /// This agent's certificate chain (leaf first).
        cert: PathBuf,
        /// This agent's private key (PKCS#8, SEC1 or PKCS#1).
        key: PathBuf,
        /// The private CA that signs peer certificates.
        ca: PathBuf,
    },
    /// PEM text held in memory (tests, or material fetched by the caller).
    Pem {
        /// This agent's certificate chain (leaf first).
        cert: String,
        /// This agent's private key.
        key: Zeroizing<String>,
        /// The private CA that signs peer certificates.
        ca: String,
    },
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files { cert, key, ca } => f
                .debug_struct("Files")
                .field("cert", cert)
                .field("key", key)
                .field("ca", ca)
                .finish(),
            Self::Pem { .. } => f.write_str("Pem { <redacted> }"),
        }
    }
}

/// Agent ids allowed as peers; a certificate is authorised when one of its DNS SANs equals one.
///
/// Cloning shares the table: [`PeerTable::set`] is seen by every clone (e.g. on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct PeerTable {
    inner: Arc<RwLock<BTreeSet<String>>>,
}

impl PeerTable {
    /// A table allowing exactly these agent ids.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Result<Self, Error> {
        let t = Self::default();
        t.set(ids)?;
        Ok(t)
    }

    /// Replaces the allowed ids; new handshakes use the new list.
    pub fn set<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) -> Result<(), Error> {
        let mut set = BTreeSet::new();
        for id in ids {
            let id = id.into();
            if rustls_pki_types::DnsName::try_from(id.as_str()).is_err() || id == "localhost" {
                return Err(Error::InvalidPeerId(id));
            }
            set.insert(id);
        }
        *self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = set;
        Ok(())
    }

    /// The allowed ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.read().iter().cloned().collect()
    }

    /// Whether `id` is allowed.
    pub fn contains(&self, id: &str) -> bool {
        self.read().contains(id)
    }

    /// The allowed id that the (already chain-verified) certificate is valid for, if any.
    pub fn identify(&self, end_entity: &CertificateDer<'_>) -> Option<String> {
        let ee = webpki::EndEntityCert::try_from(end_entity).ok()?;
        self.read()
            .iter()
            .find(|id| {
                ServerName::try_from(id.as_str())
                    .is_ok_and(|name| ee.verify_is_valid_for_subject_name(&name).is_ok())
            })
            .cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<String>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Certificate chain does not lead to our CA (or a bad signature).
    UnknownCa,
    /// Certificate expired or not yet valid.
    Expired,
    /// Valid certificate whose SAN is not in the peer table (or not the expected peer).
    UnknownPeer,
    /// Other certificate problem (encoding, purpose, critical extension, ...).
    BadCertificate,
    /// The client presented no certificate.
    NoCertificate,
    /// The bytes were not TLS (or not QUIC with our ALPN).
    NotTls,
    /// The handshake did not finish in time.
    Timeout,
    /// Any other handshake failure.
    Other,
}

impl RefusalReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 8] = [
        Self::UnknownCa,
        Self::Expired,
        Self::UnknownPeer,
        Self::BadCertificate,
        Self::NoCertificate,
        Self::NotTls,
        Self::Timeout,
        Self::Other,
    ];

    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownCa => "unknown_ca",
            Self::Expired => "expired",
            Self::UnknownPeer => "unknown_peer",
            Self::BadCertificate => "bad_certificate",
            Self::NoCertificate => "no_certificate",
            Self::NotTls => "not_tls",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(Self::ALL.len() - 1)
    }

    /// Classifies a certificate verification error.
    pub(crate) fn of_cert_error(e: &rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => Self::UnknownCa,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => Self::Expired,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::UnknownPeer,
                _ => Self::BadCertificate,
            },
            rustls::Error::NoCertificatesPresented => Self::NoCertificate,
            _ => Self::Other,
        }
    }
}

/// Counters of refused handshakes, by reason. Shared by a handle's clones.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [AtomicU64; 8],
}

impl Refusals {
    /// Counts one refusal.
    pub fn count(&self, reason: RefusalReason) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The count for one reason.
    pub fn get(&self, reason: RefusalReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Every `(reason, count)`.
    pub fn snapshot(&self) -> Vec<(RefusalReason, u64)> {
        RefusalReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .collect()
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        RefusalReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// Parsed material of one load.
struct Material {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
}

impl Material {
    fn load(source: &TlsSource) -> Result<Self, Error> {
        let (cert_pem, key_pem, ca_pem, names) = match source {
            TlsSource::Files { cert, key, ca } => (
                read(cert)?,
                Zeroizing::new(read(key)?),
                read(ca)?,
                [
                    cert.display().to_string(),
                    key.display().to_string(),
                    ca.display().to_string(),
                ],
            ),
            TlsSource::Pem { cert, key, ca } => (
                cert.clone(),
                key.clone(),
                ca.clone(),
                ["certificate PEM".into(), "key PEM".into(), "CA PEM".into()],
            ),
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Pem {
                what: names[0].clone(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(Error::Pem {
                what: names[0].clone(),
                reason: "no certificate".into(),
            });
        }
        // The PEM error text never contains key bytes, only its position/kind.
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Pem {
            what: names[1].clone(),
            reason: e.to_string(),
        })?;
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| Error::Pem {
                what: names[2].clone(),
                reason: e.to_string(),
            })?;
            roots.add(ca).map_err(|e| Error::Pem {
                what: names[2].clone(),
                reason: e.to_string(),
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::Pem {
                what: names[2].clone(),
                reason: "no CA certificate".into(),
            });
        }
        Ok(Self {
            chain,
            key,
            roots: Arc::new(roots),
        })
    }
}

fn read(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.clone(),
        source,
    })
}

struct TlsInner {
    provider: Arc<CryptoProvider>,
    source: RwLock<TlsSource>,
    material: RwLock<Arc<Material>>,
    peers: PeerTable,
    refusals: Arc<Refusals>,
    generation: watch::Sender<u64>,
}

/// Shared, reloadable mutual-TLS configuration of one agent.
///
/// Clones share state. Libraries never install a global crypto provider: the caller injects one
/// (e.g. `Arc::new(rustls::crypto::ring::default_provider())`).
#[derive(Clone)]
pub struct TlsHandle {
    inner: Arc<TlsInner>,
}

impl std::fmt::Debug for TlsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHandle")
            .field("peers", &self.inner.peers)
            .finish_non_exhaustive()
    }
}

impl TlsHandle {
    /// Loads the material now (so a bad file fails at start) and keeps `source` for reloads.
    pub fn new(
        provider: Arc<CryptoProvider>,
        source: TlsSource,
        peers: PeerTable,
    ) -> Result<Self, Error> {
        let material = Material::load(&source)?;
        let h = Self {
            inner: Arc::new(TlsInner {
                provider,
                source: RwLock::new(source),
                material: RwLock::new(Arc::new(material)),
                peers,
                refusals: Arc::new(Refusals::default()),
                generation: watch::channel(0).0,
            }),
        };
        // Build once to surface key/cert mismatches at start, not at the first handshake.
        h.server_config(&[])?;
        Ok(h)
    }

    /// Re-reads the source; on success new handshakes use the new material. On error the old
    /// material stays in force and the error is returned.
    pub fn reload(&self) -> Result<(), Error> {
        let source = self
            .inner
            .source
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.install(Material::load(&source)?)
    }

    /// Replaces the source (e.g. new file paths or new PEM text) and reloads from it.
    pub fn set_source(&self, source: TlsSource) -> Result<(), Error> {
        let material = Material::load(&source)?;
        self.install(material)?;
        *self
            .inner
            .source
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = source;
        Ok(())
    }

    fn install(&self, material: Material) -> Result<(), Error> {
        let material = Arc::new(material);
        // Validate before swapping so a mismatched key never replaces working material.
        build_server(&self.inner, &material, &[])?;
        *self
            .inner
            .material
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = material;
        self.inner.generation.send_modify(|g| *g += 1);
        tracing::info!("tls material reloaded");
        Ok(())
    }

    /// The peer table used for authorisation.
    pub fn peers(&self) -> &PeerTable {
        &self.inner.peers
    }

    /// A sender may only dial a peer in the table (checked at every connection attempt, so a
    /// peer-table reload takes effect on the next reconnect).
    pub(crate) fn check_dial(&self, peer: &str) -> Result<(), Error> {
        if self.inner.peers.contains(peer) {
            Ok(())
        } else {
            Err(Error::Connection(format!(
                "peer {peer:?} is not in the peer table"
            )))
        }
    }

    /// Refused-handshake counters (both directions: as server and as client).
    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.inner.refusals
    }

    /// Bumps on every successful reload; QUIC endpoints watch it to swap their server config.
    pub(crate) fn generation(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    fn material(&self) -> Arc<Material> {
        self.inner
            .material
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A TLS 1.3-only server config that requires a client certificate from our CA whose SAN
    /// is in the peer table.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, Error> {
        build_server(&self.inner, &self.material(), alpn)
    }

    /// A TLS 1.3-only client config with our certificate, trusting only our CA. The server's
    /// identity is checked against the `ServerName` used to connect (the peer's agent id).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, Error> {
        let inner = &self.inner;
        let m = self.material();
        let webpki =
            WebPkiServerVerifier::builder_with_provider(m.roots.clone(), inner.provider.clone())
                .build()
                .map_err(|e| Error::Tls(e.to_string()))?;
        let verifier = Arc::new(CountingServerVerifier {
            inner: webpki,
            refusals: inner.refusals.clone(),
        });
        let mut cfg = rustls::ClientConfig::builder_with_provider(inner.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
            .map_err(|e| Error::Tls(e.to_string()))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        cfg.enable_early_data = false;
        Ok(Arc::new(cfg))
    }
}

fn build_server(
    inner: &TlsInner,
    m: &Material,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let webpki =
        WebPkiClientVerifier::builder_with_provider(m.roots.clone(), inner.provider.clone())
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
    let verifier = Arc::new(PeerClientVerifier {
        inner: webpki,
        peers: inner.peers.clone(),
        refusals: inner.refusals.clone(),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(inner.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(m.chain.clone(), m.key.clone_key())
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // No 0-RTT: replayable early data must never carry key bundles.
    cfg.max_early_data_size = 0;
    Ok(Arc::new(cfg))
}

/// Chain check by webpki, then authorisation of the SAN against the peer table; counts refusals.
#[derive(Debug)]
struct PeerClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    peers: PeerTable,
    refusals: Arc<Refusals>,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            let reason = RefusalReason::of_cert_error(&e);
            self.refusals.count(reason);
            tracing::warn!(reason = reason.as_str(), error = %e, "client certificate refused");
            return Err(e);
        }
        if self.peers.identify(end_entity).is_none() {
            self.refusals.count(RefusalReason::UnknownPeer);
            tracing::warn!(
                reason = "unknown_peer",
                "client certificate valid but its SAN is not in the peer table"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// webpki server verification (chain + SAN = the peer id we dialled), counting refusals.
#[derive(Debug)]
struct CountingServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    refusals: Arc<Refusals>,
}

impl ServerCertVerifier for CountingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| {
                let reason = RefusalReason::of_cert_error(e);
                self.refusals.count(reason);
                tracing::warn!(reason = reason.as_str(), error = %e, "server certificate refused");
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
