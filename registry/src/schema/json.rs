//! JSON Schema: documents checked against their draft's meta-schema and compiled with the
//! `jsonschema` crate (references are handed over in memory, nothing is ever fetched), and a
//! structural compatibility check after the rules of Confluent's JSON Schema checker.
//!
//! Compatibility is framed as set inclusion: a reader can read a writer's data when every
//! document valid under the writer is valid under the reader. The check walks both schemas
//! side by side and proves that keyword by keyword; where a construct cannot be compared
//! that way (`if`/`then`/`else`, `unevaluated*` beside applicators, a changed `not`), it answers
//! "incompatible" and says that it did not decide.

use super::{Resolved, SchemaType};
use jsonschema::{Draft, Retrieve, Uri};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

/// A parsed JSON Schema with the documents its `$ref`s may name.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    /// The schema as the client wrote it, without insignificant whitespace.
    compact: String,
    /// The schema itself first, then each reference's document.
    docs: Vec<Document>,
}

/// One JSON document of a schema: the schema itself or a referenced one.
#[derive(Debug, Clone)]
struct Document {
    /// The name a `$ref` uses for it; empty for the schema itself.
    name: String,
    value: Value,
    draft: Draft,
}

impl JsonSchema {
    /// Parses and checks `text`, a JSON Schema document; `references` are the schemas it may
    /// `$ref` by their reference name (references of references included).
    pub fn parse(text: &str, references: &[Resolved]) -> Result<JsonSchema, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("Invalid schema: not JSON: {e}"))?;
        let draft = draft_of(&value).map_err(|why| format!("Invalid schema: {why}"))?;
        meta_validate(&value, draft).map_err(|why| format!("Invalid schema: {why}"))?;
        let mut docs = vec![Document { name: String::new(), value, draft }];
        for reference in references {
            if reference.schema_type != SchemaType::Json {
                return Err(format!(
                    "Invalid schema: reference '{}' is a {} schema, not JSON",
                    reference.name,
                    reference.schema_type.name()
                ));
            }
            let value: Value = serde_json::from_str(&reference.schema)
                .map_err(|e| format!("Invalid schema: reference '{}' is not JSON: {e}", reference.name))?;
            let draft =
                draft_of(&value).map_err(|why| format!("Invalid schema: reference '{}': {why}", reference.name))?;
            docs.push(Document { name: reference.name.clone(), value, draft });
        }
        // Compiling resolves every `$ref`, so a target that is neither in the document nor
        // among the references is refused here rather than when data is validated.
        let supplied = InMemory(docs[1..].iter().map(|doc| (doc.name.clone(), doc.value.clone())).collect());
        jsonschema::options()
            .with_draft(draft)
            .with_retriever(supplied)
            .build(&docs[0].value)
            .map_err(|e| format!("Invalid schema: {e}"))?;
        Ok(JsonSchema { compact: minify(text), docs })
    }

    /// The text to store: the JSON as given without insignificant whitespace, or with
    /// `normalize` a normal form (object keys sorted, compact) so that equal schemas written
    /// differently give one text.
    pub fn text(&self, normalize: bool) -> String {
        if normalize {
            sorted(&self.docs[0].value).to_string()
        } else {
            self.compact.clone()
        }
    }

    /// Whether data written under `writer` is accepted by this (reader) schema: every document
    /// valid under `writer` must be valid under `self`. The error names each rule that breaks
    /// with a JSON-pointer-like path into the schemas.
    pub fn can_read(&self, writer: &JsonSchema) -> Result<(), String> {
        if self.same_documents(writer) {
            return Ok(());
        }
        // Recursive schemas nest the walk deeply; a thread of its own gives it the stack
        // that nesting needs whatever thread calls this.
        let problems = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("json-schema-compat".into())
                .stack_size(CHECK_STACK)
                .spawn_scoped(scope, || Checker::default().check(writer.root(), self.root()))
                .map(|handle| handle.join().unwrap_or_else(|_| vec!["the compatibility check failed".into()]))
                .unwrap_or_else(|e| vec![format!("the compatibility check could not start: {e}")])
        });
        if problems.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let unique: Vec<String> = problems.into_iter().filter(|p| seen.insert(p.clone())).collect();
        Err(unique.join("; "))
    }

    fn root(&self) -> Node<'_> {
        Node { schema: self, doc: 0, value: &self.docs[0].value, mask: ALL_TYPES }
    }

    /// Equal documents under equal names accept the same data, whatever they contain.
    fn same_documents(&self, other: &JsonSchema) -> bool {
        self.docs.len() == other.docs.len()
            && self.docs.iter().zip(&other.docs).all(|(a, b)| a.name == b.name && json_eq(&a.value, &b.value))
    }

    /// The document a `$ref` target (the part before `#`) names: a reference by its name, or
    /// the schema itself by its `$id`. Exact names win over a match on the last path segments,
    /// which lets `address.json` find a reference named by a full URL and the reverse.
    fn find_document(&self, target: &str) -> Option<usize> {
        let target = target.trim_start_matches("./");
        let named = |i: usize| -> Option<&str> {
            let doc = &self.docs[i];
            if i == 0 {
                doc.value.get("$id").or_else(|| doc.value.get("id")).and_then(Value::as_str)
            } else {
                Some(doc.name.as_str())
            }
        };
        let indices = 0..self.docs.len();
        indices
            .clone()
            .find(|&i| named(i).is_some_and(|name| name.trim_start_matches("./") == target))
            .or_else(|| indices.clone().find(|&i| named(i).is_some_and(|name| same_tail(name, target))))
    }

    /// Resolves `reference` (a `$ref` value) from document `doc`: a pointer or anchor into that
    /// document or into a referenced one.
    fn resolve(&self, doc: usize, reference: &str) -> Option<(usize, &Value)> {
        let (target, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = if target.is_empty() { doc } else { self.find_document(target)? };
        let root = &self.docs[doc].value;
        let fragment = percent_decode(fragment);
        let value = if fragment.is_empty() {
            Some(root)
        } else if fragment.starts_with('/') {
            root.pointer(&fragment)
        } else {
            find_anchor(root, &fragment)
        };
        value.map(|value| (doc, value))
    }
}

/// Whether two names end in the same path segments (`address.json` and
/// `https://example.com/schemas/address.json`).
fn same_tail(a: &str, b: &str) -> bool {
    let a = a.trim_start_matches("./");
    let b = b.trim_start_matches("./");
    a.strip_suffix(b).is_some_and(|head| head.ends_with('/'))
        || b.strip_suffix(a).is_some_and(|head| head.ends_with('/'))
}

/// Hands the compiler the referenced documents; any other URI is refused, so that nothing is
/// looked up on the network or the file system.
struct InMemory(Vec<(String, Value)>);

impl Retrieve for InMemory {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        // A relative `$ref` reaches here resolved against the crate's stand-in base URI;
        // without it, it is the name the schema wrote.
        let wanted = uri.as_str().strip_prefix("json-schema:///").unwrap_or(uri.as_str());
        let exact = self.0.iter().find(|(name, _)| name == wanted);
        exact
            .or_else(|| self.0.iter().find(|(name, _)| same_tail(name, wanted)))
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("no reference named '{wanted}' was supplied").into())
    }
}

/// The draft a document is written in: its `$schema`, or draft 7 when it has none (as
/// Confluent's registry assumes).
fn draft_of(value: &Value) -> Result<Draft, String> {
    match value {
        Value::Bool(_) => Ok(Draft::Draft7),
        Value::Object(map) => match Draft::Draft7.detect(value) {
            Draft::Unknown => Err(format!(
                "unknown $schema {}: only drafts 4, 6, 7, 2019-09 and 2020-12 are supported",
                map.get("$schema").map(Value::to_string).unwrap_or_default()
            )),
            draft => Ok(draft),
        },
        _ => Err("a JSON Schema is an object or a boolean".into()),
    }
}

/// Checks `value` against the meta-schema of `draft`.
fn meta_validate(value: &Value, draft: Draft) -> Result<(), String> {
    let result = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validate(value),
        Draft::Draft6 => jsonschema::draft6::meta::validate(value),
        Draft::Draft7 => jsonschema::draft7::meta::validate(value),
        Draft::Draft201909 => jsonschema::draft201909::meta::validate(value),
        _ => jsonschema::draft202012::meta::validate(value),
    };
    result.map_err(|e| {
        let at = e.instance_path().to_string();
        format!("{e} at #{at}")
    })
}

/// `text` (valid JSON) without the whitespace between tokens, keys kept in their order.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// A copy of `value` with every object's keys inserted in sorted order, whichever map
/// serde_json was built with.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Decodes `%XX` escapes of a URI fragment.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The subschema that declares anchor `name` (`$anchor`, or an `$id`/`id` of `#name`).
fn find_anchor<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => {
            let hash_id =
                |key: &str| map.get(key).and_then(Value::as_str).and_then(|id| id.strip_prefix('#')) == Some(name);
            if map.get("$anchor").and_then(Value::as_str) == Some(name) || hash_id("$id") || hash_id("id") {
                return Some(value);
            }
            map.values().find_map(|child| find_anchor(child, name))
        }
        Value::Array(items) => items.iter().find_map(|child| find_anchor(child, name)),
        _ => None,
    }
}

/// JSON equality with numbers compared by value, so that `1` and `1.0` are one.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A schema accepting anything, for what a schema leaves unsaid.
static TRUE: Value = Value::Bool(true);
/// What property names always are.
static STRING: LazyLock<Value> = LazyLock::new(|| serde_json::json!({"type": "string"}));

/// Keywords that constrain the instance itself; compared by [`Checker::base_subset`].
const BASE_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "maxProperties",
    "propertyNames",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// Keywords whose effect this check does not model: a reader is taken to accept the writer's
/// data only where it has them exactly as the writer does.
const UNDECIDED_KEYWORDS: &[&str] = &["if", "then", "else", "$recursiveRef", "$dynamicRef"];

/// Keywords whose subschemas can evaluate properties or items, which makes `unevaluated*`
/// depend on more than the schema's own keywords.
const APPLICATORS: &[&str] =
    &["allOf", "anyOf", "oneOf", "$ref", "$recursiveRef", "$dynamicRef", "if", "dependentSchemas", "dependencies"];

/// Keywords that apply to numbers and strings only, enough to test a scalar enum value.
const SCALAR_KEYWORDS: &[&str] =
    &["minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

/// JSON types as bits; `number` is `NUMBER | INTEGER`, so that an integer is a number.
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const OBJECT: u8 = 4;
const ARRAY: u8 = 8;
const INTEGER: u8 = 16;
const NUMBER: u8 = 32;
const STRING_TYPE: u8 = 64;
const ALL_TYPES: u8 = 127;

/// Most subschema pairs one comparison visits before it gives up undecided.
const STEP_LIMIT: usize = 100_000;
/// Deepest nesting of subschema pairs one comparison follows before it gives up undecided.
const DEPTH_LIMIT: usize = 200;
/// Stack of the thread a comparison runs on: [`DEPTH_LIMIT`] takes under 4 MiB even
/// unoptimized.
const CHECK_STACK: usize = 16 << 20;

/// A node's identity: where its JSON sits in memory, and its mask.
type NodeId = (usize, u8);

/// A subschema with the schema and document it is read in (for `$ref` and draft rules).
#[derive(Clone, Copy)]
struct Node<'a> {
    schema: &'a JsonSchema,
    doc: usize,
    value: &'a Value,
    /// The JSON types looked at: all, or one when a writer allowing several types is
    /// compared type by type against a reader's alternatives.
    mask: u8,
}

impl<'a> Node<'a> {
    fn get(&self, keyword: &str) -> Option<&'a Value> {
        self.value.as_object().and_then(|map| map.get(keyword))
    }

    fn has(&self, keyword: &str) -> bool {
        self.get(keyword).is_some()
    }

    /// A subschema of this one, read in the same document.
    fn child(&self, value: &'a Value) -> Node<'a> {
        Node { value, mask: ALL_TYPES, ..*self }
    }

    /// This schema, looked at for the JSON types `mask` only.
    fn masked(&self, mask: u8) -> Node<'a> {
        Node { mask, ..*self }
    }

    fn draft(&self) -> Draft {
        self.schema.docs[self.doc].draft
    }

    /// Identity for cycle detection: documents do not move while a check runs.
    fn id(&self) -> NodeId {
        (self.value as *const Value as usize, self.mask)
    }

    fn number(&self, keyword: &str) -> Option<f64> {
        self.get(keyword).and_then(Value::as_f64)
    }

    fn object(&self, keyword: &str) -> Option<&'a Map<String, Value>> {
        self.get(keyword).and_then(Value::as_object)
    }

    fn strings(&self, keyword: &str) -> BTreeSet<&'a str> {
        self.get(keyword).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    }

    /// Whether a `$ref` here replaces the whole schema: always before 2019-09, where its
    /// siblings are ignored, and later only when it has no constraining siblings.
    fn ref_replaces(&self) -> bool {
        matches!(self.draft(), Draft::Draft4 | Draft::Draft6 | Draft::Draft7)
            || !self.value.as_object().is_some_and(|map| {
                map.keys().any(|k| {
                    k != "$ref"
                        && (BASE_KEYWORDS.contains(&k.as_str())
                            || UNDECIDED_KEYWORDS.contains(&k.as_str())
                            || matches!(k.as_str(), "allOf" | "anyOf" | "oneOf" | "not"))
                })
            })
    }

    fn has_applicators(&self) -> bool {
        APPLICATORS.iter().any(|k| self.has(k))
    }

    /// The JSON types the schema lets through (all when it names none), within the mask.
    fn types(&self) -> u8 {
        let named = match self.get("type") {
            Some(Value::String(name)) => type_bits(name),
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(type_bits).fold(0, |a, b| a | b),
            _ => ALL_TYPES,
        };
        named & self.mask
    }
}

fn type_bits(name: &str) -> u8 {
    match name {
        "null" => NULL,
        "boolean" => BOOLEAN,
        "object" => OBJECT,
        "array" => ARRAY,
        "integer" => INTEGER,
        "number" => NUMBER | INTEGER,
        "string" => STRING_TYPE,
        _ => 0,
    }
}

/// Type bits as names, for messages.
fn type_names(bits: u8) -> String {
    let mut names = Vec::new();
    for (bit, name) in
        [(NULL, "null"), (BOOLEAN, "boolean"), (OBJECT, "object"), (ARRAY, "array"), (STRING_TYPE, "string")]
    {
        if bits & bit != 0 {
            names.push(name);
        }
    }
    if bits & NUMBER != 0 {
        names.push("number");
    } else if bits & INTEGER != 0 {
        names.push("integer");
    }
    names.join(", ")
}

/// Type bits split into one mask per JSON type (number with its integers).
fn split_types(bits: u8) -> Vec<u8> {
    let number = if bits & NUMBER != 0 { NUMBER | INTEGER } else { INTEGER };
    [NULL, BOOLEAN, OBJECT, ARRAY, number, STRING_TYPE].into_iter().filter(|t| bits & t != 0).collect()
}

/// The type bit of one JSON value.
fn value_type(value: &Value) -> u8 {
    match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
        Value::String(_) => STRING_TYPE,
        Value::Number(n) if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => INTEGER,
        Value::Number(_) => NUMBER,
    }
}

/// Whether a schema accepts every instance (`true`, or nothing but annotations).
fn accepts_everything(node: Node) -> bool {
    if node.mask != ALL_TYPES {
        return false;
    }
    match node.value {
        Value::Bool(b) => *b,
        Value::Object(map) => !map.keys().any(|k| {
            k == "$ref"
                || BASE_KEYWORDS.contains(&k.as_str())
                || UNDECIDED_KEYWORDS.contains(&k.as_str())
                || matches!(k.as_str(), "allOf" | "anyOf" | "oneOf" | "not")
        }),
        _ => false,
    }
}

fn accepts_nothing(node: Node) -> bool {
    node.value == &Value::Bool(false)
}

/// Whether a schema has no subschemas (and no `$ref`): comparing it cannot recurse.
fn is_shallow(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().all(|(key, value)| {
            key != "$ref"
                && !value.is_object()
                && !value.as_array().is_some_and(|items| items.iter().any(Value::is_object))
        }),
        _ => true,
    }
}

/// JSON-pointer escaping of one path segment.
fn segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Whether ECMA regex `pattern` finds a match in `name`, as the validator would decide it;
/// `None` when the pattern does not compile.
fn pattern_matches(pattern: &str, name: &str) -> Option<bool> {
    let validator = jsonschema::validator_for(&serde_json::json!({ "pattern": pattern })).ok()?;
    Some(validator.is_valid(&Value::String(name.to_owned())))
}

/// Whether every multiple of `a` is a multiple of `b`.
fn is_multiple(a: f64, b: f64) -> bool {
    let quotient = a / b;
    quotient >= 1.0 - 1e-9 && (quotient - quotient.round()).abs() < 1e-9
}

/// One conjunct of a schema: a schema accepts what all of its parts accept.
enum Part<'a> {
    /// The schema's own keywords (type, properties, bounds...).
    Base(Node<'a>),
    /// A whole subschema: an `allOf` branch (with its path suffix) or a `$ref` target.
    Whole(Node<'a>, String),
    /// `anyOf` (`one == false`) or `oneOf` alternatives.
    Sum { one: bool, branches: Vec<Node<'a>> },
    /// `not`.
    Not(Node<'a>),
}

/// A numeric bound: its value and whether it is exclusive.
#[derive(Clone, Copy)]
struct Bound {
    value: f64,
    exclusive: bool,
}

impl Bound {
    fn describe(self, upper: bool) -> String {
        let keyword = match (upper, self.exclusive) {
            (true, false) => "maximum",
            (true, true) => "exclusiveMaximum",
            (false, false) => "minimum",
            (false, true) => "exclusiveMinimum",
        };
        format!("{keyword} {}", self.value)
    }
}

/// The tightest upper (`upper`) or lower bound a schema puts on numbers, from `maximum`/
/// `minimum` and `exclusive*` (a number since draft 6, a flag on the bound in draft 4).
fn bound(node: Node, upper: bool) -> Option<Bound> {
    let (plain, exclusive) = if upper { ("maximum", "exclusiveMaximum") } else { ("minimum", "exclusiveMinimum") };
    let mut best = node.number(plain).map(|value| Bound { value, exclusive: false });
    match node.get(exclusive) {
        Some(Value::Bool(true)) => best = best.map(|b| Bound { exclusive: true, ..b }),
        Some(Value::Number(n)) => {
            let candidate = Bound { value: n.as_f64().unwrap_or(0.0), exclusive: true };
            let tighter = match best {
                None => true,
                Some(b) if upper => candidate.value <= b.value,
                Some(b) => candidate.value >= b.value,
            };
            if tighter {
                best = Some(candidate);
            }
        }
        _ => {}
    }
    best
}

/// Walks a writer and a reader schema and collects what the reader rejects.
#[derive(Default)]
struct Checker {
    /// Comparisons under way (`kind`, writer, reader). A pair of schemas met again is a
    /// `$ref` cycle through both and is taken as compatible, the way recursive types are
    /// compared; the other kinds loop through the writer alone, which proves nothing.
    in_progress: HashSet<(u8, NodeId, NodeId)>,
    /// Pairs already found compatible.
    compatible: HashSet<(NodeId, NodeId)>,
    /// Pairs found incompatible without a cut-off, with the path their problems name.
    incompatible: HashMap<(NodeId, NodeId), (String, Vec<String>)>,
    /// How often a cut-off (step or depth limit, a loop through the writer) made a comparison
    /// fail for want of proof; failures found meanwhile may be spurious and are not kept.
    cut_offs: usize,
    steps: usize,
    depth: usize,
    /// Above zero while alternatives are tried, where only whether one fits counts: the walk
    /// then stops at the first problem instead of listing them all.
    probing: usize,
}

impl Checker {
    /// What the writer `w` may hold that the reader `r` rejects, from the roots.
    fn check<'a>(&mut self, w: Node<'a>, r: Node<'a>) -> Vec<String> {
        let problems = self.subset(w, r, "#");
        if self.steps > STEP_LIMIT {
            // Problems found once the budget ran out are mostly the budget's.
            return vec!["the schemas are too large or too recursive to compare; not decided".into()];
        }
        problems
    }

    /// What `w` (writer) may hold that `r` (reader) rejects; empty when `r` accepts all of `w`.
    fn subset<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str) -> Vec<String> {
        self.steps += 1;
        if self.steps > STEP_LIMIT || self.depth >= DEPTH_LIMIT {
            self.cut_offs += 1;
            return vec![format!("the schemas nest too deeply to compare at {path}; not decided")];
        }
        let (w, r) = match (follow(w, path), follow(r, path)) {
            (Ok(w), Ok(r)) => (w, r),
            (Err(why), _) | (_, Err(why)) => return vec![why],
        };
        if accepts_nothing(w) || accepts_everything(r) {
            return Vec::new();
        }
        if accepts_nothing(r) {
            return vec![format!("the reader accepts no value (false) where the writer does at {path}")];
        }
        let key = (w.id(), r.id());
        if let Some((at, problems)) = self.incompatible.get(&key) {
            // Found before elsewhere: the same problems, named from here.
            return problems.iter().map(|p| p.replacen(&format!(" at {at}"), &format!(" at {path}"), 1)).collect();
        }
        if self.compatible.contains(&key) || !self.in_progress.insert((0, key.0, key.1)) {
            return Vec::new();
        }
        let cut_offs = self.cut_offs;
        self.depth += 1;
        let mut problems = Vec::new();
        match parts(r, path) {
            Ok(parts) => {
                for part in &parts {
                    problems.extend(self.within_part(w, part, path));
                    if self.probing > 0 && !problems.is_empty() {
                        break;
                    }
                }
            }
            Err(why) => problems.push(why),
        }
        self.depth -= 1;
        self.in_progress.remove(&(0, key.0, key.1));
        if problems.is_empty() {
            self.compatible.insert(key);
        } else if self.cut_offs == cut_offs {
            self.incompatible.insert(key, (path.to_owned(), problems.clone()));
        }
        problems
    }

    /// Whether to stop looking: an alternative being tried has shown a problem.
    fn stop(&self, problems: &[String]) -> bool {
        self.probing > 0 && !problems.is_empty()
    }

    /// What `w` may hold that one conjunct of the reader rejects.
    fn within_part<'a>(&mut self, w: Node<'a>, part: &Part<'a>, path: &str) -> Vec<String> {
        match part {
            Part::Whole(r, suffix) => self.subset(w, *r, &format!("{path}{suffix}")),
            Part::Base(r) => self.within_base(w, *r, path),
            Part::Sum { one, branches } => self.within_sum(w, *one, branches, path),
            Part::Not(r) => self.within_not(w, *r, path),
        }
    }

    /// Proves `w` within the reader's own keywords `r` through any one conjunct of `w` (a
    /// writer is at least as strict as each of its parts).
    fn within_base<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str) -> Vec<String> {
        let w = match follow(w, path) {
            Ok(w) if accepts_nothing(w) => return Vec::new(),
            Ok(w) => w,
            Err(why) => return vec![why],
        };
        let key = (1, w.id(), r.id());
        if !self.in_progress.insert(key) {
            self.cut_offs += 1;
            return vec![writer_loop(path)];
        }
        let problems = self.within_base_parts(w, r, path);
        self.in_progress.remove(&key);
        problems
    }

    fn within_base_parts<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str) -> Vec<String> {
        let w_parts = match parts(w, path) {
            Ok(parts) => parts,
            Err(why) => return vec![why],
        };
        let mut first: Option<Vec<String>> = None;
        for part in &w_parts {
            let problems = match part {
                Part::Base(wb) => self.base_subset(*wb, r, path),
                Part::Whole(wn, _) => self.within_base(*wn, r, path),
                Part::Sum { branches, .. } => branches.iter().flat_map(|b| self.within_base(*b, r, path)).collect(),
                Part::Not(_) => continue,
            };
            if problems.is_empty() {
                return Vec::new();
            }
            first.get_or_insert(problems);
        }
        first.unwrap_or_else(|| vec![format!("the writer accepts any value but the reader restricts it at {path}")])
    }

    /// Proves `w` within the reader's `anyOf`/`oneOf`: each of the writer's own alternatives
    /// fits one of the reader's, or the writer as a whole fits one.
    fn within_sum<'a>(&mut self, w: Node<'a>, one: bool, branches: &[Node<'a>], path: &str) -> Vec<String> {
        let w = match follow(w, path) {
            Ok(w) if accepts_nothing(w) => return Vec::new(),
            Ok(w) => w,
            Err(why) => return vec![why],
        };
        let keyword = if one { "oneOf" } else { "anyOf" };
        let key = (2, w.id(), branches.first().map_or((0, 0), Node::id));
        if !self.in_progress.insert(key) {
            self.cut_offs += 1;
            return vec![writer_loop(path)];
        }
        let mut fits = false;
        self.probing += 1;
        if let Ok(w_parts) = parts(w, path) {
            for part in &w_parts {
                fits = match part {
                    // A reader's oneOf is stricter than an anyOf of the same branches (an
                    // instance may match two), so it takes only a writer's oneOf or a single
                    // alternative, as Confluent's rules do.
                    Part::Sum { one: w_one, branches: w_branches } if !one || *w_one || w_branches.len() == 1 => {
                        w_branches.iter().enumerate().all(|(k, wb)| {
                            // Likely partners first, an identical alternative (the same `$ref`)
                            // or the one at the same place: evolutions mostly keep or append
                            // alternatives, and recursive schemas then pair up directly.
                            let mut order: Vec<usize> = (0..branches.len()).collect();
                            order.sort_by_key(|&i| (!json_eq(wb.value, branches[i].value), i != k));
                            order
                                .into_iter()
                                .any(|i| self.subset(*wb, branches[i], &format!("{path}/{keyword}/{i}")).is_empty())
                        })
                    }
                    Part::Whole(wn, _) => self.within_sum(*wn, one, branches, path).is_empty(),
                    _ => false,
                };
                if fits {
                    break;
                }
            }
        }
        // A writer of several types (`"type": [...]`, or none) is a union of one schema per
        // type; each may fit a different alternative.
        let split = split_types(w.types());
        if !fits && split.len() > 1 {
            fits = split.iter().all(|&t| {
                let wt = w.masked(t);
                (0..branches.len()).any(|i| self.subset(wt, branches[i], &format!("{path}/{keyword}/{i}")).is_empty())
            });
        }
        if branches.len() == 1 {
            // The single alternative's own problems are the ones to report.
            self.probing -= 1;
        }
        let mut problems = Vec::new();
        if !fits {
            for (i, branch) in branches.iter().enumerate() {
                let found = self.subset(w, *branch, &format!("{path}/{keyword}/{i}"));
                if found.is_empty() {
                    problems.clear();
                    break;
                }
                if branches.len() == 1 {
                    problems = found;
                } else if i == 0 {
                    problems = vec![format!(
                        "what the writer writes is accepted by none of the reader's {keyword} alternatives \
                         (a combined type narrowed or changed) at {path}/{keyword}"
                    )];
                }
            }
        }
        if branches.len() != 1 {
            self.probing -= 1;
        }
        self.in_progress.remove(&key);
        problems
    }

    /// Proves `w` within the reader's `not`: the writer has a `not` at least as wide.
    fn within_not<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str) -> Vec<String> {
        let w = match follow(w, path) {
            Ok(w) if accepts_nothing(w) => return Vec::new(),
            Ok(w) => w,
            Err(why) => return vec![why],
        };
        let key = (3, w.id(), r.id());
        if !self.in_progress.insert(key) {
            self.cut_offs += 1;
            return vec![writer_loop(path)];
        }
        let mut fits = false;
        if let Ok(w_parts) = parts(w, path) {
            for part in &w_parts {
                fits = match part {
                    // Reversed: what the reader excludes must be excluded by the writer too.
                    Part::Not(wn) => self.subset(r, *wn, &format!("{path}/not")).is_empty(),
                    Part::Whole(wn, _) => self.within_not(*wn, r, path).is_empty(),
                    _ => false,
                };
                if fits {
                    break;
                }
            }
        }
        self.in_progress.remove(&key);
        if fits {
            Vec::new()
        } else {
            vec![format!("the reader's 'not' excludes values the writer may write (not type extended) at {path}/not")]
        }
    }

    /// Compares the writer's own keywords `w` with the reader's `r`, keyword family by family.
    fn base_subset<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str) -> Vec<String> {
        self.steps += 1;
        let mut problems = Vec::new();
        for keyword in UNDECIDED_KEYWORDS {
            if let Some(rv) = r.get(keyword) {
                if !w.get(keyword).is_some_and(|wv| same_schema(w.child(wv), r.child(rv), &mut HashSet::new())) {
                    problems.push(format!(
                        "'{keyword}' is added or changed by the reader at {path}/{keyword}; \
                         this registry does not decide its compatibility"
                    ));
                }
            }
        }
        // `unevaluated*` beside subschemas depends on what those evaluate, through every
        // `$ref`: only a reader identical to the writer is known to accept its data.
        let undecided_rest = additional_rule(r).is_none() || item_rules(r).1.is_none();
        if undecided_rest {
            if same_schema(w, r, &mut HashSet::new()) {
                return problems;
            }
            let keyword = if additional_rule(r).is_none() { "unevaluatedProperties" } else { "unevaluatedItems" };
            problems.push(format!(
                "the reader has '{keyword}' beside subschemas and differs from the writer at {path}/{keyword}; \
                 this registry does not decide its compatibility"
            ));
        }

        // A writer limited to a few values is compared value by value.
        if let Some(values) = finite_values(w) {
            for value in values {
                match value_fits(&value, r) {
                    Ok(true) => {}
                    Ok(false) => {
                        problems.push(format!("value {value} of the writer is not accepted by the reader at {path}"))
                    }
                    Err(why) => problems.push(format!("{why} at {path}")),
                }
            }
            return problems;
        }
        if r.has("enum") || r.has("const") {
            let keyword = if r.has("enum") { "enum" } else { "const" };
            problems.push(format!(
                "the reader restricts values with '{keyword}' where the writer does not (enum narrowed) at {path}/{keyword}"
            ));
            return problems;
        }

        let (wt, rt) = (w.types(), r.types());
        if wt & !rt != 0 {
            problems.push(format!(
                "type narrowed: the writer allows {}, the reader only {} at {path}",
                type_names(wt),
                type_names(rt)
            ));
        }
        let shared = wt & rt;
        if shared & STRING_TYPE != 0 {
            string_checks(w, r, path, &mut problems);
        }
        if shared & (NUMBER | INTEGER) != 0 {
            number_checks(w, r, shared & NUMBER == 0, path, &mut problems);
        }
        // Objects and arrays recurse: not worth it once an alternative is known not to fit.
        if shared & OBJECT != 0 && !self.stop(&problems) {
            self.object_checks(w, r, path, &mut problems);
        }
        if shared & ARRAY != 0 && !self.stop(&problems) {
            self.array_checks(w, r, path, &mut problems);
        }
        problems
    }

    /// Properties (declared, by pattern, additional), requirements, dependencies and counts.
    fn object_checks<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str, problems: &mut Vec<String>) {
        let properties_path = format!("{path}/properties");
        let declared: BTreeSet<&str> = [w, r]
            .iter()
            .flat_map(|n| n.object("properties").into_iter().flat_map(|m| m.keys().map(String::as_str)))
            .collect();
        // Properties without subschemas first: a changed leaf then shows before the walk goes
        // down recursive ones, which matters when alternatives are tried.
        let shallow =
            |name: &str| [w, r].iter().all(|n| n.object("properties").and_then(|m| m.get(name)).is_none_or(is_shallow));
        let (first, rest): (Vec<&str>, Vec<&str>) = declared.into_iter().partition(|name| shallow(name));
        for name in first.into_iter().chain(rest) {
            if self.stop(problems) {
                return;
            }
            self.property_check(w, r, name, &properties_path, problems);
        }

        // Required properties: the writer's data may lack what the reader requires. A
        // default on the reader's declaration counts as supplying it, as with Confluent.
        let w_required = w.strings("required");
        for name in r.strings("required") {
            let has_default =
                r.object("properties").and_then(|m| m.get(name)).is_some_and(|s| s.get("default").is_some());
            if !w_required.contains(name) && !has_default {
                problems.push(format!(
                    "property '{name}' is required by the reader but not by the writer at {properties_path}"
                ));
            }
        }

        self.undeclared_checks(w, r, path, problems);
        self.dependency_checks(w, r, path, problems);
        max_check("maxProperties", w, r, path, problems);
        min_check("minProperties", w, r, path, problems);
        if let Some(r_names) = r.get("propertyNames") {
            let w_names = w.get("propertyNames").unwrap_or(&STRING);
            problems.extend(self.subset(w.child(w_names), r.child(r_names), &format!("{path}/propertyNames")));
        }
    }

    /// One property either side declares: every rule the reader applies to it must accept
    /// what the writer's rules let through.
    fn property_check<'a>(&mut self, w: Node<'a>, r: Node<'a>, name: &str, at: &str, problems: &mut Vec<String>) {
        let path = format!("{at}/{}", segment(name));
        // An undecidable reader rule was reported once for the whole object.
        let Some(r_rules) = property_rules(r, name) else { return };
        // An undecidable writer rule may let anything through.
        let w_rules = property_rules(w, name).unwrap_or_else(|| vec![w.child(&TRUE)]);
        let w_declares = w.object("properties").is_some_and(|m| m.contains_key(name));
        let r_declares = r.object("properties").is_some_and(|m| m.contains_key(name));
        for rule in r_rules {
            if accepts_everything(rule) {
                continue;
            }
            let mut first = None;
            let mut fits = false;
            for candidate in &w_rules {
                let found = self.subset(*candidate, rule, &path);
                if found.is_empty() {
                    fits = true;
                    break;
                }
                first.get_or_insert(found);
            }
            if fits {
                continue;
            }
            if !w_declares && w_rules.iter().all(|c| accepts_everything(*c)) {
                problems.push(format!(
                    "property '{name}' is added by the reader to the writer's open content model \
                     (the writer may have written any value under that name) at {at}"
                ));
            } else if !r_declares && accepts_nothing(rule) {
                problems.push(format!(
                    "property '{name}' is removed by the reader, whose content model is closed, at {at}"
                ));
            } else {
                problems.extend(first.unwrap_or_default());
            }
        }
    }

    /// Properties neither side declares: the reader's `patternProperties` and
    /// `additionalProperties` must accept what the writer's let through.
    fn undeclared_checks<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str, problems: &mut Vec<String>) {
        let w_patterns = w.object("patternProperties");
        let w_additional = additional_rule(w).unwrap_or(w.child(&TRUE));
        let r_patterns = r.object("patternProperties");
        for (pattern, schema) in r_patterns.into_iter().flatten() {
            let rule = r.child(schema);
            if accepts_everything(rule) {
                continue;
            }
            let at = format!("{path}/patternProperties/{}", segment(pattern));
            match w_patterns.and_then(|m| m.get(pattern)) {
                Some(same) => problems.extend(self.subset(w.child(same), rule, &at)),
                None => {
                    // Names matching it may fall under any of the writer's rules.
                    let mut found = self.subset(w_additional, rule, &at);
                    for other in w_patterns.into_iter().flat_map(|m| m.values()) {
                        found.extend(self.subset(w.child(other), rule, &at));
                    }
                    if !found.is_empty() {
                        problems
                            .push(format!("patternProperties '{pattern}' is added or narrowed by the reader at {at}"));
                    }
                }
            }
        }
        let at = format!("{path}/additionalProperties");
        let Some(r_additional) = additional_rule(r) else { return };
        if accepts_everything(r_additional) {
            return;
        }
        let mut found = self.subset(w_additional, r_additional, &at);
        for (pattern, schema) in w_patterns.into_iter().flatten() {
            if !r_patterns.is_some_and(|m| m.contains_key(pattern)) {
                found.extend(self.subset(w.child(schema), r_additional, &at));
            }
        }
        if found.is_empty() {
            return;
        }
        if accepts_everything(w_additional) && accepts_nothing(r_additional) {
            problems.push(format!(
                "additional properties are allowed by the writer but not by the reader \
                 (additional properties removed) at {at}"
            ));
        } else if accepts_everything(w_additional) {
            problems.push(format!("additionalProperties is narrowed by the reader at {at}"));
        } else {
            problems.extend(found);
        }
    }

    /// `dependencies`, `dependentRequired`, `dependentSchemas`: the reader may not add or
    /// extend one the writer does not guarantee.
    fn dependency_checks<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str, problems: &mut Vec<String>) {
        let w_required = w.strings("required");
        let w_lists = dependency_lists(w);
        for (property, (keyword, list)) in dependency_lists(r) {
            let guaranteed: BTreeSet<&str> =
                w_lists.get(property).map(|(_, l)| l.clone()).unwrap_or_default().union(&w_required).copied().collect();
            let missing: Vec<&str> = list.difference(&guaranteed).copied().collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "the reader makes '{property}' depend on {missing:?}, the writer does not \
                     (dependency added or extended) at {path}/{keyword}/{}",
                    segment(property)
                ));
            }
        }
        let w_schemas = dependency_schemas(w);
        for (property, (keyword, schema)) in dependency_schemas(r) {
            let rule = r.child(schema);
            let at = format!("{path}/{keyword}/{}", segment(property));
            match w_schemas.get(property) {
                Some((_, same)) => problems.extend(self.subset(w.child(same), rule, &at)),
                None if accepts_everything(rule) => {}
                None => problems.push(format!("a dependency schema for '{property}' is added by the reader at {at}")),
            }
        }
    }

    /// Items position by position, then the rest; counts, uniqueness and `contains`.
    fn array_checks<'a>(&mut self, w: Node<'a>, r: Node<'a>, path: &str, problems: &mut Vec<String>) {
        let (w_prefix, w_rest) = item_rules(w);
        let (r_prefix, r_rest) = item_rules(r);
        let w_rest = w_rest.unwrap_or(w.child(&TRUE));
        for i in 0..w_prefix.len().max(r_prefix.len()) {
            if self.stop(problems) {
                return;
            }
            let at = format!("{path}/items/{i}");
            let writer = w_prefix.get(i).copied().unwrap_or(w_rest);
            let Some(reader) = r_prefix.get(i).copied().or(r_rest) else { continue };
            if accepts_everything(reader) {
                continue;
            }
            let found = self.subset(writer, reader, &at);
            if found.is_empty() {
                continue;
            }
            if i >= w_prefix.len() && accepts_everything(writer) {
                problems.push(format!("item {i} is added by the reader to the writer's open content model at {at}"));
            } else if i >= r_prefix.len() && accepts_nothing(reader) {
                problems.push(format!("item {i} is removed by the reader, whose content model is closed, at {at}"));
            } else {
                problems.extend(found);
            }
        }
        if let Some(reader) = r_rest {
            let keyword = rest_keyword(r);
            problems.extend(self.subset(w_rest, reader, &format!("{path}/{keyword}")));
        }
        max_check("maxItems", w, r, path, problems);
        min_check("minItems", w, r, path, problems);
        if r.get("uniqueItems") == Some(&Value::Bool(true)) && w.get("uniqueItems") != Some(&Value::Bool(true)) {
            problems.push(format!("uniqueItems is added by the reader at {path}/uniqueItems"));
        }
        if let Some(r_contains) = r.get("contains") {
            match w.get("contains") {
                None => problems.push(format!("'contains' is added by the reader at {path}/contains")),
                Some(w_contains) => {
                    problems.extend(self.subset(w.child(w_contains), r.child(r_contains), &format!("{path}/contains")));
                    let (w_min, r_min) =
                        (w.number("minContains").unwrap_or(1.0), r.number("minContains").unwrap_or(1.0));
                    if w_min < r_min {
                        problems
                            .push(format!("minContains is increased by the reader to {r_min} at {path}/minContains"));
                    }
                    if let Some(r_max) = r.number("maxContains") {
                        if w.number("maxContains").is_none_or(|w_max| w_max > r_max) {
                            problems.push(format!(
                                "maxContains is added or decreased by the reader to {r_max} at {path}/maxContains"
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// The problem of a writer whose subschemas lead back to the one being compared.
fn writer_loop(path: &str) -> String {
    format!("the writer's subschemas refer back to themselves at {path}; not decided")
}

/// Follows `$ref`s that stand for the whole schema, guarding against a chain that loops.
fn follow<'a>(mut node: Node<'a>, path: &str) -> Result<Node<'a>, String> {
    let mut seen = HashSet::new();
    while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        if !node.ref_replaces() {
            break;
        }
        if !seen.insert(node.id()) {
            return Err(format!("$ref '{reference}' loops without reaching a schema at {path}; not decided"));
        }
        node = resolve_ref(node, reference, path)?;
    }
    Ok(node)
}

/// The subschema `reference` (a `$ref` written in `node`) points at.
fn resolve_ref<'a>(node: Node<'a>, reference: &str, path: &str) -> Result<Node<'a>, String> {
    match node.schema.resolve(node.doc, reference) {
        Some((doc, value)) => Ok(Node { doc, value, ..node }),
        None => Err(format!("cannot follow $ref '{reference}' at {path}; not decided")),
    }
}

/// Whether two schemas are written the same, the documents their `$ref`s reach included.
fn same_schema(w: Node, r: Node, seen: &mut HashSet<(NodeId, NodeId)>) -> bool {
    if !seen.insert((w.id(), r.id())) {
        return true;
    }
    match (w.value, r.value) {
        (Value::Object(wm), Value::Object(rm)) => {
            wm.len() == rm.len()
                && wm.iter().all(|(key, wv)| {
                    let Some(rv) = rm.get(key) else { return false };
                    match (key.as_str(), wv.as_str(), rv.as_str()) {
                        ("$ref", Some(wr), Some(rr)) => match (resolve_ref(w, wr, ""), resolve_ref(r, rr, "")) {
                            (Ok(wt), Ok(rt)) => same_schema(wt, rt, seen),
                            _ => wr == rr,
                        },
                        _ => same_schema(w.child(wv), r.child(rv), seen),
                    }
                })
        }
        (Value::Array(wa), Value::Array(ra)) => {
            wa.len() == ra.len() && wa.iter().zip(ra).all(|(wv, rv)| same_schema(w.child(wv), r.child(rv), seen))
        }
        (wv, rv) => json_eq(wv, rv),
    }
}

/// The conjuncts of a schema whose whole-schema `$ref`s were followed.
fn parts<'a>(node: Node<'a>, path: &str) -> Result<Vec<Part<'a>>, String> {
    let mut parts = Vec::new();
    if node.value.as_bool().is_some() {
        // `true` has no conjuncts but its mask; `false` is dealt with before parts are asked for.
        if node.mask != ALL_TYPES {
            parts.push(Part::Base(node));
        }
        return Ok(parts);
    }
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        // 2019-09 and later: a `$ref` beside other keywords is one more conjunct.
        parts.push(Part::Whole(resolve_ref(node, reference, path)?, String::new()));
    }
    // A mask is a constraint of its own: the types looked at.
    let own = node.mask != ALL_TYPES
        || node.value.as_object().is_some_and(|map| {
            map.keys().any(|k| BASE_KEYWORDS.contains(&k.as_str()) || UNDECIDED_KEYWORDS.contains(&k.as_str()))
        });
    if own {
        parts.push(Part::Base(node));
    }
    for (i, branch) in node.get("allOf").and_then(Value::as_array).into_iter().flatten().enumerate() {
        parts.push(Part::Whole(node.child(branch), format!("/allOf/{i}")));
    }
    for (keyword, one) in [("anyOf", false), ("oneOf", true)] {
        if let Some(branches) = node.get(keyword).and_then(Value::as_array) {
            parts.push(Part::Sum { one, branches: branches.iter().map(|b| node.child(b)).collect() });
        }
    }
    if let Some(not) = node.get("not") {
        parts.push(Part::Not(node.child(not)));
    }
    Ok(parts)
}

/// The values a writer can write when they are few: its `const` or `enum` (those of its
/// types), or every value of a type that only has a few (null, booleans).
fn finite_values(node: Node) -> Option<Vec<Value>> {
    let types = node.types();
    let listed = node
        .get("const")
        .map(std::slice::from_ref)
        .or_else(|| node.get("enum").and_then(|e| e.as_array().map(Vec::as_slice)));
    if let Some(values) = listed {
        return Some(values.iter().filter(|v| value_type(v) & types != 0).cloned().collect());
    }
    if types & !(NULL | BOOLEAN) == 0 {
        let mut values = Vec::new();
        if types & NULL != 0 {
            values.push(Value::Null);
        }
        if types & BOOLEAN != 0 {
            values.extend([Value::Bool(false), Value::Bool(true)]);
        }
        return Some(values);
    }
    None
}

/// Whether the reader's own keywords `r` accept `value`; `Err` when that takes more than this
/// check models (an object or array value against object or array keywords).
fn value_fits(value: &Value, r: Node) -> Result<bool, String> {
    if r.get("const").is_some_and(|c| !json_eq(c, value)) {
        return Ok(false);
    }
    if r.get("enum").and_then(Value::as_array).is_some_and(|values| !values.iter().any(|v| json_eq(v, value))) {
        return Ok(false);
    }
    let kind = value_type(value);
    if kind & r.types() == 0 {
        return Ok(false);
    }
    if kind & (OBJECT | ARRAY) != 0 {
        let constrains = r.value.as_object().is_some_and(|map| {
            map.keys().any(|k| BASE_KEYWORDS.contains(&k.as_str()) && !matches!(k.as_str(), "type" | "enum" | "const"))
        });
        return if constrains {
            Err(format!("cannot decide whether the reader accepts the writer's value {value}"))
        } else {
            Ok(true)
        };
    }
    let scalar: Map<String, Value> =
        SCALAR_KEYWORDS.iter().filter_map(|k| r.get(k).map(|v| ((*k).to_owned(), v.clone()))).collect();
    if scalar.is_empty() {
        return Ok(true);
    }
    jsonschema::options()
        .with_draft(r.draft())
        .build(&Value::Object(scalar))
        .map(|validator| validator.is_valid(value))
        .map_err(|e| format!("cannot decide whether the reader accepts the writer's value {value} ({e})"))
}

/// Lengths may widen, patterns may go; a reader may not add or change either.
fn string_checks(w: Node, r: Node, path: &str, problems: &mut Vec<String>) {
    max_check("maxLength", w, r, path, problems);
    min_check("minLength", w, r, path, problems);
    if let Some(r_pattern) = r.get("pattern") {
        match w.get("pattern") {
            None => problems.push(format!("pattern {r_pattern} is added by the reader at {path}/pattern")),
            Some(w_pattern) if w_pattern != r_pattern => problems
                .push(format!("pattern is changed from {w_pattern} to {r_pattern} by the reader at {path}/pattern")),
            Some(_) => {}
        }
    }
}

/// Bounds may widen and `multipleOf` may divide the writer's; `integers_only` when the writer
/// writes no fractions, which any `multipleOf` dividing 1 accepts.
fn number_checks(w: Node, r: Node, integers_only: bool, path: &str, problems: &mut Vec<String>) {
    for upper in [true, false] {
        let Some(rb) = bound(r, upper) else { continue };
        let at = format!("{path}/{}", rb.describe(upper).split(' ').next().unwrap_or_default());
        match bound(w, upper) {
            None => problems.push(format!("{} is added by the reader at {at}", rb.describe(upper))),
            Some(wb) => {
                let inside = if upper { wb.value < rb.value } else { wb.value > rb.value };
                let same_edge = wb.value == rb.value && (wb.exclusive || !rb.exclusive);
                if !inside && !same_edge {
                    let direction = if upper { "decreased" } else { "increased" };
                    problems.push(format!(
                        "the {} bound is {direction} by the reader from {} to {} at {at}",
                        if upper { "upper" } else { "lower" },
                        wb.describe(upper),
                        rb.describe(upper)
                    ));
                }
            }
        }
    }
    if let Some(r_multiple) = r.number("multipleOf") {
        let fits = match w.number("multipleOf") {
            Some(w_multiple) => is_multiple(w_multiple, r_multiple),
            None => integers_only && is_multiple(1.0, r_multiple),
        };
        if !fits {
            let was = w.get("multipleOf").map_or_else(|| "none".to_owned(), Value::to_string);
            problems.push(format!(
                "multipleOf is added or changed by the reader from {was} to {r_multiple} at {path}/multipleOf"
            ));
        }
    }
}

/// A reader's upper limit (`maxLength`, `maxItems`...) may not be lower than the writer's.
fn max_check(keyword: &str, w: Node, r: Node, path: &str, problems: &mut Vec<String>) {
    let Some(r_max) = r.get(keyword).filter(|v| v.is_number()) else { return };
    match w.number(keyword) {
        None => problems.push(format!("{keyword} {r_max} is added by the reader at {path}/{keyword}")),
        Some(w_max) if w_max > r_max.as_f64().unwrap_or(f64::INFINITY) => problems.push(format!(
            "{keyword} is decreased from {} to {r_max} by the reader at {path}/{keyword}",
            w.get(keyword).map(Value::to_string).unwrap_or_default()
        )),
        Some(_) => {}
    }
}

/// A reader's lower limit (`minLength`, `minItems`...) may not be higher than the writer's.
fn min_check(keyword: &str, w: Node, r: Node, path: &str, problems: &mut Vec<String>) {
    let Some(r_min) = r.get(keyword).filter(|v| v.as_f64().is_some_and(|m| m > 0.0)) else { return };
    let r_value = r_min.as_f64().unwrap_or(0.0);
    match w.number(keyword) {
        None => problems.push(format!("{keyword} {r_min} is added by the reader at {path}/{keyword}")),
        Some(w_min) if w_min < r_value => problems.push(format!(
            "{keyword} is increased from {} to {r_min} by the reader at {path}/{keyword}",
            w.get(keyword).map(Value::to_string).unwrap_or_default()
        )),
        Some(_) => {}
    }
}

/// Every rule a schema applies to property `name`: its declaration and each matching
/// `patternProperties`, or else the rule for undeclared properties. `None` when that rule is
/// `unevaluatedProperties` beside subschemas, which this check does not model.
fn property_rules<'a>(node: Node<'a>, name: &str) -> Option<Vec<Node<'a>>> {
    let mut rules = Vec::new();
    if let Some(schema) = node.object("properties").and_then(|m| m.get(name)) {
        rules.push(node.child(schema));
    }
    for (pattern, schema) in node.object("patternProperties").into_iter().flatten() {
        // A pattern the validator cannot compile was refused at parse; count it as matching.
        if pattern_matches(pattern, name).unwrap_or(true) {
            rules.push(node.child(schema));
        }
    }
    if !rules.is_empty() {
        return Some(rules);
    }
    additional_rule(node).map(|rule| vec![rule])
}

/// The rule for properties a schema neither declares nor matches by pattern.
fn additional_rule(node: Node) -> Option<Node> {
    if let Some(schema) = node.get("additionalProperties") {
        return Some(node.child(schema));
    }
    match node.get("unevaluatedProperties") {
        None => Some(node.child(&TRUE)),
        Some(schema) if !node.has_applicators() => Some(node.child(schema)),
        Some(_) => None,
    }
}

/// A schema's positional item rules and the rule for the items after them (`None` when that
/// is `unevaluatedItems` beside subschemas). 2020-12 spells them `prefixItems` and `items`;
/// earlier drafts an `items` array and `additionalItems`.
fn item_rules(node: Node) -> (Vec<Node>, Option<Node>) {
    let (prefix, rest) = if node.draft() == Draft::Draft202012 {
        (node.get("prefixItems").and_then(Value::as_array), node.get("items"))
    } else {
        match node.get("items") {
            Some(Value::Array(items)) => (Some(items), node.get("additionalItems")),
            other => (None, other),
        }
    };
    let prefix = prefix.into_iter().flatten().map(|s| node.child(s)).collect();
    let rest = match (rest, node.get("unevaluatedItems")) {
        (Some(schema), _) => Some(node.child(schema)),
        (None, None) => Some(node.child(&TRUE)),
        (None, Some(schema)) if !node.has_applicators() => Some(node.child(schema)),
        (None, Some(_)) => None,
    };
    (prefix, rest)
}

/// The keyword that holds a schema's rule for items after the positional ones.
fn rest_keyword(node: Node) -> &'static str {
    let tuple = node.draft() != Draft::Draft202012 && node.get("items").is_some_and(Value::is_array);
    if tuple {
        "additionalItems"
    } else if node.has("items") || !node.has("unevaluatedItems") {
        "items"
    } else {
        "unevaluatedItems"
    }
}

/// Dependencies by property: the keyword that holds them and the names it then requires.
type Lists<'a> = BTreeMap<&'a str, (&'static str, BTreeSet<&'a str>)>;
/// Dependencies by property: the keyword that holds them and the schema it then applies.
type Schemas<'a> = BTreeMap<&'a str, (&'static str, &'a Value)>;

/// Property dependencies as lists of names: `dependentRequired` and the array form of
/// `dependencies`, keyed by property, with the keyword that holds them.
fn dependency_lists<'a>(node: Node<'a>) -> Lists<'a> {
    let mut lists = Lists::new();
    for keyword in ["dependencies", "dependentRequired"] {
        for (property, value) in node.object(keyword).into_iter().flatten() {
            if let Some(names) = value.as_array() {
                let entry = lists.entry(property.as_str()).or_insert((keyword, BTreeSet::new()));
                entry.1.extend(names.iter().filter_map(Value::as_str));
            }
        }
    }
    lists
}

/// Property dependencies as schemas: `dependentSchemas` and the schema form of `dependencies`.
fn dependency_schemas<'a>(node: Node<'a>) -> Schemas<'a> {
    let mut schemas = Schemas::new();
    for keyword in ["dependencies", "dependentSchemas"] {
        for (property, value) in node.object(keyword).into_iter().flatten() {
            if !value.is_array() {
                schemas.insert(property.as_str(), (keyword, value));
            }
        }
    }
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> JsonSchema {
        JsonSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// `reader.can_read(writer)` for two schema texts.
    fn reads(reader: &str, writer: &str) -> Result<(), String> {
        parse(reader).can_read(&parse(writer))
    }

    fn object(properties: &str, rest: &str) -> String {
        format!(r#"{{"type":"object","properties":{{{properties}}}{rest}}}"#)
    }

    fn reference(name: &str, schema: &str) -> Resolved {
        Resolved { name: name.into(), schema_type: SchemaType::Json, schema: schema.into() }
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        for bad in [
            "{",
            "42",
            r#""string""#,
            r#"{"type":5}"#,
            r#"{"type":"strin"}"#,
            r#"{"properties":{"a":{"minLength":-1}}}"#,
            r#"{"$schema":"http://example.com/my-meta","type":"string"}"#,
            r##"{"properties":{"home":{"$ref":"address.json"}}}"##,
            r##"{"properties":{"home":{"$ref":"#/definitions/missing"}}}"##,
        ] {
            let error = JsonSchema::parse(bad, &[]).unwrap_err();
            assert!(error.starts_with("Invalid schema"), "{bad}: {error}");
        }
        let error = JsonSchema::parse(r#"{"type":5}"#, &[]).unwrap_err();
        assert!(error.contains("/type"), "says where: {error}");
    }

    #[test]
    fn the_draft_comes_from_schema_and_defaults_to_draft_7() {
        // A boolean exclusiveMaximum is draft 4; draft 7 (the default) wants a number.
        let draft4 = r#"{"$schema":"http://json-schema.org/draft-04/schema#","maximum":5,"exclusiveMaximum":true}"#;
        assert!(JsonSchema::parse(draft4, &[]).is_ok());
        assert!(JsonSchema::parse(r#"{"maximum":5,"exclusiveMaximum":true}"#, &[]).is_err());
        assert!(JsonSchema::parse(r#"{"exclusiveMaximum":5}"#, &[]).is_ok());
        let draft2020 =
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","prefixItems":[{"type":"string"}]}"#;
        assert!(JsonSchema::parse(draft2020, &[]).is_ok());
        assert!(JsonSchema::parse("true", &[]).is_ok());
    }

    #[test]
    fn text_is_compact_as_given_and_normal_form_ignores_key_order() {
        let spaced = parse("{ \"type\" : \"object\",\n \"properties\" : { \"a b\" : { \"type\":\"string\" } } }");
        assert_eq!(spaced.text(false), r#"{"type":"object","properties":{"a b":{"type":"string"}}}"#);
        let reordered = parse(r#"{"properties":{"a b":{"type":"string"}},"type":"object"}"#);
        assert_ne!(spaced.text(false), reordered.text(false), "as given keeps the client's order");
        assert_eq!(spaced.text(true), reordered.text(true));
        assert_eq!(spaced.text(true), r#"{"properties":{"a b":{"type":"string"}},"type":"object"}"#);
    }

    #[test]
    fn references_are_resolved_by_name_in_parse_and_compatibility() {
        let user = r##"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"##;
        let v1 = reference("address.json", &object(r#""city":{"type":"string"}"#, r#","additionalProperties":false"#));
        let v2 = reference(
            "address.json",
            &object(r#""city":{"type":"string"},"zip":{"type":"string"}"#, r#","required":["zip"]"#),
        );
        assert!(JsonSchema::parse(user, &[]).is_err(), "unknown without the reference");
        let by_url = reference("https://example.com/schemas/address.json", &v1.schema);
        assert!(JsonSchema::parse(user, std::slice::from_ref(&by_url)).is_ok(), "a full URL name matches its tail");
        let old = JsonSchema::parse(user, std::slice::from_ref(&v1)).unwrap();
        let new = JsonSchema::parse(user, &[v2]).unwrap();
        assert!(old.can_read(&old).is_ok());
        let error = new.can_read(&old).unwrap_err();
        assert!(error.contains("'zip' is required") && error.contains("#/properties/home/properties"), "{error}");
        let avro = Resolved { schema_type: SchemaType::Avro, ..v1 };
        assert!(JsonSchema::parse(user, &[avro]).unwrap_err().starts_with("Invalid schema"));
    }

    #[test]
    fn adding_a_property_depends_on_the_content_model() {
        // Open: the old writer may have put anything under the new name.
        let open_v1 = object(r#""name":{"type":"string"}"#, "");
        let open_v2 = object(r#""name":{"type":"string"},"email":{"type":"string"}"#, "");
        let error = reads(&open_v2, &open_v1).unwrap_err();
        assert!(
            error.contains("property 'email' is added by the reader to the writer's open content model"),
            "{error}"
        );
        assert!(error.contains("at #/properties"), "{error}");
        assert!(reads(&open_v1, &open_v2).is_ok(), "an open reader ignores the property");
        // An empty schema for the new property accepts whatever the writer put there.
        let anything = object(r#""name":{"type":"string"},"email":{}"#, "");
        assert!(reads(&anything, &open_v1).is_ok());

        // Closed: the old writer never wrote it, but the old reader rejects it.
        let closed_v1 = object(r#""name":{"type":"string"}"#, r#","additionalProperties":false"#);
        let closed_v2 =
            object(r#""name":{"type":"string"},"email":{"type":"string"}"#, r#","additionalProperties":false"#);
        assert!(reads(&closed_v2, &closed_v1).is_ok());
        let error = reads(&closed_v1, &closed_v2).unwrap_err();
        assert!(error.contains("property 'email' is removed by the reader, whose content model is closed"), "{error}");

        // Partially open: the new property falls under additionalProperties both ways.
        let partial_v1 = object(r#""name":{"type":"string"}"#, r#","additionalProperties":{"type":"string"}"#);
        let partial_v2 = object(
            r#""name":{"type":"string"},"email":{"type":"string"}"#,
            r#","additionalProperties":{"type":"string"}"#,
        );
        assert!(reads(&partial_v2, &partial_v1).is_ok());
        assert!(reads(&partial_v1, &partial_v2).is_ok());
        let partial_int = object(
            r#""name":{"type":"string"},"age":{"type":"integer"}"#,
            r#","additionalProperties":{"type":"string"}"#,
        );
        assert!(reads(&partial_int, &partial_v1).is_err(), "the writer's extra properties were strings");
    }

    #[test]
    fn required_properties_must_be_guaranteed_by_the_writer() {
        let optional = object(r#""email":{"type":"string"}"#, "");
        let required = object(r#""email":{"type":"string"}"#, r#","required":["email"]"#);
        let error = reads(&required, &optional).unwrap_err();
        assert_eq!(error, "property 'email' is required by the reader but not by the writer at #/properties");
        assert!(reads(&optional, &required).is_ok(), "dropping a requirement is backward compatible");
        let with_default = object(r#""email":{"type":"string","default":""}"#, r#","required":["email"]"#);
        assert!(reads(&with_default, &optional).is_ok(), "a default stands in for a missing value");
    }

    #[test]
    fn types_may_widen_but_not_narrow() {
        let integer = r#"{"type":"integer"}"#;
        let number = r#"{"type":"number"}"#;
        assert!(reads(number, integer).is_ok(), "integer to number widens");
        let error = reads(integer, number).unwrap_err();
        assert!(error.contains("type narrowed") && error.contains("number"), "{error}");
        let nullable = r#"{"type":["string","null"]}"#;
        let string = r#"{"type":"string"}"#;
        assert!(reads(nullable, string).is_ok());
        assert!(reads(string, nullable).is_err());
        assert!(reads(string, number).is_err());
        assert!(reads("{}", number).is_ok(), "an empty reader accepts anything");
        assert!(reads(number, "{}").unwrap_err().contains("accepts any value"));
        assert!(reads(number, "false").is_ok(), "a writer of nothing fits any reader");
    }

    #[test]
    fn enum_values_may_be_added_but_not_removed() {
        let two = r#"{"enum":["red","green"]}"#;
        let three = r#"{"enum":["red","green","blue"]}"#;
        assert!(reads(three, two).is_ok());
        let error = reads(two, three).unwrap_err();
        assert!(error.contains(r#""blue""#), "{error}");
        assert!(reads(r#"{"type":"string"}"#, two).is_ok(), "an enum of strings is a string");
        assert!(reads(r#"{"type":"string","maxLength":3}"#, two).is_err(), "'green' is too long");
        assert!(reads(two, r#"{"type":"string"}"#).unwrap_err().contains("enum narrowed"));
        assert!(reads(r#"{"enum":[true,false,null]}"#, r#"{"type":["boolean","null"]}"#).is_ok());
        let typed = r#"{"type":"string","enum":["a",1]}"#;
        assert!(reads(r#"{"type":"string"}"#, typed).is_ok(), "the writer never writes 1, not a string");
    }

    #[test]
    fn string_constraints_may_loosen_but_not_tighten() {
        let loose = r#"{"type":"string","maxLength":20,"minLength":1}"#;
        let tight = r#"{"type":"string","maxLength":10,"minLength":2}"#;
        assert!(reads(loose, tight).is_ok());
        let error = reads(tight, loose).unwrap_err();
        assert!(error.contains("maxLength is decreased from 20 to 10"), "{error}");
        assert!(error.contains("minLength is increased from 1 to 2"), "{error}");
        assert!(reads(tight, r#"{"type":"string"}"#).unwrap_err().contains("maxLength 10 is added"));
        let pattern = r#"{"type":"string","pattern":"^[a-z]+$"}"#;
        assert!(reads(r#"{"type":"string"}"#, pattern).is_ok(), "pattern removed");
        assert!(reads(pattern, r#"{"type":"string"}"#).unwrap_err().contains("pattern \"^[a-z]+$\" is added"));
        let other = r#"{"type":"string","pattern":"^[a-z]*$"}"#;
        assert!(reads(other, pattern).unwrap_err().contains("pattern is changed"));
    }

    #[test]
    fn number_bounds_and_multiples_may_loosen_but_not_tighten() {
        let wide = r#"{"type":"number","minimum":0,"maximum":100}"#;
        let narrow = r#"{"type":"number","exclusiveMinimum":0,"maximum":50}"#;
        assert!(reads(wide, narrow).is_ok());
        let error = reads(narrow, wide).unwrap_err();
        assert!(error.contains("lower bound is increased") && error.contains("exclusiveMinimum 0"), "{error}");
        assert!(reads(r#"{"type":"number","maximum":10}"#, r#"{"type":"number"}"#)
            .unwrap_err()
            .contains("maximum 10 is added"));
        let draft4 = r#"{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","maximum":50,"exclusiveMaximum":true}"#;
        assert!(
            reads(r#"{"type":"number","exclusiveMaximum":50}"#, draft4).is_ok(),
            "draft 4's flag is the same bound"
        );
        let by_four = r#"{"type":"integer","multipleOf":4}"#;
        let by_two = r#"{"type":"integer","multipleOf":2}"#;
        assert!(reads(by_two, by_four).is_ok());
        assert!(reads(by_four, by_two).unwrap_err().contains("multipleOf"));
        assert!(reads(r#"{"type":"number","multipleOf":1}"#, r#"{"type":"integer"}"#).is_ok());
    }

    #[test]
    fn nested_objects_and_array_items_report_their_path() {
        let v1 = r#"{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}},
            "address":{"type":"object","properties":{"zip":{"type":"integer"}}}}}"#;
        let v2 = r#"{"type":"object","properties":{"tags":{"type":"array","items":{"type":"integer"}},
            "address":{"type":"object","properties":{"zip":{"type":"string"}}}}}"#;
        let error = reads(v2, v1).unwrap_err();
        assert!(error.contains("#/properties/tags/items"), "{error}");
        assert!(error.contains("#/properties/address/properties/zip"), "{error}");
        let wider = r#"{"type":"object","properties":{"tags":{"type":"array","items":{"type":["string","integer"]}},
            "address":{"type":"object","properties":{"zip":{"type":"number"}}}}}"#;
        assert!(reads(wider, v1).is_ok());
        // Tuples: an item the writer leaves open may not be constrained by the reader.
        let pair = r#"{"type":"array","items":[{"type":"string"},{"type":"integer"}]}"#;
        let single = r#"{"type":"array","items":[{"type":"string"}]}"#;
        assert!(reads(single, pair).is_ok());
        assert!(reads(pair, single).unwrap_err().contains("item 1 is added by the reader"));
        let closed = r#"{"type":"array","items":[{"type":"string"}],"additionalItems":false}"#;
        assert!(reads(closed, pair).unwrap_err().contains("item 1 is removed by the reader"));
        assert!(reads(r#"{"type":"array","maxItems":3}"#, r#"{"type":"array","maxItems":5}"#).is_err());
        assert!(reads(r#"{"type":"array","uniqueItems":true}"#, r#"{"type":"array"}"#).is_err());
    }

    #[test]
    fn additional_properties_may_widen_but_not_narrow() {
        let open = object(r#""a":{"type":"string"}"#, "");
        let strings = object(r#""a":{"type":"string"}"#, r#","additionalProperties":{"type":"string"}"#);
        let closed = object(r#""a":{"type":"string"}"#, r#","additionalProperties":false"#);
        assert!(reads(&open, &strings).is_ok());
        assert!(reads(&strings, &closed).is_ok());
        assert!(reads(&strings, &open).unwrap_err().contains("additionalProperties is narrowed"));
        assert!(reads(&closed, &open)
            .unwrap_err()
            .contains("additional properties are allowed by the writer but not by the reader"));
    }

    #[test]
    fn combined_types_follow_sum_and_product_rules() {
        let string = r#"{"type":"string"}"#;
        let either = r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#;
        let any = r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#;
        let three = r#"{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}"#;
        assert!(reads(either, string).is_ok(), "a type becomes one alternative");
        assert!(reads(string, either).is_err(), "an alternative is dropped");
        assert!(reads(three, either).is_ok(), "sum type extended");
        assert!(reads(either, three).unwrap_err().contains("none of the reader's oneOf alternatives"));
        assert!(reads(any, either).is_ok(), "oneOf to anyOf");
        assert!(reads(either, any).is_err(), "anyOf to oneOf is not allowed");
        let both = r#"{"allOf":[{"type":"string"},{"maxLength":5}]}"#;
        let one = r#"{"allOf":[{"type":"string"}]}"#;
        assert!(reads(one, both).is_ok(), "product type narrowed");
        assert!(reads(both, one).unwrap_err().contains("#/allOf/1"), "product type extended");
        assert!(reads(string, both).is_ok());
        // A writer whose allOf refers back to itself proves nothing by that loop.
        let looping = r##"{"allOf":[{"$ref":"#"}],"type":"integer"}"##;
        assert!(reads(r#"{"type":"string"}"#, looping).is_err());
        assert!(reads(r#"{"type":"number"}"#, looping).is_ok());
        // A type array is a union of its types, as Confluent reads it.
        let nullable = r#"{"type":["string","null"]}"#;
        let alternatives = r#"{"anyOf":[{"type":"null"},{"type":"string","maxLength":9}]}"#;
        assert!(reads(r#"{"anyOf":[{"type":"null"},{"type":"string"}]}"#, nullable).is_ok());
        assert!(reads(nullable, r#"{"anyOf":[{"type":"null"},{"type":"string"}]}"#).is_ok());
        assert!(reads(alternatives, nullable).is_err(), "maxLength is added to the string alternative");
    }

    #[test]
    fn not_may_narrow_but_not_widen() {
        let not_string = r#"{"not":{"type":"string"}}"#;
        let not_text = r#"{"not":{"type":["string","null"]}}"#;
        assert!(reads(not_string, not_text).is_ok(), "the reader excludes less");
        assert!(reads(not_text, not_string).unwrap_err().contains("#/not"));
        assert!(reads(not_string, r#"{"type":"integer"}"#).is_err(), "a new 'not' is not decided");
    }

    #[test]
    fn dependencies_may_be_dropped_but_not_added() {
        let none = object(r#""card":{"type":"string"},"billing":{"type":"string"}"#, "");
        let array = object(
            r#""card":{"type":"string"},"billing":{"type":"string"}"#,
            r#","dependencies":{"card":["billing"]}"#,
        );
        assert!(reads(&none, &array).is_ok());
        assert!(reads(&array, &none).unwrap_err().contains("#/dependencies/card"));
        let schema = object(
            r#""card":{"type":"string"},"billing":{"type":"string"}"#,
            r#","dependencies":{"card":{"required":["billing"]}}"#,
        );
        assert!(reads(&none, &schema).is_ok());
        assert!(reads(&schema, &none).unwrap_err().contains("dependency schema for 'card'"));
        assert!(reads(&schema, &schema).is_ok());
    }

    #[test]
    fn local_refs_are_followed_and_cycles_end() {
        let tree = |value: &str| {
            format!(
                r##"{{"definitions":{{"node":{{"type":"object","properties":{{"value":{{"type":"{value}"}},
                "children":{{"type":"array","items":{{"$ref":"#/definitions/node"}}}}}}}}}},
                "$ref":"#/definitions/node"}}"##
            )
        };
        let integers = tree("integer");
        let numbers = tree("number");
        assert!(reads(&numbers, &integers).is_ok());
        let error = reads(&integers, &numbers).unwrap_err();
        assert!(error.contains("#/properties/value"), "{error}");
        let defs = r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","$defs":{"id":{"type":"integer"}},
            "type":"object","properties":{"id":{"$ref":"#/$defs/id","minimum":1}}}"##;
        let plain = r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#;
        assert!(reads(plain, defs).is_ok(), "a $ref with siblings is a conjunct in 2019-09 and later");
        assert!(reads(defs, plain).unwrap_err().contains("minimum 1 is added"));
    }

    #[test]
    fn mutually_recursive_alternatives_are_compared_quickly() {
        // 40 definitions, each pointing at two others through an anyOf: pairing alternatives
        // blindly would explore every pair of definitions, nested.
        let chain = |value: &str, null_first: bool| {
            let definitions: Vec<String> = (0..40)
                .map(|i| {
                    let refs = format!(
                        r##"{{"$ref":"#/definitions/d{}"}},{{"$ref":"#/definitions/d{}"}}"##,
                        (i + 1) % 40,
                        (i + 7) % 40
                    );
                    let next = if null_first { format!(r#"{{"type":"null"}},{refs}"#) } else { format!(r#"{refs},{{"type":"null"}}"#) };
                    format!(r#""d{i}":{{"type":"object","properties":{{"v":{{"type":"{value}"}},"next":{{"anyOf":[{next}]}}}}}}"#)
                })
                .collect();
            format!(r##"{{"definitions":{{{}}},"$ref":"#/definitions/d0"}}"##, definitions.join(","))
        };
        let integers = chain("integer", true);
        let numbers = chain("number", true);
        let reordered = chain("number", false);
        assert!(reads(&numbers, &integers).is_ok());
        assert!(reads(&reordered, &integers).is_ok(), "alternatives reordered");
        let error = reads(&integers, &reordered).unwrap_err();
        assert!(
            error.starts_with("type narrowed: the writer allows number, the reader only integer at #/properties/v"),
            "{error}"
        );
    }

    #[test]
    fn constructs_not_modelled_are_refused_with_a_reason() {
        let conditional = r#"{"if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["a"]}}"#;
        let other = r#"{"if":{"properties":{"kind":{"const":"b"}}},"then":{"required":["b"]}}"#;
        assert!(reads(conditional, conditional).is_ok());
        assert!(reads(conditional, other).unwrap_err().contains("does not decide"));
        assert!(reads("{}", conditional).is_ok(), "dropping a condition only widens");

        // unevaluatedProperties beside a $ref: decided only when nothing changed, through the
        // referenced definition too.
        let sealed = |kind: &str| {
            format!(
                r##"{{"$schema":"https://json-schema.org/draft/2020-12/schema",
                "$defs":{{"base":{{"properties":{{"id":{{"type":"{kind}"}}}}}}}},
                "type":"object","$ref":"#/$defs/base","unevaluatedProperties":false}}"##
            )
        };
        assert!(reads(&sealed("integer"), &sealed("integer")).is_ok());
        let error = reads(&sealed("number"), &sealed("integer")).unwrap_err();
        assert!(error.contains("unevaluatedProperties") && error.contains("does not decide"), "{error}");
    }

    #[test]
    fn equal_schemas_are_always_compatible() {
        let text = r##"{"type":"object","properties":{"a":{"anyOf":[{"type":"string"},{"$ref":"#"}]},
            "b":{"type":"array","items":{"enum":[1,2]},"contains":{"const":1}}},
            "patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false,"required":["a"]}"##;
        let schema = parse(text);
        assert!(schema.can_read(&schema).is_ok());
        let mut checker = Checker::default();
        assert_eq!(
            checker.subset(schema.root(), schema.root(), "#"),
            Vec::<String>::new(),
            "also without the shortcut"
        );
    }
}
