//! `sluice transactions list|describe`: transactional ids and their open transactions
//! over the Kafka protocol (ListTransactions, DescribeTransactions), like
//! `kafka-transactions.sh`. `list` asks every broker (each coordinates some ids);
//! `describe` asks each id's coordinator (FindCoordinator).

use crate::client_args::{run_client, BrokerArgs};
use crate::coordinator::{connect_to_coordinator, KEY_TYPE_TRANSACTION};
use crate::table::print_table;
use kafka_protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{ClientError, KafkaConnection};
use std::time::{SystemTime, UNIX_EPOCH};

/// Transaction administration.
#[derive(clap::Subcommand)]
pub enum TransactionsCommand {
    /// List transactional ids with their producer id and state.
    List {
        /// Only ids in this state (Empty, Ongoing, PrepareCommit, PrepareAbort,
        /// CompleteCommit, CompleteAbort); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// Show transactional ids' producer, epoch, state, timeout, age and partitions.
    Describe {
        /// Transactional ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Runs a transactions subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: TransactionsCommand) -> Result<(), String> {
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            TransactionsCommand::List { states } => list(&mut connection, states).await,
            TransactionsCommand::Describe { ids } => describe(&mut connection, &ids).await,
        }
        .map_err(|e| e.to_string())
    })
}

async fn list(connection: &mut KafkaConnection, states: Vec<String>) -> Result<(), ClientError> {
    let metadata = connection.metadata(Some(&[]), false).await?;
    let request = ListTransactionsRequest::default()
        .with_state_filters(states.into_iter().map(StrBytes::from_string).collect())
        .with_duration_filter(-1);
    let mut rows = Vec::new();
    for broker in &metadata.brokers {
        let address = format!("{}:{}", broker.host, broker.port);
        let response = if address == connection.address() {
            connection.send(&request).await?
        } else {
            connection.connect_to_another(&address).await?.send(&request).await?
        };
        ClientError::check(|| format!("list transactions on {address}"), response.error_code, None)?;
        if let Some(unknown) = response.unknown_state_filters.first() {
            return Err(ClientError::Protocol { address, reason: format!("unknown state {unknown}") });
        }
        for state in response.transaction_states {
            rows.push(vec![
                state.transactional_id.0.to_string(),
                broker.node_id.0.to_string(),
                state.producer_id.0.to_string(),
                state.transaction_state.to_string(),
            ]);
        }
    }
    rows.sort();
    print_table(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"], &rows);
    Ok(())
}

async fn describe(connection: &mut KafkaConnection, ids: &[String]) -> Result<(), ClientError> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut rows = Vec::new();
    for id in ids {
        let mut other = connect_to_coordinator(connection, KEY_TYPE_TRANSACTION, id).await?;
        let coordinator = other.as_mut().unwrap_or(connection);
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.clone()))]);
        let response = coordinator.send(&request).await?;
        for state in response.transaction_states {
            ClientError::check(|| format!("describe transaction {id}"), state.error_code, None)?;
            let partitions: Vec<String> = state
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{p}", t.topic.as_str())))
                .collect();
            let age = if state.transaction_start_time_ms >= 0 {
                format!("{} ms", now_ms - state.transaction_start_time_ms)
            } else {
                "-".to_string()
            };
            rows.push(vec![
                state.transactional_id.0.to_string(),
                state.producer_id.0.to_string(),
                state.producer_epoch.to_string(),
                state.transaction_state.to_string(),
                state.transaction_timeout_ms.to_string(),
                age,
                if partitions.is_empty() { "-".to_string() } else { partitions.join(",") },
            ]);
        }
    }
    print_table(&["TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH", "STATE", "TIMEOUT-MS", "OPEN-FOR", "PARTITIONS"], &rows);
    Ok(())
}
