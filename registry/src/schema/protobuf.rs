//! Protobuf schemas: `.proto` source compiled in memory with `protox` (a protobuf
//! compiler written in Rust), its imports supplied by the schema's references.
//! Compatibility follows the rule families of Confluent's Protobuf checker, each stated
//! here as what a reader needs from the bytes a writer produced.

use super::Resolved;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use protox::prost_reflect::prost::Message as _;
use protox::prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use protox::prost_reflect::prost_types::{FieldDescriptorProto, FileDescriptorProto};
use protox::prost_reflect::{
    DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
    ServiceDescriptor, Syntax, Value,
};
use std::collections::{HashMap, HashSet};

/// A compiled Protobuf schema with its source.
#[derive(Debug, Clone)]
pub struct ProtobufSchema {
    /// The `.proto` text as the client sent it.
    source: String,
    /// The schema's own file, in a pool that also holds every file it imports.
    file: FileDescriptor,
}

impl ProtobufSchema {
    /// Parses and checks `text` (`.proto` source, proto2 or proto3); `references` are the
    /// files it imports, each named by its import path (e.g. `acme/address.proto`). The
    /// well-known `google/protobuf/*.proto` files need no reference.
    ///
    /// A schema may also come as a base64-encoded `FileDescriptorProto` (what Confluent's
    /// serializers send): it is turned into `.proto` text first, which is what is stored.
    pub fn parse(text: &str, references: &[Resolved]) -> Result<ProtobufSchema, String> {
        match serialized_descriptor(text) {
            Some(descriptor) => Self::parse_source(&source_of(descriptor, references)?, references),
            None => Self::parse_source(text, references),
        }
    }

    fn parse_source(text: &str, references: &[Resolved]) -> Result<ProtobufSchema, String> {
        // protox parses recursively: a schema nested thousands deep would overflow the
        // stack and take the broker down with it, so depth is checked first.
        let depth = nesting_depth(text);
        if depth > NESTING_MAX {
            return Err(format!("Invalid schema: nested {depth} deep (at most {NESTING_MAX})"));
        }
        let mut sources: HashMap<String, String> =
            references.iter().map(|r| (r.name.clone(), r.schema.clone())).collect();
        // The schema needs a file name of its own; a reference may already hold the usual one.
        let root = (0..)
            .map(|i| if i == 0 { "schema.proto".to_owned() } else { format!("schema_{i}.proto") })
            .find(|name| !sources.contains_key(name))
            .unwrap_or_default();
        sources.insert(root.clone(), text.to_owned());
        let mut resolver = ChainFileResolver::new();
        resolver.add(Sources(sources));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        // The compiler's Debug form is its message with the file, line and column.
        compiler.open_file(&root).map_err(|e| format!("Invalid schema: {e:?}"))?;
        let file = compiler
            .descriptor_pool()
            .get_file_by_name(&root)
            .ok_or_else(|| "Invalid schema: the compiler lost the schema's file".to_owned())?;
        Ok(ProtobufSchema { source: text.to_owned(), file })
    }

    /// The text to store: the source as given, or with `normalize` the file re-printed
    /// from its descriptor in one layout (no comments; full type names; fields, oneofs,
    /// options, imports, enums, services and reserved ranges in a fixed order). Messages
    /// keep their order, since it is meaningful: the first message is the record type,
    /// and Confluent's serializers name a message by its position.
    pub fn text(&self, normalize: bool) -> String {
        if normalize {
            Printer::default().file(&self.file)
        } else {
            self.source.clone()
        }
    }

    /// The schema as a base64-encoded `FileDescriptorProto`: the REST API's
    /// `format=serialized`, which Confluent's deserializers ask for.
    pub fn serialized(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.file.file_descriptor_proto().encode_to_vec())
    }

    /// Whether messages written with `writer` can be read with this schema: every message
    /// the writer's file declares must still be there (by name), and each, with every
    /// message its fields reach, must decode the writer's bytes. The error lists what
    /// breaks, naming message and field.
    pub fn can_read(&self, writer: &ProtobufSchema) -> Result<(), String> {
        let mut check = Check::default();
        check.files(&self.file, &writer.file);
        if check.problems.is_empty() {
            Ok(())
        } else {
            Err(check.problems.join("; "))
        }
    }
}

/// The descriptor a schema text holds when it is a base64-encoded `FileDescriptorProto`
/// rather than `.proto` source (source always has a `;` or a space, base64 neither).
fn serialized_descriptor(text: &str) -> Option<FileDescriptorProto> {
    use base64::Engine;
    let text = text.trim();
    if text.is_empty() || text.contains(|c: char| c == ';' || c.is_whitespace()) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// `.proto` text for a descriptor, its imports resolved from the references (or the
/// well-known files): the descriptor is added to a pool holding them, then printed.
fn source_of(descriptor: FileDescriptorProto, references: &[Resolved]) -> Result<String, String> {
    let sources: HashMap<String, String> = references.iter().map(|r| (r.name.clone(), r.schema.clone())).collect();
    let mut resolver = ChainFileResolver::new();
    resolver.add(Sources(sources));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_files(&descriptor.dependency).map_err(|e| format!("Invalid schema: {e:?}"))?;
    let mut pool = compiler.descriptor_pool();
    let name = descriptor.name().to_owned();
    pool.add_file_descriptor_proto(descriptor).map_err(|e| format!("Invalid schema: {e}"))?;
    let file =
        pool.get_file_by_name(&name).ok_or_else(|| "Invalid schema: the descriptor's file is lost".to_owned())?;
    Ok(Printer::default().file(&file))
}

/// The deepest nesting a schema may have (messages in messages, option literals).
const NESTING_MAX: usize = 64;

/// How deep `{` and `[` nest in `.proto` source, outside string literals and comments.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                // A string literal: skip to its closing quote (escapes included).
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        quote if quote == c => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for inner in chars.by_ref() {
                    if previous == '*' && inner == '/' {
                        break;
                    }
                    previous = inner;
                }
            }
            '{' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Files by import path: the schema and its references; nothing comes from disk.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A compatibility check in progress: what breaks so far, and the message pairs already
/// compared (recursive types would otherwise loop).
#[derive(Default)]
struct Check {
    problems: Vec<String>,
    compared: HashSet<(String, String)>,
}

/// What a field holds, as far as the wire cares.
enum Shape {
    Scalar(Kind),
    Message(MessageDescriptor),
    Group(MessageDescriptor),
    Map(Box<Shape>, Box<Shape>),
}

impl Check {
    fn files(&mut self, reader: &FileDescriptor, writer: &FileDescriptor) {
        // Confluent refuses a package change: message names, and `Any` type URLs, change.
        if reader.package_name() != writer.package_name() {
            self.problems.push(format!(
                "package changed from {} to {}",
                package_label(writer.package_name()),
                package_label(reader.package_name())
            ));
        }
        // The writer may have written any of its messages (Confluent's serializers record
        // which one); each must still be there under its name.
        for written in writer.messages() {
            match reader.messages().find(|read| read.name() == written.name()) {
                Some(read) => self.messages(&read, &written),
                None => self.problems.push(format!("message {} was removed", written.full_name())),
            }
        }
    }

    fn messages(&mut self, reader: &MessageDescriptor, writer: &MessageDescriptor) {
        if !self.compared.insert((reader.full_name().to_owned(), writer.full_name().to_owned())) {
            return;
        }
        for written in by_number(writer.fields()) {
            match reader.get_field(written.number()) {
                Some(read) => self.fields(&read, &written, writer),
                // This reader would skip it, but Confluent refuses the change: required is
                // forever, since readers of the writer's schema still insist on the field.
                None if written.is_required() => {
                    self.problems.push(format!("required {} was removed", field_label(&written, writer)))
                }
                // Unknown fields are skipped by the reader.
                None => {}
            }
        }
        // The reader fails on a message that lacks a field it requires.
        for read in by_number(reader.fields()).into_iter().filter(FieldDescriptor::is_required) {
            match writer.get_field(read.number()) {
                None => self.problems.push(format!(
                    "{} is required, and the writer has no field {}",
                    field_label(&read, reader),
                    read.number()
                )),
                Some(written) if !written.is_required() => self
                    .problems
                    .push(format!("{} is required, and optional in the writer", field_label(&read, reader))),
                Some(_) => {}
            }
        }
        self.oneofs(reader, writer);
        for written in writer.child_messages().filter(|m| !m.is_map_entry()) {
            match reader.child_messages().find(|read| read.name() == written.name()) {
                Some(read) => self.messages(&read, &written),
                None => self.problems.push(format!("message {} was removed", written.full_name())),
            }
        }
    }

    /// Oneof membership: the writer may set every field it has apart, while the reader
    /// keeps one per oneof and drops the others.
    fn oneofs(&mut self, reader: &MessageDescriptor, writer: &MessageDescriptor) {
        for written in writer.oneofs().filter(|o| !o.is_synthetic()) {
            let kept = reader.oneofs().any(|read| !read.is_synthetic() && read.name() == written.name());
            if !kept {
                // A oneof dropped with all its fields is a set of removed optional fields.
                continue;
            }
            for field in written.fields() {
                if reader.get_field(field.number()).is_none() {
                    self.problems.push(format!(
                        "{} was removed from oneof {}",
                        field_label(&field, writer),
                        written.name()
                    ));
                }
            }
        }
        for read in reader.oneofs().filter(|o| !o.is_synthetic()) {
            let mut moved = Vec::new();
            let mut from_oneofs = 0;
            for field in read.fields() {
                match writer.get_field(field.number()) {
                    Some(written) if in_oneof(&written) => from_oneofs += 1,
                    Some(written) => moved.push(format!("{} ({})", written.number(), written.name())),
                    None => {}
                }
            }
            if moved.len() > 1 {
                self.problems.push(format!(
                    "fields {} of {} moved into oneof {}",
                    moved.join(", "),
                    writer.full_name(),
                    read.name()
                ));
            } else if moved.len() == 1 && from_oneofs > 0 {
                self.problems.push(format!(
                    "field {} of {} moved into oneof {}, which holds fields of the writer's oneofs",
                    moved[0],
                    writer.full_name(),
                    read.name()
                ));
            }
        }
    }

    fn fields(&mut self, reader: &FieldDescriptor, writer: &FieldDescriptor, writer_message: &MessageDescriptor) {
        let (read, written) = (shape(reader), shape(writer));
        if !self.shapes(&read, &written) {
            self.problems.push(format!(
                "{} changed type from {} to {}",
                field_label(writer, writer_message),
                describe(&written),
                describe(&read)
            ));
        }
    }

    /// Whether values of `writer` decode as `reader`; the contents of messages of the same
    /// name are compared on the way, their problems reported on their own.
    fn shapes(&mut self, reader: &Shape, writer: &Shape) -> bool {
        match (reader, writer) {
            (Shape::Scalar(read), Shape::Scalar(written)) => wire_group(read) == wire_group(written),
            (Shape::Message(read), Shape::Message(written)) | (Shape::Group(read), Shape::Group(written)) => {
                // Names are compared without the package, as Confluent does: the same
                // message may come from a reference in another package.
                if local_name(read.full_name(), read.package_name())
                    != local_name(written.full_name(), written.package_name())
                {
                    return false;
                }
                self.messages(read, written);
                true
            }
            (Shape::Map(read_key, read_value), Shape::Map(written_key, written_value)) => {
                self.shapes(read_key, written_key) && self.shapes(read_value, written_value)
            }
            _ => false,
        }
    }
}

/// Scalars that share an encoding and read each other's values (Protobuf's "updating a
/// message type" rules, as Confluent groups them): an enum is a varint.
fn wire_group(kind: &Kind) -> u8 {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::String | Kind::Bytes => 2,
        Kind::Fixed32 | Kind::Sfixed32 => 3,
        Kind::Fixed64 | Kind::Sfixed64 => 4,
        Kind::Float => 5,
        Kind::Double => 6,
        Kind::Message(_) => 7,
    }
}

fn shape(field: &FieldDescriptor) -> Shape {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => {
            Shape::Map(Box::new(shape(&entry.map_entry_key_field())), Box::new(shape(&entry.map_entry_value_field())))
        }
        Kind::Message(message) if field.is_group() => Shape::Group(message),
        Kind::Message(message) => Shape::Message(message),
        scalar => Shape::Scalar(scalar),
    }
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Scalar(kind) => kind_name(kind),
        Shape::Message(message) => message.full_name().to_owned(),
        Shape::Group(message) => format!("group {}", message.full_name()),
        Shape::Map(key, value) => format!("map<{}, {}>", describe(key), describe(value)),
    }
}

/// A type as a `.proto` names it; message and enum types by full name, without the dot.
fn kind_name(kind: &Kind) -> String {
    let name = match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(message) => return message.full_name().to_owned(),
        Kind::Enum(enumeration) => return enumeration.full_name().to_owned(),
    };
    name.to_owned()
}

fn field_label(field: &FieldDescriptor, message: &MessageDescriptor) -> String {
    format!("field {} ({}) of {}", field.number(), field.name(), message.full_name())
}

fn package_label(package: &str) -> String {
    if package.is_empty() {
        "(none)".to_owned()
    } else {
        package.to_owned()
    }
}

fn local_name<'a>(full_name: &'a str, package: &str) -> &'a str {
    if package.is_empty() {
        return full_name;
    }
    full_name.strip_prefix(package).and_then(|rest| rest.strip_prefix('.')).unwrap_or(full_name)
}

/// Whether `field` is in a oneof the schema declares (not one made for proto3 `optional`).
fn in_oneof(field: &FieldDescriptor) -> bool {
    field.containing_oneof().is_some_and(|oneof| !oneof.is_synthetic())
}

fn by_number(fields: impl Iterator<Item = FieldDescriptor>) -> Vec<FieldDescriptor> {
    let mut fields: Vec<FieldDescriptor> = fields.collect();
    fields.sort_by_key(FieldDescriptor::number);
    fields
}

/// Writes a file descriptor back as `.proto` text in the normal form's layout.
#[derive(Default)]
struct Printer {
    out: String,
    depth: usize,
}

impl Printer {
    fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn open(&mut self, text: &str) {
        self.line(&format!("{text} {{"));
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }

    fn options(&mut self, options: &DynamicMessage) {
        for entry in option_entries(options) {
            self.line(&format!("option {entry};"));
        }
    }

    fn file(mut self, file: &FileDescriptor) -> String {
        let proto = file.file_descriptor_proto();
        let proto3 = file.syntax() == Syntax::Proto3;
        self.line(if proto3 { "syntax = \"proto3\";" } else { "syntax = \"proto2\";" });
        if !file.package_name().is_empty() {
            self.line(&format!("package {};", file.package_name()));
        }
        let mut imports: Vec<String> = proto
            .dependency
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let index = i32::try_from(index).unwrap_or(i32::MAX);
                let kind = if proto.public_dependency.contains(&index) {
                    "public "
                } else if proto.weak_dependency.contains(&index) {
                    "weak "
                } else {
                    ""
                };
                format!("import {kind}{};", quote(name.as_bytes(), true))
            })
            .collect();
        imports.sort();
        imports.dedup();
        if !imports.is_empty() {
            self.out.push('\n');
            imports.iter().for_each(|import| self.line(import));
        }
        let options = option_entries(&file.options());
        if !options.is_empty() {
            self.out.push('\n');
            options.iter().for_each(|entry| self.line(&format!("option {entry};")));
        }
        let groups = group_types(std::iter::empty(), file.extensions());
        for message in file.messages().filter(|m| !groups.contains(m.full_name())) {
            self.out.push('\n');
            self.message(&message, proto3);
        }
        for enumeration in by_name(file.enums(), |e| e.name().to_owned()) {
            self.out.push('\n');
            self.enumeration(&enumeration);
        }
        if file.extensions().len() > 0 {
            self.out.push('\n');
            self.extends(file.extensions(), proto3);
        }
        for service in by_name(file.services(), |s| s.name().to_owned()) {
            self.out.push('\n');
            self.service(&service);
        }
        self.out
    }

    fn message(&mut self, message: &MessageDescriptor, proto3: bool) {
        self.open(&format!("message {}", message.name()));
        self.message_body(message, proto3);
        self.close();
    }

    fn message_body(&mut self, message: &MessageDescriptor, proto3: bool) {
        self.options(&message.options());
        for field in by_number(message.fields()).iter().filter(|f| !in_oneof(f)) {
            self.field(field, proto3, false);
        }
        let mut oneofs: Vec<_> = message.oneofs().filter(|o| !o.is_synthetic()).collect();
        oneofs.sort_by_key(|oneof| oneof.fields().map(|f| f.number()).min());
        for oneof in oneofs {
            self.open(&format!("oneof {}", oneof.name()));
            self.options(&oneof.options());
            for field in by_number(oneof.fields()) {
                self.field(&field, proto3, true);
            }
            self.close();
        }
        let proto = message.descriptor_proto();
        let mut extensions: Vec<(i32, i32)> = proto.extension_range.iter().map(|r| (r.start(), r.end() - 1)).collect();
        extensions.sort_unstable();
        if !extensions.is_empty() {
            self.line(&format!("extensions {};", ranges(&extensions)));
        }
        let mut reserved: Vec<(i32, i32)> = proto.reserved_range.iter().map(|r| (r.start(), r.end() - 1)).collect();
        reserved.sort_unstable();
        if !reserved.is_empty() {
            self.line(&format!("reserved {};", ranges(&reserved)));
        }
        if !proto.reserved_name.is_empty() {
            self.line(&format!("reserved {};", names(&proto.reserved_name)));
        }
        let groups = group_types(message.fields(), message.child_extensions());
        for nested in message.child_messages().filter(|m| !m.is_map_entry() && !groups.contains(m.full_name())) {
            self.message(&nested, proto3);
        }
        for enumeration in by_name(message.child_enums(), |e| e.name().to_owned()) {
            self.enumeration(&enumeration);
        }
        self.extends(message.child_extensions(), proto3);
    }

    fn field(&mut self, field: &FieldDescriptor, proto3: bool, in_oneof: bool) {
        let proto = field.field_descriptor_proto();
        let label = if in_oneof || field.is_map() { "" } else { label(proto, proto3) };
        let mut options = option_entries(&field.options());
        if let Some(default) = &proto.default_value {
            options.push(format!("default = {}", default_value(proto, default)));
        }
        if field.json_name() != default_json_name(field.name()) {
            options.push(format!("json_name = {}", quote(field.json_name().as_bytes(), true)));
        }
        options.sort();
        let options = bracketed(&options);
        match field.kind() {
            Kind::Message(group) if field.is_group() => {
                self.open(&format!("{label}group {} = {}{options}", group.name(), field.number()));
                self.message_body(&group, proto3);
                self.close();
            }
            Kind::Message(entry) if field.is_map() => {
                let key = type_name(&entry.map_entry_key_field().kind());
                let value = type_name(&entry.map_entry_value_field().kind());
                self.line(&format!("map<{key}, {value}> {} = {}{options};", field.name(), field.number()));
            }
            kind => self.line(&format!("{label}{} {} = {}{options};", type_name(&kind), field.name(), field.number())),
        }
    }

    /// `extend` blocks for `extensions`, one per extended message, in name order.
    fn extends(&mut self, extensions: impl Iterator<Item = ExtensionDescriptor>, proto3: bool) {
        let mut extensions: Vec<ExtensionDescriptor> = extensions.collect();
        extensions.sort_by(|a, b| {
            (a.containing_message().full_name(), a.number()).cmp(&(b.containing_message().full_name(), b.number()))
        });
        let mut open: Option<String> = None;
        for extension in extensions {
            let extended = extension.containing_message().full_name().to_owned();
            if open.as_deref() != Some(extended.as_str()) {
                if open.is_some() {
                    self.close();
                }
                self.open(&format!("extend .{extended}"));
                open = Some(extended);
            }
            let proto = extension.field_descriptor_proto();
            let mut options = option_entries(&extension.options());
            if let Some(default) = &proto.default_value {
                options.push(format!("default = {}", default_value(proto, default)));
            }
            options.sort();
            let options = bracketed(&options);
            let label = label(proto, proto3);
            match extension.kind() {
                Kind::Message(group) if extension.is_group() => {
                    self.open(&format!("{label}group {} = {}{options}", group.name(), extension.number()));
                    self.message_body(&group, proto3);
                    self.close();
                }
                kind => self.line(&format!(
                    "{label}{} {} = {}{options};",
                    type_name(&kind),
                    extension.name(),
                    extension.number()
                )),
            }
        }
        if open.is_some() {
            self.close();
        }
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) {
        self.open(&format!("enum {}", enumeration.name()));
        self.options(&enumeration.options());
        // The first value stays first: it is the default. The rest go by number.
        let mut values: Vec<_> = enumeration.values().collect();
        if values.len() > 1 {
            values[1..].sort_by(|a, b| (a.number(), a.name()).cmp(&(b.number(), b.name())));
        }
        for value in values {
            let options = bracketed(&option_entries(&value.options()));
            self.line(&format!("{} = {}{options};", value.name(), value.number()));
        }
        let proto = enumeration.enum_descriptor_proto();
        let mut reserved: Vec<(i32, i32)> = proto.reserved_range.iter().map(|r| (r.start(), r.end())).collect();
        reserved.sort_unstable();
        if !reserved.is_empty() {
            self.line(&format!("reserved {};", ranges(&reserved)));
        }
        if !proto.reserved_name.is_empty() {
            self.line(&format!("reserved {};", names(&proto.reserved_name)));
        }
        self.close();
    }

    fn service(&mut self, service: &ServiceDescriptor) {
        self.open(&format!("service {}", service.name()));
        self.options(&service.options());
        for method in by_name(service.methods(), |m| m.name().to_owned()) {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            let signature = format!(
                "rpc {}({}.{}) returns ({}.{})",
                method.name(),
                stream(method.is_client_streaming()),
                method.input().full_name(),
                stream(method.is_server_streaming()),
                method.output().full_name()
            );
            let options = option_entries(&method.options());
            if options.is_empty() {
                self.line(&format!("{signature};"));
            } else {
                self.open(&signature);
                options.iter().for_each(|entry| self.line(&format!("option {entry};")));
                self.close();
            }
        }
        self.close();
    }
}

/// The label a field is declared with: proto3 leaves singular fields bare unless they
/// were declared `optional`.
fn label(proto: &FieldDescriptorProto, proto3: bool) -> &'static str {
    match proto.label() {
        Label::Repeated => "repeated ",
        Label::Required => "required ",
        Label::Optional if !proto3 || proto.proto3_optional() => "optional ",
        Label::Optional => "",
    }
}

/// The messages declared as groups (printed inline with their field, not on their own).
fn group_types(
    fields: impl Iterator<Item = FieldDescriptor>,
    extensions: impl Iterator<Item = ExtensionDescriptor>,
) -> HashSet<String> {
    let from_fields = fields.filter(FieldDescriptor::is_group).map(|f| f.kind());
    let from_extensions = extensions.filter(ExtensionDescriptor::is_group).map(|e| e.kind());
    from_fields.chain(from_extensions).filter_map(|kind| kind.as_message().map(|m| m.full_name().to_owned())).collect()
}

/// A field's type in the normal form: message and enum types fully qualified.
fn type_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(_) | Kind::Enum(_) => format!(".{}", kind_name(kind)),
        scalar => kind_name(scalar),
    }
}

fn by_name<T>(items: impl Iterator<Item = T>, name: impl Fn(&T) -> String) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_by_key(|item| name(item));
    items
}

/// Inclusive ranges (sorted) as `reserved` and `extensions` write them, adjacent ones
/// joined: `7, 8 to 9` and `7 to 9` are the same declaration.
fn ranges(ranges: &[(i32, i32)]) -> String {
    let mut joined: Vec<(i32, i32)> = Vec::new();
    for &(start, end) in ranges {
        match joined.last_mut() {
            Some(last) if i64::from(start) <= i64::from(last.1) + 1 => last.1 = last.1.max(end),
            _ => joined.push((start, end)),
        }
    }
    let written: Vec<String> = joined
        .iter()
        .map(|&(start, end)| if start == end { start.to_string() } else { format!("{start} to {end}") })
        .collect();
    written.join(", ")
}

fn names(names: &[String]) -> String {
    let mut names: Vec<String> = names.iter().map(|name| quote(name.as_bytes(), true)).collect();
    names.sort();
    names.join(", ")
}

fn bracketed(options: &[String]) -> String {
    if options.is_empty() {
        String::new()
    } else {
        format!(" [{}]", options.join(", "))
    }
}

/// The JSON name Protobuf derives from a field name, to leave out when unchanged.
fn default_json_name(name: &str) -> String {
    let mut json = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            json.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            json.push(ch);
        }
    }
    json
}

/// A proto2 default as the descriptor keeps it (bytes already escaped, strings not,
/// enums by value name), written back as source.
fn default_value(proto: &FieldDescriptorProto, default: &str) -> String {
    match proto.r#type() {
        Type::String => quote(default.as_bytes(), true),
        Type::Bytes => format!("\"{default}\""),
        _ => default.to_owned(),
    }
}

/// `name = value` for each option set, in name order (repeated options keep their order).
fn option_entries(options: &DynamicMessage) -> Vec<String> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut push = |name: String, value: &Value, kind: &Kind| match value {
        Value::List(items) => items.iter().for_each(|item| entries.push((name.clone(), option_value(item, kind)))),
        single => entries.push((name, option_value(single, kind))),
    };
    for (field, value) in options.fields() {
        push(field.name().to_owned(), value, &field.kind());
    }
    for (extension, value) in options.extensions() {
        push(format!("(.{})", extension.full_name()), value, &extension.kind());
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(name, value)| format!("{name} = {value}")).collect()
}

fn option_value(value: &Value, kind: &Kind) -> String {
    match value {
        Value::F32(float) if float.is_finite() => float.to_string(),
        Value::F64(float) if float.is_finite() => float.to_string(),
        Value::F32(float) => special_float(f64::from(*float)),
        Value::F64(float) => special_float(*float),
        Value::String(text) => quote(text.as_bytes(), true),
        Value::Bytes(bytes) => quote(bytes, false),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(enumeration) => {
                enumeration.get_value(*number).map_or_else(|| number.to_string(), |v| v.name().to_owned())
            }
            _ => number.to_string(),
        },
        // Message values are written as text-format aggregates.
        Value::Message(message) => format!("{{ {message} }}"),
        other => other.to_string(),
    }
}

fn special_float(float: f64) -> String {
    if float.is_nan() {
        "nan".to_owned()
    } else if float > 0.0 {
        "inf".to_owned()
    } else {
        "-inf".to_owned()
    }
}

/// A string literal; `utf8` keeps non-ASCII text as it is, otherwise such bytes are
/// escaped in octal.
fn quote(bytes: &[u8], utf8: bool) -> String {
    let mut out = String::from("\"");
    let text = if utf8 { std::str::from_utf8(bytes).ok() } else { None };
    let mut push = |ch: char, byte: Option<u8>| match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        ' '..='~' => out.push(ch),
        _ if byte.is_none() && !ch.is_control() => out.push(ch),
        _ => {
            let mut buffer = [0; 4];
            let encoded: &[u8] = match byte {
                Some(ref b) => std::slice::from_ref(b),
                None => ch.encode_utf8(&mut buffer).as_bytes(),
            };
            for b in encoded {
                out.push_str(&format!("\\{b:03o}"));
            }
        }
    };
    match text {
        Some(text) => text.chars().for_each(|ch| push(ch, None)),
        None => bytes.iter().for_each(|&b| push(char::from(b), Some(b))),
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::SchemaType;
    use super::*;

    fn parse(text: &str) -> ProtobufSchema {
        ProtobufSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// A proto3 file in package `acme` whose first message is `User` with `fields`.
    fn user(fields: &str) -> ProtobufSchema {
        parse(&format!("syntax = \"proto3\";\npackage acme;\nmessage User {{\n{fields}\n}}\n"))
    }

    fn reference(name: &str, schema: &str) -> Resolved {
        Resolved { name: name.into(), schema_type: SchemaType::Protobuf, schema: schema.into() }
    }

    const V1: &str = "string name = 1; string email = 3;";

    #[test]
    fn optional_fields_may_be_added_and_removed() {
        let v1 = user(V1);
        let added = user("string name = 1; string email = 3; int32 age = 4;");
        let removed = user("string name = 1;");
        for (reader, writer) in [(&added, &v1), (&v1, &added), (&removed, &v1), (&v1, &removed)] {
            assert_eq!(reader.can_read(writer), Ok(()));
        }
    }

    #[test]
    fn renaming_a_field_is_compatible() {
        assert_eq!(user("string full_name = 1; string mail = 3;").can_read(&user(V1)), Ok(()));
    }

    #[test]
    fn a_renumbered_field_is_a_removed_one_and_an_added_one() {
        // On the wire the reader skips number 3 and finds no 4: it decodes, as Confluent's
        // checker accepts. Only the type at one number matters.
        assert_eq!(user("string name = 1; string email = 4;").can_read(&user(V1)), Ok(()));
        let error = user("string name = 1; int32 email = 3;").can_read(&user(V1)).unwrap_err();
        assert!(error.contains("email"), "{error}");
    }

    #[test]
    fn scalars_change_within_their_wire_group_only() {
        let compatible = [
            ("int32", "int64"),
            ("int32", "uint64"),
            ("uint32", "bool"),
            ("sint32", "sint64"),
            ("fixed32", "sfixed32"),
            ("fixed64", "sfixed64"),
            ("string", "bytes"),
        ];
        for (a, b) in compatible {
            let (a, b) = (user(&format!("{a} x = 1;")), user(&format!("{b} x = 1;")));
            assert_eq!(a.can_read(&b), Ok(()));
            assert_eq!(b.can_read(&a), Ok(()));
        }
        let incompatible = [
            ("int32", "sint32"),
            ("fixed32", "fixed64"),
            ("float", "double"),
            ("int64", "fixed64"),
            ("string", "int32"),
        ];
        for (a, b) in incompatible {
            let error = user(&format!("{b} x = 1;")).can_read(&user(&format!("{a} x = 1;"))).unwrap_err();
            assert_eq!(error, format!("field 1 (x) of acme.User changed type from {a} to {b}"));
        }
        let error = user("string name = 1; int32 email = 3;").can_read(&user(V1)).unwrap_err();
        assert_eq!(error, "field 3 (email) of acme.User changed type from string to int32");
    }

    #[test]
    fn an_enum_reads_as_a_varint() {
        let with_enum = user("Kind x = 1; enum Kind { A = 0; B = 1; }");
        let with_int = user("int32 x = 1;");
        assert_eq!(with_enum.can_read(&with_int), Ok(()));
        assert_eq!(with_int.can_read(&with_enum), Ok(()));
        assert!(user("string x = 1;").can_read(&with_enum).is_err());
    }

    #[test]
    fn a_field_changing_message_type_or_kind_is_not_compatible() {
        let types = "message Address { string city = 1; } message Location { string city = 1; }";
        let address = user(&format!("Address home = 1; {types}"));
        let location = user(&format!("Location home = 1; {types}"));
        let error = location.can_read(&address).unwrap_err();
        assert_eq!(error, "field 1 (home) of acme.User changed type from acme.User.Address to acme.User.Location");
        let error = user("string home = 1;").can_read(&address).unwrap_err();
        assert!(error.contains("changed type from acme.User.Address to string"), "{error}");
        let map = user("map<string, int32> home = 1;");
        assert!(map.can_read(&user("map<string, int64> home = 1;")).is_ok());
        let error = map.can_read(&user("map<string, string> home = 1;")).unwrap_err();
        assert!(error.contains("from map<string, string> to map<string, int32>"), "{error}");
    }

    #[test]
    fn nested_messages_are_compared_recursively_and_cycles_end() {
        let tree = |value: &str| {
            user(&format!(
                "Node root = 1;
                 message Node {{ {value} value = 1; repeated Node children = 2; Leaf leaf = 3; }}
                 message Leaf {{ Node back = 1; }}"
            ))
        };
        assert_eq!(tree("int32").can_read(&tree("int64")), Ok(()));
        let error = tree("string").can_read(&tree("int32")).unwrap_err();
        assert_eq!(error, "field 1 (value) of acme.User.Node changed type from int32 to string");
        let without_leaf = user("Node root = 1; message Node { int32 value = 1; repeated Node children = 2; }");
        let error = without_leaf.can_read(&tree("int32")).unwrap_err();
        assert_eq!(error, "message acme.User.Leaf was removed");
    }

    #[test]
    fn removed_messages_and_changed_packages_are_not_compatible() {
        let two = parse("syntax = \"proto3\"; package acme; message User { string name = 1; } message Team {}");
        let one = parse("syntax = \"proto3\"; package acme; message User { string name = 1; }");
        assert_eq!(two.can_read(&one), Ok(()), "an added message is compatible");
        assert_eq!(one.can_read(&two).unwrap_err(), "message acme.Team was removed");
        let moved = parse("syntax = \"proto3\"; package acme.v2; message User { string name = 1; }");
        assert_eq!(moved.can_read(&one).unwrap_err(), "package changed from acme to acme.v2");
    }

    #[test]
    fn proto2_required_fields_must_be_written() {
        let proto2 = |fields: &str| parse(&format!("syntax = \"proto2\"; package acme; message User {{ {fields} }}"));
        let v1 = proto2("optional string name = 1;");
        let required = proto2("optional string name = 1; required int32 id = 2;");
        let error = required.can_read(&v1).unwrap_err();
        assert_eq!(error, "field 2 (id) of acme.User is required, and the writer has no field 2");
        let error = proto2("required string name = 1;").can_read(&v1).unwrap_err();
        assert_eq!(error, "field 1 (name) of acme.User is required, and optional in the writer");
        assert_eq!(v1.can_read(&required).unwrap_err(), "required field 2 (id) of acme.User was removed");
        assert_eq!(proto2("optional string name = 1; optional int32 id = 2;").can_read(&required), Ok(()));
    }

    #[test]
    fn oneof_changes_follow_confluents_rules() {
        let flat = user("int32 a = 1; int32 b = 2; int32 c = 3;");
        let one_moved = user("oneof choice { int32 a = 1; } int32 b = 2; int32 c = 3;");
        assert_eq!(one_moved.can_read(&flat), Ok(()));
        assert_eq!(flat.can_read(&one_moved), Ok(()), "leaving a oneof loses nothing");
        let two_moved = user("oneof choice { int32 a = 1; int32 b = 2; } int32 c = 3;");
        let error = two_moved.can_read(&flat).unwrap_err();
        assert_eq!(error, "fields 1 (a), 2 (b) of acme.User moved into oneof choice");
        let joined = user("oneof choice { int32 a = 1; int32 c = 3; } int32 b = 2;");
        let error = joined.can_read(&one_moved).unwrap_err();
        assert!(error.contains("field 3 (c) of acme.User moved into oneof choice"), "{error}");
        let error = user("oneof choice { int32 a = 1; } int32 c = 3;").can_read(&two_moved).unwrap_err();
        assert_eq!(error, "field 2 (b) of acme.User was removed from oneof choice");
        assert_eq!(user("int32 c = 3;").can_read(&two_moved), Ok(()), "a whole oneof may go");
        let grown = user("oneof choice { int32 a = 1; int32 d = 4; } int32 b = 2; int32 c = 3;");
        assert_eq!(grown.can_read(&one_moved), Ok(()), "a oneof may gain a new field");
        let optional = user("optional int32 a = 1; optional int32 b = 2;");
        assert_eq!(optional.can_read(&flat), Ok(()), "proto3 optional is no oneof");
    }

    #[test]
    fn references_supply_imports() {
        let address = reference(
            "acme/address.proto",
            "syntax = \"proto3\"; package acme.geo; message Address { string city = 1; }",
        );
        let text = "syntax = \"proto3\"; package acme; import \"acme/address.proto\";
                    import \"google/protobuf/timestamp.proto\";
                    message User { acme.geo.Address home = 1; google.protobuf.Timestamp seen = 2; }";
        let error = ProtobufSchema::parse(text, &[]).unwrap_err();
        assert!(error.starts_with("Invalid schema") && error.contains("acme/address.proto"), "{error}");
        let v1 = ProtobufSchema::parse(text, &[address]).unwrap();
        let changed = reference(
            "acme/address.proto",
            "syntax = \"proto3\"; package acme.geo; message Address { int64 city = 1; }",
        );
        let v2 = ProtobufSchema::parse(text, &[changed]).unwrap();
        assert_eq!(
            v2.can_read(&v1).unwrap_err(),
            "field 1 (city) of acme.geo.Address changed type from string to int64"
        );
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        let unknown = "syntax = \"proto3\"; message User { Missing m = 1; }";
        let duplicate = "syntax = \"proto3\"; message User { int32 a = 1; int32 b = 1; }";
        for bad in ["syntax = \"proto3\"; message User { int32 a = ; }", "message {", unknown, duplicate] {
            let error = ProtobufSchema::parse(bad, &[]).unwrap_err();
            assert!(error.starts_with("Invalid schema: "), "{error}");
        }
        assert!(ProtobufSchema::parse(unknown, &[]).unwrap_err().contains("Missing"));
    }

    #[test]
    fn schemas_can_be_shared_between_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<ProtobufSchema>();
    }

    #[test]
    fn text_is_the_source_as_given() {
        let source = "syntax = \"proto3\";\n// a comment\nmessage User {  string name = 1; }\n";
        assert_eq!(parse(source).text(false), source);
    }

    #[test]
    fn a_serialized_descriptor_is_read_as_its_source_and_written_back() {
        let address = Resolved {
            name: "acme/address.proto".into(),
            schema_type: SchemaType::Protobuf,
            schema: "syntax = \"proto3\"; package acme; message Address { string city = 1; }".into(),
        };
        let user = ProtobufSchema::parse(
            "syntax = \"proto3\"; package acme; import \"acme/address.proto\";
             import \"google/protobuf/timestamp.proto\";
             message User { string name = 1; Address home = 2; google.protobuf.Timestamp seen = 3; }",
            std::slice::from_ref(&address),
        )
        .unwrap();
        let serialized = user.serialized();
        assert!(!serialized.contains(';'), "base64, not source");
        let again = ProtobufSchema::parse(&serialized, &[address]).unwrap();
        assert!(again.text(false).contains("message User"), "stored as .proto text: {}", again.text(false));
        assert_eq!(again.text(true), user.text(true));
        assert!(ProtobufSchema::parse("bm90IGEgZGVzY3JpcHRvcg", &[]).is_err(), "base64 of something else");
    }

    #[test]
    fn a_schema_nested_too_deep_is_refused_without_overflowing_the_stack() {
        let nested = |depth: usize| {
            let mut text = String::from("syntax = \"proto3\"; // { not counted\n/* [[[ */ ");
            for i in 0..depth {
                text.push_str(&format!("message M{i} {{ string s{i} = 1 [json_name = \"{{\"]; "));
            }
            text + &"}".repeat(depth)
        };
        let (deep, fine) = (nested(5000), nested(40));
        // On a thread with the HTTP thread's default stack: a crash here would abort the test.
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || (ProtobufSchema::parse(&deep, &[]).err(), ProtobufSchema::parse(&fine, &[]).is_ok()))
            .unwrap()
            .join()
            .unwrap();
        assert!(outcome.0.is_some_and(|e| e.contains("deep (at most 64)")));
        assert!(outcome.1, "40 deep (with braces in strings and comments) parses");
    }

    #[test]
    fn normal_form_is_one_for_equal_schemas() {
        let a = parse(
            "syntax = \"proto3\";
             package acme;
             option java_package = \"com.acme\";
             option java_multiple_files = true;
             // The record.
             message User {
               string name = 1;
               Status status = 3 [deprecated = true, json_name = \"state\"];
               map<string, Address> places = 2;
               message Address { string city = 1; }
               oneof contact { string email = 5; string phone = 4; }
               reserved 9, 7 to 8;
             }
             enum Status { UNKNOWN = 0; GONE = 2; ACTIVE = 1; }
             enum Color { RED = 0; }",
        );
        let b = parse(
            "syntax = \"proto3\"; package acme; option java_multiple_files = true;
             option java_package = \"com.acme\";
             enum Color { RED = 0; }
             message User { reserved 7 to 9;
               oneof contact { string phone = 4; string email = 5; }
               message Address { string city = 1; }
               map<string, .acme.User.Address> places = 2;
               acme.Status status = 3 [json_name = \"state\", deprecated = true];
               string name = 1; }
             enum Status { UNKNOWN = 0; ACTIVE = 1; GONE = 2; }",
        );
        assert_eq!(a.text(true), b.text(true));
        assert_ne!(a.text(false), b.text(false));
        let again = parse(&a.text(true));
        assert_eq!(again.text(true), a.text(true), "the normal form parses to itself");
        let reordered = parse("syntax = \"proto3\"; message B {} message A {}");
        assert_ne!(reordered.text(true), parse("syntax = \"proto3\"; message A {} message B {}").text(true));
    }

    #[test]
    fn normal_form_round_trips_proto2_features() {
        let options = reference(
            "acme/options.proto",
            "syntax = \"proto2\"; package acme.opt; import \"google/protobuf/descriptor.proto\";
             message Rule { optional string pattern = 1; repeated int32 sizes = 2; }
             extend google.protobuf.FieldOptions { optional Rule rule = 50001; optional double weight = 50002; }
             extend google.protobuf.MessageOptions { repeated string tag = 50003; }",
        );
        let text = "syntax = \"proto2\"; package acme; import \"acme/options.proto\";
             message User {
               option (acme.opt.tag) = \"b\"; option (acme.opt.tag) = \"a\";
               required string name = 1 [default = \"n\\\"o\\\\ne\", (acme.opt.rule) = { pattern: \"x\" sizes: 1 sizes: 2 }];
               optional bytes raw = 2 [default = \"a\\001b\"];
               optional float ratio = 3 [default = inf, (acme.opt.weight) = -0.5];
               optional Kind kind = 4 [default = B];
               optional group Extra = 5 { optional int32 n = 1; }
               extensions 100 to 199, 300;
               enum Kind { A = 1; C = 3; B = 2; }
             }
             extend User { optional string nickname = 100; }
             service Users { rpc Get (User) returns (stream User); }";
        let schema = ProtobufSchema::parse(text, std::slice::from_ref(&options)).unwrap();
        let normal = schema.text(true);
        let again = ProtobufSchema::parse(&normal, &[options]).unwrap_or_else(|e| panic!("{e}\n{normal}"));
        assert_eq!(again.text(true), normal);
        for expected in [
            "option (.acme.opt.tag) = \"b\";\n  option (.acme.opt.tag) = \"a\";",
            "optional group Extra = 5 {",
            "A = 1;\n    B = 2;\n    C = 3;",
            "extensions 100 to 199, 300;",
            "rpc Get(.acme.User) returns (stream .acme.User);",
        ] {
            assert!(normal.contains(expected), "{expected:?} not in\n{normal}");
        }
        assert_eq!(again.can_read(&schema), Ok(()));
    }
}
