//! Avro schemas, parsed and compared with the `apache-avro` crate: Avro's own
//! schema-resolution rules decide whether a reader schema can read a writer's data.

use super::Resolved;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// A parsed Avro schema with its text.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    /// The schema as the client wrote it, as JSON without insignificant whitespace.
    compact: String,
    schema: Schema,
}

impl AvroSchema {
    /// Parses `text`; `references` are the named types it may use, defined elsewhere.
    pub fn parse(text: &str, references: &[Resolved]) -> Result<AvroSchema, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("Invalid schema: {e}"))?;
        let reference_texts: Vec<&str> = references.iter().map(|r| r.schema.as_str()).collect();
        let schema = if reference_texts.is_empty() {
            Schema::parse_str(text).map(|schema| (schema, Vec::new()))
        } else {
            Schema::parse_str_with_list(text, reference_texts)
        };
        let (schema, _referenced) = schema.map_err(|e| format!("Invalid schema: {e}"))?;
        Ok(AvroSchema { compact: json.to_string(), schema })
    }

    /// The text to store: as given (compact), or Avro's normal form of the whole schema
    /// (full names, one layout) with `normalize`.
    pub fn text(&self, normalize: bool) -> String {
        if normalize {
            serde_json::to_string(&self.schema).unwrap_or_else(|_| self.compact.clone())
        } else {
            self.compact.clone()
        }
    }

    /// Whether data written with `writer` can be read with this schema (Avro's
    /// resolution rules); the error names the field or type that breaks.
    pub fn can_read(&self, writer: &AvroSchema) -> Result<(), String> {
        SchemaCompatibility::can_read(&writer.schema, &self.schema).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AvroSchema {
        AvroSchema::parse(text, &[]).unwrap()
    }

    const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;

    #[test]
    fn a_field_with_a_default_can_be_added_and_one_without_cannot() {
        let with_default = parse(
            r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"age","type":"int","default":0}]}"#,
        );
        let without = parse(
            r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},
                {"name":"email","type":"string"}]}"#,
        );
        let v1 = parse(V1);
        assert!(with_default.can_read(&v1).is_ok(), "the new reader fills the default");
        let error = without.can_read(&v1).unwrap_err();
        assert!(error.contains("email"), "names the field: {error}");
        assert!(v1.can_read(&without).is_ok(), "the old reader skips the new field");
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        for bad in ["{", r#"{"type":"recod","name":"x"}"#, r#"{"type":"record","fields":[]}"#, "42"] {
            assert!(AvroSchema::parse(bad, &[]).unwrap_err().starts_with("Invalid schema"), "{bad}");
        }
    }

    #[test]
    fn text_is_compact_and_normal_form_is_one_for_equal_schemas() {
        let spaced = parse(
            "{ \"type\" : \"record\", \"name\":\"User\",\n \"fields\":[{\"name\":\"name\",\"type\":\"string\"}] }",
        );
        assert!(!spaced.text(false).contains(' '));
        let primitive = parse(r#"{"type":"string"}"#);
        let short = parse(r#""string""#);
        assert_eq!(primitive.text(true), short.text(true));
    }

    #[test]
    fn references_supply_named_types() {
        let address = Resolved {
            name: "Address".into(),
            schema_type: super::super::SchemaType::Avro,
            schema: r#"{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}"#.into(),
        };
        let user = r#"{"type":"record","name":"User","fields":[{"name":"home","type":"Address"}]}"#;
        assert!(AvroSchema::parse(user, &[]).is_err(), "unknown without the reference");
        assert!(AvroSchema::parse(user, &[address]).is_ok());
    }
}
