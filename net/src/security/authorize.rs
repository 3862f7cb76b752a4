//! The checks request handlers make: may this session do this operation on this resource?
//! With the authorizer off (a PLAINTEXT-only broker without `--authorizer acl`) every check
//! passes, as in Kafka without an authorizer.

use super::session::Session;
use super::store::SecurityState;
use crate::context::ShardContext;
use crate::error::KafkaError;
use crate::metadata::Metadata;
use crate::ordering::Admission;
use crate::partition_ops::PartitionCall;
use crate::routing::PartitionAnswers;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, Authorizer, ResourceType, CLUSTER_RESOURCE_NAME};
use sluice_security::sasl::{CredentialStore, ScramCredential, ScramMechanism};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

/// The credentials of a metadata snapshot, for a SASL exchange.
pub struct Credentials(Arc<Metadata>);

impl CredentialStore for Credentials {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0.security.scram_credential(user, mechanism)
    }
}

impl ShardContext {
    /// Whether ACLs decide (otherwise everything is allowed).
    pub fn authorizer_enabled(&self) -> bool {
        self.broker.security.authorizer
    }

    /// The credentials SASL exchanges check against: this shard's snapshot.
    pub fn credentials(&self) -> Credentials {
        Credentials(self.metadata())
    }

    /// May `session` do `operation` on the resource `resource_type` `name`?
    pub fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.authorizer_enabled() {
            return true;
        }
        let allowed =
            self.authorizer.borrow().authorize(&session.principal, &session.client_ip, operation, resource_type, name);
        if !allowed {
            tracing::debug!(principal = %session.principal, host = %session.client_ip, ?operation, ?resource_type, name,
                "denied");
        }
        allowed
    }

    /// May `session` do `operation` on the cluster?
    pub fn authorize_cluster(&self, session: &Session, operation: AclOperation) -> bool {
        self.authorize(session, operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// May `session` do `operation` on some resource of this type (Kafka's
    /// `authorizeByResourceType`, for InitProducerId without a transactional id)?
    pub fn authorize_any(&self, session: &Session, operation: AclOperation, resource_type: ResourceType) -> bool {
        !self.authorizer_enabled()
            || self.authorizer.borrow().authorize_by_resource_type(
                &session.principal,
                &session.client_ip,
                operation,
                resource_type,
            )
    }

    /// The Kafka bitfield of the operations `session` may do on a resource (Metadata's and
    /// DescribeGroups' `authorized_operations`).
    pub fn authorized_operations(&self, session: &Session, resource_type: ResourceType, name: &str) -> i32 {
        self.authorizer.borrow().authorized_operations(&session.principal, &session.client_ip, resource_type, name)
    }

    /// Builds this shard's authorizer anew from a snapshot's bindings.
    pub(crate) fn rebuild_authorizer(&self, security: &SecurityState) {
        let config = &self.broker.security;
        let mut authorizer = Authorizer::new(config.super_users.iter().cloned(), config.allow_everyone_if_no_acl_found);
        for binding in security.acls() {
            authorizer.add(binding.clone());
        }
        *self.authorizer.borrow_mut() = Rc::new(authorizer);
    }
}

impl ShardContext {
    /// Runs the partition calls on topics `session` may do `operation` on; the others are
    /// answered TOPIC_AUTHORIZATION_FAILED without running (Kafka checks before it looks
    /// whether the topic exists, so a denied client learns nothing of it). Answers in call
    /// order.
    pub async fn call_authorized_partitions(
        &self,
        session: &Session,
        operation: AclOperation,
        calls: Vec<PartitionCall>,
        admission: Option<Admission>,
    ) -> PartitionAnswers {
        let denied = denied_topics(self, session, operation, calls.iter().map(|call| call.topic.as_str()));
        if denied.is_empty() {
            return self.call_partitions(calls, admission).await;
        }
        let allowed: Vec<bool> = calls.iter().map(|call| !denied.contains(&call.topic)).collect();
        let allowed_calls = calls.into_iter().filter(|call| !denied.contains(&call.topic)).collect();
        let mut answers = self.call_partitions(allowed_calls, admission).await.into_iter();
        allowed
            .into_iter()
            .map(|allowed| match allowed {
                true => answers.next().expect("one answer per allowed call"),
                false => Err(topic_authorization_failed()),
            })
            .collect()
    }
}

/// The topics among `names` that `session` may not do `operation` on, each checked once
/// (a request names a topic once per partition in some APIs). Empty while the authorizer
/// is off.
pub fn denied_topics<'a>(
    context: &ShardContext,
    session: &Session,
    operation: AclOperation,
    names: impl IntoIterator<Item = &'a str>,
) -> HashSet<String> {
    if !context.authorizer_enabled() {
        return HashSet::new();
    }
    let names: HashSet<&str> = names.into_iter().collect();
    names
        .into_iter()
        .filter(|name| !context.authorize(session, operation, ResourceType::Topic, name))
        .map(str::to_string)
        .collect()
}

/// TOPIC_AUTHORIZATION_FAILED.
pub fn topic_authorization_failed() -> KafkaError {
    KafkaError::new(ResponseError::TopicAuthorizationFailed, "Topic authorization failed.")
}

/// GROUP_AUTHORIZATION_FAILED.
pub fn group_authorization_failed() -> KafkaError {
    KafkaError::new(ResponseError::GroupAuthorizationFailed, "Group authorization failed.")
}

/// CLUSTER_AUTHORIZATION_FAILED.
pub fn cluster_authorization_failed() -> KafkaError {
    KafkaError::new(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.")
}

/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
pub fn transactional_id_authorization_failed() -> KafkaError {
    KafkaError::new(ResponseError::TransactionalIdAuthorizationFailed, "Transactional Id authorization failed.")
}
