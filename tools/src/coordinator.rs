//! Finding the broker that coordinates a consumer group or a transactional id
//! (FindCoordinator), for the tools that talk to coordinators.

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{ClientError, KafkaConnection};

/// FindCoordinator's key type for consumer groups.
pub const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator's key type for transactional ids.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// A connection to the coordinator of `key` when it is not the broker connected to
/// (`None`: that broker coordinates it).
pub async fn connect_to_coordinator(
    connection: &mut KafkaConnection,
    key_type: i8,
    key: &str,
) -> Result<Option<KafkaConnection>, ClientError> {
    let version = connection.version_for(ApiKey::FindCoordinator, 4)?;
    let request = FindCoordinatorRequest::default().with_key_type(key_type);
    let key_bytes = StrBytes::from_string(key.to_string());
    let request =
        if version >= 4 { request.with_coordinator_keys(vec![key_bytes]) } else { request.with_key(key_bytes) };
    let response = connection.send_at(&request, version).await?;
    let (code, message, host, port) = if version >= 4 {
        let found = response.coordinators.first().ok_or_else(|| ClientError::Protocol {
            address: connection.address().to_string(),
            reason: "FindCoordinator answered no coordinator".into(),
        })?;
        (found.error_code, found.error_message.clone(), found.host.to_string(), found.port)
    } else {
        (response.error_code, response.error_message.clone(), response.host.to_string(), response.port)
    };
    ClientError::check(|| format!("find the coordinator of {key}"), code, message.as_ref())?;
    let address = format!("{host}:{port}");
    if address == connection.address() {
        return Ok(None);
    }
    connection.connect_to_another(&address).await.map(Some)
}
