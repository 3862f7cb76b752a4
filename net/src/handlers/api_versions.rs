//! ApiVersions: the APIs and version ranges served (KIP-511 fallback included).

use super::SUPPORTED_APIS;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::ResponseError;

fn ranges() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max)
        })
        .collect()
}

/// Answers a served ApiVersions version.
pub fn handle(_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(ranges())
}

/// The answer to an ApiVersions version we do not serve: v0 layout, UNSUPPORTED_VERSION,
/// and our ranges, so the client retries with a version we do.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    handle(0).with_error_code(ResponseError::UnsupportedVersion.code())
}
