//! The refusals of the cluster protocol, each with the Kafka error code a client or a
//! broker receives for it.

/// Why a request of the cluster protocol was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationError {
    /// This broker does not lead the partition (or holds no replica of it).
    NotLeaderOrFollower,
    /// The request names a leader epoch older than this replica's.
    FencedLeaderEpoch,
    /// The request names a leader epoch newer than this replica knows of yet.
    UnknownLeaderEpoch,
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`, before the append.
    NotEnoughReplicas,
    /// The ISR fell below `min.insync.replicas` after the append; the records may be
    /// in the log but are not acknowledged.
    NotEnoughReplicasAfterAppend,
    /// A broker request carrying a broker epoch that is not the broker's current one.
    StaleBrokerEpoch,
    /// A broker id the controller has no registration for.
    BrokerIdNotRegistered,
    /// An AlterPartition built on a partition state that is no longer current.
    InvalidUpdateVersion,
    /// An AlterPartition adding a replica that may not join the ISR (fenced, or not a replica).
    IneligibleReplica,
    /// The topic or partition does not exist.
    UnknownTopicOrPartition,
    /// A topic of that name exists already.
    TopicAlreadyExists,
    /// A replication factor of zero, or more than the unfenced brokers.
    InvalidReplicationFactor,
    /// A partition count below one.
    InvalidPartitions,
    /// A fetch offset past the leader's log end.
    OffsetOutOfRange,
    /// A reassignment's target replicas are empty, repeat a broker or name an unknown one,
    /// or a cancellation would leave no in-sync replica.
    InvalidReplicaAssignment,
    /// A cancellation of a reassignment where none is in progress.
    NoReassignmentInProgress,
    /// A preferred election where the preferred replica leads already.
    ElectionNotNeeded,
    /// A preferred election where the preferred replica is fenced or out of the ISR.
    PreferredLeaderNotAvailable,
    /// An election with no replica that may lead (unclean elections are not offered).
    EligibleLeadersNotAvailable,
    /// A broker whose data directory belongs to another cluster.
    InconsistentClusterId,
    /// A broker started with other controller voters than the controller's.
    InconsistentVoterSet,
    /// The removal of a SCRAM credential the user does not have.
    ResourceNotFound,
}

impl ReplicationError {
    /// Every refusal.
    pub const ALL: [ReplicationError; 22] = [
        ReplicationError::NotLeaderOrFollower,
        ReplicationError::FencedLeaderEpoch,
        ReplicationError::UnknownLeaderEpoch,
        ReplicationError::NotEnoughReplicas,
        ReplicationError::NotEnoughReplicasAfterAppend,
        ReplicationError::StaleBrokerEpoch,
        ReplicationError::BrokerIdNotRegistered,
        ReplicationError::InvalidUpdateVersion,
        ReplicationError::IneligibleReplica,
        ReplicationError::UnknownTopicOrPartition,
        ReplicationError::TopicAlreadyExists,
        ReplicationError::InvalidReplicationFactor,
        ReplicationError::InvalidPartitions,
        ReplicationError::OffsetOutOfRange,
        ReplicationError::InvalidReplicaAssignment,
        ReplicationError::NoReassignmentInProgress,
        ReplicationError::ElectionNotNeeded,
        ReplicationError::PreferredLeaderNotAvailable,
        ReplicationError::EligibleLeadersNotAvailable,
        ReplicationError::InconsistentClusterId,
        ReplicationError::InconsistentVoterSet,
        ReplicationError::ResourceNotFound,
    ];

    /// The refusal a Kafka error code stands for, if it is one of these.
    pub fn from_code(code: i16) -> Option<ReplicationError> {
        Self::ALL.into_iter().find(|error| error.code() == code)
    }

    /// The Kafka protocol error code (kafka.apache.org/protocol#protocol_error_codes).
    pub fn code(self) -> i16 {
        match self {
            ReplicationError::OffsetOutOfRange => 1,
            ReplicationError::UnknownTopicOrPartition => 3,
            ReplicationError::NotLeaderOrFollower => 6,
            ReplicationError::NotEnoughReplicas => 19,
            ReplicationError::NotEnoughReplicasAfterAppend => 20,
            ReplicationError::TopicAlreadyExists => 36,
            ReplicationError::InvalidPartitions => 37,
            ReplicationError::InvalidReplicationFactor => 38,
            ReplicationError::InvalidReplicaAssignment => 39,
            ReplicationError::PreferredLeaderNotAvailable => 80,
            ReplicationError::EligibleLeadersNotAvailable => 83,
            ReplicationError::ElectionNotNeeded => 84,
            ReplicationError::NoReassignmentInProgress => 85,
            ReplicationError::ResourceNotFound => 91,
            ReplicationError::InconsistentClusterId => 104,
            ReplicationError::InconsistentVoterSet => 94,
            ReplicationError::FencedLeaderEpoch => 74,
            ReplicationError::UnknownLeaderEpoch => 75,
            ReplicationError::StaleBrokerEpoch => 77,
            ReplicationError::InvalidUpdateVersion => 96,
            ReplicationError::BrokerIdNotRegistered => 102,
            ReplicationError::IneligibleReplica => 107,
        }
    }
}

impl std::fmt::Display for ReplicationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} (Kafka error {})", self.code())
    }
}

impl std::error::Error for ReplicationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_map_back() {
        for error in ReplicationError::ALL {
            assert_eq!(ReplicationError::from_code(error.code()), Some(error));
        }
        assert_eq!(ReplicationError::from_code(0), None);
    }
}
