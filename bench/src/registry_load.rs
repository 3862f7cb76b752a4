//! Load on a Schema Registry's REST API (ours or any Confluent-compatible one): N clients,
//! each on its own keep-alive connection and thread, sending lookups of schemas by id, or
//! registrations of new schemas, for a set time: back to back, or paced to a total rate.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// What the clients send.
#[derive(Debug, Clone)]
pub enum RegistryLoad {
    /// `GET /schemas/ids/{id}`, taking turns over these ids.
    Lookups {
        /// Ids that exist.
        ids: Vec<i32>,
    },
    /// `POST /subjects/{prefix}-{client}/versions`, each a new schema (a field's default
    /// differs, so each is new and passes the default BACKWARD check).
    Registrations {
        /// Subject name prefix.
        subject_prefix: String,
    },
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct RegistryLoadSpec {
    /// The registry's base URL.
    pub url: String,
    /// Clients, each a thread and a connection.
    pub clients: usize,
    /// How long they send.
    pub duration: Duration,
    /// What they send.
    pub load: RegistryLoad,
    /// Requests a second, all clients together (each paces its share); `None`: back to back.
    pub rate: Option<f64>,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegistryLoadReport {
    /// Requests answered with 200.
    pub ok: u64,
    /// Requests that failed (connection error or another status).
    pub failed: u64,
    /// Answered requests per second.
    pub per_second: f64,
    /// Latency percentiles of answered requests, microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
}

struct ClientTally {
    ok: u64,
    failed: u64,
    latencies: Histogram<u64>,
    first_failure: Option<String>,
}

/// Runs the load; every client stops by itself at the deadline.
pub fn run(spec: &RegistryLoadSpec) -> Result<RegistryLoadReport, String> {
    if spec.clients == 0 {
        return Err("at least one client".into());
    }
    if let RegistryLoad::Lookups { ids } = &spec.load {
        if ids.is_empty() {
            return Err("lookups need at least one id".into());
        }
    }
    let started = Instant::now();
    let deadline = started + spec.duration;
    let threads: Vec<_> = (0..spec.clients)
        .map(|client| {
            let spec = spec.clone();
            std::thread::spawn(move || run_client(&spec, client, deadline))
        })
        .collect();
    let mut total = ClientTally { ok: 0, failed: 0, latencies: histogram(), first_failure: None };
    for thread in threads {
        let tally = thread.join().map_err(|_| "a client thread panicked".to_string())?;
        total.ok += tally.ok;
        total.failed += tally.failed;
        total.latencies.add(&tally.latencies).map_err(|e| e.to_string())?;
        total.first_failure = total.first_failure.or(tally.first_failure);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(RegistryLoadReport {
        ok: total.ok,
        failed: total.failed,
        per_second: total.ok as f64 / seconds,
        p50_us: total.latencies.value_at_quantile(0.5),
        p99_us: total.latencies.value_at_quantile(0.99),
        max_us: total.latencies.max(),
        first_failure: total.first_failure,
    })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// A keep-alive HTTP client for a registry's REST API that hands back error statuses as
/// answers (the registry's error bodies say what went wrong).
pub fn registry_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Per-phase timeouts, not a global one: with a global timeout ureq resolves the
        // host on a new thread for every request, which made the load generator, not the
        // registry, what was measured.
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn run_client(spec: &RegistryLoadSpec, client: usize, deadline: Instant) -> ClientTally {
    let agent = registry_agent();
    let mut tally = ClientTally { ok: 0, failed: 0, latencies: histogram(), first_failure: None };
    let base = spec.url.trim_end_matches('/');
    let mut sent = 0usize;
    let interval = spec.rate.map(|rate| Duration::from_secs_f64(spec.clients as f64 / rate.max(1e-3)));
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if let Some(interval) = interval {
            // Paced: a late request goes at once, and the schedule does not drift.
            let now = Instant::now();
            if next_send > now {
                std::thread::sleep(next_send - now);
            }
            next_send += interval;
        }
        let began = Instant::now();
        let answer = match &spec.load {
            RegistryLoad::Lookups { ids } => {
                let id = ids[(client + sent) % ids.len()];
                agent.get(&format!("{base}/schemas/ids/{id}")).call()
            }
            RegistryLoad::Registrations { subject_prefix } => {
                // A new schema each time, of one size: the field's default differs.
                let schema = format!(
                    r#"{{"type":"record","name":"Load","fields":[{{"name":"f","type":"int","default":{sent}}}]}}"#
                );
                let body = serde_json::json!({ "schema": schema }).to_string();
                agent
                    .post(&format!("{base}/subjects/{subject_prefix}-{client}/versions"))
                    .content_type("application/vnd.schemaregistry.v1+json")
                    .send(body.as_bytes())
            }
        };
        sent += 1;
        let outcome = answer.map_err(|e| e.to_string()).and_then(|mut response| {
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}: {body}"))
            }
        });
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = tally.latencies.record(micros.max(1));
            }
            Err(why) => {
                tally.failed += 1;
                tally.first_failure.get_or_insert(why);
            }
        }
    }
    tally
}
