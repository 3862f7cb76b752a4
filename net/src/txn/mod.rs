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
