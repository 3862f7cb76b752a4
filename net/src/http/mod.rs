//! The broker's HTTP endpoints (Prometheus `/metrics`, the Schema Registry) on a thread
//! of their own: a single-threaded tokio runtime serving axum routers, so that HTTP work
//! never runs on a shard's produce/fetch path. What they need from the shards crosses on
//! channels to shard 0 ([`ShardEnds`]): a metrics scrape asks for the rendered exposition,
//! the registry's store requests go to [`crate::schema_store`].
//!
//! Listeners are bound in [`start`], before the shards start, so a port already in use
//! fails the broker's start with a clear error.

pub mod inbox;
pub mod metrics;

use inbox::{inbox, InboxEnd};
use sluice_registry::store::{StoreClient, StoreRequest};
use std::net::TcpListener;

/// Where the HTTP endpoints listen; each is off when `None`.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// `host:port` for `GET /metrics`.
    pub metrics_listen: Option<String>,
    /// `host:port` for the Schema Registry's REST API.
    pub schema_registry_listen: Option<String>,
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
/// configured. The returned ends go to shard 0.
pub fn start(options: &HttpOptions) -> Result<Option<(Running, ShardEnds)>, String> {
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
                    servers.push(tokio::spawn(serve("metrics", listener, metrics::router(scrapes), stopped.clone())));
                }
                if let Some(listener) = registry_listener {
                    let registry = sluice_registry::Registry::new(store);
                    tokio::spawn(registry.clone().follow());
                    let router = sluice_registry::api::router(registry);
                    servers.push(tokio::spawn(serve("schema registry", listener, router, stopped.clone())));
                }
                for server in servers {
                    let _ = server.await;
                }
            });
        })
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok(Some((Running { stop, thread }, ends)))
}

/// Serves `router` on `listener` until `stop` turns true.
async fn serve(
    what: &'static str,
    listener: TcpListener,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => return tracing::error!(what, %address, %error, "cannot serve"),
    };
    tracing::info!(what, %address, "HTTP endpoint ready");
    let stopping = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopping).await {
        tracing::error!(what, %address, %error, "HTTP endpoint failed");
    }
}
