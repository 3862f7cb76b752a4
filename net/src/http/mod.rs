//! The broker's HTTP endpoints (Prometheus `/metrics`, the Schema Registry) on a thread
//! of their own: a single-threaded tokio runtime serving axum routers, so that HTTP work
//! never runs on a shard's produce/fetch path. What they need from the shards crosses on
//! channels to shard 0 ([`ShardEnds`]): a metrics scrape asks for the rendered exposition,
//! the registry's store requests go to [`crate::schema_store`]. Both endpoints can serve
//! HTTPS with the broker's certificate ([`tls`]) and require HTTP basic auth against the
//! users' SCRAM credentials ([`auth`]).
//!
//! Listeners are bound in [`start`], before the shards start, so a port already in use
//! fails the broker's start with a clear error.

pub mod auth;
pub mod inbox;
pub mod metrics;
pub mod tls;

use auth::{BasicAuth, HttpAuth, PublishedSecurity};
use axum::response::{IntoResponse, Response};
use inbox::{inbox, InboxEnd};
use sluice_registry::store::{StoreClient, StoreRequest};
use sluice_security::tls::ReloadableServerConfig;
use std::net::TcpListener;
use std::sync::Arc;

/// Where the HTTP endpoints listen (each is off when `None`), and how they are secured.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// `host:port` for `GET /metrics`.
    pub metrics_listen: Option<String>,
    /// `host:port` for the Schema Registry's REST API.
    pub schema_registry_listen: Option<String>,
    /// Serve HTTPS with this configuration (`--http-tls`: the SASL_SSL listeners' one),
    /// plain HTTP when `None`.
    pub tls: Option<Arc<ReloadableServerConfig>>,
    /// How requests authenticate (`--http-auth`).
    pub auth: HttpAuth,
}

/// The shard side of the HTTP thread's channels, served by shard 0.
pub struct ShardEnds {
    /// Scrapes waiting for the exposition.
    pub metrics: Option<InboxEnd<metrics::Scrape>>,
    /// The registry's requests to its topic.
    pub store: Option<InboxEnd<StoreRequest>>,
}

/// The running HTTP thread; [`Running::stop`] ends it.
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Stops serving and waits for the thread to end.
    pub fn stop(self) {
        self.stop.send_replace(true);
        if self.thread.join().is_err() {
            tracing::error!("the HTTP thread panicked");
        }
    }
}

fn bind(address: &str, what: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(address).map_err(|e| format!("cannot listen for {what} on {address}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot listen for {what} on {address}: {e}"))?;
    Ok(listener)
}

/// Binds the configured endpoints and starts their thread; `None` when none is
/// configured. The returned ends go to shard 0, which also publishes the credentials
/// basic auth checks into `security`.
pub fn start(options: &HttpOptions, security: PublishedSecurity) -> Result<Option<(Running, ShardEnds)>, String> {
    let metrics_listener = options.metrics_listen.as_deref().map(|a| bind(a, "metrics")).transpose()?;
    let registry_listener =
        options.schema_registry_listen.as_deref().map(|a| bind(a, "the schema registry")).transpose()?;
    if metrics_listener.is_none() && registry_listener.is_none() {
        return Ok(None);
    }
    let inbox_error = |e: std::io::Error| format!("cannot make the HTTP thread's queues: {e}");
    let (scrapes, scrape_requests) = inbox().map_err(inbox_error)?;
    let (store, store_requests) = inbox().map_err(inbox_error)?;
    let store = StoreClient::new(move |request| store.send(request));
    let ends = ShardEnds {
        metrics: metrics_listener.is_some().then_some(scrape_requests),
        store: registry_listener.is_some().then_some(store_requests),
    };
    let basic = (options.auth == HttpAuth::Basic).then(|| BasicAuth::new(security));
    if basic.is_some() && options.tls.is_none() {
        tracing::warn!("HTTP basic auth without --http-tls: passwords cross the network in clear text");
    }
    let guarded = move |router: axum::Router, refusal: fn() -> Response| match &basic {
        Some(basic) => auth::require(router, basic.clone(), refusal),
        None => router,
    };
    let tls = options.tls.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("sluice-http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(error) => return tracing::error!(%error, "cannot start the HTTP runtime: HTTP endpoints are off"),
            };
            runtime.block_on(async move {
                let mut servers = Vec::new();
                if let Some(listener) = metrics_listener {
                    let router = guarded(metrics::router(scrapes), metrics::unauthorized);
                    servers.push(tokio::spawn(serve("metrics", listener, router, tls.clone(), stopped.clone())));
                }
                if let Some(listener) = registry_listener {
                    let registry = sluice_registry::Registry::new(store);
                    tokio::spawn(registry.clone().follow());
                    let router = guarded(sluice_registry::api::router(registry), registry_unauthorized);
                    servers.push(tokio::spawn(serve("schema registry", listener, router, tls, stopped.clone())));
                }
                for server in servers {
                    let _ = server.await;
                }
            });
        })
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok(Some((Running { stop, thread }, ends)))
}

/// Confluent's answer to a request without valid credentials.
fn registry_unauthorized() -> Response {
    sluice_registry::error::RegistryError { status: 401, code: 401, message: "Unauthorized".into() }.into_response()
}

/// Serves `router` on `listener`, over TLS when `tls` is set, until `stop` turns true.
async fn serve(
    what: &'static str,
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<ReloadableServerConfig>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => return tracing::error!(what, %address, %error, "cannot serve"),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(what, %address, scheme, "HTTP endpoint ready");
    let stopping = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let served = match tls {
        None => axum::serve(listener, router).with_graceful_shutdown(stopping).await,
        Some(tls) => match tls::TlsListener::new(listener, tls) {
            Ok(listener) => axum::serve(listener, router).with_graceful_shutdown(stopping).await,
            Err(error) => Err(error),
        },
    };
    if let Err(error) = served {
        tracing::error!(what, %address, %error, "HTTP endpoint failed");
    }
}
