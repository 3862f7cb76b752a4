//! How a SASL exchange fails: one text for the client, another for the broker's log.

use super::ScramMechanism;

/// A failed SASL step; the exchange is over. Kafka answers with SASL_AUTHENTICATION_FAILED
/// carrying `client_message`, then closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct SaslError {
    /// What SaslAuthenticate's `error_message` carries, worded as Kafka words it. Never says
    /// whether a SCRAM user exists.
    pub client_message: String,
    /// What went wrong, for the broker's log.
    pub detail: String,
}

impl SaslError {
    pub(crate) fn new(client_message: impl Into<String>, detail: impl Into<String>) -> Self {
        SaslError { client_message: client_message.into(), detail: detail.into() }
    }

    /// A failure the client may know all about (a malformed message, a refused option).
    pub(crate) fn visible(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(message.clone(), message)
    }

    /// Unknown user, wrong proof and the like in SCRAM: Kafka replaces every such
    /// `SaslException` with this fixed text, so the reply does not tell them apart.
    pub(crate) fn scram_invalid_credentials(mechanism: ScramMechanism, detail: impl Into<String>) -> Self {
        Self::new(
            format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                mechanism.name()
            ),
            detail,
        )
    }
}
