//! Schemas as the registry handles them: their type, their references, and what each type
//! does (parse and check, the text to store, compatibility between two versions). One
//! module per type; this one dispatches.

pub mod avro;
pub mod json;
pub mod protobuf;

use serde::{Deserialize, Serialize};

/// The schema languages the REST API names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Apache Avro (the default when a request names none).
    #[default]
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers (`.proto` text).
    Protobuf,
}

impl SchemaType {
    /// Types this registry parses and checks; `GET /schemas/types` lists them.
    pub const SUPPORTED: &'static [SchemaType] = &[SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf];

    /// For `skip_serializing_if`: Avro is the type a record leaves unsaid.
    pub fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// Parses a type name as the REST API sends it (case-sensitive, as Confluent's).
    pub fn from_name(name: &str) -> Option<SchemaType> {
        [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf].into_iter().find(|t| t.name() == name)
    }
}

/// A named reference from a schema to a version of another subject (Avro: a named type
/// it uses; Protobuf: an import path; JSON Schema: a `$ref` URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referring schema uses.
    pub name: String,
    /// The subject holding the referenced schema.
    pub subject: String,
    /// Its version there.
    pub version: i32,
}

/// A referenced schema's text, found by the registry for a reference.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name the referring schema uses.
    pub name: String,
    /// The referenced schema's type.
    pub schema_type: SchemaType,
    /// The referenced schema's text.
    pub schema: String,
}

/// A schema that parsed and passed its type's checks.
#[derive(Debug, Clone)]
pub enum ParsedSchema {
    /// An Avro schema.
    Avro(avro::AvroSchema),
    /// A JSON Schema document.
    Json(json::JsonSchema),
    /// A `.proto` file.
    Protobuf(protobuf::ProtobufSchema),
}

impl ParsedSchema {
    /// Parses `text` as `schema_type`, with the texts its references name (every one,
    /// references of references included). The error says what is wrong, for 42201.
    ///
    /// The parsers are other projects' code run on a client's text: should one panic, the
    /// schema is refused like any invalid one rather than dropping the connection.
    pub fn parse(schema_type: SchemaType, text: &str, references: &[Resolved]) -> Result<ParsedSchema, String> {
        let parse = || match schema_type {
            SchemaType::Avro => avro::AvroSchema::parse(text, references).map(ParsedSchema::Avro),
            SchemaType::Json => json::JsonSchema::parse(text, references).map(ParsedSchema::Json),
            SchemaType::Protobuf => protobuf::ProtobufSchema::parse(text, references).map(ParsedSchema::Protobuf),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse))
            .unwrap_or_else(|_| Err(format!("Invalid schema: the {} parser failed on it", schema_type.name())))
    }

    /// The text to store and hand out: the schema as given, without insignificant
    /// whitespace; with `normalize`, its type's normal form, so that equal schemas written
    /// differently are one schema.
    pub fn text(&self, normalize: bool) -> String {
        match self {
            ParsedSchema::Avro(schema) => schema.text(normalize),
            ParsedSchema::Json(schema) => schema.text(normalize),
            ParsedSchema::Protobuf(schema) => schema.text(normalize),
        }
    }

    /// Whether data written with `writer` can be read with `self`; `Err` says why not.
    pub fn can_read(&self, writer: &ParsedSchema) -> Result<(), String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.can_read_unguarded(writer)))
            .unwrap_or_else(|_| Err(format!("the {} compatibility check failed on it", self.schema_type().name())))
    }

    fn can_read_unguarded(&self, writer: &ParsedSchema) -> Result<(), String> {
        match (self, writer) {
            (ParsedSchema::Avro(reader), ParsedSchema::Avro(writer)) => reader.can_read(writer),
            (ParsedSchema::Json(reader), ParsedSchema::Json(writer)) => reader.can_read(writer),
            (ParsedSchema::Protobuf(reader), ParsedSchema::Protobuf(writer)) => reader.can_read(writer),
            (reader, writer) => Err(format!(
                "a {} schema cannot read data written with a {} schema",
                reader.schema_type().name(),
                writer.schema_type().name()
            )),
        }
    }

    /// The schema's type.
    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Json(_) => SchemaType::Json,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro_nested(depth: usize) -> String {
        (0..depth).fold(r#""int""#.to_string(), |inner, i| {
            format!(r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{inner}}}]}}"#)
        })
    }

    #[test]
    fn a_parser_that_panics_refuses_the_schema() {
        // protox-parse 0.9 asserts on a leading-zero integer with a digit 8 or 9 (found by
        // the registry_schema fuzz target).
        let refused = ParsedSchema::parse(SchemaType::Protobuf, "029", &[]).unwrap_err();
        assert_eq!(refused, "Invalid schema: the PROTOBUF parser failed on it");
    }

    /// The deepest JSON serde_json reads (128; it refuses more) bounds Avro and JSON
    /// Schema; Protobuf checks its own depth. None may overflow the HTTP thread's stack.
    #[test]
    fn the_deepest_schemas_each_type_reads_do_not_overflow_the_stack() {
        let avro = avro_nested(30);
        let too_deep_avro = avro_nested(60);
        let json = (0..60).fold(r#"{"type":"integer"}"#.to_string(), |inner, _| {
            format!(r#"{{"type":"object","properties":{{"p":{inner}}}}}"#)
        });
        let too_deep_json = (0..200).fold("{}".to_string(), |inner, _| format!(r#"{{"not":{inner}}}"#));
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let parse_and_compare =
                    |schema_type, text: &str| ParsedSchema::parse(schema_type, text, &[]).and_then(|s| s.can_read(&s));
                [
                    parse_and_compare(SchemaType::Avro, &avro),
                    parse_and_compare(SchemaType::Json, &json),
                    parse_and_compare(SchemaType::Avro, &too_deep_avro),
                    parse_and_compare(SchemaType::Json, &too_deep_json),
                ]
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(outcome[0].is_ok() && outcome[1].is_ok(), "{outcome:?}");
        for refused in &outcome[2..] {
            assert!(refused.as_ref().is_err_and(|e| e.starts_with("Invalid schema")), "{refused:?}");
        }
    }
}
