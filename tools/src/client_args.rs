//! What the client subcommands (`topic`, `produce`, `consume`, `group`, `user`, `acl`, ...)
//! share: the broker address, how connections are secured (TLS, SASL), and a glommio
//! executor to run the client on.

use sluice_client::{ConnectionSecurity, KafkaConnection, SaslCredentials};
use sluice_security::listeners::SecurityProtocol;
use sluice_security::sasl::Mechanism;
use sluice_security::tls::{load_client_config, ClientTlsFiles};
use std::future::Future;
use std::path::{Path, PathBuf};

/// Where the SASL password comes from when no `--sasl-password-file` is given. There is no
/// password flag: a flag's value shows in the process list and the shell's history.
const PASSWORD_ENV: &str = "SLUICE_SASL_PASSWORD";

/// A password file larger than this is a wrong path, not a password.
const PASSWORD_FILE_BYTES_MAX: u64 = 64 << 10;

/// Where the broker is and how to reach it (Kafka's `bootstrap.servers`,
/// `security.protocol`, `sasl.*` and `ssl.*` client settings).
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Broker to talk to, HOST:PORT; a comma-separated list is tried in order until one
    /// answers (the bootstrap list of a cluster).
    #[arg(short = 'b', long = "brokers", default_value = "127.0.0.1:9092", env = "SLUICE_BROKERS", global = true)]
    pub brokers: String,
    /// How connections to it are secured.
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// How connections to brokers are secured (Kafka's `security.protocol`, `sasl.*` and
/// `ssl.*` client settings); shared by the client commands and the load generator.
#[derive(clap::Args, Debug, Clone)]
pub struct SecurityArgs {
    /// How connections are secured: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, as the
    /// broker's listener at that address expects.
    #[arg(long, default_value = "PLAINTEXT", env = "SLUICE_SECURITY_PROTOCOL", global = true)]
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols).
    #[arg(long, env = "SLUICE_SASL_MECHANISM", global = true, value_parser = parse_mechanism)]
    pub sasl_mechanism: Option<Mechanism>,
    /// SASL user name (SASL_* protocols). The password comes from the SLUICE_SASL_PASSWORD
    /// environment variable or from --sasl-password-file.
    #[arg(long, env = "SLUICE_SASL_USERNAME", global = true)]
    pub sasl_username: Option<String>,
    /// A file holding the SASL password (its first line); takes precedence over
    /// SLUICE_SASL_PASSWORD.
    #[arg(long, value_name = "FILE", global = true)]
    pub sasl_password_file: Option<PathBuf>,
    /// PEM file of the CA certificates that the broker's certificate must chain to (SSL,
    /// SASL_SSL); the broker's certificate must also name the host of --brokers.
    #[arg(long, value_name = "FILE", env = "SLUICE_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of the client certificate chain to present, for listeners that require
    /// one (mutual TLS); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "SLUICE_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (unencrypted); needs --tls-cert.
    #[arg(long, value_name = "FILE", env = "SLUICE_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

pub(crate) fn parse_mechanism(name: &str) -> Result<Mechanism, String> {
    Mechanism::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
        format!("unknown SASL mechanism {name:?}: expected one of {}", names.join(", "))
    })
}

impl BrokerArgs {
    /// Opens a connection to the first broker of the list that answers, secured as the
    /// flags say. Other brokers (coordinators, leaders) are reached with
    /// [`KafkaConnection::connect_to_another`], which keeps the same settings.
    pub async fn connect(&self) -> Result<KafkaConnection, String> {
        let security = self.security.connection_security()?;
        let mut last_error = None;
        for address in self.brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match KafkaConnection::connect_with_security(address, "sluice-cli", &security).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error.to_string()),
            }
        }
        Err(last_error.unwrap_or_else(|| "--brokers names no broker".into()))
    }
}

impl SecurityArgs {
    /// The connection settings the flags describe; refuses flags that the protocol would
    /// ignore, since a forgotten `--security-protocol` would otherwise fail much later and
    /// less clearly.
    pub fn connection_security(&self) -> Result<ConnectionSecurity, String> {
        self.security_with(std::env::var(PASSWORD_ENV).ok())
    }

    fn security_with(&self, password_env: Option<String>) -> Result<ConnectionSecurity, String> {
        let protocol = self.security_protocol;
        let tls = if protocol.uses_tls() {
            let ca = self.tls_ca.clone().ok_or_else(|| {
                format!(
                    "--security-protocol {protocol} needs --tls-ca FILE (the CA that signed the broker's certificate)"
                )
            })?;
            let identity = self.tls_cert.clone().zip(self.tls_key.clone());
            Some(load_client_config(&ClientTlsFiles { ca, identity }).map_err(|e| e.to_string())?)
        } else {
            if let Some(flag) = first_given(&[
                ("--tls-ca", self.tls_ca.is_some()),
                ("--tls-cert", self.tls_cert.is_some()),
                ("--tls-key", self.tls_key.is_some()),
            ]) {
                return Err(format!(
                    "{flag} is given, but --security-protocol {protocol} has no TLS (use SSL or SASL_SSL)"
                ));
            }
            None
        };
        let sasl = if protocol.uses_sasl() {
            let mechanism = self.sasl_mechanism.ok_or_else(|| {
                format!("--security-protocol {protocol} needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
            })?;
            let username = self
                .sasl_username
                .clone()
                .ok_or_else(|| format!("--security-protocol {protocol} needs --sasl-username NAME"))?;
            let password = match &self.sasl_password_file {
                Some(path) => read_password_file(path)?,
                None => password_env.ok_or_else(|| {
                    format!(
                        "--security-protocol {protocol} needs a password: set {PASSWORD_ENV} or give \
                         --sasl-password-file FILE"
                    )
                })?,
            };
            Some(SaslCredentials::new(mechanism, username, password))
        } else {
            if let Some(flag) = first_given(&[
                ("--sasl-mechanism", self.sasl_mechanism.is_some()),
                ("--sasl-username", self.sasl_username.is_some()),
                ("--sasl-password-file", self.sasl_password_file.is_some()),
            ]) {
                return Err(format!(
                    "{flag} is given, but --security-protocol {protocol} has no SASL (use SASL_PLAINTEXT or SASL_SSL)"
                ));
            }
            None
        };
        Ok(ConnectionSecurity { tls, sasl })
    }
}

/// The first of `flags` (its name, whether it was given) that was given: flags the chosen
/// protocol would ignore are refused by name.
pub(crate) fn first_given(flags: &[(&'static str, bool)]) -> Option<&'static str> {
    flags.iter().find_map(|(flag, given)| given.then_some(*flag))
}

/// The first line of a password file, without its line ending.
pub(crate) fn read_password_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let error = |why: String| format!("cannot read the SASL password from {}: {why}", path.display());
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut text = String::new();
    file.take(PASSWORD_FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(|e| error(e.to_string()))?;
    if text.len() as u64 > PASSWORD_FILE_BYTES_MAX {
        return Err(error(format!("larger than {PASSWORD_FILE_BYTES_MAX} bytes")));
    }
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(error("its first line is empty".into()));
    }
    Ok(password.to_owned())
}

/// Runs a client command on a single unpinned glommio executor (the client is
/// glommio-native, like the broker; a command needs no more than one core).
pub fn run_client<F, Fut>(command: F) -> Result<(), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("sluice-client")
        .io_memory(512 << 10)
        .spawn(command)
        .map_err(|e| format!("cannot start the client executor: {e}"))?
        .join()
        .map_err(|e| format!("client executor failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        brokers: BrokerArgs,
    }

    fn args(flags: &[&str]) -> BrokerArgs {
        Cli::try_parse_from(std::iter::once("sluice").chain(flags.iter().copied())).unwrap().brokers
    }

    #[test]
    fn plaintext_is_the_default_and_needs_nothing() {
        let security = args(&[]).security.security_with(None).unwrap();
        assert_eq!(security.protocol_name(), "PLAINTEXT");
    }

    #[test]
    fn sasl_needs_a_mechanism_a_user_and_a_password() {
        let base = ["--security-protocol", "sasl_plaintext"];
        let error = args(&base).security.security_with(None).unwrap_err();
        assert!(error.contains("--sasl-mechanism"), "{error}");
        let error = args(&[&base[..], &["--sasl-mechanism", "SCRAM-SHA-512"]].concat())
            .security
            .security_with(None)
            .unwrap_err();
        assert!(error.contains("--sasl-username"), "{error}");
        let full = [&base[..], &["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "admin"]].concat();
        let error = args(&full).security.security_with(None).unwrap_err();
        assert!(error.contains(PASSWORD_ENV) && error.contains("--sasl-password-file"), "{error}");
        let security = args(&full).security.security_with(Some("secret".into())).unwrap();
        assert_eq!(security.protocol_name(), "SASL_PLAINTEXT");
        let sasl = security.sasl.unwrap();
        assert_eq!((sasl.mechanism, sasl.username.as_str()), (Mechanism::ScramSha512, "admin"));
        assert!(!format!("{sasl:?}").contains("secret"), "Debug shows no password");
    }

    #[test]
    fn the_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-file\r\nignored\n").unwrap();
        let flags = [
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "PLAIN",
            "--sasl-username",
            "admin",
            "--sasl-password-file",
            path.to_str().unwrap(),
        ];
        assert_eq!(read_password_file(&path).unwrap(), "from-file");
        // No environment variable needed when the file is given.
        assert!(args(&flags).security.security_with(None).unwrap().sasl.is_some());
        std::fs::write(&path, "\n").unwrap();
        assert!(args(&flags).security.security_with(None).unwrap_err().contains("first line is empty"));
    }

    #[test]
    fn flags_the_protocol_would_ignore_are_refused() {
        let error = args(&["--sasl-username", "admin"]).security.security_with(None).unwrap_err();
        assert!(error.contains("--sasl-username is given") && error.contains("PLAINTEXT"), "{error}");
        let error = args(&["--tls-ca", "ca.pem"]).security.security_with(None).unwrap_err();
        assert!(error.contains("--tls-ca is given"), "{error}");
        let error = args(&["--security-protocol", "SSL"]).security.security_with(None).unwrap_err();
        assert!(error.contains("--tls-ca FILE"), "{error}");
    }

    #[test]
    fn unknown_protocols_and_mechanisms_are_parse_errors() {
        let parse = |flags: &[&str]| Cli::try_parse_from(std::iter::once("sluice").chain(flags.iter().copied()));
        assert!(parse(&["--security-protocol", "TLS"]).is_err());
        let error = parse(&["--sasl-mechanism", "GSSAPI"]).err().unwrap().to_string();
        assert!(error.contains("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"), "{error}");
        assert!(parse(&["--tls-cert", "a.pem"]).is_err(), "--tls-cert needs --tls-key");
    }
}
