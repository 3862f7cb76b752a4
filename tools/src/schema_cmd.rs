//! `sluice schema list|get|register|delete|compat`: the Schema Registry's REST API (ours,
//! or any Confluent-compatible one) from the command line.

use crate::table::print_table;
use serde_json::{json, Value};
use std::io::Read;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Where the registry is.
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// The registry's base URL.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY", default_value = "http://127.0.0.1:8081")]
    registry: String,
}

/// Schema Registry commands.
#[derive(clap::Subcommand)]
pub enum SchemaCommand {
    /// Subjects with their versions, latest id and type.
    List {
        /// Soft-deleted subjects too.
        #[arg(long)]
        deleted: bool,
        /// Only subjects starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print a schema: a subject's version (latest unless `--version`), or `--id N`.
    Get {
        /// The subject (not with `--id`).
        #[arg(required_unless_present = "id", conflicts_with = "id")]
        subject: Option<String>,
        /// The version: a number or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
        /// A schema id instead of a subject.
        #[arg(long)]
        id: Option<i32>,
    },
    /// Register a schema read from FILE (`-`: stdin) under SUBJECT; prints its id.
    Register {
        /// The subject.
        subject: String,
        /// The schema file, or `-` for stdin.
        file: String,
        #[command(flatten)]
        schema: SchemaOptions,
    },
    /// Delete a subject, or one version of it (soft, or `--permanent` once soft-deleted).
    Delete {
        /// The subject.
        subject: String,
        /// Only this version (a number or `latest`).
        #[arg(long)]
        version: Option<String>,
        /// Remove for good (the subject or version must be soft-deleted first).
        #[arg(long)]
        permanent: bool,
    },
    /// Whether the schema in FILE could be registered under SUBJECT (exit status 1 if not),
    /// with the reasons.
    Compat {
        /// The subject.
        subject: String,
        /// The schema file, or `-` for stdin.
        file: String,
        /// Check against this version only, rather than what the subject's level says.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        schema: SchemaOptions,
    },
}

/// How a schema file is sent.
#[derive(clap::Args)]
pub struct SchemaOptions {
    /// AVRO, JSON or PROTOBUF.
    #[arg(long = "type", default_value = "AVRO")]
    schema_type: String,
    /// A reference, `NAME=SUBJECT:VERSION`; repeatable.
    #[arg(long = "reference")]
    references: Vec<String>,
    /// Store the schema's normal form (equal schemas written differently are one).
    #[arg(long)]
    normalize: bool,
}

/// Runs a schema subcommand, printing its result on stdout.
pub fn run(args: RegistryArgs, command: SchemaCommand) -> Result<(), String> {
    let registry = Registry::new(&args.registry);
    match command {
        SchemaCommand::List { deleted, prefix } => list(&registry, deleted, &prefix),
        SchemaCommand::Get { subject: Some(subject), version, id: None } => {
            let found = registry.call("GET", &format!("/subjects/{}/versions/{version}", encode(&subject)), None)?;
            print_schema(&found);
            Ok(())
        }
        SchemaCommand::Get { id: Some(id), .. } => {
            let found = registry.call("GET", &format!("/schemas/ids/{id}"), None)?;
            print_schema(&found);
            Ok(())
        }
        SchemaCommand::Get { .. } => Err("give a subject or --id".into()),
        SchemaCommand::Register { subject, file, schema } => {
            let body = schema.body(&file)?;
            let normalize = schema.normalize;
            let path = format!("/subjects/{}/versions?normalize={normalize}", encode(&subject));
            let answer = registry.call("POST", &path, Some(body))?;
            println!("{}", answer["id"]);
            Ok(())
        }
        SchemaCommand::Delete { subject, version, permanent } => {
            let path = match &version {
                Some(version) => format!("/subjects/{}/versions/{version}?permanent={permanent}", encode(&subject)),
                None => format!("/subjects/{}?permanent={permanent}", encode(&subject)),
            };
            let deleted = registry.call("DELETE", &path, None)?;
            println!("deleted {}", deleted);
            Ok(())
        }
        SchemaCommand::Compat { subject, file, version, schema } => {
            let body = schema.body(&file)?;
            let path = match &version {
                Some(version) => {
                    format!("/compatibility/subjects/{}/versions/{version}?verbose=true", encode(&subject))
                }
                None => format!("/compatibility/subjects/{}/versions?verbose=true", encode(&subject)),
            };
            let answer = registry.call("POST", &path, Some(body))?;
            if answer["is_compatible"] == json!(true) {
                println!("compatible");
                return Ok(());
            }
            let messages: Vec<String> = answer["messages"]
                .as_array()
                .map(|m| m.iter().map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string)).collect())
                .unwrap_or_default();
            Err(format!("incompatible:\n  {}", messages.join("\n  ")))
        }
    }
}

impl SchemaOptions {
    /// The request body: the file's schema, its type and references.
    fn body(&self, file: &str) -> Result<Value, String> {
        let mut text = String::new();
        if file == "-" {
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
        } else {
            text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        }
        let references = self.references.iter().map(|r| parse_reference(r)).collect::<Result<Vec<Value>, String>>()?;
        Ok(json!({ "schema": text, "schemaType": self.schema_type.to_uppercase(), "references": references }))
    }
}

/// `NAME=SUBJECT:VERSION` as the API's reference object.
fn parse_reference(text: &str) -> Result<Value, String> {
    let bad = || format!("reference {text:?}: expected NAME=SUBJECT:VERSION");
    let (name, target) = text.split_once('=').ok_or_else(bad)?;
    let (subject, version) = target.rsplit_once(':').ok_or_else(bad)?;
    let version: i32 = version.parse().map_err(|_| bad())?;
    Ok(json!({ "name": name, "subject": subject, "version": version }))
}

fn list(registry: &Registry, deleted: bool, prefix: &str) -> Result<(), String> {
    let subjects =
        registry.call("GET", &format!("/subjects?deleted={deleted}&subjectPrefix={}", encode(prefix)), None)?;
    let mut rows = Vec::new();
    for subject in subjects.as_array().into_iter().flatten().filter_map(Value::as_str) {
        let versions =
            registry.call("GET", &format!("/subjects/{}/versions?deleted={deleted}", encode(subject)), None)?;
        let latest =
            registry.call("GET", &format!("/subjects/{}/versions/latest?deleted={deleted}", encode(subject)), None)?;
        let numbers: Vec<String> = versions.as_array().into_iter().flatten().map(Value::to_string).collect();
        rows.push(vec![
            subject.to_string(),
            numbers.join(","),
            latest["id"].to_string(),
            latest["schemaType"].as_str().unwrap_or("AVRO").to_string(),
        ]);
    }
    print_table(&["SUBJECT", "VERSIONS", "LATEST-ID", "TYPE"], &rows);
    Ok(())
}

fn print_schema(found: &Value) {
    if let (Some(subject), Some(version)) = (found["subject"].as_str(), found["version"].as_i64()) {
        println!("# subject {subject} version {version} id {}", found["id"]);
    }
    let text = found["schema"].as_str().unwrap_or_default();
    // JSON schemas print indented; Protobuf source as it is.
    match serde_json::from_str::<Value>(text) {
        Ok(parsed) => println!("{}", serde_json::to_string_pretty(&parsed).unwrap_or_else(|_| text.to_string())),
        Err(_) => println!("{text}"),
    }
}

/// Percent-encodes a path segment or query value (subjects may hold any character).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The registry's base URL and a keep-alive HTTP agent.
struct Registry {
    base: String,
    agent: ureq::Agent,
}

impl Registry {
    fn new(base: &str) -> Registry {
        let agent = sluice_bench::registry_load::registry_agent();
        Registry { base: base.trim_end_matches('/').to_string(), agent }
    }

    /// One request; the JSON answer, or the registry's error as `message (error N)`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .content_type(CONTENT_TYPE)
                .send(body.unwrap_or(Value::Null).to_string().as_bytes()),
        };
        let mut response = sent.map_err(|e| format!("cannot reach the schema registry at {}: {e}", self.base))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| format!("{url}: {e}"))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let message = value["message"].as_str().map_or_else(|| value.to_string(), str::to_string);
            return Err(format!("{message} (error {})", value["error_code"]));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_path_segments() {
        assert_eq!(
            parse_reference("acme.Address=address-value:2").unwrap(),
            json!({"name": "acme.Address", "subject": "address-value", "version": 2})
        );
        assert!(parse_reference("nosubject").is_err());
        assert!(parse_reference("a=b:x").is_err());
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
