//! The REST API, in the paths, parameters and JSON shapes of Confluent's Schema Registry,
//! so its clients and serializers work unchanged. Every answer, errors included, is
//! `application/vnd.schemaregistry.v1+json`.

use crate::compatibility::CompatibilityLevel;
use crate::error::{RegistryError, CONTENT_TYPE};
use crate::schema::{Reference, SchemaType};
use crate::service::{NewSchema, Registry, SubjectVersion, VersionSelector};
use crate::state::{Mode, StoredSchema};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest request body read; a larger one is refused (413) unread.
pub const BODY_BYTES_MAX: usize = 4 << 20;

type Shared = State<Arc<Registry>>;
type Params = Query<HashMap<String, String>>;
type Answer = Result<Response, RegistryError>;

/// The registry's routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(list_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(referenced_by))
        .route("/schemas", get(list_schemas))
        .route("/schemas/types", get(|| async { reply(json!(SchemaType::SUPPORTED)) }))
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/schemas/ids/{id}/schema", get(get_schema_text))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/compatibility/subjects/{subject}/versions", post(compatibility_with_level))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility_with_version))
        .route("/config", get(get_config).put(put_config).delete(delete_config))
        .route("/config/{subject}", get(get_config).put(put_config).delete(delete_config))
        .route("/mode", get(get_mode).put(put_mode).delete(delete_mode))
        .route("/mode/{subject}", get(get_mode).put(put_mode).delete(delete_mode))
        .route("/contexts", get(|| async { reply(json!(["."])) }))
        .fallback(|| async { RegistryError::unknown_path() })
        .layer(axum::middleware::map_response(confluent_errors))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(registry)
}

/// Refusals made before a handler runs (a path or query that does not parse, a method
/// the path does not take) come from axum as plain text: they get Confluent's shape too.
async fn confluent_errors(response: Response) -> Response {
    let status = response.status();
    let ours = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == CONTENT_TYPE);
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let message = if text.trim().is_empty() {
        format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
    } else {
        text.into_owned()
    };
    RegistryError { status: status.as_u16(), code: i32::from(status.as_u16()), message }.into_response()
}

fn reply(value: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// A request body as JSON: 413 past the cap, 400 when it is not JSON of the right shape.
fn body<T: for<'de> Deserialize<'de>>(body: Result<Bytes, BytesRejection>) -> Result<T, RegistryError> {
    let bytes = body.map_err(|rejection| RegistryError {
        status: rejection.status().as_u16(),
        code: i32::from(rejection.status().as_u16()),
        message: rejection.body_text(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::bad_request(format!("Unprocessable request body: {e}")))
}

/// The body of a registration, lookup or compatibility check. Unknown fields and nulls
/// (`"metadata": null, "ruleSet": null` from newer clients) are accepted.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<Reference>>,
    id: Option<i32>,
    version: Option<i32>,
}

impl SchemaBody {
    fn into_new(self) -> Result<NewSchema, RegistryError> {
        let schema_type = match self.schema_type.as_deref() {
            None => SchemaType::Avro,
            Some(name) => SchemaType::from_name(name)
                .ok_or_else(|| RegistryError::invalid_schema(format!("Invalid schema type {name}")))?,
        };
        Ok(NewSchema {
            schema: self.schema.ok_or_else(|| RegistryError::invalid_schema("Empty schema"))?,
            schema_type,
            references: self.references.unwrap_or_default(),
            id: self.id,
            version: self.version,
        })
    }
}

/// A schema's fields as Confluent writes them: `schemaType` only when not Avro,
/// `references` only when there are some.
fn schema_fields(stored: &StoredSchema, into: &mut serde_json::Map<String, Value>) {
    if stored.schema_type != SchemaType::Avro {
        into.insert("schemaType".into(), json!(stored.schema_type.name()));
    }
    if !stored.references.is_empty() {
        into.insert("references".into(), json!(stored.references));
    }
    into.insert("schema".into(), json!(stored.schema));
}

fn version_json(found: &SubjectVersion) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("subject".into(), json!(found.subject));
    fields.insert("version".into(), json!(found.version));
    fields.insert("id".into(), json!(found.id));
    schema_fields(&found.schema, &mut fields);
    if found.deleted {
        fields.insert("deleted".into(), json!(true));
    }
    Value::Object(fields)
}

async fn list_subjects(State(registry): Shared, Query(params): Params) -> Answer {
    let state = registry.state();
    let prefix = params.get("subjectPrefix").map(String::as_str).unwrap_or("");
    let subjects: Vec<&str> =
        state.subjects(flag(&params, "deleted")).into_iter().filter(|s| s.starts_with(prefix)).collect();
    Ok(reply(json!(subjects)))
}

async fn list_versions(State(registry): Shared, Path(subject): Path<String>, Query(params): Params) -> Answer {
    let state = registry.state();
    let versions =
        state.versions(&subject, flag(&params, "deleted")).ok_or_else(|| RegistryError::subject_not_found(&subject))?;
    Ok(reply(json!(versions.iter().map(|(number, _)| number).collect::<Vec<_>>())))
}

async fn register(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    request: Result<Bytes, BytesRejection>,
) -> Answer {
    let new = body::<SchemaBody>(request)?.into_new()?;
    let (id, _version) = registry.register(&subject, new, flag(&params, "normalize")).await?;
    Ok(reply(json!({ "id": id })))
}

async fn lookup(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    request: Result<Bytes, BytesRejection>,
) -> Answer {
    let new = body::<SchemaBody>(request)?.into_new()?;
    let found = registry.lookup(&subject, &new, flag(&params, "normalize"), flag(&params, "deleted"))?;
    Ok(reply(version_json(&found)))
}

async fn get_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let selector = VersionSelector::parse(&version)?;
    let mut found = registry.version(&subject, selector, flag(&params, "deleted"))?;
    found.schema.schema = registry.formatted(&found.schema, params.get("format").map(String::as_str))?;
    Ok(reply(version_json(&found)))
}

async fn get_version_schema(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let selector = VersionSelector::parse(&version)?;
    let found = registry.version(&subject, selector, flag(&params, "deleted"))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], found.schema.schema).into_response())
}

async fn referenced_by(State(registry): Shared, Path((subject, version)): Path<(String, String)>) -> Answer {
    let selector = VersionSelector::parse(&version)?;
    let found = registry.version(&subject, selector, false)?;
    Ok(reply(json!(registry.state().referenced_by(&subject, found.version))))
}

async fn delete_subject(State(registry): Shared, Path(subject): Path<String>, Query(params): Params) -> Answer {
    let versions = registry.delete_subject(&subject, flag(&params, "permanent")).await?;
    Ok(reply(json!(versions)))
}

async fn delete_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let selector = VersionSelector::parse(&version)?;
    Ok(reply(json!(registry.delete_version(&subject, selector, flag(&params, "permanent")).await?)))
}

fn parse_id(id: &str) -> Result<i32, RegistryError> {
    id.parse().map_err(|_| RegistryError::schema_not_found(format!("Schema {id} not found")))
}

fn schema_by_id(registry: &Registry, id: &str, subject: Option<&String>) -> Result<StoredSchema, RegistryError> {
    let id = parse_id(id)?;
    let state = registry.state();
    let stored = state.schema(id).ok_or_else(|| RegistryError::schema_not_found(format!("Schema {id} not found")))?;
    if let Some(subject) = subject {
        if !state.uses_of(id, true).iter().any(|(s, _)| s == subject) {
            return Err(RegistryError::schema_not_found(format!("Schema {id} not found under subject {subject}")));
        }
    }
    Ok(stored.clone())
}

async fn get_schema(State(registry): Shared, Path(id): Path<String>, Query(params): Params) -> Answer {
    let mut stored = schema_by_id(&registry, &id, params.get("subject"))?;
    stored.schema = registry.formatted(&stored, params.get("format").map(String::as_str))?;
    let mut fields = serde_json::Map::new();
    schema_fields(&stored, &mut fields);
    Ok(reply(Value::Object(fields)))
}

async fn get_schema_text(State(registry): Shared, Path(id): Path<String>, Query(params): Params) -> Answer {
    let stored = schema_by_id(&registry, &id, params.get("subject"))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], stored.schema).into_response())
}

async fn id_subjects(State(registry): Shared, Path(id): Path<String>, Query(params): Params) -> Answer {
    let id = parse_id(&id)?;
    let state = registry.state();
    state.schema(id).ok_or_else(|| RegistryError::schema_not_found(format!("Schema {id} not found")))?;
    let mut subjects: Vec<&str> = state.uses_of(id, flag(&params, "deleted")).into_iter().map(|(s, _)| s).collect();
    subjects.dedup();
    Ok(reply(json!(subjects)))
}

async fn id_versions(State(registry): Shared, Path(id): Path<String>, Query(params): Params) -> Answer {
    let id = parse_id(&id)?;
    let state = registry.state();
    state.schema(id).ok_or_else(|| RegistryError::schema_not_found(format!("Schema {id} not found")))?;
    let uses = state.uses_of(id, flag(&params, "deleted"));
    Ok(reply(json!(uses.iter().map(|(s, v)| json!({"subject": s, "version": v})).collect::<Vec<_>>())))
}

async fn list_schemas(State(registry): Shared, Query(params): Params) -> Answer {
    let deleted = flag(&params, "deleted");
    let latest_only = flag(&params, "latestOnly");
    let prefix = params.get("subjectPrefix").map(String::as_str).unwrap_or("");
    let state = registry.state();
    let mut listed = Vec::new();
    for subject in state.subjects(deleted).into_iter().filter(|s| s.starts_with(prefix)) {
        let versions = state.versions(subject, deleted).unwrap_or_default();
        let shown = if latest_only { &versions[versions.len().saturating_sub(1)..] } else { &versions[..] };
        for (number, version) in shown {
            if let Some(stored) = state.schema(version.id) {
                let found = SubjectVersion {
                    subject: subject.to_string(),
                    version: *number,
                    id: version.id,
                    schema: stored.clone(),
                    deleted: version.deleted,
                };
                listed.push(version_json(&found));
            }
        }
    }
    Ok(reply(Value::Array(listed)))
}

fn compatibility_answer(problems: Vec<String>, verbose: bool) -> Response {
    if verbose {
        reply(json!({ "is_compatible": problems.is_empty(), "messages": problems }))
    } else {
        reply(json!({ "is_compatible": problems.is_empty() }))
    }
}

async fn compatibility_with_level(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    request: Result<Bytes, BytesRejection>,
) -> Answer {
    let new = body::<SchemaBody>(request)?.into_new()?;
    // `normalize` is accepted and needs nothing: compatibility is decided on the parsed
    // schema, however it is written.
    let problems = registry.check_compatibility(&subject, None, &new)?;
    Ok(compatibility_answer(problems, flag(&params, "verbose")))
}

async fn compatibility_with_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    request: Result<Bytes, BytesRejection>,
) -> Answer {
    let selector = VersionSelector::parse(&version)?;
    let new = body::<SchemaBody>(request)?.into_new()?;
    let problems = registry.check_compatibility(&subject, Some(selector), &new)?;
    Ok(compatibility_answer(problems, flag(&params, "verbose")))
}

#[derive(Debug, Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
}

fn config_level(request: Result<Bytes, BytesRejection>) -> Result<CompatibilityLevel, RegistryError> {
    let name = body::<ConfigBody>(request)?.compatibility.unwrap_or_default();
    CompatibilityLevel::from_name(&name).ok_or_else(|| RegistryError::invalid_compatibility_level(&name))
}

/// The subject of `/config/{subject}` and `/mode/{subject}`; `None` on `/config` and `/mode`.
type MaybeSubject = Option<Path<String>>;

async fn get_config(State(registry): Shared, subject: MaybeSubject, Query(params): Params) -> Answer {
    let state = registry.state();
    let level = match subject {
        None => state.config(None).unwrap_or(CompatibilityLevel::DEFAULT),
        Some(Path(subject)) => match state.config(Some(&subject)) {
            Some(level) => level,
            None if flag(&params, "defaultToGlobal") => state.effective_config(&subject),
            None => return Err(RegistryError::config_not_found(&subject)),
        },
    };
    Ok(reply(json!({ "compatibilityLevel": level.name() })))
}

async fn put_config(State(registry): Shared, subject: MaybeSubject, request: Result<Bytes, BytesRejection>) -> Answer {
    let level = config_level(request)?;
    registry.set_config(subject.as_ref().map(|Path(s)| s.as_str()), level).await?;
    Ok(reply(json!({ "compatibility": level.name() })))
}

async fn delete_config(State(registry): Shared, subject: MaybeSubject) -> Answer {
    let previous = registry.delete_config(subject.as_ref().map(|Path(s)| s.as_str())).await?;
    Ok(reply(json!({ "compatibilityLevel": previous.name() })))
}

#[derive(Debug, Deserialize)]
struct ModeBody {
    mode: Option<String>,
}

fn mode_of(request: Result<Bytes, BytesRejection>) -> Result<Mode, RegistryError> {
    let name = body::<ModeBody>(request)?.mode.unwrap_or_default();
    Mode::from_name(&name).ok_or_else(|| RegistryError::invalid_mode(&name))
}

async fn get_mode(State(registry): Shared, subject: MaybeSubject, Query(params): Params) -> Answer {
    let state = registry.state();
    let mode = match subject {
        None => state.mode(None).unwrap_or(Mode::ReadWrite),
        Some(Path(subject)) => match state.mode(Some(&subject)) {
            Some(mode) => mode,
            None if flag(&params, "defaultToGlobal") => state.effective_mode(&subject),
            None => return Err(RegistryError::mode_not_found(&subject)),
        },
    };
    Ok(reply(json!({ "mode": mode.name() })))
}

async fn put_mode(
    State(registry): Shared,
    subject: MaybeSubject,
    Query(params): Params,
    request: Result<Bytes, BytesRejection>,
) -> Answer {
    let mode = mode_of(request)?;
    registry.set_mode(subject.as_ref().map(|Path(s)| s.as_str()), mode, flag(&params, "force")).await?;
    Ok(reply(json!({ "mode": mode.name() })))
}

async fn delete_mode(State(registry): Shared, subject: MaybeSubject) -> Answer {
    let previous = registry.delete_mode(subject.as_ref().map(|Path(s)| s.as_str())).await?;
    Ok(reply(json!({ "mode": previous.name() })))
}
