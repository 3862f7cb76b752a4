//! The admin socket and the Prometheus exposition, both served by shard 0 (control plane,
//! apart from the Kafka request path; the HTTP endpoint itself is on the HTTP thread,
//! [`crate::http`], which asks shard 0 for each scrape):
//!
//! - [`protocol`]: the line-delimited JSON requests and replies;
//! - [`socket`]: the Unix socket (mode 0600) and its connections;
//! - [`commands`]: what each command does and replies;
//! - [`shard_work`]: the part every shard does, asked over the mesh;
//! - [`prometheus`]: the text exposition format of `GET /metrics`.
//!
//! docs/OPERATIONS.md documents the protocol and the metric names.

pub mod commands;
pub mod prometheus;
pub mod protocol;
pub mod shard_work;
pub mod socket;

pub use commands::VERSION;

use crate::context::ShardContext;
use commands::AdminState;
use std::cell::Cell;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads and changes the process's log filter at runtime (implemented by the binary,
/// which owns the tracing subscriber).
pub trait LogLevelControl: Send + Sync {
    /// The filter in effect, as text.
    fn current(&self) -> String;
    /// Replaces the filter (`debug`, `info,sluice_net=trace`, ...); an error names what is wrong.
    fn set(&self, filter: &str) -> Result<(), String>;
}

/// Where the admin socket listens, and what it may change.
#[derive(Clone, Default)]
pub struct AdminOptions {
    /// The admin socket's path (`sluice serve` defaults it to `<data-dir>/admin.sock`).
    pub socket: Option<PathBuf>,
    /// Runtime control of the log filter, for `config get|set log-level`.
    pub log_level: Option<Arc<dyn LogLevelControl>>,
}

/// The admin endpoints while they run; dropping it stops serving, and [`Running::close`]
/// also removes the socket file.
pub struct Running {
    socket: Option<(PathBuf, glommio::Task<()>)>,
    metrics: Option<glommio::Task<()>>,
}

impl Running {
    /// Stops serving and removes the socket file (clean shutdown).
    pub fn close(self) {
        drop(self.metrics);
        if let Some((path, serving)) = self.socket {
            drop(serving);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove the admin socket");
            }
        }
    }
}

/// Starts the admin socket and the answers to metrics scrapes on shard 0.
pub fn start(
    context: Rc<ShardContext>,
    options: AdminOptions,
    stop: Arc<AtomicBool>,
    started: Instant,
    scrapes: Option<crate::http::inbox::InboxReceiver<crate::http::metrics::Scrape>>,
) -> Result<Running, String> {
    assert_eq!(context.id, 0, "the admin endpoints live on shard 0");
    let state = Rc::new(AdminState { context, stop, log_level: options.log_level, started });
    let socket = match options.socket {
        Some(path) => {
            let listener = socket::bind(&path)?;
            tracing::info!(path = %path.display(), "admin socket ready");
            Some((path, glommio::spawn_local(socket::serve(state.clone(), listener))))
        }
        None => None,
    };
    let metrics = scrapes.map(|scrapes| glommio::spawn_local(answer_scrapes(state, scrapes)));
    Ok(Running { socket, metrics })
}

/// Renders the exposition for each scrape the HTTP thread forwards.
async fn answer_scrapes(
    state: Rc<AdminState>,
    mut scrapes: crate::http::inbox::InboxReceiver<crate::http::metrics::Scrape>,
) {
    while let Some(scrape) = scrapes.next().await {
        let reports = state.reports().await;
        let _ = scrape.send(prometheus::render(VERSION, state.uptime_ms(), &reports));
    }
}

/// `Some(output)`, or `None` if `future` took longer than `limit`.
async fn with_timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let timer = glommio::timer::sleep(limit);
    futures::pin_mut!(future, timer);
    match futures::future::select(future, timer).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
    }
}

/// A bound on connections served at once: each holds a [`Slot`] while it lives.
struct ConnectionSlots {
    free: Rc<Cell<usize>>,
}

/// One connection's place in [`ConnectionSlots`], given back when dropped.
struct Slot(Rc<Cell<usize>>);

impl ConnectionSlots {
    fn new(max: usize) -> Self {
        assert!(max > 0);
        ConnectionSlots { free: Rc::new(Cell::new(max)) }
    }

    fn take(&self) -> Option<Slot> {
        let free = self.free.get();
        (free > 0).then(|| {
            self.free.set(free - 1);
            Slot(self.free.clone())
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_bound_and_come_back() {
        let slots = ConnectionSlots::new(2);
        let (first, _second) = (slots.take().unwrap(), slots.take().unwrap());
        assert!(slots.take().is_none());
        drop(first);
        assert!(slots.take().is_some());
    }
}
