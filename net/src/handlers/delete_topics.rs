//! DeleteTopics (by name): the topics leave the metadata and every shard deletes their
//! partition directories before the answer goes out.

use crate::context::ShardContext;
use crate::control::MetadataChange;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// Answers a DeleteTopics request.
pub async fn handle(context: &Rc<ShardContext>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v1–v5 name topics in `topic_names`; v6 (not served) in `topics`.
    let names = request.topic_names;
    let results =
        context.change_metadata(MetadataChange::DeleteTopics(names.iter().map(|n| n.0.to_string()).collect())).await;
    let responses = names
        .into_iter()
        .zip(results)
        .map(|(name, result)| {
            let response = DeletableTopicResult::default().with_name(Some(name));
            match result {
                Ok(()) => response,
                Err(error) => response
                    .with_error_code(error.code.code())
                    .with_error_message(Some(StrBytes::from_string(error.message))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
