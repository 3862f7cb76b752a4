//! TLS configuration for the broker's listeners: the `rustls::ServerConfig` built from the
//! `--tls-cert`, `--tls-key` and `--tls-client-ca` PEM files, a reloadable handle to it that
//! every shard reads at accept time, and the client certificate's subject as Kafka names it.
//! For the `sluice` client commands, the `rustls::ClientConfig` of `--tls-ca`, `--tls-cert`
//! and `--tls-key` ([`load_client_config`]).
//!
//! No I/O beyond reading the PEM files: `sluice-net` wraps glommio streams with
//! `futures_rustls::TlsAcceptor::from(config)`, which takes exactly the
//! `Arc<rustls::ServerConfig>` made here (`sluice-client` likewise with `TlsConnector`).
//!
//! Only rustls' `ring` provider is compiled in, and it is named explicitly
//! (`builder_with_provider`) rather than taken from the process default: if another crate
//! in the graph ever enables `aws-lc-rs` too, `ServerConfig::builder()` would panic for
//! want of a process-level provider, while this code keeps working.

mod subject;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, InconsistentKeys, RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};

pub use subject::subject_rfc2253;

/// TLS 1.3 first, 1.2 for older clients (librdkafka with OpenSSL 1.0.x, old JVMs); Kafka
/// brokers accept both by default (`ssl.enabled.protocols=TLSv1.2,TLSv1.3`).
const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A PEM file larger than this is refused rather than read: a certificate chain or a CA
/// bundle is kilobytes (the whole Mozilla bundle is ~220 KiB), so anything near this is a
/// wrong path (a log, a disk image) that would otherwise be read whole into memory.
const PEM_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The PEM files a TLS listener is configured with (broker flags `--tls-cert`,
/// `--tls-key`, `--tls-client-ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first, then any intermediates.
    pub cert: PathBuf,
    /// The leaf's private key, unencrypted: PKCS#8 (`PRIVATE KEY`), PKCS#1
    /// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). May be the same file as `cert`.
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to. When set, every client must
    /// present one (Kafka's `ssl.client.auth=required`) and its subject becomes the
    /// connection's principal; when unset, no client certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be built, or a certificate's subject not read. The
/// messages name the file, since the operator reads them at startup or after a reload.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file is larger than any PEM file sluice expects (`PEM_FILE_BYTES_MAX`).
    #[error("{} is larger than {PEM_FILE_BYTES_MAX} bytes; is it really a PEM file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A PEM section is malformed (bad base64, a missing END line).
    #[error("{} is not valid PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        #[source]
        source: pem::Error,
    },
    /// The file holds no `BEGIN CERTIFICATE` section.
    #[error("no certificate in {} (expected PEM \"BEGIN CERTIFICATE\" sections)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key sluice can use.
    #[error(
        "no private key in {} (expected an unencrypted PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \
         \"EC PRIVATE KEY\" section)",
        path.display()
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is not the one the leaf certificate was issued for.
    #[error("private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate chain or the key (an unsupported key type, a
    /// certificate it cannot parse).
    #[error("cannot use the certificate in {} with the key in {}: {source}", cert.display(), key.display())]
    CertificateKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A certificate in the client CA file cannot be a trust anchor.
    #[error("bad client CA certificate in {}: {source}", path.display())]
    ClientCa {
        /// The client CA file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A certificate in a client's CA file (`--tls-ca`) cannot be a trust anchor.
    #[error("bad CA certificate in {}: {source}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from the client CA file.
    #[error("cannot verify client certificates against {}: {source}", path.display())]
    ClientVerifier {
        /// The client CA file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: VerifierBuilderError,
    },
    /// The crypto provider does not support the protocol versions asked for; with the ring
    /// provider and the `tls12` feature this cannot happen, but it is not a reason to panic.
    #[error("TLS protocol versions: {0}")]
    ProtocolVersions(#[source] rustls::Error),
    /// A certificate's subject could not be parsed.
    #[error("cannot read the certificate's subject: {reason}")]
    Subject {
        /// What the X.509 parser said.
        reason: String,
    },
}

/// Builds the listener's TLS configuration from `files`: TLS 1.3 and 1.2 with the ring
/// provider, the certificate chain and key, and — with a client CA — a verifier that
/// requires a client certificate signed by it.
///
/// The result is what `futures_rustls::TlsAcceptor::from` takes.
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = crypto_provider();
    let chain = read_certificates(&files.cert)?;
    let key = read_private_key(&files.key)?;
    let verifier = match &files.client_ca {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(path) => client_verifier(path, &provider)?,
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::ProtocolVersions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| certificate_key_error(source, &files.cert, &files.key))?;
    Ok(Arc::new(config))
}

/// The PEM files a client connects with (the `sluice` client flags `--tls-ca`, `--tls-cert`
/// and `--tls-key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA certificates that the broker's certificate must chain to. There is no fallback
    /// to the system's store: a broker's CA is named, as with librdkafka's
    /// `ssl.ca.location`.
    pub ca: PathBuf,
    /// The client's certificate chain and its key (same encodings as [`TlsFiles`]), for
    /// listeners that require one (mutual TLS); the subject is the principal there.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Builds a client's TLS configuration from `files`: TLS 1.3 and 1.2 with the ring
/// provider, the CAs to trust and, if given, the certificate to present. The broker's name
/// is checked against its certificate by whoever connects (`futures_rustls::TlsConnector`
/// takes the name per connection).
pub fn load_client_config(files: &ClientTlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in read_certificates(&files.ca)? {
        roots.add(ca).map_err(|source| TlsError::Ca { path: files.ca.clone(), source })?;
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::ProtocolVersions)?
        .with_root_certificates(roots);
    let config = match &files.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_private_key(key)?)
            .map_err(|source| certificate_key_error(source, cert, key))?,
    };
    Ok(Arc::new(config))
}

/// What rustls' refusal of a certificate chain and key means, with both files named.
fn certificate_key_error(source: rustls::Error, cert: &Path, key: &Path) -> TlsError {
    match source {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch { cert: cert.to_owned(), key: key.to_owned() }
        }
        source => TlsError::CertificateKey { cert: cert.to_owned(), key: key.to_owned(), source },
    }
}

/// rustls' ring provider, the only one compiled in; for client configurations too (tests,
/// tools), so that nothing depends on a process-default provider.
///
/// rustls 0.23.48 deprecated `ring::default_provider` because ring has no post-quantum key
/// exchange (X25519MLKEM768, which the aws-lc-rs provider offers). sluice stays on ring
/// (it builds with only a C compiler; clients that offer the hybrid group fall back to
/// X25519 or P-256), so the deprecation is allowed here, in the one place that names it.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's TLS configuration, shared by all shard threads and replaced in place
/// when the files change (on SIGHUP): each accept takes [`current`](Self::current), so new
/// connections use the newest configuration while connections already accepted keep the
/// one they started with (a `TlsStream` holds its own `Arc`).
#[derive(Debug)]
pub struct ReloadableServerConfig {
    files: TlsFiles,
    /// Read once per accepted connection, written once per reload: an `RwLock` costs a
    /// few atomic operations per connection, far below the handshake's own cost.
    current: RwLock<Arc<ServerConfig>>,
    /// Serialises reloads, so that two overlapping ones cannot publish the older files
    /// last.
    reloading: Mutex<()>,
}

impl ReloadableServerConfig {
    /// Loads `files` once; an error here should stop the broker from starting.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let config = load_server_config(&files)?;
        Ok(Self { files, current: RwLock::new(config), reloading: Mutex::new(()) })
    }

    /// The configuration to accept the next connection with.
    pub fn current(&self) -> Arc<ServerConfig> {
        // A panic elsewhere while holding the lock cannot leave a half-written `Arc`
        // behind, so a poisoned lock still holds a valid configuration.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads the files and publishes the new configuration. On error the previous
    /// configuration stays in use and the error is returned for the log: a broker must not
    /// lose its listener because a certificate renewal wrote a bad file.
    pub fn reload(&self) -> Result<(), TlsError> {
        let _reloading = self.reloading.lock().unwrap_or_else(PoisonError::into_inner);
        let config = load_server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The files this configuration is loaded from, for log messages.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// The subject of the client's certificate in RFC 2253 form ([`subject_rfc2253`]) — the
/// string Kafka's `ssl.principal.mapping.rules` are applied to — or `None` when the client
/// presented no certificate (no client CA configured, or the handshake is not done yet).
pub fn peer_principal_dn(conn: &ServerConnection) -> Option<Result<String, TlsError>> {
    let leaf = conn.peer_certificates()?.first()?;
    Some(subject_rfc2253(leaf))
}

/// All certificates in a PEM file, in file order; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_bytes = read_pem_file(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_owned(), source })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certificates)
}

/// The first private key in a PEM file, of any of the three encodings rustls takes.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem_bytes = read_pem_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem_bytes).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: path.to_owned() },
        source => TlsError::Pem { path: path.to_owned(), source },
    })
}

/// A verifier that requires a client certificate chaining to one of the CAs in `path`.
fn client_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in read_certificates(path)? {
        roots.add(ca).map_err(|source| TlsError::ClientCa { path: path.to_owned(), source })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|source| TlsError::ClientVerifier { path: path.to_owned(), source })
}

/// Reads a whole PEM file, refusing one over `PEM_FILE_BYTES_MAX`. Reading ourselves
/// (rather than `pem_file_iter`) keeps the path in every I/O error.
fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read { path: path.to_owned(), source };
    let file = File::open(path).map_err(read_error)?;
    let mut pem_bytes = Vec::new();
    file.take(PEM_FILE_BYTES_MAX + 1).read_to_end(&mut pem_bytes).map_err(read_error)?;
    if pem_bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(TlsError::TooLarge { path: path.to_owned() });
    }
    Ok(pem_bytes)
}
