//! The process's log filter, changeable at runtime: a `tracing_subscriber` reload layer
//! whose handle the admin socket uses (`config set log-level`).

use sluice_net::LogLevelControl;
use std::sync::Arc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Installs the global subscriber (stderr; filter from `RUST_LOG`, else `info`) and
/// returns the control of its filter.
pub fn install() -> Arc<dyn LogLevelControl> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (filter, handle) = reload::Layer::new(filter);
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry().with(filter).with(output).init();
    Arc::new(ReloadableFilter(handle))
}

struct ReloadableFilter(reload::Handle<EnvFilter, Registry>);

impl LogLevelControl for ReloadableFilter {
    fn current(&self) -> String {
        self.0.with_current(|filter| filter.to_string()).unwrap_or_else(|e| format!("unknown ({e})"))
    }

    fn set(&self, filter: &str) -> Result<(), String> {
        let parsed = EnvFilter::try_new(filter).map_err(|e| format!("bad log-level {filter:?}: {e}"))?;
        self.0.reload(parsed).map_err(|e| format!("cannot change the log level: {e}"))
    }
}
