//! Compatibility levels: which earlier versions a new schema is checked against, and in
//! which direction (Confluent's seven levels).

use crate::schema::ParsedSchema;

/// A subject's (or the registry's) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    Backward,
    /// The new schema reads data written with every version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, for parsing and listing.
    const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The level a registry starts with, as Confluent's.
    pub const DEFAULT: CompatibilityLevel = CompatibilityLevel::Backward;

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses a level name (case-insensitive, as Confluent accepts it).
    pub fn from_name(name: &str) -> Option<CompatibilityLevel> {
        Self::ALL.into_iter().find(|level| level.name().eq_ignore_ascii_case(name))
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Checks `new` against the subject's live versions (`(version, schema)`, oldest
    /// first): the latest only, or all of them for the transitive levels. Returns what
    /// breaks, one message per rule and version; empty when compatible.
    pub fn check(self, new: &ParsedSchema, versions: &[(i32, ParsedSchema)]) -> Vec<String> {
        let checked = if self.transitive() { versions } else { &versions[versions.len().saturating_sub(1)..] };
        let mut problems = Vec::new();
        for (version, old) in checked.iter().rev() {
            if old.schema_type() != new.schema_type() {
                problems.push(format!(
                    "version {version} is of type {}, the new schema of type {}",
                    old.schema_type().name(),
                    new.schema_type().name()
                ));
                continue;
            }
            if self.backward() {
                if let Err(why) = new.can_read(old) {
                    problems.push(format!(
                        "{}: the new schema cannot read data written with version {version}: {why}",
                        self.name()
                    ));
                }
            }
            if self.forward() {
                if let Err(why) = old.can_read(new) {
                    problems.push(format!(
                        "{}: version {version} cannot read data written with the new schema: {why}",
                        self.name()
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaType;

    fn avro(fields: &str) -> ParsedSchema {
        let text = format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
        ParsedSchema::parse(SchemaType::Avro, &text, &[]).unwrap()
    }

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!(CompatibilityLevel::from_name("full_transitive"), Some(CompatibilityLevel::FullTransitive));
        assert_eq!(CompatibilityLevel::from_name("BACKWARD"), Some(CompatibilityLevel::Backward));
        assert_eq!(CompatibilityLevel::from_name("SIDEWAYS"), None);
    }

    #[test]
    fn each_level_checks_its_direction_and_versions() {
        // v1 has a; v2 drops a (fine backward: the reader ignores it); v3 adds b without
        // a default (breaks backward against both).
        let v1 = avro(r#"{"name":"a","type":"int"}"#);
        let v2 = avro("");
        let history = vec![(1, v1.clone()), (2, v2.clone())];
        let adds_required = avro(r#"{"name":"b","type":"int"}"#);
        let problems = CompatibilityLevel::Backward.check(&adds_required, &history);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("version 2") && problems[0].contains('b'), "{problems:?}");
        assert_eq!(CompatibilityLevel::BackwardTransitive.check(&adds_required, &history).len(), 2);
        assert!(CompatibilityLevel::None.check(&adds_required, &history).is_empty());
        // Forward: the old readers read the new data (b is ignored by v2; v1 needs a).
        assert!(CompatibilityLevel::Forward.check(&adds_required, &history).is_empty());
        let forward = CompatibilityLevel::ForwardTransitive.check(&adds_required, &history);
        assert!(forward.len() == 1 && forward[0].contains("version 1"), "{forward:?}");
        assert_eq!(CompatibilityLevel::Full.check(&adds_required, &history).len(), 1);
        assert_eq!(CompatibilityLevel::FullTransitive.check(&adds_required, &history).len(), 3);
        assert!(CompatibilityLevel::FullTransitive.check(&v2, &[]).is_empty(), "nothing to check against");
    }
}
