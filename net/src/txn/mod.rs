//! Transactions (issue 13): [`state`] is one transactional id's state machine, without
//! I/O; [`records`] is how that state looks in `__transaction_state`; [`coordinator`]
//! persists it there, writes the markers and aborts expired transactions; [`route`] gets a
//! request to the coordinator shard. The coordinator is the owner (in a cluster, the
//! leader) of the transactional id's `__transaction_state` partition, as groups are.

pub mod coordinator;
pub mod records;
pub mod route;
pub mod state;

use kafka_protocol::ResponseError;
use std::time::Duration;

/// Broker settings of transactions (Kafka's `transaction.*` broker configs).
#[derive(Debug, Clone)]
pub struct TxnLimits {
    /// The longest `transaction.timeout.ms` a producer may ask for
    /// (`transaction.max.timeout.ms`).
    pub max_timeout_ms: i32,
    /// A transactional id with no transaction open that has not been used for this long is
    /// forgotten (`transactional.id.expiration.ms`): a producer starting with it later
    /// gets a new producer id.
    pub id_expiration: Duration,
}

impl Default for TxnLimits {
    fn default() -> Self {
        // Kafka's defaults: 15 minutes, 7 days.
        TxnLimits { max_timeout_ms: 900_000, id_expiration: Duration::from_secs(7 * 24 * 3600) }
    }
}

/// PRODUCER_FENCED (90) as a client of this request version knows it: versions before
/// `since` (the one that added it, per Kafka's schemas) get INVALID_PRODUCER_EPOCH (47),
/// which those clients treat as fencing; 90 would be an unknown error to them.
pub fn fencing_error_for(code: ResponseError, version: i16, since: i16) -> ResponseError {
    if code == ResponseError::ProducerFenced && version < since {
        ResponseError::InvalidProducerEpoch
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_learn_of_fencing_as_an_invalid_epoch() {
        assert_eq!(fencing_error_for(ResponseError::ProducerFenced, 1, 2), ResponseError::InvalidProducerEpoch);
        assert_eq!(fencing_error_for(ResponseError::ProducerFenced, 2, 2), ResponseError::ProducerFenced);
        assert_eq!(fencing_error_for(ResponseError::InvalidTxnState, 0, 2), ResponseError::InvalidTxnState);
    }
}
