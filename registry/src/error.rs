//! Errors as Confluent's Schema Registry reports them: an HTTP status and a body
//! `{"error_code": N, "message": "..."}`, where N refines the status (40401 subject not
//! found, 42201 invalid schema, ...). Clients branch on `error_code`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error {code})")]
pub struct RegistryError {
    /// The HTTP status.
    pub status: u16,
    /// Confluent's error code.
    pub code: i32,
    /// What went wrong, for people.
    pub message: String,
}

impl RegistryError {
    fn new(status: u16, code: i32, message: impl Into<String>) -> Self {
        RegistryError { status, code, message: message.into() }
    }

    /// 40401.
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    /// 40402.
    pub fn version_not_found(version: impl std::fmt::Display) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    /// 40403.
    pub fn schema_not_found(what: impl Into<String>) -> Self {
        Self::new(404, 40403, what)
    }

    /// 40404: the subject was soft-deleted (and a soft delete was asked again).
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(404, 40404, format!("Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"))
    }

    /// 40405: a permanent delete of a subject that was not soft-deleted first.
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(404, 40405, format!("Subject '{subject}' was not deleted first before being permanently deleted"))
    }

    /// 40406: the version was soft-deleted (and a soft delete was asked again).
    pub fn version_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            404,
            40406,
            format!("Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"),
        )
    }

    /// 40407: a permanent delete of a version that was not soft-deleted first.
    pub fn version_not_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            404,
            40407,
            format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
        )
    }

    /// 40408.
    pub fn config_not_found(subject: &str) -> Self {
        Self::new(404, 40408, format!("Subject '{subject}' does not have subject-level compatibility configured"))
    }

    /// 40409.
    pub fn mode_not_found(subject: &str) -> Self {
        Self::new(404, 40409, format!("Subject '{subject}' does not have subject-level mode configured"))
    }

    /// 409: incompatible with earlier versions.
    pub fn incompatible(subject: &str, problems: &[String]) -> Self {
        Self::new(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                problems.join("; ")
            ),
        )
    }

    /// 42201.
    pub fn invalid_schema(why: impl Into<String>) -> Self {
        Self::new(422, 42201, why)
    }

    /// 42202.
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            422,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 42203.
    pub fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            422,
            42203,
            format!(
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive (got {level})"
            ),
        )
    }

    /// 42204.
    pub fn invalid_mode(mode: &str) -> Self {
        Self::new(
            422,
            42204,
            format!("Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT (got {mode})"),
        )
    }

    /// 42205.
    pub fn operation_not_permitted(why: impl Into<String>) -> Self {
        Self::new(422, 42205, why)
    }

    /// 42206: the version is referenced by other schemas.
    pub fn reference_exists(why: impl Into<String>) -> Self {
        Self::new(422, 42206, why)
    }

    /// 42207: an import names an id that holds another schema.
    pub fn id_does_not_match(why: impl Into<String>) -> Self {
        Self::new(422, 42207, why)
    }

    /// 42208.
    pub fn invalid_subject(subject: &str) -> Self {
        Self::new(422, 42208, format!("The specified subject '{subject}' is not a valid subject name"))
    }

    /// 400 with a reason: the request itself is malformed (body not JSON, bad parameter).
    pub fn bad_request(why: impl Into<String>) -> Self {
        Self::new(400, 400, why)
    }

    /// 404 for a path this registry does not serve.
    pub fn unknown_path() -> Self {
        Self::new(404, 404, "HTTP 404 Not Found")
    }

    /// 50001: the registry's topic could not be read or written.
    pub fn store(why: impl Into<String>) -> Self {
        Self::new(500, 50001, format!("Error in the backend data store: {}", why.into()))
    }

    /// 50002: a write did not become visible in time.
    pub fn timeout(why: impl Into<String>) -> Self {
        Self::new(500, 50002, format!("Operation timed out: {}", why.into()))
    }

    /// 50004: this broker cannot make the write here (it does not lead `_schemas`).
    pub fn not_the_writer(why: impl Into<String>) -> Self {
        Self::new(500, 50004, why)
    }
}

/// The registry's content type, on every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "error_code": self.code, "message": self.message }).to_string();
        (status, [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}
