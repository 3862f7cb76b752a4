//! What each admin command does, on shard 0: gather or change state on every shard
//! (`shard_work`) and shape the reply fields (documented in docs/OPERATIONS.md).

use super::protocol::{AdminRequest, ConfigAction, SettingName, UserAction};
use super::shard_work::{PartitionOutcomes, ShardAnswer, ShardQuery, ShardReport};
use super::LogLevelControl;
use crate::context::ShardContext;
use crate::metrics::{merge, merge_by_api, LatencySummary};
use serde_json::{json, Map, Value};
use sluice_engine::FlushPolicy;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The broker's version, as `sluice --version` prints it (one workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the admin commands act on (lives on shard 0).
pub struct AdminState {
    /// Shard 0.
    pub context: Rc<ShardContext>,
    /// The broker's stop flag (set by SIGTERM or `shutdown`).
    pub stop: Arc<AtomicBool>,
    /// Changes the process's log filter; `None` when the process has no reloadable one.
    pub log_level: Option<Arc<dyn LogLevelControl>>,
    /// When the broker started.
    pub started: Instant,
}

type Fields = Map<String, Value>;

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        _ => unreachable!("replies are built as JSON objects"),
    }
}

impl AdminState {
    /// Runs a request and returns the reply's fields (besides `ok`), or the error.
    /// `shutdown` only answers: the caller sets the stop flag once the reply is out
    /// ([`AdminState::stop_broker`]).
    pub async fn execute(&self, request: AdminRequest) -> Result<Fields, String> {
        match request {
            AdminRequest::Status {} => Ok(self.status(&self.reports().await)),
            AdminRequest::User(action) => self.user(action).await,
            AdminRequest::Partitions {} => Ok(fields(json!({ "partitions": partitions(&self.reports().await) }))),
            AdminRequest::Metrics {} => Ok(self.metrics(&self.reports().await)),
            AdminRequest::Config(ConfigAction::Get { name }) => Ok(self.config_get(name)),
            AdminRequest::Config(ConfigAction::Set { name, value }) => self.config_set(name, &value).await,
            AdminRequest::Flush {} => {
                let outcomes = succeeded(self.on_every_shard_partitions(ShardQuery::Flush).await)?;
                Ok(fields(json!({ "flushed": outcomes.done })))
            }
            AdminRequest::Roll { topic, partition } => {
                let filtered = topic.is_some();
                let outcomes = self.on_every_shard_partitions(ShardQuery::Roll { topic, partition }).await;
                if filtered && outcomes.done + outcomes.skipped_empty + outcomes.failed.len() == 0 {
                    return Err("no partition matches".into());
                }
                let outcomes = succeeded(outcomes)?;
                Ok(fields(json!({ "rolled": outcomes.done, "skipped_empty": outcomes.skipped_empty })))
            }
            AdminRequest::Shutdown {} => Ok(fields(json!({ "stopping": true }))),
        }
    }

    /// Stops the broker as SIGTERM does.
    pub fn stop_broker(&self) {
        tracing::info!("shutdown requested on the admin socket");
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Every shard's report, in shard order.
    pub async fn reports(&self) -> Vec<ShardReport> {
        let answers = self.context.ask_every_shard(ShardQuery::Report).await;
        answers
            .into_iter()
            .map(|answer| match answer {
                ShardAnswer::Report(report) => *report,
                _ => unreachable!("a report query is answered with a report"),
            })
            .collect()
    }

    /// Milliseconds since the broker started.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn status(&self, reports: &[ShardReport]) -> Fields {
        let shards: Vec<Value> = reports
            .iter()
            .map(|report| {
                let log_end_offsets: BTreeMap<String, i64> = report
                    .partitions
                    .iter()
                    .map(|p| (format!("{}-{}", p.topic, p.partition), p.log_end_offset))
                    .collect();
                json!({
                    "shard": report.shard,
                    "partitions": report.partitions.len(),
                    "size_bytes": report.partitions.iter().map(|p| p.size_bytes).sum::<u64>(),
                    "log_end_offsets": log_end_offsets,
                    "connections_open": report.connections_open,
                    "connections_accepted": report.connections_accepted,
                })
            })
            .collect();
        fields(json!({
            "version": VERSION,
            "uptime_ms": self.uptime_ms(),
            "partitions": reports.iter().map(|r| r.partitions.len()).sum::<usize>(),
            "size_bytes": reports.iter().flat_map(|r| &r.partitions).map(|p| p.size_bytes).sum::<u64>(),
            "connections_open": reports.iter().map(|r| r.connections_open).sum::<u64>(),
            "connections_accepted": reports.iter().map(|r| r.connections_accepted).sum::<u64>(),
            "shards": shards,
            "cluster": self.context.cluster_status(),
        }))
    }

    fn metrics(&self, reports: &[ShardReport]) -> Fields {
        let requests: Vec<Value> = merge_by_api(reports.iter().flat_map(|r| &r.requests_by_api))
            .into_iter()
            .map(|(api, latencies)| json!({ "api": api, "latency": LatencySummary::of(&latencies) }))
            .collect();
        let shards: Vec<Value> = reports
            .iter()
            .map(|report| {
                json!({
                    "shard": report.shard,
                    "requests": report.requests,
                    "busy_us": report.busy_us,
                    "calls_routed_out": report.calls_routed_out,
                    "calls_served_for_others": report.calls_served_for_others,
                    "fsyncs": report.fsync_latencies.count(),
                })
            })
            .collect();
        let fsync_latencies = merge(reports.iter().map(|r| &r.fsync_latencies));
        fields(json!({
            "uptime_ms": self.uptime_ms(),
            "requests": requests,
            "shards": shards,
            "fsync": LatencySummary::of(&fsync_latencies),
        }))
    }

    fn setting(&self, name: SettingName) -> String {
        match name {
            SettingName::LogLevel => self.log_level.as_ref().map_or_else(|| "unknown".into(), |level| level.current()),
            SettingName::Flush => self.context.log_defaults().flush.to_string(),
        }
    }

    fn config_get(&self, name: Option<SettingName>) -> Fields {
        let names = name.map_or(SettingName::ALL.to_vec(), |name| vec![name]);
        let config: Fields = names.into_iter().map(|name| (name.as_str().into(), self.setting(name).into())).collect();
        fields(json!({ "config": config }))
    }

    async fn config_set(&self, name: SettingName, value: &str) -> Result<Fields, String> {
        match name {
            SettingName::LogLevel => {
                let control = self.log_level.as_ref().ok_or("this process cannot change its log level")?;
                control.set(value)?;
                tracing::info!(log_level = value, "log level changed on the admin socket");
            }
            SettingName::Flush => {
                let policy: FlushPolicy = value.parse()?;
                let applied = self.context.ask_every_shard(ShardQuery::SetDefaultFlush(policy)).await.len();
                if applied != self.context.shards {
                    return Err(format!("only {applied} of {} shards applied the change", self.context.shards));
                }
                tracing::info!(flush = %policy, "default flush policy changed on the admin socket");
            }
        }
        Ok(self.config_get(Some(name)))
    }

    async fn on_every_shard_partitions(&self, query: ShardQuery) -> PartitionOutcomes {
        let mut total = PartitionOutcomes::default();
        for answer in self.context.ask_every_shard(query).await {
            match answer {
                ShardAnswer::Partitions(outcomes) => total.add(outcomes),
                _ => unreachable!("flush and roll are answered with partition outcomes"),
            }
        }
        total
    }
}

/// Every partition's figures, by topic and partition.
pub fn partitions(reports: &[ShardReport]) -> Vec<super::shard_work::PartitionReport> {
    let mut partitions: Vec<_> = reports.iter().flat_map(|r| r.partitions.iter().cloned()).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    partitions
}

/// The outcomes when every partition succeeded, else an error naming the failures.
fn succeeded(outcomes: PartitionOutcomes) -> Result<PartitionOutcomes, String> {
    if outcomes.failed.is_empty() {
        return Ok(outcomes);
    }
    let failures: Vec<String> = outcomes.failed.iter().map(|(name, error)| format!("{name}: {error}")).collect();
    Err(format!("{} partitions failed: {}", failures.len(), failures.join("; ")))
}

impl AdminState {
    /// `user create|delete|list`: SCRAM credentials, changed as AlterUserScramCredentials
    /// changes them (stored with the metadata, on every shard).
    async fn user(&self, action: UserAction) -> Result<Fields, String> {
        use crate::control::{MetadataChange, SecurityChange};
        use sluice_security::sasl::{Mechanism, ScramCredential, ScramMechanism};
        let scram = |name: &str| {
            Mechanism::from_name(name)
                .and_then(Mechanism::scram)
                .ok_or_else(|| format!("mechanism {name:?}: SCRAM-SHA-256 or SCRAM-SHA-512"))
        };
        let change = match action {
            UserAction::List {} => {
                let metadata = self.context.metadata();
                let users: Vec<Value> = metadata
                    .security
                    .users()
                    .map(|(name, credentials)| {
                        let mechanisms: Vec<Value> = credentials
                            .iter()
                            .map(|(mechanism, iterations)| json!({ "mechanism": mechanism.name(), "iterations": iterations }))
                            .collect();
                        json!({ "name": name, "credentials": mechanisms })
                    })
                    .collect();
                return Ok(fields(json!({ "users": users })));
            }
            UserAction::Create { name, mechanism, password, iterations } => {
                let mechanism = scram(&mechanism)?;
                let iterations = iterations.unwrap_or(ScramMechanism::MIN_ITERATIONS);
                if name.is_empty() {
                    return Err("the user name must not be empty".into());
                }
                if !(ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS).contains(&iterations) {
                    return Err(format!(
                        "iterations must be in {}..={}",
                        ScramMechanism::MIN_ITERATIONS,
                        ScramMechanism::MAX_ITERATIONS
                    ));
                }
                let credential = ScramCredential::generate(mechanism, &password, iterations);
                SecurityChange::SetCredential { user: name, mechanism, credential }
            }
            UserAction::Delete { name, mechanism } => {
                SecurityChange::RemoveCredential { user: name, mechanism: scram(&mechanism)? }
            }
        };
        let (user, mechanism) = match &change {
            SecurityChange::SetCredential { user, mechanism, .. }
            | SecurityChange::RemoveCredential { user, mechanism } => (user.clone(), mechanism.name()),
            _ => unreachable!("only credential changes are made here"),
        };
        let result = self.context.change_metadata(MetadataChange::Security(vec![change])).await;
        match result.into_iter().next().expect("one result per change") {
            Ok(()) => Ok(fields(json!({ "user": user, "mechanism": mechanism }))),
            Err(error) => Err(error.message),
        }
    }
}
