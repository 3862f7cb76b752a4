//! What the client subcommands (`topic`, `produce`, `consume`) share: the broker address
//! flag and a glommio executor to run the client on.

use sluice_client::{ClientError, KafkaConnection};
use std::future::Future;

/// Where the broker is.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Broker to talk to, HOST:PORT; a comma-separated list is tried in order until one
    /// answers (the bootstrap list of a cluster).
    #[arg(short = 'b', long = "brokers", default_value = "127.0.0.1:9092", env = "SLUICE_BROKERS", global = true)]
    pub brokers: String,
}

impl BrokerArgs {
    /// Opens a connection to the first broker of the list that answers.
    pub async fn connect(&self) -> Result<KafkaConnection, ClientError> {
        let mut last_error = None;
        for address in self.brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match KafkaConnection::connect(address, "sluice-cli").await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Connect {
            address: String::new(),
            reason: "--brokers names no broker".into(),
        }))
    }
}

/// Runs a client command on a single unpinned glommio executor (the client is
/// glommio-native, like the broker; a command needs no more than one core).
pub fn run_client<F, Fut>(command: F) -> Result<(), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("sluice-client")
        .io_memory(512 << 10)
        .spawn(command)
        .map_err(|e| format!("cannot start the client executor: {e}"))?
        .join()
        .map_err(|e| format!("client executor failed: {e}"))?
}
