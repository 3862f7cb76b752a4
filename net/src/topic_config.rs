//! Topic configs under Kafka's names, and how they become a [`LogConfig`].
//!
//! A topic stores only the configs set on it; everything else falls back to the broker's
//! defaults. Values are kept as the strings clients sent, validated on the way in.
//!
//! The table holds every topic config Kafka 4.x describes, so that clients which read a
//! topic's configs and write them all back (read-modify-write AlterConfigs) succeed. The
//! ones sluice acts on are `enforced`; the rest are validated as Kafka would, stored and
//! described, and listed in docs/COMPATIBILITY.md as "accepted, not enforced".

use sluice_engine::{FlushPolicy, LogConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// Configs set on one topic (name → value), as stored in the metadata.
pub type TopicConfigs = BTreeMap<String, String>;

/// Kafka's config type codes (DescribeConfigs `config_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean = 1,
    /// Free text (possibly one of a set).
    String = 2,
    /// 32-bit integer.
    Int = 3,
    /// 64-bit integer.
    Long = 5,
    /// Floating point.
    Double = 6,
    /// Comma-separated list.
    List = 7,
}

/// The values a config takes: Kafka's validator for it.
#[derive(Clone, Copy, Debug)]
enum Valid {
    /// Any value of the type.
    Any,
    /// A number at least this.
    AtLeast(i64),
    /// A number in this closed range.
    Between(i64, i64),
    /// A gzip level: -1 or 1..=9.
    GzipLevel,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Replicas to throttle: empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
}

/// One topic config: Kafka's name, type, default and broker-level synonym.
#[derive(Debug)]
pub struct TopicConfigDef {
    /// Kafka's name of the topic config.
    pub name: &'static str,
    /// Its type as DescribeConfigs reports it.
    pub kind: ConfigType,
    /// Kafka's default, described when the topic does not set it and sluice has no
    /// setting of its own behind it.
    kafka_default: &'static str,
    /// The broker config that sets the default for every topic, if Kafka has one.
    pub broker_synonym: Option<&'static str>,
    /// Whether sluice acts on the value (otherwise: accepted, stored, described).
    pub enforced: bool,
    /// One line on what it does in sluice (DescribeConfigs documentation).
    pub documentation: &'static str,
    valid: Valid,
}

const fn config(
    name: &'static str,
    kind: ConfigType,
    kafka_default: &'static str,
    broker_synonym: Option<&'static str>,
    enforced: bool,
    valid: Valid,
    documentation: &'static str,
) -> TopicConfigDef {
    TopicConfigDef { name, kind, kafka_default, broker_synonym, enforced, documentation, valid }
}

const NOT_ENFORCED: &str = "accepted and stored; sluice does not act on it yet (docs/COMPATIBILITY.md)";
const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Kafka 4.x describes, in name order.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = {
    use ConfigType::*;
    use Valid::*;
    &[
        config(
            "cleanup.policy",
            List,
            "delete",
            Some("log.cleanup.policy"),
            true,
            Any,
            "delete (retention deletes old segments), compact (keep the newest record per key), or both",
        ),
        config("compression.gzip.level", Int, "-1", Some("compression.gzip.level"), false, GzipLevel, NOT_ENFORCED),
        config("compression.lz4.level", Int, "9", Some("compression.lz4.level"), false, Between(1, 17), NOT_ENFORCED),
        config(
            "compression.type",
            String,
            "producer",
            Some("compression.type"),
            false,
            OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
            "accepted and stored; sluice keeps batches as the producer compressed them (producer)",
        ),
        config(
            "compression.zstd.level",
            Int,
            "3",
            Some("compression.zstd.level"),
            false,
            Between(-131072, 22),
            NOT_ENFORCED,
        ),
        config(
            "delete.retention.ms",
            Long,
            "86400000",
            Some("log.cleaner.delete.retention.ms"),
            true,
            AtLeast(0),
            "how long a compacted topic keeps a tombstone, from its batch's max timestamp",
        ),
        config(
            "file.delete.delay.ms",
            Long,
            "60000",
            Some("log.segment.delete.delay.ms"),
            true,
            AtLeast(0),
            "how long a segment retention or DeleteRecords removed stays on disk (renamed .deleted)",
        ),
        config(
            "flush.messages",
            Long,
            LONG_MAX,
            Some("log.flush.interval.messages"),
            false,
            AtLeast(1),
            "accepted and stored; the broker's --flush policy decides fsyncs (described from it)",
        ),
        config(
            "flush.ms",
            Long,
            LONG_MAX,
            None,
            false,
            AtLeast(0),
            "accepted and stored; the broker's --flush policy decides fsyncs (described from it)",
        ),
        config("follower.replication.throttled.replicas", List, "", None, false, ThrottledReplicas, NOT_ENFORCED),
        config(
            "index.interval.bytes",
            Int,
            "4096",
            Some("log.index.interval.bytes"),
            true,
            AtLeast(0),
            "bytes between sparse offset index entries",
        ),
        config("leader.replication.throttled.replicas", List, "", None, false, ThrottledReplicas, NOT_ENFORCED),
        config(
            "local.retention.bytes",
            Long,
            "-2",
            Some("log.local.retention.bytes"),
            false,
            AtLeast(-2),
            NOT_ENFORCED,
        ),
        config("local.retention.ms", Long, "-2", Some("log.local.retention.ms"), false, AtLeast(-2), NOT_ENFORCED),
        config(
            "max.compaction.lag.ms",
            Long,
            LONG_MAX,
            Some("log.cleaner.max.compaction.lag.ms"),
            false,
            AtLeast(1),
            NOT_ENFORCED,
        ),
        config(
            "max.message.bytes",
            Int,
            "1048588",
            Some("message.max.bytes"),
            true,
            AtLeast(0),
            "largest record batch accepted",
        ),
        config(
            "message.timestamp.after.max.ms",
            Long,
            "3600000",
            Some("log.message.timestamp.after.max.ms"),
            false,
            AtLeast(0),
            NOT_ENFORCED,
        ),
        config(
            "message.timestamp.before.max.ms",
            Long,
            LONG_MAX,
            Some("log.message.timestamp.before.max.ms"),
            false,
            AtLeast(0),
            NOT_ENFORCED,
        ),
        config(
            "message.timestamp.type",
            String,
            "CreateTime",
            Some("log.message.timestamp.type"),
            true,
            OneOf(&["CreateTime", "LogAppendTime"]),
            "CreateTime or LogAppendTime",
        ),
        config(
            "min.cleanable.dirty.ratio",
            Double,
            "0.5",
            Some("log.cleaner.min.cleanable.ratio"),
            false,
            Any,
            NOT_ENFORCED,
        ),
        config(
            "min.compaction.lag.ms",
            Long,
            "0",
            Some("log.cleaner.min.compaction.lag.ms"),
            false,
            AtLeast(0),
            NOT_ENFORCED,
        ),
        config(
            "min.insync.replicas",
            Int,
            "1",
            Some("min.insync.replicas"),
            true,
            AtLeast(1),
            "replicas that must acknowledge acks=all (one node: always 1)",
        ),
        config(
            "preallocate",
            Boolean,
            "false",
            Some("log.preallocate"),
            false,
            Any,
            "accepted and stored; sluice preallocates segment space in steps whatever it says",
        ),
        config("remote.log.copy.disable", Boolean, "false", None, false, Any, NOT_ENFORCED),
        config("remote.log.delete.on.disable", Boolean, "false", None, false, Any, NOT_ENFORCED),
        config("remote.storage.enable", Boolean, "false", None, false, Any, NOT_ENFORCED),
        config(
            "retention.bytes",
            Long,
            "-1",
            Some("log.retention.bytes"),
            true,
            Any,
            "delete oldest closed segments while the partition is larger; -1 for no limit",
        ),
        config(
            "retention.ms",
            Long,
            "604800000",
            None,
            true,
            AtLeast(-1),
            "delete closed segments whose newest record is older than this; -1 keeps forever",
        ),
        config(
            "segment.bytes",
            Int,
            "1073741824",
            Some("log.segment.bytes"),
            true,
            Any,
            "roll the active segment at this size",
        ),
        config(
            "segment.index.bytes",
            Int,
            "10485760",
            Some("log.index.size.max.bytes"),
            false,
            AtLeast(4),
            "accepted and stored; sluice's offset index grows as needed",
        ),
        config("segment.jitter.ms", Long, "0", None, false, AtLeast(0), NOT_ENFORCED),
        config("segment.ms", Long, "604800000", None, true, AtLeast(1), "roll the active segment at this age"),
        config(
            "unclean.leader.election.enable",
            Boolean,
            "false",
            Some("unclean.leader.election.enable"),
            false,
            Any,
            NOT_ENFORCED,
        ),
    ]
};

/// The definition of a topic config, if Kafka has one by that name.
pub fn definition(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Whether `name` is a topic config sluice accepts.
pub fn is_known(name: &str) -> bool {
    definition(name).is_some()
}

/// Kafka's refusal of an unknown name (INVALID_CONFIG).
pub fn unknown_name(name: &str) -> String {
    format!("Unknown topic config name: {name}")
}

/// Checks a value against the config's type and range, as Kafka's validators do; the
/// error is Kafka's "Invalid value V for configuration N: why".
fn check_value(def: &TopicConfigDef, value: &str) -> Result<(), String> {
    let invalid = |why: String| Err(format!("Invalid value {value} for configuration {}: {why}", def.name));
    let trimmed = value.trim();
    let number = match def.kind {
        ConfigType::Boolean => {
            return match trimmed.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => invalid("Expected value to be either true or false".into()),
            }
        }
        ConfigType::Int => match trimmed.parse::<i32>() {
            Ok(n) => Some(i64::from(n)),
            Err(_) => return invalid("Not a number of type INT".into()),
        },
        ConfigType::Long => match trimmed.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return invalid("Not a number of type LONG".into()),
        },
        ConfigType::Double => match trimmed.parse::<f64>() {
            Ok(ratio) if def.name == "min.cleanable.dirty.ratio" && !(0.0..=1.0).contains(&ratio) => {
                return invalid("Value must be no less than 0 and no more than 1".into())
            }
            Ok(_) => None,
            Err(_) => return invalid("Not a number of type DOUBLE".into()),
        },
        ConfigType::String | ConfigType::List => None,
    };
    match (def.valid, number) {
        (Valid::AtLeast(min), Some(n)) if n < min => invalid(format!("Value must be at least {min}")),
        (Valid::Between(min, max), Some(n)) if n < min || n > max => {
            invalid(format!("Value must be no less than {min} and no more than {max}"))
        }
        (Valid::GzipLevel, Some(n)) if n != -1 && !(1..=9).contains(&n) => {
            invalid("Value must be -1 or in the range 1..9".into())
        }
        (Valid::OneOf(choices), _) if !choices.contains(&trimmed) => {
            invalid(format!("String must be one of: {}", choices.join(", ")))
        }
        (Valid::ThrottledReplicas, _) if !is_throttled_replica_list(trimmed) => {
            invalid("must be the literal '*' or a list of replicas in the form partition:broker".into())
        }
        _ => Ok(()),
    }
}

fn is_throttled_replica_list(value: &str) -> bool {
    let is_id = |text: &str| !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit());
    value.is_empty()
        || value == "*"
        || value
            .split(',')
            .all(|pair| pair.split_once(':').is_some_and(|(partition, broker)| is_id(partition) && is_id(broker)))
}

fn parse_i64(name: &str, value: &str) -> Result<i64, String> {
    value.trim().parse::<i64>().map_err(|_| format!("{name} must be an integer, got {value:?}"))
}

fn optional_duration(name: &str, value: &str) -> Result<Option<Duration>, String> {
    match parse_i64(name, value)? {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        ms => Err(format!("{name} must be >= 0 or -1, got {ms}")),
    }
}

fn positive(name: &str, value: &str) -> Result<u64, String> {
    match parse_i64(name, value)? {
        n if n > 0 => Ok(n as u64),
        n => Err(format!("{name} must be > 0, got {n}")),
    }
}

/// Applies one config to `config`; an unknown name or a bad value is an error that names
/// it. Configs sluice does not enforce are checked and leave `config` as it is.
pub fn apply(config: &mut LogConfig, name: &str, value: &str) -> Result<(), String> {
    let def = definition(name).ok_or_else(|| unknown_name(name))?;
    check_value(def, value)?;
    match name {
        "cleanup.policy" => {
            let (mut delete, mut compact) = (false, false);
            for policy in value.split(',') {
                match policy.trim() {
                    "delete" => delete = true,
                    "compact" => compact = true,
                    _ => return Err(format!("cleanup.policy must be delete, compact or both, got {value:?}")),
                }
            }
            (config.delete, config.compact) = (delete, compact);
        }
        "delete.retention.ms" => match parse_i64(name, value)? {
            ms if ms >= 0 => config.delete_retention = Duration::from_millis(ms as u64),
            ms => return Err(format!("delete.retention.ms must be >= 0, got {ms}")),
        },
        "retention.ms" => config.retention_ms = optional_duration(name, value)?,
        "retention.bytes" => {
            config.retention_bytes = match parse_i64(name, value)? {
                -1 => None,
                n if n >= 0 => Some(n as u64),
                n => return Err(format!("retention.bytes must be >= 0 or -1, got {n}")),
            }
        }
        "segment.bytes" => config.segment_bytes = positive(name, value)?,
        "segment.ms" => config.segment_ms = Some(Duration::from_millis(positive(name, value)?)),
        "max.message.bytes" => {
            config.max_message_bytes = usize::try_from(positive(name, value)?).map_err(|e| e.to_string())?
        }
        "message.timestamp.type" => {
            config.log_append_time = match value {
                "CreateTime" => false,
                "LogAppendTime" => true,
                _ => return Err(format!("message.timestamp.type must be CreateTime or LogAppendTime, got {value:?}")),
            }
        }
        "min.insync.replicas" => {
            positive(name, value)?;
        }
        "index.interval.bytes" => config.index_interval_bytes = positive(name, value)?,
        "file.delete.delay.ms" => match parse_i64(name, value)? {
            ms if ms >= 0 => config.file_delete_delay = Duration::from_millis(ms as u64),
            ms => return Err(format!("file.delete.delay.ms must be >= 0, got {ms}")),
        },
        _ => debug_assert!(!def.enforced, "{name} is enforced but not applied"),
    }
    Ok(())
}

/// The log settings of a topic: broker defaults overridden by the topic's configs.
pub fn log_config(defaults: &LogConfig, configs: &TopicConfigs) -> Result<LogConfig, String> {
    let mut config = defaults.clone();
    for (name, value) in configs {
        apply(&mut config, name, value)?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The value a config has under the broker defaults (DescribeConfigs for unset configs):
/// sluice's own setting where one stands behind the config, else Kafka's default.
pub fn default_value(defaults: &LogConfig, name: &str) -> String {
    let millis = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64).to_string();
    match name {
        "cleanup.policy" => match (defaults.compact, defaults.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
        .into(),
        "delete.retention.ms" => defaults.delete_retention.as_millis().to_string(),
        "retention.ms" => millis(defaults.retention_ms),
        "retention.bytes" => defaults.retention_bytes.map_or(-1, |b| b as i64).to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.ms" => defaults.segment_ms.map_or(LONG_MAX.into(), |d| d.as_millis().to_string()),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.type" => if defaults.log_append_time { "LogAppendTime" } else { "CreateTime" }.into(),
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        "file.delete.delay.ms" => defaults.file_delete_delay.as_millis().to_string(),
        // What the broker's flush policy amounts to in Kafka's terms.
        "flush.messages" => if defaults.flush.syncs_every_append() { "1" } else { LONG_MAX }.into(),
        "flush.ms" => match defaults.flush {
            FlushPolicy::Interval(every) => every.as_millis().to_string(),
            _ => LONG_MAX.into(),
        },
        _ => definition(name).map_or_else(String::new, |def| def.kafka_default.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_configs_override_broker_defaults() {
        let configs: TopicConfigs = [
            ("retention.ms".to_string(), "-1".to_string()),
            ("segment.bytes".to_string(), "1048576".to_string()),
            ("message.timestamp.type".to_string(), "LogAppendTime".to_string()),
        ]
        .into();
        let config = log_config(&LogConfig::default(), &configs).unwrap();
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.segment_bytes, 1 << 20);
        assert!(config.log_append_time);
        assert_eq!(default_value(&config, "segment.bytes"), "1048576");
    }

    #[test]
    fn cleanup_policy_and_delete_retention_map_to_the_log_config() {
        let defaults = LogConfig::default();
        assert!(defaults.delete && !defaults.compact, "Kafka's default is delete");
        assert_eq!(default_value(&defaults, "cleanup.policy"), "delete");
        assert_eq!(default_value(&defaults, "delete.retention.ms"), "86400000");
        for (value, compact, delete) in [
            ("compact", true, false),
            ("delete", false, true),
            ("compact,delete", true, true),
            (" delete , compact", true, true),
        ] {
            let configs: TopicConfigs = [("cleanup.policy".to_string(), value.to_string())].into();
            let config = log_config(&defaults, &configs).unwrap();
            assert_eq!((config.compact, config.delete), (compact, delete), "{value}");
        }
        let configs: TopicConfigs = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("delete.retention.ms".to_string(), "1000".to_string()),
        ]
        .into();
        let config = log_config(&defaults, &configs).unwrap();
        assert_eq!(config.delete_retention, Duration::from_secs(1));
        assert_eq!(default_value(&config, "cleanup.policy"), "compact");
        assert_eq!(default_value(&config, "delete.retention.ms"), "1000");
        assert!(is_known("delete.retention.ms"));
        let mut config = LogConfig::default();
        assert!(apply(&mut config, "delete.retention.ms", "-1").unwrap_err().contains("delete.retention.ms"));
        assert!(apply(&mut config, "cleanup.policy", "").is_err());
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused_with_the_name() {
        let mut config = LogConfig::default();
        assert!(apply(&mut config, "retention.ms", "soon").unwrap_err().contains("retention.ms"));
        assert!(apply(&mut config, "segment.bytes", "0").is_err());
        assert!(apply(&mut config, "cleanup.policy", "shred").is_err());
        assert!(apply(&mut config, "no.such.config", "1").unwrap_err().contains("no.such.config"));
        let tiny: TopicConfigs = [("segment.bytes".to_string(), "10".to_string())].into();
        assert!(log_config(&LogConfig::default(), &tiny).is_err(), "the engine's own range check applies");
    }

    #[test]
    fn every_described_default_is_accepted_back() {
        // Read-modify-write AlterConfigs sends back every described value.
        let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|def| def.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "the table is in name order, each name once");
        assert_eq!(names.len(), 33, "Kafka 4.x describes 33 topic configs");
        for flush in
            [FlushPolicy::EveryAppend, FlushPolicy::Bytes(1 << 20), FlushPolicy::Interval(Duration::from_secs(1))]
        {
            let defaults = LogConfig { flush, ..LogConfig::default() };
            let all: TopicConfigs =
                names.iter().map(|name| (name.to_string(), default_value(&defaults, name))).collect();
            let config = log_config(&defaults, &all).unwrap_or_else(|e| panic!("{flush:?}: {e}"));
            assert_eq!(config, defaults, "writing the defaults back changes nothing");
        }
    }

    #[test]
    fn not_enforced_configs_are_checked_as_kafka_checks_them() {
        let mut config = LogConfig::default();
        for (name, good, bad) in [
            ("compression.type", "zstd", "brotli"),
            ("compression.gzip.level", "-1", "0"),
            ("compression.zstd.level", "-131072", "23"),
            ("min.cleanable.dirty.ratio", "0.9", "1.5"),
            ("preallocate", "TRUE", "yes"),
            ("flush.messages", "1", "0"),
            ("local.retention.ms", "-2", "-3"),
            ("leader.replication.throttled.replicas", "0:1,1:1", "0-1"),
            ("follower.replication.throttled.replicas", "*", "x:1"),
            ("segment.index.bytes", "4", "3"),
        ] {
            apply(&mut config, name, good).unwrap_or_else(|e| panic!("{name}={good}: {e}"));
            let error = apply(&mut config, name, bad).unwrap_err();
            assert!(error.starts_with(&format!("Invalid value {bad} for configuration {name}: ")), "{error}");
        }
        assert_eq!(config, LogConfig::default(), "configs not enforced leave the log config alone");
        for removed in
            ["message.format.version", "message.downconversion.enable", "message.timestamp.difference.max.ms"]
        {
            assert_eq!(apply(&mut config, removed, "1").unwrap_err(), format!("Unknown topic config name: {removed}"));
        }
    }
}
