//! The shapes of authorization check that several handlers share (Kafka's `KafkaApis`
//! makes the same ones): a request on one group or transactional id, checked before its
//! coordinator is asked; the topics of a request, each checked once; and config
//! resources. Every check passes while the authorizer is off.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::context::ShardContext;
use crate::error::{KafkaError, KafkaResult};
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
pub use crate::security::authorize::denied_topics;
use crate::security::authorize::{
    cluster_authorization_failed, group_authorization_failed, topic_authorization_failed,
    transactional_id_authorization_failed,
};
use crate::security::session::Session;
use crate::txn::route::{TxnOp, TxnReply};
use sluice_security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use std::rc::Rc;

/// May `session` do `operation` on the group? GROUP_AUTHORIZATION_FAILED if not.
pub fn check_group(
    context: &ShardContext,
    session: &Session,
    operation: AclOperation,
    group_id: &str,
) -> KafkaResult<()> {
    match context.authorize(session, operation, ResourceType::Group, group_id) {
        true => Ok(()),
        false => Err(group_authorization_failed()),
    }
}

/// May `session` do `operation` on the transactional id? TRANSACTIONAL_ID_AUTHORIZATION_FAILED
/// if not.
pub fn check_transactional_id(
    context: &ShardContext,
    session: &Session,
    operation: AclOperation,
    transactional_id: &str,
) -> KafkaResult<()> {
    match context.authorize(session, operation, ResourceType::TransactionalId, transactional_id) {
        true => Ok(()),
        false => Err(transactional_id_authorization_failed()),
    }
}

/// Calls the group's coordinator if `session` may do `operation` on the group. A refused
/// request never reaches the coordinator, so it learns nothing about the group; its
/// admission is dropped unused (it has no effects to order).
pub async fn call_group_authorized(
    context: &Rc<ShardContext>,
    session: &Session,
    operation: AclOperation,
    group_id: &str,
    op: GroupOp,
    admission: Option<Admission>,
) -> KafkaResult<GroupReply> {
    check_group(context, session, operation, group_id)?;
    context.call_group(group_id, op, admission).await
}

/// Calls the transactional id's coordinator if `session` may do `operation` on the id.
pub async fn call_txn_authorized(
    context: &Rc<ShardContext>,
    session: &Session,
    operation: AclOperation,
    transactional_id: &str,
    op: TxnOp,
) -> KafkaResult<TxnReply> {
    check_transactional_id(context, session, operation, transactional_id)?;
    context.call_txn(transactional_id, op).await
}

/// May `session` do `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on a config resource?
/// Kafka's mapping: a broker's and a broker logger's configs are the cluster's
/// (CLUSTER_AUTHORIZATION_FAILED), a topic's the topic's (TOPIC_), a group's the group's
/// (GROUP_). Other resource types pass: the handlers refuse them on their own.
pub fn check_config_resource(
    context: &ShardContext,
    session: &Session,
    operation: AclOperation,
    resource_type: i8,
    name: &str,
) -> KafkaResult<()> {
    let (resource, name, refusal): (ResourceType, &str, fn() -> KafkaError) = match resource_type {
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
            (ResourceType::Cluster, CLUSTER_RESOURCE_NAME, cluster_authorization_failed)
        }
        RESOURCE_TOPIC => (ResourceType::Topic, name, topic_authorization_failed),
        RESOURCE_GROUP => (ResourceType::Group, name, group_authorization_failed),
        _ => return Ok(()),
    };
    match context.authorize(session, operation, resource, name) {
        true => Ok(()),
        false => Err(refusal()),
    }
}
