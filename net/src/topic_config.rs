//! Topic configs under Kafka's names, and how they become a [`LogConfig`].
//!
//! A topic stores only the configs set on it; everything else falls back to the broker's
//! defaults. Values are kept as the strings clients sent, validated on the way in.

use sluice_engine::LogConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Configs set on one topic (name → value), as stored in the metadata.
pub type TopicConfigs = BTreeMap<String, String>;

/// Every topic config sluice understands, with a one-line meaning (DescribeConfigs
/// documentation).
pub const KNOWN_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete (retention deletes old segments), compact (keep the newest record per key), or both"),
    ("delete.retention.ms", "how long a compacted topic keeps a tombstone, from its batch's max timestamp"),
    ("retention.ms", "delete closed segments whose newest record is older than this; -1 keeps forever"),
    ("retention.bytes", "delete oldest closed segments while the partition is larger; -1 for no limit"),
    ("segment.bytes", "roll the active segment at this size"),
    ("segment.ms", "roll the active segment at this age"),
    ("max.message.bytes", "largest record batch accepted"),
    ("message.timestamp.type", "CreateTime or LogAppendTime"),
    ("min.insync.replicas", "replicas that must acknowledge acks=all (one node: always 1)"),
    ("index.interval.bytes", "bytes between sparse offset index entries"),
];

/// Whether `name` is a topic config sluice knows.
pub fn is_known(name: &str) -> bool {
    KNOWN_TOPIC_CONFIGS.iter().any(|(known, _)| *known == name)
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

/// Applies one config to `config`; an unknown name or a bad value is an error that names it.
pub fn apply(config: &mut LogConfig, name: &str, value: &str) -> Result<(), String> {
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
        _ => return Err(format!("unknown topic config {name:?}")),
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

/// The value a config has under the broker defaults (DescribeConfigs for unset configs).
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
        "segment.ms" => millis(defaults.segment_ms),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.type" => if defaults.log_append_time { "LogAppendTime" } else { "CreateTime" }.into(),
        "min.insync.replicas" => "1".into(),
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        _ => String::new(),
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
}
