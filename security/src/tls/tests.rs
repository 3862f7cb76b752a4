//! Handshakes between a `rustls::ClientConnection` and a `ServerConnection` built from
//! `load_server_config`, over in-memory buffers, with certificates made here by rcgen.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ProtocolVersion, RootCertStore, ServerConnection};
use tempfile::TempDir;

use super::*;

/// A CA that signs the test certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(common_name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf certificate and its key, as PEM.
    fn issue(&self, subject: DistinguishedName, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn issue_server(&self) -> (String, String) {
        self.issue(
            dn(&[(DnType::CommonName, "localhost")]),
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn issue_client(&self, subject: DistinguishedName) -> (String, String) {
        self.issue(subject, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A subject with the attributes in DER order (openssl's `-subj` order).
fn dn(attributes: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in attributes {
        name.push(kind.clone(), *value);
    }
    name
}

fn alice() -> DistinguishedName {
    dn(&[(DnType::OrganizationName, "Sluice"), (DnType::OrganizationalUnitName, "Test"), (DnType::CommonName, "alice")])
}

/// The files of section 7 of docs/notes/security-research.md: a CA, a server certificate
/// for localhost and 127.0.0.1, alice's client certificate, and a second CA with a client
/// certificate of its own.
struct Pki {
    dir: TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir, ca: Ca::new("sluice-test-ca") };
        let (server_pem, server_key) = pki.ca.issue_server();
        let (client_pem, client_key) = pki.ca.issue_client(alice());
        let other_ca = Ca::new("other-ca");
        let (other_client_pem, other_client_key) = other_ca.issue_client(alice());
        pki.write("ca.pem", &pki.ca.pem);
        pki.write("server.pem", &server_pem);
        pki.write("server.key", &server_key);
        pki.write("client.pem", &client_pem);
        pki.write("client.key", &client_key);
        pki.write("other-ca.pem", &other_ca.pem);
        pki.write("other-client.pem", &other_client_pem);
        pki.write("other-client.key", &other_client_key);
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write(&self, file: &str, contents: &str) {
        fs::write(self.path(file), contents).unwrap();
    }

    fn files(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.pem")),
        }
    }
}

/// A client trusting the CAs in `trusted`, presenting the certificate and key in
/// `identity` if given, speaking only `versions`.
fn client_config(
    trusted: &Path,
    identity: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(trusted).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

fn connect(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> (ClientConnection, ServerConnection) {
    connect_to("localhost", client, server)
}

fn connect_to(
    name: &str,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
) -> (ClientConnection, ServerConnection) {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    (ClientConnection::new(client, name).unwrap(), ServerConnection::new(server).unwrap())
}

/// Moves what `from` wants to send into `to` and lets `to` process it; whether any bytes
/// moved.
fn transfer<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) -> Result<bool, rustls::Error> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut unread = &bytes[..];
    while !unread.is_empty() {
        to.read_tls(&mut unread).unwrap();
        to.process_new_packets()?;
    }
    Ok(!bytes.is_empty())
}

/// Pumps TLS records both ways until neither side has anything to send; the first error
/// either side reports. A handshake is at most a few flights each way, so 16 rounds
/// without settling means the helper or rustls is looping.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), rustls::Error> {
    for _ in 0..16 {
        let client_sent = transfer(client, server)?;
        let server_sent = transfer(server, client)?;
        if !client_sent && !server_sent {
            assert!(!client.is_handshaking() && !server.is_handshaking(), "handshake stalled");
            return Ok(());
        }
    }
    panic!("handshake did not settle in 16 rounds");
}

/// Application data goes through both ways, so the handshake really produced keys.
fn exchange_data(client: &mut ClientConnection, server: &mut ServerConnection) {
    use std::io::{Read, Write};
    client.writer().write_all(b"ping").unwrap();
    transfer(client, server).unwrap();
    let mut received = [0; 4];
    server.reader().read_exact(&mut received).unwrap();
    assert_eq!(&received, b"ping");
    server.writer().write_all(b"pong").unwrap();
    transfer(server, client).unwrap();
    client.reader().read_exact(&mut received).unwrap();
    assert_eq!(&received, b"pong");
}

const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[test]
fn handshake_succeeds_with_tls13() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(false)).unwrap();
    let (mut client, mut server) = connect(client_config(&pki.path("ca.pem"), None, TLS13_ONLY), server);
    handshake(&mut client, &mut server).unwrap();
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    exchange_data(&mut client, &mut server);
    assert!(peer_principal_dn(&server).is_none(), "no client certificate was asked for");
}

#[test]
fn handshake_succeeds_with_tls12() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(false)).unwrap();
    let (mut client, mut server) = connect(client_config(&pki.path("ca.pem"), None, TLS12_ONLY), server);
    handshake(&mut client, &mut server).unwrap();
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    exchange_data(&mut client, &mut server);
}

#[test]
fn server_certificate_is_valid_for_its_ip_address() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(false)).unwrap();
    let client = client_config(&pki.path("ca.pem"), None, TLS13_ONLY);
    let (mut client, mut server) = connect_to("127.0.0.1", client, server);
    handshake(&mut client, &mut server).unwrap();
}

#[test]
fn client_without_certificate_is_refused_when_a_client_ca_is_set() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(true)).unwrap();
    for versions in [TLS13_ONLY, TLS12_ONLY] {
        let (mut client, mut server) = connect(client_config(&pki.path("ca.pem"), None, versions), server.clone());
        let error = handshake(&mut client, &mut server).unwrap_err();
        assert_eq!(error, rustls::Error::NoCertificatesPresented, "{versions:?}");
    }
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(true)).unwrap();
    let identity = (pki.path("other-client.pem"), pki.path("other-client.key"));
    for versions in [TLS13_ONLY, TLS12_ONLY] {
        let client = client_config(&pki.path("ca.pem"), Some((&identity.0, &identity.1)), versions);
        let (mut client, mut server) = connect(client, server.clone());
        let error = handshake(&mut client, &mut server).unwrap_err();
        assert_eq!(error, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer), "{versions:?}");
    }
}

#[test]
fn client_certificate_from_the_client_ca_is_accepted_and_names_the_principal() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(true)).unwrap();
    let identity = (pki.path("client.pem"), pki.path("client.key"));
    for versions in [TLS13_ONLY, TLS12_ONLY] {
        let client = client_config(&pki.path("ca.pem"), Some((&identity.0, &identity.1)), versions);
        let (mut client, mut server) = connect(client, server.clone());
        handshake(&mut client, &mut server).unwrap();
        exchange_data(&mut client, &mut server);
        let leaf = &server.peer_certificates().unwrap()[0];
        assert_eq!(subject_rfc2253(leaf).unwrap(), "CN=alice,OU=Test,O=Sluice");
        assert_eq!(peer_principal_dn(&server).unwrap().unwrap(), "CN=alice,OU=Test,O=Sluice");
    }
}

#[test]
fn subject_of_generated_certificates_is_escaped_like_the_jdk() {
    let ca = Ca::new("sluice-test-ca");
    let subject_of = |subject: DistinguishedName| {
        let (pem, _) = ca.issue_client(subject);
        subject_rfc2253(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()).unwrap()
    };
    assert_eq!(subject_of(dn(&[(DnType::CommonName, "Doe, Jane")])), r"CN=Doe\, Jane");
    assert_eq!(subject_of(dn(&[(DnType::CommonName, "a+b")])), r"CN=a\+b");
    assert_eq!(subject_of(dn(&[(DnType::CommonName, "#1")])), r"CN=\#1");
    assert_eq!(subject_of(dn(&[(DnType::CommonName, "alice ")])), r"CN=alice\ ");
    // rcgen writes one attribute per RDN, so multi-valued RDNs are covered by the tests in
    // subject.rs, which build the DER of a name by hand.
    let email_address = DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]);
    let email = DnValue::Ia5String("a@b.c".try_into().unwrap());
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, "Sluice");
    subject.push(email_address, email);
    subject.push(DnType::CommonName, "alice");
    assert_eq!(subject_of(subject), "CN=alice,1.2.840.113549.1.9.1=#16056140622e63,O=Sluice");
}

#[test]
fn subject_of_something_that_is_not_a_certificate_is_an_error() {
    let error = subject_rfc2253(b"not a certificate").unwrap_err();
    assert!(matches!(error, TlsError::Subject { .. }), "{error}");
}

#[test]
fn sec1_private_key_is_accepted() {
    let pki = Pki::new();
    // rcgen writes PKCS#8; its inner ECPrivateKey is the SEC1 encoding (RFC 5915).
    let pkcs8 = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let sec1 = pkcs8_inner_key(pkcs8.secret_der());
    let pem = pem_encode("EC PRIVATE KEY", &sec1);
    pki.write("server.key", &pem);
    let server = load_server_config(&pki.files(false)).unwrap();
    let (mut client, mut server) = connect(client_config(&pki.path("ca.pem"), None, TLS13_ONLY), server);
    handshake(&mut client, &mut server).unwrap();
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_inner_key(pkcs8: &[u8]) -> Vec<u8> {
    use x509_parser::asn1_rs::{Any, FromDer, OctetString, Sequence};
    let (_, info) = Sequence::from_der(pkcs8).unwrap();
    let (rest, _version) = Any::from_der(&info.content).unwrap();
    let (rest, _algorithm) = Any::from_der(rest).unwrap();
    let (_, key) = OctetString::from_der(rest).unwrap();
    key.as_cow().to_vec()
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::new();
    for chunk in der.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, byte)| bits | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                base64.push(ALPHABET[(bits >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let lines = base64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect::<Vec<_>>();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[test]
fn missing_file_is_named_in_the_error() {
    let pki = Pki::new();
    let mut files = pki.files(false);
    files.cert = pki.path("missing.pem");
    let error = load_server_config(&files).unwrap_err();
    assert!(matches!(error, TlsError::Read { .. }), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("cannot read ") && message.contains("missing.pem"), "{message}");
}

#[test]
fn pem_without_certificate_is_named_in_the_error() {
    let pki = Pki::new();
    // A key where the certificate should be.
    let mut files = pki.files(false);
    files.cert = pki.path("server.key");
    let error = load_server_config(&files).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no certificate in {} (expected PEM \"BEGIN CERTIFICATE\" sections)", files.cert.display())
    );
    // The same for the client CA file.
    let mut files = pki.files(false);
    files.client_ca = Some(pki.path("client.key"));
    let error = load_server_config(&files).unwrap_err();
    assert!(matches!(&error, TlsError::NoCertificate { path } if path.ends_with("client.key")), "{error}");
}

#[test]
fn key_file_without_key_is_named_in_the_error() {
    let pki = Pki::new();
    let mut files = pki.files(false);
    files.key = pki.path("server.pem");
    let error = load_server_config(&files).unwrap_err();
    assert!(matches!(&error, TlsError::NoPrivateKey { path } if *path == files.key), "{error}");
    assert!(error.to_string().starts_with(&format!("no private key in {} ", files.key.display())), "{error}");
}

#[test]
fn malformed_pem_is_named_in_the_error() {
    let pki = Pki::new();
    pki.write("server.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
    let error = load_server_config(&pki.files(false)).unwrap_err();
    assert!(matches!(&error, TlsError::Pem { path, .. } if path.ends_with("server.pem")), "{error}");
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let pki = Pki::new();
    let mut files = pki.files(false);
    files.key = pki.path("client.key");
    let error = load_server_config(&files).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("private key in {} does not match the certificate in {}", files.key.display(), files.cert.display())
    );
}

#[test]
fn reload_publishes_new_files_and_keeps_the_old_config_on_error() {
    let pki = Pki::new();
    let reloadable = ReloadableServerConfig::new(pki.files(false)).unwrap();
    let first = reloadable.current();
    let old_ca_client = client_config(&pki.path("ca.pem"), None, TLS13_ONLY);

    // A renewal from a new CA.
    let new_ca = Ca::new("renewed-ca");
    let (server_pem, server_key) = new_ca.issue_server();
    pki.write("server.pem", &server_pem);
    pki.write("server.key", &server_key);
    pki.write("new-ca.pem", &new_ca.pem);
    // Nothing changes before the reload.
    let (mut client, mut server) = connect(old_ca_client.clone(), reloadable.current());
    handshake(&mut client, &mut server).unwrap();

    reloadable.reload().unwrap();
    let second = reloadable.current();
    assert!(!Arc::ptr_eq(&first, &second));
    let new_ca_client = client_config(&pki.path("new-ca.pem"), None, TLS13_ONLY);
    let (mut client, mut server) = connect(new_ca_client.clone(), second.clone());
    handshake(&mut client, &mut server).unwrap();
    let (mut client, mut server) = connect(old_ca_client.clone(), second.clone());
    let error = handshake(&mut client, &mut server).unwrap_err();
    assert_eq!(error, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
    // A connection accepted before the reload keeps the old configuration.
    let (mut client, mut server) = connect(old_ca_client, first);
    handshake(&mut client, &mut server).unwrap();

    // A broken key file: the error names it, and the last good configuration stays.
    pki.write("server.key", "garbage\n");
    let error = reloadable.reload().unwrap_err();
    assert!(matches!(&error, TlsError::NoPrivateKey { path } if path.ends_with("server.key")), "{error}");
    assert!(Arc::ptr_eq(&reloadable.current(), &second));
    let (mut client, mut server) = connect(new_ca_client, reloadable.current());
    handshake(&mut client, &mut server).unwrap();
}

#[test]
fn reloadable_config_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ReloadableServerConfig>();
    assert_send_sync::<TlsError>();
}

fn client_files(pki: &Pki, identity: Option<(&str, &str)>) -> ClientTlsFiles {
    ClientTlsFiles { ca: pki.path("ca.pem"), identity: identity.map(|(cert, key)| (pki.path(cert), pki.path(key))) }
}

#[test]
fn client_config_from_files_completes_a_mutual_handshake_that_names_the_client() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(true)).unwrap();
    let client = load_client_config(&client_files(&pki, Some(("client.pem", "client.key")))).unwrap();
    let (mut client, mut server) = connect_to("127.0.0.1", client, server);
    handshake(&mut client, &mut server).unwrap();
    exchange_data(&mut client, &mut server);
    assert_eq!(peer_principal_dn(&server).unwrap().unwrap(), "CN=alice,OU=Test,O=Sluice");
}

#[test]
fn client_config_without_identity_trusts_only_its_ca() {
    let pki = Pki::new();
    let server = load_server_config(&pki.files(false)).unwrap();
    let (mut client, mut server) = connect(load_client_config(&client_files(&pki, None)).unwrap(), server);
    handshake(&mut client, &mut server).unwrap();
    // A client trusting another CA refuses this server's certificate.
    let other = ClientTlsFiles { ca: pki.path("other-ca.pem"), identity: None };
    let server = load_server_config(&pki.files(false)).unwrap();
    let (mut client, mut server) = connect(load_client_config(&other).unwrap(), server);
    let error = handshake(&mut client, &mut server).unwrap_err();
    assert_eq!(error, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
}

#[test]
fn client_config_names_the_file_at_fault() {
    let pki = Pki::new();
    let error = load_client_config(&ClientTlsFiles { ca: pki.path("client.key"), identity: None }).unwrap_err();
    assert!(matches!(&error, TlsError::NoCertificate { path } if path.ends_with("client.key")), "{error}");
    let error = load_client_config(&client_files(&pki, Some(("client.pem", "server.key")))).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "private key in {} does not match the certificate in {}",
            pki.path("server.key").display(),
            pki.path("client.pem").display()
        )
    );
    let error = load_client_config(&client_files(&pki, Some(("client.pem", "missing.key")))).unwrap_err();
    assert!(matches!(&error, TlsError::Read { path, .. } if path.ends_with("missing.key")), "{error}");
}
