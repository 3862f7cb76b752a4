//! DeleteTopics (by name): the topics leave the metadata and every shard deletes their
//! partition directories before the answer goes out.

use crate::context::ShardContext;
use crate::control::MetadataChange;
use crate::error::KafkaResult;
use crate::security::authorize::topic_authorization_failed;
use crate::security::session::Session;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a DeleteTopics request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: DeleteTopicsRequest,
    session: &Session,
) -> DeleteTopicsResponse {
    // v1–v5 name topics in `topic_names`; v6 (not served) in `topics`.
    let names = request.topic_names;
    // Kafka needs DESCRIBE and DELETE on the topic, checked before it is looked up, so a
    // denied client learns nothing of it.
    let may_delete = |name: &str| {
        let may = |operation| context.authorize(session, operation, ResourceType::Topic, name);
        may(AclOperation::Describe) && may(AclOperation::Delete)
    };
    let checked: Vec<KafkaResult<String>> = names
        .iter()
        .map(|name| match may_delete(name.0.as_str()) {
            true => Ok(name.0.to_string()),
            false => Err(topic_authorization_failed()),
        })
        .collect();
    let allowed: Vec<String> = checked.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut deleted = if allowed.is_empty() {
        Vec::new()
    } else {
        context.change_metadata(MetadataChange::DeleteTopics(allowed)).await
    }
    .into_iter();
    let responses = names
        .into_iter()
        .zip(checked)
        .map(|(name, checked)| {
            let response = DeletableTopicResult::default().with_name(Some(name));
            match checked.and_then(|_| deleted.next().expect("one result per allowed topic")) {
                Ok(()) => response,
                Err(error) => response
                    .with_error_code(error.code.code())
                    .with_error_message(Some(StrBytes::from_string(error.message))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
