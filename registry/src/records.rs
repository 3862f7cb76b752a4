//! The records of the `_schemas` topic: JSON keys and values in the layout Confluent's
//! Schema Registry writes (`keytype` SCHEMA, CONFIG, MODE), so the topic reads the same to
//! tools that know that format. The topic is compacted: a key's latest value is its state,
//! and a null value (tombstone) removes it.

use crate::schema::{Reference, SchemaType};
use serde::{Deserialize, Serialize};

/// Which thing a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordKey {
    /// One version of one subject.
    Schema {
        /// The subject.
        subject: String,
        /// The version under it (from 1).
        version: i32,
        /// Format revision of the key (1 for schemas, as Confluent writes).
        magic: i32,
    },
    /// The compatibility level of a subject, or the global one (`subject` null).
    Config {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// Format revision of the key (0).
        magic: i32,
    },
    /// The mode of a subject, or the global one (`subject` null).
    Mode {
        /// The subject, or `None` for the global mode.
        subject: Option<String>,
        /// Format revision of the key (0).
        magic: i32,
    },
    /// Written by other registries (a no-op to find the end, subject deletions that the
    /// per-version records already say): read and ignored.
    #[serde(other)]
    Other,
}

impl RecordKey {
    /// The key of a subject's version.
    pub fn schema(subject: &str, version: i32) -> Self {
        RecordKey::Schema { subject: subject.to_string(), version, magic: 1 }
    }

    /// The key of a compatibility setting.
    pub fn config(subject: Option<&str>) -> Self {
        RecordKey::Config { subject: subject.map(str::to_string), magic: 0 }
    }

    /// The key of a mode setting.
    pub fn mode(subject: Option<&str>) -> Self {
        RecordKey::Mode { subject: subject.map(str::to_string), magic: 0 }
    }
}

/// A subject's version: which schema it is and whether it is soft-deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    /// The subject (repeated from the key, as Confluent writes it).
    pub subject: String,
    /// The version (repeated from the key).
    pub version: i32,
    /// The schema's id, shared by every subject that registered the same schema.
    pub id: i32,
    /// AVRO unless said otherwise (Confluent leaves it out for Avro).
    #[serde(default, skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    /// Named references to other subjects' versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// The schema text as registered.
    pub schema: String,
    /// Soft-deleted: hidden from lookups unless asked for, still readable by id.
    #[serde(default)]
    pub deleted: bool,
}

/// A compatibility setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    /// `BACKWARD`, `FULL_TRANSITIVE`, ...
    pub compatibility_level: String,
}

/// A mode setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// `READWRITE`, `READONLY`, `READONLY_OVERRIDE` or `IMPORT`.
    pub mode: String,
}

/// One decoded record of the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A version was registered, soft-deleted, or (`None`) removed for good.
    Schema {
        /// Its subject.
        subject: String,
        /// Its version.
        version: i32,
        /// Its state; `None` is a tombstone.
        value: Option<SchemaValue>,
    },
    /// A compatibility level was set or (`None`) deleted.
    Config {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// The level; `None` deletes the setting.
        value: Option<ConfigValue>,
    },
    /// A mode was set or (`None`) deleted.
    Mode {
        /// The subject, or `None` for the global mode.
        subject: Option<String>,
        /// The mode; `None` deletes the setting.
        value: Option<ModeValue>,
    },
    /// A record of a kind this registry does not keep.
    Ignored,
}

impl Record {
    /// Decodes a record of the topic. An error names what is wrong; the caller says where.
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Record, String> {
        let key = key.ok_or("a record without a key")?;
        let key: RecordKey = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        fn parse<T: for<'de> Deserialize<'de>>(value: Option<&[u8]>) -> Result<Option<T>, String> {
            value.map(|v| serde_json::from_slice(v).map_err(|e| format!("bad value: {e}"))).transpose()
        }
        Ok(match key {
            RecordKey::Schema { subject, version, .. } => {
                let value: Option<SchemaValue> = parse(value)?;
                if let Some(value) = &value {
                    if value.subject != subject || value.version != version {
                        return Err(format!(
                            "the value says {}/{} under the key {subject}/{version}",
                            value.subject, value.version
                        ));
                    }
                }
                Record::Schema { subject, version, value }
            }
            RecordKey::Config { subject, .. } => Record::Config { subject, value: parse(value)? },
            RecordKey::Mode { subject, .. } => Record::Mode { subject, value: parse(value)? },
            RecordKey::Other => Record::Ignored,
        })
    }

    /// The record's key and value as written to the topic.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Record::Schema { subject, version, value } => {
                (json(&RecordKey::schema(subject, *version)), value.as_ref().map(json))
            }
            Record::Config { subject, value } => {
                (json(&RecordKey::config(subject.as_deref())), value.as_ref().map(json))
            }
            Record::Mode { subject, value } => (json(&RecordKey::mode(subject.as_deref())), value.as_ref().map(json)),
            Record::Ignored => unreachable!("only records read from the topic are ignored"),
        }
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluents_layout_reads_and_round_trips() {
        let key = br#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#;
        let value = br#"{"subject":"orders-value","version":2,"id":7,"schema":"\"string\"","deleted":false}"#;
        let record = Record::decode(Some(key), Some(value)).unwrap();
        let Record::Schema { value: Some(v), .. } = &record else { panic!("{record:?}") };
        assert_eq!((v.id, v.schema_type, v.schema.as_str()), (7, SchemaType::Avro, "\"string\""));
        let (k, v) = record.encode();
        assert_eq!(Record::decode(Some(&k), v.as_deref()).unwrap(), record);
        assert!(!String::from_utf8(v.unwrap()).unwrap().contains("schemaType"), "AVRO is left out, as Confluent does");

        let config = Record::decode(Some(br#"{"keytype":"CONFIG","subject":null,"magic":0}"#), None).unwrap();
        assert_eq!(config, Record::Config { subject: None, value: None });
        let noop = Record::decode(Some(br#"{"keytype":"NOOP","magic":0}"#), None).unwrap();
        assert_eq!(noop, Record::Ignored);
    }

    #[test]
    fn damaged_records_are_errors() {
        assert!(Record::decode(None, None).unwrap_err().contains("without a key"));
        assert!(Record::decode(Some(b"{"), None).unwrap_err().contains("bad key"));
        let key = br#"{"keytype":"SCHEMA","subject":"a","version":1,"magic":1}"#;
        let other = br#"{"subject":"b","version":1,"id":1,"schema":"\"int\""}"#;
        assert!(Record::decode(Some(key), Some(other)).unwrap_err().contains("b/1 under the key a/1"));
    }
}
