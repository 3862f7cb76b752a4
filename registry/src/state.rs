//! What the registry knows: the `_schemas` topic's records applied in order. Every
//! answer of the REST API is read from here; writes become records first and reach this
//! state only by being read back from the topic, so every broker serving the topic's
//! state answers the same.

use crate::compatibility::CompatibilityLevel;
use crate::records::{ConfigValue, ModeValue, Record, SchemaValue};
use crate::schema::{Reference, SchemaType};
use std::collections::{BTreeMap, HashMap};

/// A schema as stored under its id: the same id means the same type, text and references.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredSchema {
    /// Its type.
    pub schema_type: SchemaType,
    /// Its text.
    pub schema: String,
    /// The other subjects' versions it refers to.
    pub references: Vec<Reference>,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The schema's id.
    pub id: i32,
    /// Soft-deleted.
    pub deleted: bool,
}

/// Who may write to a subject (or, as the global mode, to every subject without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Registrations and deletions as usual.
    ReadWrite,
    /// No writes.
    ReadOnly,
    /// No writes, and the subject's own setting wins over a global READWRITE.
    ReadOnlyOverride,
    /// Registrations carry their id and version (migrating from another registry).
    Import,
}

impl Mode {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    /// Parses a mode name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Mode> {
        [Mode::ReadWrite, Mode::ReadOnly, Mode::ReadOnlyOverride, Mode::Import]
            .into_iter()
            .find(|mode| mode.name().eq_ignore_ascii_case(name))
    }

    /// Whether registrations and deletions are refused.
    pub fn read_only(self) -> bool {
        matches!(self, Mode::ReadOnly | Mode::ReadOnlyOverride)
    }
}

/// The applied state of the `_schemas` topic.
#[derive(Debug, Default)]
pub struct State {
    subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    schemas: BTreeMap<i32, StoredSchema>,
    ids: HashMap<StoredSchema, i32>,
    /// How many versions (of any subject) use each id: an id with none is forgotten.
    uses: HashMap<i32, usize>,
    /// Compatibility levels: `None` is the global one.
    configs: BTreeMap<Option<String>, CompatibilityLevel>,
    /// Modes: `None` is the global one.
    modes: BTreeMap<Option<String>, Mode>,
    /// The highest id ever applied (ids are never handed out twice while it is known).
    max_id: i32,
}

impl State {
    /// Applies one record of the topic. A record that names an unknown level or mode is
    /// an error (the caller reports it with its offset and goes on).
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Schema { subject, version, value } => self.apply_schema(subject, version, value)?,
            Record::Config { subject, value } => match value {
                None => {
                    self.configs.remove(&subject);
                }
                Some(ConfigValue { compatibility_level }) => {
                    let level = CompatibilityLevel::from_name(&compatibility_level)
                        .ok_or_else(|| format!("unknown compatibility level {compatibility_level}"))?;
                    self.configs.insert(subject, level);
                }
            },
            Record::Mode { subject, value } => match value {
                None => {
                    self.modes.remove(&subject);
                }
                Some(ModeValue { mode }) => {
                    let parsed = Mode::from_name(&mode).ok_or_else(|| format!("unknown mode {mode}"))?;
                    self.modes.insert(subject, parsed);
                }
            },
            Record::Ignored => {}
        }
        Ok(())
    }

    /// A version record that contradicts what is applied (its version holds another id, or
    /// its id another schema) lost a race between two writers (two brokers' registries):
    /// the first record wins, on every broker alike, and the loser's registry, reading the
    /// topic back, sees that its write did not land and decides again.
    fn apply_schema(&mut self, subject: String, version: i32, value: Option<SchemaValue>) -> Result<(), String> {
        let previous = match value {
            Some(value) => {
                let stored =
                    StoredSchema { schema_type: value.schema_type, schema: value.schema, references: value.references };
                if let Some(held) = self.subjects.get(&subject).and_then(|versions| versions.get(&version)) {
                    if held.id != value.id {
                        return Err(format!("{subject} version {version} already holds id {}", held.id));
                    }
                }
                if self.schemas.get(&value.id).is_some_and(|held| *held != stored) {
                    return Err(format!("id {} already holds another schema", value.id));
                }
                if let std::collections::btree_map::Entry::Vacant(vacant) = self.schemas.entry(value.id) {
                    self.ids.entry(stored.clone()).or_insert(value.id);
                    vacant.insert(stored);
                }
                self.max_id = self.max_id.max(value.id);
                *self.uses.entry(value.id).or_default() += 1;
                let versions = self.subjects.entry(subject.clone()).or_default();
                versions.insert(version, Version { id: value.id, deleted: value.deleted })
            }
            None => {
                let versions = self.subjects.get_mut(&subject);
                let removed = versions.and_then(|versions| versions.remove(&version));
                if self.subjects.get(&subject).is_some_and(BTreeMap::is_empty) {
                    self.subjects.remove(&subject);
                }
                removed
            }
        };
        if let Some(previous) = previous {
            self.release(previous.id);
        }
        Ok(())
    }

    /// One version fewer uses `id`; the last one gone takes the schema with it.
    fn release(&mut self, id: i32) {
        let uses = self.uses.get_mut(&id).expect("a version's id is counted");
        *uses -= 1;
        if *uses == 0 {
            self.uses.remove(&id);
            if let Some(stored) = self.schemas.remove(&id) {
                if self.ids.get(&stored) == Some(&id) {
                    self.ids.remove(&stored);
                }
            }
        }
    }

    /// Subjects with a live version (or any version, with `deleted`), in name order.
    pub fn subjects(&self, deleted: bool) -> Vec<&str> {
        self.subjects
            .iter()
            .filter(|(_, versions)| deleted || versions.values().any(|v| !v.deleted))
            .map(|(subject, _)| subject.as_str())
            .collect()
    }

    /// A subject's versions, oldest first: live ones, or all with `deleted`. `None` when
    /// the subject has none of those.
    pub fn versions(&self, subject: &str, deleted: bool) -> Option<Vec<(i32, Version)>> {
        let versions: Vec<(i32, Version)> = self
            .subjects
            .get(subject)?
            .iter()
            .filter(|(_, v)| deleted || !v.deleted)
            .map(|(number, v)| (*number, *v))
            .collect();
        (!versions.is_empty()).then_some(versions)
    }

    /// Whether the subject has any version, live or soft-deleted.
    pub fn has_subject(&self, subject: &str) -> bool {
        self.subjects.contains_key(subject)
    }

    /// One version of a subject, live or soft-deleted.
    pub fn version(&self, subject: &str, version: i32) -> Option<Version> {
        self.subjects.get(subject)?.get(&version).copied()
    }

    /// The schema an id stands for.
    pub fn schema(&self, id: i32) -> Option<&StoredSchema> {
        self.schemas.get(&id)
    }

    /// Every id and its schema, in id order.
    pub fn schemas(&self) -> impl Iterator<Item = (i32, &StoredSchema)> {
        self.schemas.iter().map(|(id, stored)| (*id, stored))
    }

    /// The id of a schema already registered anywhere.
    pub fn id_of(&self, stored: &StoredSchema) -> Option<i32> {
        self.ids.get(stored).copied()
    }

    /// The id a new schema gets.
    pub fn next_id(&self) -> i32 {
        self.max_id + 1
    }

    /// The version a new registration under `subject` gets: past every version it has
    /// had, soft-deleted ones included.
    pub fn next_version(&self, subject: &str) -> i32 {
        self.subjects.get(subject).and_then(|v| v.keys().next_back()).map_or(1, |last| last + 1)
    }

    /// `(subject, version)` of every version using `id` (live only, unless `deleted`).
    pub fn uses_of(&self, id: i32, deleted: bool) -> Vec<(&str, i32)> {
        self.subjects
            .iter()
            .flat_map(|(subject, versions)| versions.iter().map(move |(number, v)| (subject.as_str(), *number, v)))
            .filter(|(_, _, v)| v.id == id && (deleted || !v.deleted))
            .map(|(subject, number, _)| (subject, number))
            .collect()
    }

    /// Ids of live schemas that refer to `subject`'s `version`, in id order.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        self.schemas
            .iter()
            .filter(|(id, stored)| {
                stored.references.iter().any(|r| r.subject == subject && r.version == version)
                    && !self.uses_of(**id, false).is_empty()
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// A subject's own compatibility level (`None`: the global one), or the global one's
    /// own setting.
    pub fn config(&self, subject: Option<&str>) -> Option<CompatibilityLevel> {
        self.configs.get(&subject.map(str::to_string)).copied()
    }

    /// The level that applies to a subject: its own, else the global, else BACKWARD.
    pub fn effective_config(&self, subject: &str) -> CompatibilityLevel {
        self.config(Some(subject)).or(self.config(None)).unwrap_or(CompatibilityLevel::DEFAULT)
    }

    /// A subject's own mode, or the global one's own setting.
    pub fn mode(&self, subject: Option<&str>) -> Option<Mode> {
        self.modes.get(&subject.map(str::to_string)).copied()
    }

    /// The mode that applies to a subject: its own, else the global, else READWRITE.
    pub fn effective_mode(&self, subject: &str) -> Mode {
        self.mode(Some(subject)).or(self.mode(None)).unwrap_or(Mode::ReadWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(subject: &str, version: i32, id: i32, schema: &str, deleted: bool) -> Record {
        Record::Schema {
            subject: subject.into(),
            version,
            value: Some(SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                references: Vec::new(),
                schema: schema.into(),
                deleted,
            }),
        }
    }

    #[test]
    fn versions_soft_deletes_and_tombstones() {
        let mut state = State::default();
        state.apply(registered("a", 1, 1, "\"int\"", false)).unwrap();
        state.apply(registered("a", 2, 2, "\"long\"", false)).unwrap();
        state.apply(registered("b", 1, 1, "\"int\"", false)).unwrap();
        assert_eq!(state.subjects(false), vec!["a", "b"]);
        assert_eq!(state.uses_of(1, false), vec![("a", 1), ("b", 1)]);
        assert_eq!((state.next_id(), state.next_version("a")), (3, 3));

        state.apply(registered("a", 2, 2, "\"long\"", true)).unwrap();
        assert_eq!(state.versions("a", false).unwrap().len(), 1);
        assert_eq!(state.versions("a", true).unwrap().len(), 2);
        assert_eq!(state.next_version("a"), 3, "a soft-deleted version keeps its number taken");
        assert!(state.schema(2).is_some(), "a soft-deleted version's schema stays readable by id");

        state.apply(Record::Schema { subject: "a".into(), version: 2, value: None }).unwrap();
        assert!(state.schema(2).is_none(), "no version uses id 2 any more");
        assert_eq!(state.next_id(), 3, "ids are not handed out twice");
        state.apply(Record::Schema { subject: "b".into(), version: 1, value: None }).unwrap();
        assert!(state.schema(1).is_some(), "a/1 still uses id 1");
        assert_eq!(state.subjects(true), vec!["a"]);
    }

    #[test]
    fn of_two_racing_writes_the_first_in_the_log_wins() {
        let mut state = State::default();
        state.apply(registered("a", 1, 1, "\"int\"", false)).unwrap();
        let same_version = state.apply(registered("a", 1, 2, "\"long\"", false)).unwrap_err();
        assert!(same_version.contains("a version 1 already holds id 1"), "{same_version}");
        let same_id = state.apply(registered("b", 1, 1, "\"long\"", false)).unwrap_err();
        assert!(same_id.contains("id 1 already holds another schema"), "{same_id}");
        assert_eq!((state.version("a", 1).unwrap().id, state.schema(1).unwrap().schema.as_str()), (1, "\"int\""));
        assert!(state.version("b", 1).is_none() && state.schema(2).is_none());
        state.apply(registered("a", 1, 1, "\"int\"", true)).unwrap();
        assert!(state.version("a", 1).unwrap().deleted, "a soft delete rewrites its own version");
    }

    #[test]
    fn settings_apply_and_fall_back_to_the_global_then_the_default() {
        let mut state = State::default();
        assert_eq!(state.effective_config("s"), CompatibilityLevel::Backward);
        let config = |subject: Option<&str>, level: Option<&str>| Record::Config {
            subject: subject.map(str::to_string),
            value: level.map(|l| ConfigValue { compatibility_level: l.into() }),
        };
        state.apply(config(None, Some("FULL"))).unwrap();
        state.apply(config(Some("s"), Some("NONE"))).unwrap();
        assert_eq!(state.effective_config("s"), CompatibilityLevel::None);
        assert_eq!(state.effective_config("t"), CompatibilityLevel::Full);
        state.apply(config(Some("s"), None)).unwrap();
        assert_eq!(state.effective_config("s"), CompatibilityLevel::Full);
        assert!(state.apply(config(None, Some("SIDEWAYS"))).unwrap_err().contains("SIDEWAYS"));

        let mode = Record::Mode { subject: None, value: Some(ModeValue { mode: "READONLY".into() }) };
        state.apply(mode).unwrap();
        assert!(state.effective_mode("s").read_only());
    }
}
