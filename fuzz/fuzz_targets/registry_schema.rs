//! Any bytes as a schema the registry is asked to register: the first byte picks the type
//! (Avro, JSON Schema, Protobuf), the rest is the text. Parsing, the normal form and a
//! compatibility check against itself must answer or refuse, never overflow or hang. A
//! parser's panic is refused by `ParsedSchema::parse` (protox 0.9 asserts on `029`), so
//! the target lets panics unwind to it instead of libFuzzer's aborting hook.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_registry::schema::{ParsedSchema, SchemaType};

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&selector, text)) = data.split_first() else { return };
    let schema_type = [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf][usize::from(selector % 3)];
    let text = String::from_utf8_lossy(text);
    if let Ok(parsed) = ParsedSchema::parse(schema_type, &text, &[]) {
        let _ = parsed.text(true);
        let _ = parsed.can_read(&parsed);
    }
});
