//! How a connection is secured: TLS (Kafka's `SSL`), SASL, both (`SASL_SSL`) or neither
//! (`PLAINTEXT`, the default), and the SASL exchange a connection runs before any other
//! request.
//!
//! The exchange follows librdkafka: ApiVersions first (the broker lets it through before
//! authentication), then SaslHandshake v1 naming the mechanism, then SaslAuthenticate
//! requests carrying the tokens of [`sluice_security::sasl::SaslClient`] until it is done.
//! The client does not re-authenticate (KIP-368): against a broker with
//! `connections.max.reauth.ms` a connection serves until that lifetime ends, which the
//! command-line tools never reach in practice.

use crate::connection::{ClientError, KafkaConnection, Result};
use bytes::Bytes;
use futures_rustls::rustls::ClientConfig;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::sasl::{Mechanism, SaslClient, SaslClientStep};
use std::fmt;
use std::sync::Arc;

/// SaslAuthenticate round trips one exchange may take: PLAIN needs one, SCRAM two; a
/// broker that keeps asking is broken or hostile.
const SASL_ROUND_TRIPS_MAX: usize = 4;

/// How connections to brokers are secured. The default is PLAINTEXT: neither TLS nor SASL.
#[derive(Clone, Default)]
pub struct ConnectionSecurity {
    /// TLS settings (from `sluice_security::tls::load_client_config`); `None` for plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
    /// SASL credentials; `None` for no SASL exchange.
    pub sasl: Option<SaslCredentials>,
}

impl ConnectionSecurity {
    /// Kafka's name for this combination (`security.protocol`).
    pub fn protocol_name(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

impl fmt::Debug for ConnectionSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSecurity")
            .field("protocol", &self.protocol_name())
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

/// Who a connection authenticates as, and how.
#[derive(Clone)]
pub struct SaslCredentials {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: Mechanism,
    /// The user name (principal `User:<username>`).
    pub username: String,
    password: String,
}

impl SaslCredentials {
    /// Credentials for `username` with `password`.
    pub fn new(mechanism: Mechanism, username: impl Into<String>, password: impl Into<String>) -> Self {
        SaslCredentials { mechanism, username: username.into(), password: password.into() }
    }
}

/// Never the password.
impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism.name())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Runs the SASL exchange on a connection that has just negotiated its API versions.
pub(crate) async fn authenticate(connection: &mut KafkaConnection, credentials: &SaslCredentials) -> Result<()> {
    let mechanism = credentials.mechanism;
    let address = connection.address().to_string();
    let operation =
        || format!("SASL {} authentication of user {} to {address}", mechanism.name(), credentials.username);
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism.name()));
    // v0 would make the tokens raw frames; every broker since Kafka 1.0 speaks v1.
    let version = connection.version_for(kafka_protocol::messages::ApiKey::SaslHandshake, 1)?;
    if version < 1 {
        return Err(authentication_error(&address, "the broker speaks only SaslHandshake v0".into()));
    }
    let response = connection.send_at(&handshake, version).await?;
    if response.error_code == ResponseError::UnsupportedSaslMechanism.code() {
        let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        let reason = format!("the broker does not offer {} (it offers {})", mechanism.name(), enabled.join(", "));
        return Err(authentication_error(&address, reason));
    }
    ClientError::check(operation, response.error_code, None)?;
    let (mut client, mut token) = SaslClient::start(mechanism, &credentials.username, &credentials.password);
    for _ in 0..SASL_ROUND_TRIPS_MAX {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = connection.send(&request).await?;
        ClientError::check(operation, response.error_code, response.error_message.as_ref())?;
        match client.step(&response.auth_bytes) {
            Ok(SaslClientStep::Respond(next)) => token = next,
            Ok(SaslClientStep::Complete) => return Ok(()),
            Err(error) => return Err(authentication_error(&address, error.to_string())),
        }
    }
    Err(authentication_error(&address, format!("no result after {SASL_ROUND_TRIPS_MAX} SaslAuthenticate requests")))
}

fn authentication_error(address: &str, reason: String) -> ClientError {
    ClientError::Authentication { address: address.to_string(), reason }
}
