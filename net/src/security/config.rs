//! The broker's security settings: its listeners (Kafka's `listeners` and
//! `advertised.listeners`), TLS, the SASL mechanisms, who is a super user and whether the
//! ACL authorizer decides.

use sluice_security::listeners::SecurityProtocol;
use sluice_security::sasl::Mechanism;
use sluice_security::tls::ReloadableServerConfig;
use std::sync::Arc;
use std::time::Duration;

/// One listener clients connect to. Every shard accepts on every listener (SO_REUSEPORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// What a connection on it must do first: TLS, SASL, both or neither.
    pub protocol: SecurityProtocol,
    /// `host:port` to bind.
    pub bind: String,
    /// Host clients of this listener are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port clients of this listener are told to connect to.
    pub advertised_port: u16,
}

impl ListenerConfig {
    /// A PLAINTEXT listener advertising the address it binds (what `--listen` makes).
    pub fn plaintext(host: &str, port: u16) -> Self {
        ListenerConfig {
            protocol: SecurityProtocol::Plaintext,
            bind: join_host_port(host, port),
            advertised_host: host.to_string(),
            advertised_port: port,
        }
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The TLS settings of each kind of TLS listener. A client CA makes SSL listeners require
/// a client certificate (the principal); SASL_SSL listeners never ask for one, as Kafka's
/// `ssl.client.auth` is usually set per listener: there SASL says who the client is.
#[derive(Clone)]
pub struct TlsConfigs {
    /// For SSL listeners.
    pub ssl: Arc<ReloadableServerConfig>,
    /// For SASL_SSL listeners (the same as `ssl` without a client CA).
    pub sasl_ssl: Arc<ReloadableServerConfig>,
}

impl TlsConfigs {
    /// The settings of a listener of `protocol`.
    pub fn for_protocol(&self, protocol: SecurityProtocol) -> &ReloadableServerConfig {
        match protocol {
            SecurityProtocol::SaslSsl => &self.sasl_ssl,
            _ => &self.ssl,
        }
    }

    /// Re-reads every certificate file; the first failure is returned (the old settings
    /// stay where a reload failed).
    pub fn reload(&self) -> Result<(), sluice_security::tls::TlsError> {
        self.ssl.reload()?;
        if !Arc::ptr_eq(&self.ssl, &self.sasl_ssl) {
            self.sasl_ssl.reload()?;
        }
        Ok(())
    }
}

/// Security settings, the same on every shard.
#[derive(Clone, Default)]
pub struct SecurityConfig {
    /// The server certificate (and client CA) for SSL and SASL_SSL listeners; reloaded on
    /// SIGHUP.
    pub tls: Option<TlsConfigs>,
    /// Mechanisms SASL listeners offer (`sasl.enabled.mechanisms`).
    pub sasl_mechanisms: Vec<Mechanism>,
    /// Principals every check allows (`super.users`).
    pub super_users: Vec<String>,
    /// Whether ACLs decide what a principal may do. Off: everything is allowed, as Kafka
    /// without an authorizer.
    pub authorizer: bool,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
    /// `connections.max.reauth.ms`: SASL sessions last this long and must re-authenticate
    /// on the same connection (KIP-368). `None`: sessions never expire.
    pub max_reauth: Option<Duration>,
    /// `ssl.principal.mapping.rules`: certificate subject → principal name.
    pub principal_mapping: Option<Arc<sluice_security::principal_mapping::SslPrincipalMapper>>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("tls", &self.tls.is_some())
            .field("sasl_mechanisms", &self.sasl_mechanisms)
            .field("super_users", &self.super_users)
            .field("authorizer", &self.authorizer)
            .field("allow_everyone_if_no_acl_found", &self.allow_everyone_if_no_acl_found)
            .field("max_reauth", &self.max_reauth)
            .finish()
    }
}
