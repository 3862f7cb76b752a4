//! `sluice serve`: the Kafka-compatible broker. Merges flags, `SLUICE_*` environment
//! variables and an optional TOML config file, takes the data directory's lock, installs SIGINT/SIGTERM handlers and runs
//! the broker until one arrives (then: stop accepting, finish requests in progress, flush
//! and close every log).

use crate::client_args::first_given;
use crate::data_dir_lock::DataDirLock;
use sluice_client::{ConnectionSecurity, SaslCredentials};
use sluice_engine::shard::RuntimeConfig;
use sluice_engine::{FlushPolicy, LogConfig};
use sluice_net::cluster::{ClusterConfig, InterBrokerConnections};
use sluice_net::group::state::GroupLimits;
use sluice_net::http::auth::HttpAuth;
use sluice_net::security::config::{join_host_port, ListenerConfig, SecurityConfig, TlsConfigs};
use sluice_net::topic_config;
use sluice_net::{AdminOptions, BrokerConfig, BrokerOptions, HttpOptions, LogLevelControl};
use sluice_security::listeners::{parse_listeners, parse_super_users, SecurityProtocol};
use sluice_security::principal_mapping::SslPrincipalMapper;
use sluice_security::sasl::Mechanism;
use sluice_security::tls::{load_client_config, ClientTlsFiles, ReloadableServerConfig, TlsFiles};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The admin socket's file name in the data directory, unless `--admin-socket` says otherwise.
pub const ADMIN_SOCKET_FILE: &str = "admin.sock";

/// Flags of `sluice serve`. Each setting comes from, in order: the flag, its `SLUICE_*`
/// environment variable, the `--config` file, the built-in default.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML file of settings: the flag names below as keys (`listen = "0.0.0.0:9092"`,
    /// `data-dir = "/var/lib/sluice"`, ...) and a `[topic-defaults]` table of Kafka topic
    /// configs (`"retention.ms" = "86400000"`).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: ServeSettings,
}

/// The broker's settings, as flags or as keys of the config file.
#[derive(clap::Args, serde::Deserialize, Default, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServeSettings {
    /// Address to accept Kafka clients on; every shard listens on it (SO_REUSEPORT)
    /// [default: 127.0.0.1:9092].
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Address clients are told to connect to (Metadata) [default: the listen address].
    #[arg(long, env = "SLUICE_ADVERTISE")]
    advertise: Option<String>,
    /// Listeners, Kafka style: `PROTOCOL://HOST:PORT,...` with PROTOCOL one of PLAINTEXT,
    /// SSL, SASL_PLAINTEXT, SASL_SSL (in place of --listen; the first is where the other
    /// brokers of a cluster reach this one).
    #[arg(long, env = "SLUICE_LISTENERS", conflicts_with = "listen")]
    listeners: Option<String>,
    /// Addresses clients of each listener are told to connect to, the same shape as
    /// --listeners, by protocol [default: each listener's own address].
    #[arg(long, env = "SLUICE_ADVERTISED_LISTENERS", conflicts_with = "advertise")]
    advertised_listeners: Option<String>,
    /// PEM certificate chain of SSL and SASL_SSL listeners; reloaded on SIGHUP.
    #[arg(long, env = "SLUICE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, env = "SLUICE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients of SSL listeners must present a certificate signed by
    /// one (mutual TLS); their principal is the certificate's subject (SASL_SSL listeners
    /// do not ask: SASL says who the client is) [default: no client certificates].
    #[arg(long, env = "SLUICE_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Kafka's `ssl.principal.mapping.rules`: `RULE:pattern/replacement/[LU],...,DEFAULT`
    /// [default: DEFAULT, the subject as is].
    #[arg(long, env = "SLUICE_SSL_PRINCIPAL_MAPPING_RULES")]
    ssl_principal_mapping_rules: Option<String>,
    /// SASL mechanisms SASL listeners offer: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    /// [default: SCRAM-SHA-256,SCRAM-SHA-512].
    #[arg(long, env = "SLUICE_SASL_MECHANISMS")]
    sasl_mechanisms: Option<String>,
    /// SASL sessions last this long; clients re-authenticate on the same connection
    /// (`connections.max.reauth.ms`, KIP-368) [default: 0, never expire].
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_REAUTH_MS")]
    connections_max_reauth_ms: Option<u64>,
    /// `acl` turns on ACL authorization; it is on anyway with an SSL or SASL listener
    /// [default: none on a PLAINTEXT-only broker: everything is allowed].
    #[arg(long, env = "SLUICE_AUTHORIZER")]
    authorizer: Option<String>,
    /// Principals every ACL check allows (`super.users`): `User:a,User:b` or Kafka's
    /// `User:a;User:b` (use `;` where names contain commas).
    #[arg(long, env = "SLUICE_SUPER_USERS")]
    super_users: Option<String>,
    /// Allow an operation on a resource that has no ACL at all
    /// (`allow.everyone.if.no.acl.found`) [default: false].
    #[arg(long, env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND", action = clap::ArgAction::Set)]
    allow_everyone_if_no_acl_found: Option<bool>,
    /// In a cluster, the listener (named by its protocol) that brokers connect to on each
    /// other: replica fetches, transaction markers, Schema Registry writes
    /// (`inter.broker.listener.name`) [default: the first of --listeners].
    #[arg(long, env = "SLUICE_INTER_BROKER_LISTENER_NAME")]
    inter_broker_listener_name: Option<String>,
    /// The SASL mechanism brokers authenticate with on a SASL inter-broker listener
    /// (`sasl.mechanism.inter.broker.protocol`); one of --sasl-mechanisms.
    #[arg(long, env = "SLUICE_INTER_BROKER_SASL_MECHANISM")]
    inter_broker_sasl_mechanism: Option<String>,
    /// The SASL user brokers authenticate as on each other (a super user when the ACL
    /// authorizer is on). Its password comes from SLUICE_INTER_BROKER_SASL_PASSWORD or
    /// --inter-broker-sasl-password-file.
    #[arg(long, env = "SLUICE_INTER_BROKER_SASL_USERNAME")]
    inter_broker_sasl_username: Option<String>,
    /// A file holding the inter-broker SASL user's password (its first line).
    #[arg(long, value_name = "FILE", env = "SLUICE_INTER_BROKER_SASL_PASSWORD_FILE")]
    inter_broker_sasl_password_file: Option<PathBuf>,
    /// PEM CA certificates that the other brokers' certificates must chain to, on a TLS
    /// inter-broker listener [default: --tls-client-ca]. On an SSL inter-broker listener a
    /// broker presents its own --tls-cert, which then needs the clientAuth key usage too.
    #[arg(long, value_name = "FILE", env = "SLUICE_INTER_BROKER_TLS_CA")]
    inter_broker_tls_ca: Option<PathBuf>,
    /// Directory holding the partition logs and the metadata [default: ./data].
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Number of shards, one executor per core [default: all online CPUs].
    #[arg(long, env = "SLUICE_CORES")]
    cores: Option<usize>,
    /// When to fsync: `every-append` (acks wait for fsync), `bytes:N`, `ms:N`, `never`
    /// [default: every-append].
    #[arg(long, env = "SLUICE_FLUSH", value_parser = parse_flush_text)]
    flush: Option<String>,
    /// Create topics when clients ask for their metadata (`auto.create.topics.enable`)
    /// [default: true].
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS", action = clap::ArgAction::Set)]
    auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics (`num.partitions`) [default: 1].
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// Largest batch accepted unless a topic sets `max.message.bytes`
    /// (`message.max.bytes`) [default: 1048576].
    #[arg(long, env = "SLUICE_MESSAGE_MAX_BYTES")]
    message_max_bytes: Option<usize>,
    /// Default `segment.bytes` of topics [default: 134217728].
    #[arg(long, env = "SLUICE_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// Largest request frame; a larger one closes the connection
    /// (`socket.request.max.bytes`) [default: 104857600].
    #[arg(long, env = "SLUICE_SOCKET_REQUEST_MAX_BYTES")]
    socket_request_max_bytes: Option<usize>,
    /// A default for every topic that does not set it, as a Kafka topic config
    /// `name=value` (repeatable), e.g. `--topic-default retention.ms=86400000`.
    #[arg(long = "topic-default", value_parser = crate::parse_name_value)]
    #[serde(default, deserialize_with = "topic_defaults_table")]
    topic_defaults: Vec<(String, String)>,
    /// How long the first rebalance of an empty consumer group waits for more members
    /// (`group.initial.rebalance.delay.ms`) [default: 3000].
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// The longest `transaction.timeout.ms` a transactional producer may ask for
    /// (`transaction.max.timeout.ms`) [default: 900000].
    #[arg(long, env = "SLUICE_TRANSACTION_MAX_TIMEOUT_MS")]
    transaction_max_timeout_ms: Option<i32>,
    /// A transactional id unused for this long, with no transaction open, is forgotten
    /// (`transactional.id.expiration.ms`) [default: 604800000, 7 days].
    #[arg(long, env = "SLUICE_TRANSACTIONAL_ID_EXPIRATION_MS")]
    transactional_id_expiration_ms: Option<u64>,
    /// Spin this many microseconds before an idle shard parks; 0 parks at once
    /// [default: 0: spinning cost 20% more CPU per GB ingested here and gained no latency
    /// beyond run-to-run spread, docs/BENCHMARKS.md].
    #[arg(long, env = "SLUICE_SPIN_BEFORE_PARK_US")]
    spin_before_park_us: Option<u64>,
    /// Unix socket `sluice admin` talks to (line-delimited JSON, mode 0600)
    /// [default: <data-dir>/admin.sock].
    #[arg(long, env = "SLUICE_ADMIN_SOCKET")]
    admin_socket: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://HOST:PORT/metrics` [default: off].
    #[arg(long, env = "SLUICE_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Serve the Schema Registry's REST API (Confluent's) at `http://HOST:PORT`, schemas
    /// kept in the `_schemas` topic [default: off; `make run` uses 127.0.0.1:8081].
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_LISTEN")]
    schema_registry_listen: Option<String>,
    /// Serve metrics and the Schema Registry over HTTPS with the --tls-cert certificate,
    /// reloaded on SIGHUP as the Kafka listeners' is [default: plain HTTP].
    #[arg(long, env = "SLUICE_HTTP_TLS")]
    #[serde(default)]
    http_tls: bool,
    /// `basic`: every request to metrics and the Schema Registry needs HTTP basic auth
    /// with a user's name and password, checked against the users' SCRAM credentials as
    /// SASL PLAIN is (authentication only: no ACL is consulted) [default: none].
    #[arg(long, env = "SLUICE_HTTP_AUTH")]
    http_auth: Option<String>,
    /// This broker's node id (Kafka's `node.id`) [default: 0].
    #[arg(long, env = "SLUICE_NODE_ID")]
    node_id: Option<i32>,
    /// The controller quorum's voters, `ID@HOST:PORT,...` (Kafka's
    /// `controller.quorum.voters`): makes this broker part of that cluster; a node listed
    /// there is a controller voter too and needs --controller-listen [default: none, a
    /// single node].
    #[arg(long, env = "SLUICE_CONTROLLER_QUORUM_VOTERS")]
    controller_quorum_voters: Option<String>,
    /// Where this node's controller listens (its entry in the voters list).
    #[arg(long, env = "SLUICE_CONTROLLER_LISTEN")]
    controller_listen: Option<String>,
    /// A broker that has not heartbeated for this long is fenced and its leaderships move
    /// (`broker.session.timeout.ms`) [default: 9000].
    #[arg(long, env = "SLUICE_BROKER_SESSION_TIMEOUT_MS")]
    broker_session_timeout_ms: Option<u64>,
    /// How often a broker heartbeats to the controller (`broker.heartbeat.interval.ms`)
    /// [default: 2000].
    #[arg(long, env = "SLUICE_BROKER_HEARTBEAT_INTERVAL_MS")]
    broker_heartbeat_interval_ms: Option<u64>,
    /// A follower behind the leader's log end for this long leaves the ISR
    /// (`replica.lag.time.max.ms`) [default: 30000].
    #[arg(long, env = "SLUICE_REPLICA_LAG_TIME_MAX_MS")]
    replica_lag_time_max_ms: Option<u64>,
    /// Replicas per partition of topics created without a replication factor
    /// (`default.replication.factor`) [default: 1].
    #[arg(long, env = "SLUICE_DEFAULT_REPLICATION_FACTOR")]
    default_replication_factor: Option<usize>,
    /// Leadership goes back to each partition's preferred replica when a broker leads too
    /// few of its own (`auto.leader.rebalance.enable`) [default: true].
    #[arg(long, env = "SLUICE_AUTO_LEADER_REBALANCE_ENABLE")]
    auto_leader_rebalance_enable: Option<bool>,
    /// How often the controller looks for leadership to rebalance
    /// (`leader.imbalance.check.interval.ms`) [default: 300000].
    #[arg(long, env = "SLUICE_LEADER_IMBALANCE_CHECK_INTERVAL_MS")]
    leader_imbalance_check_interval_ms: Option<u64>,
}

impl ServeSettings {
    /// Reads a config file.
    fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Settings given here win; the rest come from `fallback`. Topic defaults merge, ours
    /// last (so they win on the same name).
    fn or(self, fallback: ServeSettings) -> ServeSettings {
        ServeSettings {
            listen: self.listen.or(fallback.listen),
            advertise: self.advertise.or(fallback.advertise),
            listeners: self.listeners.or(fallback.listeners),
            advertised_listeners: self.advertised_listeners.or(fallback.advertised_listeners),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            tls_client_ca: self.tls_client_ca.or(fallback.tls_client_ca),
            ssl_principal_mapping_rules: self.ssl_principal_mapping_rules.or(fallback.ssl_principal_mapping_rules),
            sasl_mechanisms: self.sasl_mechanisms.or(fallback.sasl_mechanisms),
            connections_max_reauth_ms: self.connections_max_reauth_ms.or(fallback.connections_max_reauth_ms),
            authorizer: self.authorizer.or(fallback.authorizer),
            super_users: self.super_users.or(fallback.super_users),
            allow_everyone_if_no_acl_found: self
                .allow_everyone_if_no_acl_found
                .or(fallback.allow_everyone_if_no_acl_found),
            inter_broker_listener_name: self.inter_broker_listener_name.or(fallback.inter_broker_listener_name),
            inter_broker_sasl_mechanism: self.inter_broker_sasl_mechanism.or(fallback.inter_broker_sasl_mechanism),
            inter_broker_sasl_username: self.inter_broker_sasl_username.or(fallback.inter_broker_sasl_username),
            inter_broker_sasl_password_file: self
                .inter_broker_sasl_password_file
                .or(fallback.inter_broker_sasl_password_file),
            inter_broker_tls_ca: self.inter_broker_tls_ca.or(fallback.inter_broker_tls_ca),
            data_dir: self.data_dir.or(fallback.data_dir),
            cores: self.cores.or(fallback.cores),
            flush: self.flush.or(fallback.flush),
            auto_create_topics: self.auto_create_topics.or(fallback.auto_create_topics),
            num_partitions: self.num_partitions.or(fallback.num_partitions),
            message_max_bytes: self.message_max_bytes.or(fallback.message_max_bytes),
            segment_bytes: self.segment_bytes.or(fallback.segment_bytes),
            socket_request_max_bytes: self.socket_request_max_bytes.or(fallback.socket_request_max_bytes),
            topic_defaults: fallback.topic_defaults.into_iter().chain(self.topic_defaults).collect(),
            spin_before_park_us: self.spin_before_park_us.or(fallback.spin_before_park_us),
            admin_socket: self.admin_socket.or(fallback.admin_socket),
            metrics_listen: self.metrics_listen.or(fallback.metrics_listen),
            schema_registry_listen: self.schema_registry_listen.or(fallback.schema_registry_listen),
            http_tls: self.http_tls || fallback.http_tls,
            http_auth: self.http_auth.or(fallback.http_auth),
            node_id: self.node_id.or(fallback.node_id),
            controller_quorum_voters: self.controller_quorum_voters.or(fallback.controller_quorum_voters),
            controller_listen: self.controller_listen.or(fallback.controller_listen),
            broker_session_timeout_ms: self.broker_session_timeout_ms.or(fallback.broker_session_timeout_ms),
            broker_heartbeat_interval_ms: self.broker_heartbeat_interval_ms.or(fallback.broker_heartbeat_interval_ms),
            replica_lag_time_max_ms: self.replica_lag_time_max_ms.or(fallback.replica_lag_time_max_ms),
            default_replication_factor: self.default_replication_factor.or(fallback.default_replication_factor),
            auto_leader_rebalance_enable: self.auto_leader_rebalance_enable.or(fallback.auto_leader_rebalance_enable),
            leader_imbalance_check_interval_ms: self
                .leader_imbalance_check_interval_ms
                .or(fallback.leader_imbalance_check_interval_ms),
            group_initial_rebalance_delay_ms: self
                .group_initial_rebalance_delay_ms
                .or(fallback.group_initial_rebalance_delay_ms),
            transaction_max_timeout_ms: self.transaction_max_timeout_ms.or(fallback.transaction_max_timeout_ms),
            transactional_id_expiration_ms: self
                .transactional_id_expiration_ms
                .or(fallback.transactional_id_expiration_ms),
        }
    }
}

/// `[topic-defaults]` in the config file: a table of Kafka topic config names to values
/// (strings or numbers, as a Kafka properties file would hold them).
fn topic_defaults_table<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    let table = <std::collections::BTreeMap<String, toml::Value> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(table
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::String(text) => text,
                other => other.to_string(),
            };
            (name, value)
        })
        .collect())
}

fn parse_flush_text(text: &str) -> Result<String, String> {
    text.parse::<FlushPolicy>().map(|_| text.to_string())
}

/// `ID@HOST:PORT,...` → voters by id.
fn parse_voters(text: &str) -> Result<std::collections::BTreeMap<u64, String>, String> {
    let mut voters = std::collections::BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) =
            entry.split_once('@').ok_or_else(|| format!("controller voter {entry:?} is not ID@HOST:PORT"))?;
        let id: u64 = id.parse().map_err(|_| format!("controller voter {entry:?}: bad node id"))?;
        split_host_port(address)?;
        if voters.insert(id, address.to_string()).is_some() {
            return Err(format!("controller voter {id} is listed twice"));
        }
    }
    if voters.is_empty() {
        return Err("--controller-quorum-voters lists no voter".into());
    }
    Ok(voters)
}

/// The cluster settings, or `None` for a single node; checks that they fit together.
fn cluster_config(settings: &ServeSettings, node_id: i32, shards: usize) -> Result<Option<ClusterConfig>, String> {
    let Some(voters) = &settings.controller_quorum_voters else {
        if settings.controller_listen.is_some() {
            return Err("--controller-listen needs --controller-quorum-voters".into());
        }
        return Ok(None);
    };
    let voters = parse_voters(voters)?;
    if !(0..sluice_net::cluster::CLUSTER_NODE_IDS_MAX).contains(&node_id) {
        return Err(format!(
            "--node-id {node_id}: in a cluster node ids are 0..{}",
            sluice_net::cluster::CLUSTER_NODE_IDS_MAX
        ));
    }
    if shards > 64 {
        return Err("in a cluster a broker runs at most 64 shards (--cores)".into());
    }
    let voter = voters.get(&(node_id as u64));
    match (voter, &settings.controller_listen) {
        (Some(_), None) => {
            return Err(format!("node {node_id} is a controller voter: give it --controller-listen"));
        }
        (None, Some(listen)) => {
            return Err(format!("--controller-listen {listen}: node {node_id} is not among the voters"));
        }
        (Some(address), Some(listen)) if address != listen => {
            return Err(format!("--controller-listen {listen} differs from node {node_id}'s voter address {address}"));
        }
        _ => {}
    }
    let mut config = ClusterConfig::new(voters, settings.controller_listen.clone());
    if let Some(ms) = settings.broker_heartbeat_interval_ms {
        config.broker_heartbeat_interval_ms = ms;
    }
    if let Some(ms) = settings.replica_lag_time_max_ms {
        config.replica_lag_time_max_ms = ms;
    }
    if let Some(enable) = settings.auto_leader_rebalance_enable {
        config.controller.auto_leader_rebalance = enable;
    }
    if let Some(ms) = settings.leader_imbalance_check_interval_ms {
        config.controller.leader_imbalance_check_interval_ms = ms;
    }
    if let Some(ms) = settings.broker_session_timeout_ms {
        config.controller.broker_session_timeout_ms = ms;
    }
    if let Some(factor) = settings.default_replication_factor {
        if factor == 0 {
            return Err("--default-replication-factor must be at least 1".into());
        }
        config.default_replication_factor = factor;
    }
    Ok(Some(config))
}

/// The listeners: `--listeners` (with `--advertised-listeners`), or the one PLAINTEXT
/// listener of `--listen` (with `--advertise`).
fn listener_configs(settings: &ServeSettings) -> Result<Vec<ListenerConfig>, String> {
    let Some(text) = &settings.listeners else {
        let listen = settings.listen.clone().unwrap_or_else(|| "127.0.0.1:9092".into());
        split_host_port(&listen)?;
        let (host, port) = split_host_port(settings.advertise.as_deref().unwrap_or(&listen))?;
        return Ok(vec![ListenerConfig { bind: listen, ..ListenerConfig::plaintext(&host, port) }]);
    };
    let bound = parse_listeners(text).map_err(|e| format!("--listeners: {e}"))?;
    if bound.is_empty() {
        return Err("--listeners lists no listener".into());
    }
    let advertised = match &settings.advertised_listeners {
        Some(text) => parse_listeners(text).map_err(|e| format!("--advertised-listeners: {e}"))?,
        None => Vec::new(),
    };
    if let Some(extra) = advertised.iter().find(|a| !bound.iter().any(|b| b.protocol == a.protocol)) {
        return Err(format!(
            "--advertised-listeners names {} but --listeners has no such listener",
            extra.protocol.name()
        ));
    }
    Ok(bound
        .iter()
        .map(|listener| {
            let shown = advertised.iter().find(|a| a.protocol == listener.protocol).unwrap_or(listener);
            // A listener bound to all interfaces is advertised on loopback unless told otherwise.
            let host = if shown.host.is_empty() || shown.host == "0.0.0.0" { "127.0.0.1" } else { &shown.host };
            ListenerConfig {
                protocol: listener.protocol,
                bind: join_host_port(if listener.host.is_empty() { "0.0.0.0" } else { &listener.host }, listener.port),
                advertised_host: host.to_string(),
                advertised_port: shown.port,
            }
        })
        .collect())
}

/// TLS, SASL and authorization settings, checked against the listeners.
fn security_config(settings: &ServeSettings, listeners: &[ListenerConfig]) -> Result<SecurityConfig, String> {
    let tls_files = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: settings.tls_client_ca.clone() })
        }
        (None, None) if settings.tls_client_ca.is_none() => None,
        _ => return Err("TLS needs both --tls-cert and --tls-key (and --tls-client-ca only with them)".into()),
    };
    let wants_tls = listeners.iter().any(|l| l.protocol.uses_tls());
    let wants_sasl = listeners.iter().any(|l| l.protocol.uses_sasl());
    if wants_tls && tls_files.is_none() {
        return Err("an SSL or SASL_SSL listener needs --tls-cert and --tls-key".into());
    }
    if settings.http_tls && tls_files.is_none() {
        return Err("--http-tls needs --tls-cert and --tls-key".into());
    }
    let tls = match tls_files {
        Some(files) if wants_tls || settings.http_tls => {
            let load = |files: TlsFiles| ReloadableServerConfig::new(files).map(Arc::new).map_err(|e| e.to_string());
            let ssl = load(files.clone())?;
            let sasl_ssl =
                if files.client_ca.is_some() { load(TlsFiles { client_ca: None, ..files })? } else { ssl.clone() };
            Some(TlsConfigs { ssl, sasl_ssl })
        }
        _ => None,
    };
    let sasl_mechanisms = settings
        .sasl_mechanisms
        .as_deref()
        .unwrap_or("SCRAM-SHA-256,SCRAM-SHA-512")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| Mechanism::from_name(name).ok_or_else(|| format!("--sasl-mechanisms: unknown mechanism {name:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if wants_sasl && sasl_mechanisms.is_empty() {
        return Err("a SASL listener needs at least one of --sasl-mechanisms".into());
    }
    let authorizer = match settings.authorizer.as_deref() {
        Some("acl") => true,
        Some("none") | None => wants_tls || wants_sasl,
        Some(other) => return Err(format!("--authorizer {other:?}: the choices are acl and none")),
    };
    if settings.authorizer.as_deref() == Some("none") && (wants_tls || wants_sasl) {
        return Err("--authorizer none: with an SSL or SASL listener the ACL authorizer is always on".into());
    }
    let principal_mapping = match &settings.ssl_principal_mapping_rules {
        Some(rules) => {
            Some(Arc::new(SslPrincipalMapper::parse(rules).map_err(|e| format!("--ssl-principal-mapping-rules: {e}"))?))
        }
        None => None,
    };
    Ok(SecurityConfig {
        tls,
        sasl_mechanisms,
        super_users: match settings.super_users.as_deref() {
            Some(text) => checked_principals(parse_super_users(text))?,
            None => Vec::new(),
        },
        authorizer,
        allow_everyone_if_no_acl_found: settings.allow_everyone_if_no_acl_found.unwrap_or(false),
        max_reauth: settings.connections_max_reauth_ms.filter(|ms| *ms > 0).map(Duration::from_millis),
        principal_mapping,
    })
}

/// Where the environment holds the inter-broker SASL password when no file is given (no
/// flag: a flag's value shows in the process list).
const INTER_BROKER_PASSWORD_ENV: &str = "SLUICE_INTER_BROKER_SASL_PASSWORD";

/// How this broker reaches the others of its cluster: the inter-broker listener (by
/// protocol) and the client side of its security, checked against this broker's own
/// listeners and authorizer, since every broker of a cluster is configured alike.
fn inter_broker_connections(
    settings: &ServeSettings,
    listeners: &[ListenerConfig],
    security: &SecurityConfig,
    password_env: Option<String>,
) -> Result<InterBrokerConnections, String> {
    let protocol = match &settings.inter_broker_listener_name {
        Some(name) => {
            let protocol: SecurityProtocol =
                name.parse().map_err(|e| format!("--inter-broker-listener-name {name}: {e}"))?;
            if !listeners.iter().any(|listener| listener.protocol == protocol) {
                return Err(format!("--inter-broker-listener-name {name}: no such listener in --listeners"));
            }
            protocol
        }
        None => listeners[0].protocol,
    };
    let tls = if protocol.uses_tls() {
        let ca = settings.inter_broker_tls_ca.clone().or_else(|| settings.tls_client_ca.clone()).ok_or_else(|| {
            format!(
                "brokers reach each other over {protocol}: give --inter-broker-tls-ca FILE (or --tls-client-ca), the \
                 CA that signed the brokers' certificates"
            )
        })?;
        // SSL listeners require a client certificate: a broker shows its own.
        let identity =
            (protocol == SecurityProtocol::Ssl).then(|| settings.tls_cert.clone().zip(settings.tls_key.clone()));
        let identity = identity.flatten();
        Some(load_client_config(&ClientTlsFiles { ca, identity }).map_err(|e| format!("inter-broker TLS: {e}"))?)
    } else {
        if settings.inter_broker_tls_ca.is_some() {
            return Err(format!("--inter-broker-tls-ca is given, but brokers reach each other over {protocol}"));
        }
        None
    };
    let sasl = if protocol.uses_sasl() {
        let needs = |what: &str| format!("brokers reach each other over {protocol}: give {what}");
        let mechanism =
            settings.inter_broker_sasl_mechanism.as_deref().ok_or_else(|| needs("--inter-broker-sasl-mechanism"))?;
        let mechanism = crate::client_args::parse_mechanism(mechanism)?;
        if !security.sasl_mechanisms.contains(&mechanism) {
            return Err(format!("--inter-broker-sasl-mechanism {}: not among --sasl-mechanisms", mechanism.name()));
        }
        let username =
            settings.inter_broker_sasl_username.clone().ok_or_else(|| needs("--inter-broker-sasl-username"))?;
        let password = match &settings.inter_broker_sasl_password_file {
            Some(path) => crate::client_args::read_password_file(path)?,
            None => password_env.ok_or_else(|| {
                needs(&format!("the password in {INTER_BROKER_PASSWORD_ENV} or --inter-broker-sasl-password-file"))
            })?,
        };
        if security.authorizer && !security.super_users.contains(&format!("User:{username}")) {
            return Err(format!(
                "with the ACL authorizer the inter-broker user must be a super user: add User:{username} to \
                 --super-users"
            ));
        }
        Some(SaslCredentials::new(mechanism, username, password))
    } else {
        if let Some(flag) = first_given(&inter_broker_sasl_flags(settings)) {
            return Err(format!("{flag} is given, but brokers reach each other over {protocol}, without SASL"));
        }
        None
    };
    if protocol == SecurityProtocol::Plaintext
        && security.authorizer
        && !security.super_users.iter().any(|user| user == "User:ANONYMOUS")
    {
        return Err("in a cluster with the ACL authorizer, brokers reach each other as User:ANONYMOUS on a PLAINTEXT \
                    inter-broker listener: add User:ANONYMOUS to --super-users and keep that listener on a private \
                    address, or authenticate brokers with --inter-broker-listener-name SASL_SSL (or SSL)"
            .into());
    }
    Ok(InterBrokerConnections { protocol, security: ConnectionSecurity { tls, sasl } })
}

/// The inter-broker SASL flags, each with whether it is given.
fn inter_broker_sasl_flags(settings: &ServeSettings) -> [(&'static str, bool); 3] {
    [
        ("--inter-broker-sasl-mechanism", settings.inter_broker_sasl_mechanism.is_some()),
        ("--inter-broker-sasl-username", settings.inter_broker_sasl_username.is_some()),
        ("--inter-broker-sasl-password-file", settings.inter_broker_sasl_password_file.is_some()),
    ]
}

/// An inter-broker setting that is given, if any (they mean something only in a cluster).
fn names_inter_broker_settings(settings: &ServeSettings) -> Option<&'static str> {
    first_given(&[
        ("--inter-broker-listener-name", settings.inter_broker_listener_name.is_some()),
        ("--inter-broker-tls-ca", settings.inter_broker_tls_ca.is_some()),
    ])
    .or_else(|| first_given(&inter_broker_sasl_flags(settings)))
}

/// Principals as Kafka writes them, `Type:name`; anything else would silently match nobody.
fn checked_principals(principals: Vec<String>) -> Result<Vec<String>, String> {
    for principal in &principals {
        match principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return Err(format!("--super-users: {principal:?} is not a principal such as User:alice")),
        }
    }
    Ok(principals)
}

fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("{address:?} is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("{address:?}: bad port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

/// Runs until SIGINT, SIGTERM or the admin `shutdown` command.
pub fn run(args: ServeArgs, log_level: Arc<dyn LogLevelControl>) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => ServeSettings::from_file(path)?,
        None => ServeSettings::default(),
    };
    let settings = args.settings.or(file);
    let (mut options, data_dir) = broker_options(settings)?;
    options.admin.log_level = Some(log_level);
    let _lock = DataDirLock::acquire(&data_dir)?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, options.stop.clone()).map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    if let Some(tls) = options.broker.security.tls.clone() {
        reload_tls_on_sighup(tls)?;
    }
    sluice_net::run(options)
}

/// Re-reads the TLS certificate, key and client CA on every SIGHUP (new connections get
/// them; open ones keep theirs). A bad file keeps the old ones and says why.
fn reload_tls_on_sighup(tls: TlsConfigs) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    std::thread::Builder::new()
        .name("sluice-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(error) => tracing::error!(%error, "TLS certificate not reloaded: keeping the previous one"),
                }
            }
        })
        .map_err(|e| format!("cannot start the SIGHUP thread: {e}"))?;
    Ok(())
}

/// Turns merged settings into the broker's options, filling in defaults and checking values.
fn broker_options(settings: ServeSettings) -> Result<(BrokerOptions, PathBuf), String> {
    let defaults = BrokerConfig::default();
    let listeners = listener_configs(&settings)?;
    let security = security_config(&settings, &listeners)?;
    let runtime_defaults = RuntimeConfig::default();
    let spin_us = settings.spin_before_park_us.unwrap_or(0);
    let runtime = RuntimeConfig {
        shards: settings.cores.unwrap_or(runtime_defaults.shards),
        spin_before_park: (spin_us > 0).then(|| Duration::from_micros(spin_us)),
        ..runtime_defaults
    };
    if runtime.shards == 0 {
        return Err("--cores must be at least 1".into());
    }
    let mut log_defaults = LogConfig {
        flush: settings.flush.as_deref().unwrap_or("every-append").parse()?,
        max_message_bytes: settings.message_max_bytes.unwrap_or(defaults.log_defaults.max_message_bytes),
        segment_bytes: settings.segment_bytes.unwrap_or(defaults.log_defaults.segment_bytes),
        ..LogConfig::default()
    };
    for (name, value) in &settings.topic_defaults {
        topic_config::apply(&mut log_defaults, name, value).map_err(|e| format!("topic default: {e}"))?;
        if topic_config::definition(name).is_some_and(|def| !def.enforced) {
            // Topics accept it, but a broker-wide default would silently change nothing.
            return Err(format!("topic default: sluice does not enforce {name} yet (docs/COMPATIBILITY.md)"));
        }
    }
    log_defaults.validate().map_err(|e| e.to_string())?;
    let node_id = settings.node_id.unwrap_or(defaults.node_id);
    let mut cluster = cluster_config(&settings, node_id, runtime.shards)?;
    match &mut cluster {
        Some(cluster) => {
            let password = std::env::var(INTER_BROKER_PASSWORD_ENV).ok();
            cluster.inter_broker = inter_broker_connections(&settings, &listeners, &security, password)?;
        }
        None => {
            if let Some(flag) = names_inter_broker_settings(&settings) {
                return Err(format!(
                    "{flag}: brokers connect to each other only in a cluster (--controller-quorum-voters)"
                ));
            }
        }
    }
    let min_insync_replicas = settings
        .topic_defaults
        .iter()
        .rev()
        .find(|(name, _)| name == "min.insync.replicas")
        .map_or(Ok(defaults.min_insync_replicas), |(_, value)| value.parse::<usize>())
        .map_err(|e| format!("topic default min.insync.replicas: {e}"))?;
    let data_dir = settings.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
    let broker = BrokerConfig {
        node_id,
        cluster,
        min_insync_replicas,
        listeners,
        security,
        auto_create_topics: settings.auto_create_topics.unwrap_or(defaults.auto_create_topics),
        num_partitions: settings.num_partitions.unwrap_or(defaults.num_partitions),
        max_request_bytes: settings.socket_request_max_bytes.unwrap_or(defaults.max_request_bytes),
        log_defaults,
        data_dir: data_dir.clone(),
        group_limits: GroupLimits {
            initial_rebalance_delay: settings
                .group_initial_rebalance_delay_ms
                .map_or(defaults.group_limits.initial_rebalance_delay, Duration::from_millis),
            ..defaults.group_limits.clone()
        },
        txn_limits: sluice_net::txn::TxnLimits {
            max_timeout_ms: settings.transaction_max_timeout_ms.unwrap_or(defaults.txn_limits.max_timeout_ms),
            id_expiration: settings
                .transactional_id_expiration_ms
                .map_or(defaults.txn_limits.id_expiration, Duration::from_millis),
        },
    };
    if broker.txn_limits.max_timeout_ms < 1 {
        return Err("--transaction-max-timeout-ms must be at least 1".into());
    }
    if broker.num_partitions < 1 {
        return Err("--num-partitions must be at least 1".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let admin = AdminOptions {
        socket: Some(settings.admin_socket.unwrap_or_else(|| data_dir.join(ADMIN_SOCKET_FILE))),
        log_level: None,
    };
    let http = HttpOptions {
        metrics_listen: settings.metrics_listen,
        schema_registry_listen: settings.schema_registry_listen,
        // No client certificate: basic auth, if any, says who the client is.
        tls: broker.security.tls.as_ref().filter(|_| settings.http_tls).map(|tls| tls.sasl_ssl.clone()),
        auth: match settings.http_auth.as_deref() {
            None => HttpAuth::None,
            Some(name) => HttpAuth::from_name(name)
                .ok_or_else(|| format!("--http-auth {name:?}: the choices are none and basic"))?,
        },
    };
    Ok((BrokerOptions { broker, runtime, stop, admin, http }, data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:9092"), Ok(("127.0.0.1".into(), 9092)));
        assert_eq!(split_host_port("[::1]:19092"), Ok(("::1".into(), 19092)));
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[test]
    fn config_file_fills_what_flags_leave_unset() {
        let file: ServeSettings = toml::from_str(
            r#"
            listen = "127.0.0.1:19092"
            data-dir = "/var/lib/sluice"
            num-partitions = 6
            flush = "bytes:1048576"
            [topic-defaults]
            "retention.ms" = 3600000
            "cleanup.policy" = "delete"
            "#,
        )
        .unwrap();
        let flags = ServeSettings { num_partitions: Some(3), ..ServeSettings::default() };
        let (options, data_dir) = broker_options(flags.or(file)).unwrap();
        assert_eq!(options.broker.listeners.len(), 1);
        assert_eq!(options.broker.listeners[0].bind, "127.0.0.1:19092");
        assert_eq!(data_dir, PathBuf::from("/var/lib/sluice"));
        assert_eq!(options.broker.num_partitions, 3, "the flag wins over the file");
        assert_eq!(options.broker.log_defaults.flush, FlushPolicy::Bytes(1 << 20));
        assert_eq!(options.broker.log_defaults.retention_ms, Some(Duration::from_secs(3600)));
        assert_eq!(options.broker.advertised(0), ("127.0.0.1", 19092), "advertised defaults to the listen address");
        assert_eq!(options.admin.socket, Some(PathBuf::from("/var/lib/sluice/admin.sock")), "in the data directory");
        assert_eq!(options.http.metrics_listen, None, "metrics are off unless asked for");
        assert_eq!(options.http.schema_registry_listen, None, "so is the schema registry");
    }

    #[test]
    fn admin_endpoints_come_from_the_file_unless_a_flag_names_them() {
        let file: ServeSettings = toml::from_str(
            "admin-socket = \"/run/sluice/admin.sock\"\nmetrics-listen = \"127.0.0.1:9100\"\n\
             schema-registry-listen = \"127.0.0.1:8081\"",
        )
        .unwrap();
        let flags = ServeSettings { metrics_listen: Some("0.0.0.0:9200".into()), ..ServeSettings::default() };
        let (options, _) = broker_options(flags.or(file)).unwrap();
        assert_eq!(options.admin.socket, Some(PathBuf::from("/run/sluice/admin.sock")));
        assert_eq!(options.http.metrics_listen.as_deref(), Some("0.0.0.0:9200"));
        assert_eq!(options.http.schema_registry_listen.as_deref(), Some("127.0.0.1:8081"));
    }

    #[test]
    fn http_tls_needs_the_certificate_and_http_auth_is_none_or_basic() {
        let tls = ServeSettings { http_tls: true, ..ServeSettings::default() };
        assert_eq!(broker_options(tls).err().expect("refused"), "--http-tls needs --tls-cert and --tls-key");
        let digest = ServeSettings { http_auth: Some("digest".into()), ..ServeSettings::default() };
        assert!(broker_options(digest).err().expect("refused").contains("none and basic"));
        let file: ServeSettings = toml::from_str("http-auth = \"basic\"").unwrap();
        let (options, _) = broker_options(ServeSettings::default().or(file)).unwrap();
        assert_eq!(options.http.auth, HttpAuth::Basic);
        assert!(options.http.tls.is_none(), "plain HTTP unless --http-tls");
        let (options, _) = broker_options(ServeSettings::default()).unwrap();
        assert_eq!(options.http.auth, HttpAuth::None);
    }

    #[test]
    fn inter_broker_connections_use_the_named_listener_and_need_its_credentials() {
        let settings = |name: Option<&str>, mechanism: Option<&str>, user: Option<&str>| ServeSettings {
            listeners: Some("PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094".into()),
            sasl_mechanisms: Some("SCRAM-SHA-512".into()),
            super_users: Some("User:ANONYMOUS;User:broker".into()),
            inter_broker_listener_name: name.map(Into::into),
            inter_broker_sasl_mechanism: mechanism.map(Into::into),
            inter_broker_sasl_username: user.map(Into::into),
            ..ServeSettings::default()
        };
        let connections = |settings: ServeSettings, password: Option<&str>| {
            let listeners = listener_configs(&settings)?;
            let security = security_config(&settings, &listeners)?;
            inter_broker_connections(&settings, &listeners, &security, password.map(Into::into))
        };
        let first = connections(settings(None, None, None), None).unwrap();
        assert_eq!(first.protocol, SecurityProtocol::Plaintext, "the first listener by default");
        assert!(first.security.sasl.is_none() && first.security.tls.is_none());
        let sasl = connections(settings(Some("sasl_plaintext"), Some("SCRAM-SHA-512"), Some("broker")), Some("pw"));
        let sasl = sasl.unwrap();
        assert_eq!(sasl.protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(sasl.security.protocol_name(), "SASL_PLAINTEXT");
        let refusals = [
            (settings(Some("SASL_PLAINTEXT"), None, Some("broker")), Some("pw"), "--inter-broker-sasl-mechanism"),
            (settings(Some("SASL_PLAINTEXT"), Some("SCRAM-SHA-512"), None), Some("pw"), "--inter-broker-sasl-username"),
            (settings(Some("SASL_PLAINTEXT"), Some("SCRAM-SHA-512"), Some("broker")), None, "SASL_PASSWORD"),
            (settings(Some("SASL_PLAINTEXT"), Some("SCRAM-SHA-256"), Some("broker")), Some("pw"), "--sasl-mechanisms"),
            (settings(Some("SASL_PLAINTEXT"), Some("SCRAM-SHA-512"), Some("eve")), Some("pw"), "User:eve"),
            (settings(Some("SSL"), None, None), None, "no such listener"),
            (settings(Some("KERBEROS"), None, None), None, "KERBEROS"),
            (settings(None, Some("SCRAM-SHA-512"), None), None, "without SASL"),
        ];
        for (settings, password, expected) in refusals {
            let error = connections(settings, password).expect_err("refused");
            assert!(error.contains(expected), "{error:?} should name {expected}");
        }
        let anonymous = ServeSettings { super_users: Some("User:broker".into()), ..settings(None, None, None) };
        assert!(connections(anonymous, None).expect_err("refused").contains("User:ANONYMOUS"));
        let single_node =
            ServeSettings { inter_broker_listener_name: Some("PLAINTEXT".into()), ..ServeSettings::default() };
        assert!(broker_options(single_node).err().expect("refused").contains("only in a cluster"));
    }

    #[test]
    fn config_file_mistakes_are_refused_with_their_name() {
        let unknown = toml::from_str::<ServeSettings>("lisen = \"x\"").unwrap_err().to_string();
        assert!(unknown.contains("lisen"), "{unknown}");
        let bad_default =
            ServeSettings { topic_defaults: vec![("retention.ms".into(), "soon".into())], ..ServeSettings::default() };
        assert!(broker_options(bad_default).err().expect("refused").contains("retention.ms"));
        let bad_flush = ServeSettings { flush: Some("sometimes".into()), ..ServeSettings::default() };
        assert!(broker_options(bad_flush).is_err());
    }
}
