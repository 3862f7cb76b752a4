//! The registry's operations, between the REST API and the topic: reads answer from the
//! applied [`State`]; writes are checked against it, written to `_schemas` one at a time
//! (so ids and versions are handed out once), and answered once the registry has read
//! its own write back.

use crate::compatibility::CompatibilityLevel;
use crate::error::RegistryError;
use crate::records::{ConfigValue, ModeValue, Record, SchemaValue};
use crate::schema::{ParsedSchema, Reference, Resolved, SchemaType};
use crate::state::{Mode, State, StoredSchema, Version};
use crate::store::{StoreClient, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// How long a read of the topic waits for a new record before asking again.
const FOLLOW_WAIT: Duration = Duration::from_millis(500);
/// Pause after the topic could not be read (not created yet, no leader).
const FOLLOW_RETRY: Duration = Duration::from_millis(100);
/// How long a write may take to be read back; and how long a write waits to be current.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries at a registration whose write another broker's registry beat.
const WRITE_ATTEMPTS: u32 = 20;
/// The longest pause after a lost try grows by this much per try (the pause is drawn at
/// random below it, so two writers that keep colliding fall out of step).
const LOST_WRITE_BACKOFF: Duration = Duration::from_millis(20);
/// Longest subject name accepted.
const SUBJECT_BYTES_MAX: usize = 4096;

/// A schema as a registration or lookup sends it.
#[derive(Debug, Clone, Default)]
pub struct NewSchema {
    /// The schema text.
    pub schema: String,
    /// Its type.
    pub schema_type: SchemaType,
    /// Its references.
    pub references: Vec<Reference>,
    /// IMPORT mode: the id to register it under.
    pub id: Option<i32>,
    /// IMPORT mode: the version to register it as.
    pub version: Option<i32>,
}

/// A subject's version, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: i32,
    /// The schema's id.
    pub id: i32,
    /// The schema.
    pub schema: StoredSchema,
    /// Soft-deleted.
    pub deleted: bool,
}

/// What a registration comes to.
enum Registration {
    /// The subject has the schema already: its id and version.
    Existing(i32, i32),
    /// Write this record, which gives the schema this id and version.
    Write(Record, i32, i32),
}

/// Which version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    /// The newest one (`latest` or -1).
    Latest,
    /// A number from 1.
    Number(i32),
}

impl VersionSelector {
    /// Parses a path's version: `latest`, -1, or 1 to 2^31-1; otherwise 42202.
    pub fn parse(text: &str) -> Result<VersionSelector, RegistryError> {
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSelector::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionSelector::Latest),
            Ok(number) if number >= 1 => Ok(VersionSelector::Number(number)),
            _ => Err(RegistryError::invalid_version(text)),
        }
    }
}

/// The registry: its state, its writer's turn, and its way to the topic.
pub struct Registry {
    state: RwLock<State>,
    /// The offset the state has applied up to (the next one to read).
    applied: watch::Sender<i64>,
    store: StoreClient,
    /// Writes go one at a time: each is checked against a state that has every earlier one.
    writer: Mutex<()>,
    /// Stored schemas' normal forms (`None`: it no longer parses), so that finding a
    /// schema among a subject's versions parses each version once, not on every request.
    normal_forms: std::sync::Mutex<HashMap<StoredSchema, Option<String>>>,
}

impl Registry {
    /// A registry on `store`; [`Registry::follow`] must run for it to learn anything.
    pub fn new(store: StoreClient) -> Arc<Registry> {
        Arc::new(Registry {
            state: RwLock::new(State::default()),
            applied: watch::Sender::new(0),
            store,
            writer: Mutex::new(()),
            normal_forms: Default::default(),
        })
    }

    /// Reads the topic from the start and applies each record, for as long as the broker
    /// answers. A record that cannot be decoded or applied is logged with its offset and
    /// skipped: the records around it still count.
    pub async fn follow(self: Arc<Self>) {
        let mut from = 0;
        loop {
            match self.store.read(from, FOLLOW_WAIT).await {
                Ok(read) => {
                    {
                        let mut state = self.state.write().expect("no panics while the state is written");
                        for record in read.records {
                            let applied = Record::decode(record.key.as_deref(), record.value.as_deref())
                                .and_then(|decoded| state.apply(decoded));
                            if let Err(error) = applied {
                                tracing::warn!(topic = crate::store::TOPIC, offset = record.offset, %error,
                                    "skipping a record the registry cannot use");
                            }
                        }
                    }
                    from = read.next;
                    self.applied.send_replace(from);
                }
                Err(StoreError::Closed) => return,
                Err(StoreError::Failed(error)) => {
                    tracing::debug!(%error, "cannot read the registry's topic yet");
                    tokio::time::sleep(FOLLOW_RETRY).await;
                }
            }
        }
    }

    /// The applied state, for reading.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("no panics while the state is written")
    }

    async fn wait_applied(&self, offset: i64) -> Result<(), RegistryError> {
        let mut applied = self.applied.subscribe();
        let reached =
            tokio::time::timeout(WRITE_TIMEOUT, applied.wait_for(|at| *at >= offset)).await.map(|r| r.is_ok());
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistryError::store("the registry stopped reading its topic")),
            Err(_) => Err(RegistryError::timeout(format!("the registry's topic was not read up to offset {offset}"))),
        }
    }

    /// Waits until the state has every write committed so far (another broker's too).
    async fn catch_up(&self) -> Result<(), RegistryError> {
        let end = self.store.end().await.map_err(store_error)?;
        self.wait_applied(end).await
    }

    async fn write(&self, records: Vec<Record>) -> Result<(), RegistryError> {
        let encoded = records.iter().map(Record::encode).collect();
        let end = self.store.append(encoded).await.map_err(store_error)?;
        self.wait_applied(end).await
    }

    /// Registers a schema under a subject: the existing id and version if the subject
    /// has it already; otherwise checked against the subject's compatibility level and
    /// written, with the schema's id if another subject has the same schema.
    pub async fn register(&self, subject: &str, new: NewSchema, normalize: bool) -> Result<(i32, i32), RegistryError> {
        check_subject(subject)?;
        let _turn = self.writer.lock().await;
        for attempt in 1..=WRITE_ATTEMPTS {
            self.catch_up().await?;
            let (record, id, version) = match self.decide_registration(subject, &new, normalize)? {
                Registration::Existing(id, version) => return Ok((id, version)),
                Registration::Write(record, id, version) => (record, id, version),
            };
            self.write(vec![record]).await?;
            if self.state().version(subject, version).is_some_and(|held| held.id == id) {
                return Ok((id, version));
            }
            // Another broker's registry wrote that version or id first: decide again, after
            // a pause that lets a writer that keeps winning finish.
            tokio::time::sleep(jitter(LOST_WRITE_BACKOFF * attempt)).await;
        }
        Err(RegistryError::store(format!("registering under {subject} lost to other writers {WRITE_ATTEMPTS} times")))
    }

    /// What a registration does on the state as it is: nothing (the subject has the
    /// schema), or the record to write.
    fn decide_registration(
        &self,
        subject: &str,
        new: &NewSchema,
        normalize: bool,
    ) -> Result<Registration, RegistryError> {
        let state = self.state();
        let mode = state.effective_mode(subject);
        if mode.read_only() {
            return Err(RegistryError::operation_not_permitted(format!("Subject {subject} is in read-only mode")));
        }
        let importing = mode == Mode::Import;
        if !importing && new.id.is_some_and(|id| id >= 0) {
            return Err(RegistryError::operation_not_permitted(format!(
                "Overwrite new schema with id {} is not permitted outside IMPORT mode",
                new.id.unwrap_or_default()
            )));
        }
        let parsed = parse(&state, new.schema_type, &new.schema, &new.references)?;
        let stored = StoredSchema {
            schema_type: new.schema_type,
            schema: parsed.text(normalize),
            references: new.references.clone(),
        };
        if let Some(found) = self.find_in_subject(&state, subject, &parsed, &stored, false) {
            if new.id.is_none_or(|id| id == found.id) {
                return Ok(Registration::Existing(found.id, found.version));
            }
        }
        if !importing {
            let level = state.effective_config(subject);
            let problems = level.check(&parsed, &live_history(&state, subject)?);
            if !problems.is_empty() {
                return Err(RegistryError::incompatible(subject, &problems));
            }
        }
        let id = match new.id.filter(|id| *id >= 0) {
            Some(id) => match state.schema(id) {
                Some(existing) if *existing != stored => {
                    return Err(RegistryError::id_does_not_match(format!(
                        "Schema id {id} already holds another schema"
                    )))
                }
                _ => id,
            },
            None => state.id_of(&stored).unwrap_or_else(|| state.next_id()),
        };
        let version = match new.version.filter(|_| importing) {
            Some(version) if state.version(subject, version).is_some() => {
                return Err(RegistryError::operation_not_permitted(format!(
                    "Subject {subject} already has a version {version}"
                )))
            }
            Some(version) if version >= 1 => version,
            Some(version) => return Err(RegistryError::invalid_version(&version.to_string())),
            None => state.next_version(subject),
        };
        let value = SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: stored.schema_type,
            references: stored.references,
            schema: stored.schema,
            deleted: false,
        };
        Ok(Registration::Write(
            Record::Schema { subject: subject.to_string(), version, value: Some(value) },
            id,
            version,
        ))
    }

    /// Finds a schema among a subject's versions (soft-deleted ones too with `deleted`).
    pub fn lookup(
        &self,
        subject: &str,
        new: &NewSchema,
        normalize: bool,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let state = self.state();
        if state.versions(subject, deleted).is_none() {
            return Err(RegistryError::subject_not_found(subject));
        }
        let parsed = parse(&state, new.schema_type, &new.schema, &new.references)?;
        let stored = StoredSchema {
            schema_type: new.schema_type,
            schema: parsed.text(normalize),
            references: new.references.clone(),
        };
        self.find_in_subject(&state, subject, &parsed, &stored, deleted)
            .ok_or_else(|| RegistryError::schema_not_found("Schema not found"))
    }

    /// One version of a subject.
    pub fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        version_of(&self.state(), subject, selector, deleted)
    }

    /// A stored schema's text in the form the REST API's `format` asks for: `serialized`
    /// (a base64 `FileDescriptorProto`, what Confluent's Protobuf deserializers read) for
    /// Protobuf; the stored text otherwise.
    pub fn formatted(&self, stored: &StoredSchema, format: Option<&str>) -> Result<String, RegistryError> {
        if stored.schema_type != SchemaType::Protobuf || format != Some("serialized") {
            return Ok(stored.schema.clone());
        }
        match parse(&self.state(), stored.schema_type, &stored.schema, &stored.references)? {
            ParsedSchema::Protobuf(schema) => Ok(schema.serialized()),
            _ => unreachable!("a Protobuf schema parses as one"),
        }
    }

    /// Whether `new` could be registered under `subject`: against one version, or (`None`)
    /// against the versions its compatibility level names. The messages say what breaks.
    pub fn check_compatibility(
        &self,
        subject: &str,
        against: Option<VersionSelector>,
        new: &NewSchema,
    ) -> Result<Vec<String>, RegistryError> {
        let state = self.state();
        let parsed = parse(&state, new.schema_type, &new.schema, &new.references)?;
        let level = state.effective_config(subject);
        match against {
            None => Ok(level.check(&parsed, &live_history(&state, subject)?)),
            Some(selector) => {
                let old = version_of(&state, subject, selector, false)?;
                let old_parsed = parse(&state, old.schema.schema_type, &old.schema.schema, &old.schema.references)?;
                let level = if level == CompatibilityLevel::None { level } else { non_transitive(level) };
                Ok(level.check(&parsed, &[(old.version, old_parsed)]))
            }
        }
    }

    /// Deletes every version of a subject: soft (hidden, ids still readable) or, once
    /// soft-deleted, for good. Returns the versions deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>, RegistryError> {
        let _turn = self.writer.lock().await;
        self.catch_up().await?;
        let (records, versions) = {
            let state = self.state();
            self.check_writable(&state, subject)?;
            let all = state.versions(subject, true).ok_or_else(|| RegistryError::subject_not_found(subject))?;
            let live: Vec<&(i32, Version)> = all.iter().filter(|(_, v)| !v.deleted).collect();
            if !permanent && live.is_empty() {
                return Err(RegistryError::subject_soft_deleted(subject));
            }
            if permanent && !live.is_empty() {
                return Err(RegistryError::subject_not_soft_deleted(subject));
            }
            for (number, _) in &all {
                check_not_referenced(&state, subject, *number)?;
            }
            let mut records: Vec<Record> = if permanent {
                all.iter()
                    .map(|(number, _)| Record::Schema { subject: subject.to_string(), version: *number, value: None })
                    .collect()
            } else {
                live.iter().map(|(number, v)| soft_deleted(&state, subject, *number, *v)).collect()
            };
            if permanent {
                if state.config(Some(subject)).is_some() {
                    records.push(Record::Config { subject: Some(subject.to_string()), value: None });
                }
                if state.mode(Some(subject)).is_some() {
                    records.push(Record::Mode { subject: Some(subject.to_string()), value: None });
                }
            }
            let versions =
                if permanent { all.iter().map(|(n, _)| *n).collect() } else { live.iter().map(|(n, _)| *n).collect() };
            (records, versions)
        };
        self.write(records).await?;
        Ok(versions)
    }

    /// Deletes one version: soft, or for good once soft-deleted. Returns its number.
    pub async fn delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        let _turn = self.writer.lock().await;
        self.catch_up().await?;
        let (record, number) = {
            let state = self.state();
            self.check_writable(&state, subject)?;
            if !state.has_subject(subject) {
                return Err(RegistryError::subject_not_found(subject));
            }
            // `latest` is the newest live version; a number may name a soft-deleted one.
            let found =
                version_of(&state, subject, selector, permanent || matches!(selector, VersionSelector::Number(_)))?;
            match (found.deleted, permanent) {
                (true, false) => return Err(RegistryError::version_soft_deleted(subject, found.version)),
                (false, true) => return Err(RegistryError::version_not_soft_deleted(subject, found.version)),
                _ => {}
            }
            check_not_referenced(&state, subject, found.version)?;
            let record = if permanent {
                Record::Schema { subject: subject.to_string(), version: found.version, value: None }
            } else {
                soft_deleted(&state, subject, found.version, Version { id: found.id, deleted: false })
            };
            (record, found.version)
        };
        self.write(vec![record]).await?;
        Ok(number)
    }

    /// The subject's version holding this schema: the same stored schema, or one whose
    /// normal form is the same (registered with or without `normalize`).
    fn find_in_subject(
        &self,
        state: &State,
        subject: &str,
        parsed: &ParsedSchema,
        stored: &StoredSchema,
        deleted: bool,
    ) -> Option<SubjectVersion> {
        let versions = state.versions(subject, deleted)?;
        let exact = state.id_of(stored);
        let normal = parsed.text(true);
        let (number, version) = versions.iter().rev().find(|(_, version)| {
            Some(version.id) == exact
                || state.schema(version.id).is_some_and(|other| {
                    other.schema_type == stored.schema_type
                        && other.references == stored.references
                        && self.normal_form(state, other).as_deref() == Some(normal.as_str())
                })
        })?;
        let schema = state.schema(version.id)?.clone();
        Some(SubjectVersion {
            subject: subject.to_string(),
            version: *number,
            id: version.id,
            schema,
            deleted: version.deleted,
        })
    }

    fn normal_form(&self, state: &State, stored: &StoredSchema) -> Option<String> {
        let lock = || self.normal_forms.lock().expect("no panics while the cache is held");
        if let Some(known) = lock().get(stored) {
            return known.clone();
        }
        let normal =
            parse(state, stored.schema_type, &stored.schema, &stored.references).ok().map(|parsed| parsed.text(true));
        lock().insert(stored.clone(), normal.clone());
        normal
    }

    fn check_writable(&self, state: &State, subject: &str) -> Result<(), RegistryError> {
        if state.effective_mode(subject).read_only() {
            return Err(RegistryError::operation_not_permitted(format!("Subject {subject} is in read-only mode")));
        }
        Ok(())
    }

    /// Sets a compatibility level (`None`: the global one).
    pub async fn set_config(&self, subject: Option<&str>, level: CompatibilityLevel) -> Result<(), RegistryError> {
        if let Some(subject) = subject {
            check_subject(subject)?;
        }
        let _turn = self.writer.lock().await;
        let value = ConfigValue { compatibility_level: level.name().to_string() };
        self.write(vec![Record::Config { subject: subject.map(str::to_string), value: Some(value) }]).await
    }

    /// Removes a compatibility setting; returns the level it had.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<CompatibilityLevel, RegistryError> {
        let _turn = self.writer.lock().await;
        self.catch_up().await?;
        let previous = {
            let state = self.state();
            match subject {
                Some(subject) => state.config(Some(subject)).ok_or_else(|| RegistryError::config_not_found(subject))?,
                None => state.config(None).unwrap_or(CompatibilityLevel::DEFAULT),
            }
        };
        self.write(vec![Record::Config { subject: subject.map(str::to_string), value: None }]).await?;
        Ok(previous)
    }

    /// Sets a mode (`None`: the global one). IMPORT over subjects that have versions
    /// needs `force`, as Confluent's: imported ids could collide with theirs.
    pub async fn set_mode(&self, subject: Option<&str>, mode: Mode, force: bool) -> Result<(), RegistryError> {
        if let Some(subject) = subject {
            check_subject(subject)?;
        }
        let _turn = self.writer.lock().await;
        self.catch_up().await?;
        if mode == Mode::Import && !force {
            let state = self.state();
            let occupied = match subject {
                Some(subject) => state.versions(subject, true).is_some(),
                None => !state.subjects(true).is_empty(),
            };
            if occupied {
                return Err(RegistryError::operation_not_permitted(
                    "Cannot import since found existing subjects (set force=true to override)",
                ));
            }
        }
        let value = ModeValue { mode: mode.name().to_string() };
        self.write(vec![Record::Mode { subject: subject.map(str::to_string), value: Some(value) }]).await
    }

    /// Removes a mode setting; returns the mode it had.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Mode, RegistryError> {
        let _turn = self.writer.lock().await;
        self.catch_up().await?;
        let previous = {
            let state = self.state();
            match subject {
                Some(subject) => state.mode(Some(subject)).ok_or_else(|| RegistryError::mode_not_found(subject))?,
                None => state.mode(None).unwrap_or(Mode::ReadWrite),
            }
        };
        self.write(vec![Record::Mode { subject: subject.map(str::to_string), value: None }]).await?;
        Ok(previous)
    }
}

/// A duration drawn below `limit` (from the clock's nanoseconds: no randomness source is
/// needed to break a tie).
fn jitter(limit: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    limit.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

fn store_error(error: StoreError) -> RegistryError {
    match error {
        StoreError::Closed => RegistryError::store("the broker is shutting down"),
        StoreError::Failed(why) if why.contains("does not lead") => RegistryError::not_the_writer(why),
        StoreError::Failed(why) => RegistryError::store(why),
    }
}

/// Subject names: non-empty, bounded, no control characters.
fn check_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty() || subject.len() > SUBJECT_BYTES_MAX || subject.chars().any(char::is_control) {
        return Err(RegistryError::invalid_subject(subject));
    }
    Ok(())
}

/// Parses a schema with its references resolved from the state.
fn parse(
    state: &State,
    schema_type: SchemaType,
    text: &str,
    references: &[Reference],
) -> Result<ParsedSchema, RegistryError> {
    if text.trim().is_empty() {
        return Err(RegistryError::invalid_schema("Empty schema"));
    }
    let resolved = resolve(state, references)?;
    ParsedSchema::parse(schema_type, text, &resolved).map_err(RegistryError::invalid_schema)
}

/// Every schema a list of references reaches (references of references too), each once.
fn resolve(state: &State, references: &[Reference]) -> Result<Vec<Resolved>, RegistryError> {
    let mut resolved = Vec::new();
    let mut seen = HashSet::new();
    let mut pending: Vec<Reference> = references.to_vec();
    while let Some(reference) = pending.pop() {
        let selector =
            if reference.version == -1 { VersionSelector::Latest } else { VersionSelector::Number(reference.version) };
        let found = version_of(state, &reference.subject, selector, true).map_err(|_| {
            RegistryError::invalid_schema(format!(
                "Invalid schema: reference '{}' names {} version {}, which does not exist",
                reference.name, reference.subject, reference.version
            ))
        })?;
        if !seen.insert((found.subject.clone(), found.version)) {
            continue;
        }
        pending.extend(found.schema.references.iter().cloned());
        resolved.push(Resolved {
            name: reference.name,
            schema_type: found.schema.schema_type,
            schema: found.schema.schema,
        });
    }
    Ok(resolved)
}

/// A version of a subject with its schema; soft-deleted ones only with `deleted`.
fn version_of(
    state: &State,
    subject: &str,
    selector: VersionSelector,
    deleted: bool,
) -> Result<SubjectVersion, RegistryError> {
    let versions = state.versions(subject, deleted).ok_or_else(|| RegistryError::subject_not_found(subject))?;
    let (number, version) = match selector {
        VersionSelector::Latest => *versions.last().expect("versions() is never empty"),
        VersionSelector::Number(number) => {
            *versions.iter().find(|(n, _)| *n == number).ok_or_else(|| RegistryError::version_not_found(number))?
        }
    };
    let schema = state.schema(version.id).cloned().ok_or_else(|| {
        RegistryError::schema_not_found(format!("Schema {} of {subject} version {number} not found", version.id))
    })?;
    Ok(SubjectVersion {
        subject: subject.to_string(),
        version: number,
        id: version.id,
        schema,
        deleted: version.deleted,
    })
}

/// The subject's live versions parsed, oldest first, for a compatibility check.
fn live_history(state: &State, subject: &str) -> Result<Vec<(i32, ParsedSchema)>, RegistryError> {
    let mut history = Vec::new();
    for (number, version) in state.versions(subject, false).unwrap_or_default() {
        let Some(stored) = state.schema(version.id) else { continue };
        let parsed = parse(state, stored.schema_type, &stored.schema, &stored.references)
            .map_err(|e| RegistryError::store(format!("{subject} version {number} no longer parses: {}", e.message)))?;
        history.push((number, parsed));
    }
    Ok(history)
}

/// The record that soft-deletes a version.
fn soft_deleted(state: &State, subject: &str, number: i32, version: Version) -> Record {
    let stored = state.schema(version.id).cloned().expect("a version's schema is known");
    Record::Schema {
        subject: subject.to_string(),
        version: number,
        value: Some(SchemaValue {
            subject: subject.to_string(),
            version: number,
            id: version.id,
            schema_type: stored.schema_type,
            references: stored.references,
            schema: stored.schema,
            deleted: true,
        }),
    }
}

/// 42206 when live schemas refer to this version.
fn check_not_referenced(state: &State, subject: &str, version: i32) -> Result<(), RegistryError> {
    let by = state.referenced_by(subject, version);
    if by.is_empty() {
        return Ok(());
    }
    Err(RegistryError::reference_exists(format!(
        "One or more references exist to the schema {{subject={subject}, version={version}}}: ids {by:?}"
    )))
}

/// The one-version form of a level (a check against a named version).
fn non_transitive(level: CompatibilityLevel) -> CompatibilityLevel {
    match level {
        CompatibilityLevel::BackwardTransitive => CompatibilityLevel::Backward,
        CompatibilityLevel::ForwardTransitive => CompatibilityLevel::Forward,
        CompatibilityLevel::FullTransitive => CompatibilityLevel::Full,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_confluent_names_them() {
        assert_eq!(VersionSelector::parse("latest").unwrap(), VersionSelector::Latest);
        assert_eq!(VersionSelector::parse("-1").unwrap(), VersionSelector::Latest);
        assert_eq!(VersionSelector::parse("3").unwrap(), VersionSelector::Number(3));
        for bad in ["0", "-2", "x", "2147483648", ""] {
            assert_eq!(VersionSelector::parse(bad).unwrap_err().code, 42202, "{bad}");
        }
    }
}
