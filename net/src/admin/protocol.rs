//! The admin socket's wire format: one JSON object per line each way (docs/OPERATIONS.md).
//! A request names its `command` (and, for `config`, its `action`); a reply is
//! `{"ok":true,...}` or `{"ok":false,"error":"..."}`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Longest request line accepted; a longer one is answered with an error and the
/// connection closes (the rest of the line cannot be told apart from the next request).
pub const REQUEST_LINE_BYTES_MAX: usize = 64 << 10;

/// A runtime setting the admin socket reads and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingName {
    /// The tracing filter (`info`, `debug`, `sluice_net=debug,info`, ...).
    LogLevel,
    /// The default flush policy (`every-append`, `bytes:N`, `ms:N`, `never`).
    Flush,
}

impl SettingName {
    /// Every setting, in the order `config get` lists them.
    pub const ALL: [SettingName; 2] = [SettingName::LogLevel, SettingName::Flush];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SettingName::LogLevel => "log-level",
            SettingName::Flush => "flush",
        }
    }
}

/// `config` requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ConfigAction {
    /// One setting's value, or all of them.
    Get {
        /// The setting; all when absent.
        name: Option<SettingName>,
    },
    /// Change a setting on the running broker (not persisted).
    Set {
        /// The setting.
        name: SettingName,
        /// Its new value, in the setting's text form.
        value: String,
    },
}

/// One admin request. Commands without arguments are empty struct variants, not unit
/// variants, so that serde refuses unknown fields on them too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Version, uptime, shards and their partitions, bytes, offsets and connections.
    Status {},
    /// Every partition's size, segments and offsets.
    Partitions {},
    /// Request counts and latencies per API, shard busy time, cross-shard calls, fsyncs.
    Metrics {},
    /// Read or change runtime settings.
    Config(ConfigAction),
    /// fsync every partition.
    Flush {},
    /// Roll active segments: of every partition, one topic's, or one partition's.
    Roll {
        /// Only this topic.
        topic: Option<String>,
        /// Only this partition of `topic`.
        partition: Option<i32>,
    },
    /// Stop the broker gracefully (as SIGTERM).
    Shutdown {},
    /// SCRAM users: how the first user comes to exist without any network trust.
    User(UserAction),
}

/// `user` requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum UserAction {
    /// Create a user's credential for a mechanism, or replace it.
    Create {
        /// The user name (the principal is `User:<name>`).
        name: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        /// The password; the broker keeps only the SCRAM credential made from it.
        password: String,
        /// Iterations of the credential [default: 4096].
        iterations: Option<u32>,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        /// The user name.
        name: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
    },
    /// Every user with its mechanisms and iteration counts.
    List {},
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<AdminRequest, String> {
    let request: AdminRequest = serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
    if let AdminRequest::Roll { topic: None, partition: Some(_) } = request {
        return Err("bad request: roll with a partition needs its topic".into());
    }
    Ok(request)
}

/// `{"ok":true, ...fields}` as one line with its newline.
pub fn ok_line(fields: Map<String, Value>) -> Vec<u8> {
    let mut reply = Map::with_capacity(fields.len() + 1);
    reply.insert("ok".into(), Value::Bool(true));
    reply.extend(fields);
    line(&Value::Object(reply))
}

/// `{"ok":false,"error":...}` as one line with its newline.
pub fn error_line(error: &str) -> Vec<u8> {
    line(&json!({ "ok": false, "error": error }))
}

fn line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("a JSON value always serialises");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AdminRequest, String> {
        parse_request(text.as_bytes())
    }

    #[test]
    fn every_command_parses_from_its_documented_form() {
        assert_eq!(parse(r#"{"command":"status"}"#), Ok(AdminRequest::Status {}));
        assert_eq!(parse(r#"{"command":"partitions"}"#), Ok(AdminRequest::Partitions {}));
        assert_eq!(parse(r#"{"command":"metrics"}"#), Ok(AdminRequest::Metrics {}));
        assert_eq!(parse(r#"{"command":"flush"}"#), Ok(AdminRequest::Flush {}));
        assert_eq!(parse(r#"{"command":"shutdown"}"#), Ok(AdminRequest::Shutdown {}));
        assert_eq!(parse(r#"{"command":"roll"}"#), Ok(AdminRequest::Roll { topic: None, partition: None }));
        assert_eq!(
            parse(r#"{"command":"roll","topic":"t","partition":2}"#),
            Ok(AdminRequest::Roll { topic: Some("t".into()), partition: Some(2) })
        );
        assert_eq!(
            parse(r#"{"command":"config","action":"get"}"#),
            Ok(AdminRequest::Config(ConfigAction::Get { name: None }))
        );
        assert_eq!(
            parse(r#"{"action":"set","value":"debug","command":"config","name":"log-level"}"#),
            Ok(AdminRequest::Config(ConfigAction::Set { name: SettingName::LogLevel, value: "debug".into() })),
            "field order does not matter"
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let refused = |text: &str, reason: &str| {
            let error = parse(text).expect_err(text);
            assert!(error.contains(reason), "{text}: {error}");
        };
        refused("{\"command\":", "EOF");
        refused("\u{1}\u{2}garbage", "expected value");
        refused(r#"{"command":"reboot"}"#, "unknown variant `reboot`");
        refused(r#"{"verb":"status"}"#, "missing field `command`");
        refused(r#"{"command":"status","extra":1}"#, "unknown field `extra`");
        refused(r#"{"command":"config"}"#, "missing field `action`");
        refused(r#"{"command":"config","action":"set","name":"flush"}"#, "missing field `value`");
        refused(r#"{"command":"config","action":"set","name":"colour","value":"x"}"#, "unknown variant `colour`");
        refused(r#"{"command":"roll","partition":1}"#, "needs its topic");
        refused(r#"{"command":"roll","topic":"t","partition":"one"}"#, "invalid type");
        refused(r#"{"command":"config","action":"get","colour":"x"}"#, "unknown field `colour`");
        refused("[1,2]", "bad request");
    }

    #[test]
    fn replies_are_single_json_lines() {
        let mut fields = Map::new();
        fields.insert("partitions".into(), json!(3));
        let ok: Value = serde_json::from_slice(&ok_line(fields)).unwrap();
        assert_eq!(ok, json!({"ok": true, "partitions": 3}));
        let error = error_line("line\nbreak \"quoted\"");
        assert_eq!(error.iter().filter(|b| **b == b'\n').count(), 1, "escaped inside, one at the end");
        let error: Value = serde_json::from_slice(&error).unwrap();
        assert_eq!(error, json!({"ok": false, "error": "line\nbreak \"quoted\""}));
    }
}
