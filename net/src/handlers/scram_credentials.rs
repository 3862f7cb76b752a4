//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): the users SASL
//! SCRAM (and PLAIN) logins are checked against. The client sends SaltedPassword, never
//! the password; the broker keeps StoredKey and ServerKey derived from it.

use crate::context::ShardContext;
use crate::control::{MetadataChange, SecurityChange};
use crate::security::session::Session;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use sluice_security::sasl::{ScramCredential, ScramMechanism};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

/// Answers DescribeUserScramCredentials: the mechanisms and iteration counts of the users
/// asked for (all users when none are named).
pub fn describe(
    context: &ShardContext,
    request: DescribeUserScramCredentialsRequest,
    session: &Session,
) -> DescribeUserScramCredentialsResponse {
    if !context.authorize_cluster(session, AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(message("Cluster authorization failed."));
    }
    let metadata = context.metadata();
    let users: BTreeMap<&str, Vec<(ScramMechanism, u32)>> = metadata.security.users().collect();
    let describe_user = |name: &str| {
        let result = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(name.to_string()));
        match users.get(name) {
            Some(credentials) => result.with_credential_infos(
                credentials
                    .iter()
                    .map(|(mechanism, iterations)| {
                        CredentialInfo::default().with_mechanism(mechanism.code()).with_iterations(*iterations as i32)
                    })
                    .collect(),
            ),
            None => result.with_error_code(ResponseError::ResourceNotFound.code()).with_error_message(message(
                format!("Attempt to describe a user credential that does not exist: {name}"),
            )),
        }
    };
    let results = match request.users.filter(|asked| !asked.is_empty()) {
        None => users.keys().map(|name| describe_user(name)).collect(),
        Some(asked) => {
            let mut seen = HashSet::new();
            let duplicated: HashSet<&str> =
                asked.iter().map(|u| u.name.as_str()).filter(|name| !seen.insert(*name)).collect();
            let mut reported = HashSet::new();
            asked
                .iter()
                .map(|u| u.name.as_str())
                .filter(|name| reported.insert(*name))
                .map(|name| match duplicated.contains(name) {
                    true => DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(name.to_string()))
                        .with_error_code(ResponseError::DuplicateResource.code())
                        .with_error_message(message(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                        ))),
                    false => describe_user(name),
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// Answers AlterUserScramCredentials: deletions and upsertions, one result per user. A
/// user named twice in one request, an empty name, an unknown mechanism or an iteration
/// count outside 4096–16384 fails that user (Kafka's rules and messages).
pub async fn alter(
    context: &Rc<ShardContext>,
    request: AlterUserScramCredentialsRequest,
    session: &Session,
) -> AlterUserScramCredentialsResponse {
    let users: Vec<String> = {
        let mut seen = HashSet::new();
        let named = request.deletions.iter().map(|d| &d.name).chain(request.upsertions.iter().map(|u| &u.name));
        named.map(|n| n.to_string()).filter(|n| seen.insert(n.clone())).collect()
    };
    if !context.authorize_cluster(session, AclOperation::Alter) {
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(message("Cluster authorization failed."))
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in
        request.deletions.iter().map(|d| d.name.as_str()).chain(request.upsertions.iter().map(|u| u.name.as_str()))
    {
        *counts.entry(name).or_default() += 1;
    }
    // Each user's outcome so far, and the changes of the users that passed the checks.
    let mut outcome: BTreeMap<String, Result<(), (ResponseError, String)>> = BTreeMap::new();
    let mut changes: Vec<(String, SecurityChange)> = Vec::new();
    let mechanism_of = |code: i8| {
        ScramMechanism::from_code(code)
            .ok_or((ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".to_string()))
    };
    let check_name = |name: &str| match (name.is_empty(), counts.get(name).copied().unwrap_or(0) > 1) {
        (true, _) => Err((ResponseError::UnacceptableCredential, "Username must not be empty".to_string())),
        (_, true) => Err((
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request".to_string(),
        )),
        _ => Ok(()),
    };
    for deletion in &request.deletions {
        let name = deletion.name.to_string();
        let checked = check_name(&name).and_then(|()| mechanism_of(deletion.mechanism));
        match checked {
            Ok(mechanism) => {
                changes.push((name.clone(), SecurityChange::RemoveCredential { user: name.clone(), mechanism }))
            }
            Err(error) => {
                outcome.insert(name, Err(error));
            }
        }
    }
    for upsertion in &request.upsertions {
        let name = upsertion.name.to_string();
        let checked = check_name(&name).and_then(|()| mechanism_of(upsertion.mechanism)).and_then(|mechanism| {
            let iterations = upsertion.iterations;
            if iterations < ScramMechanism::MIN_ITERATIONS as i32 {
                Err((ResponseError::UnacceptableCredential, "Too few iterations".to_string()))
            } else if iterations > ScramMechanism::MAX_ITERATIONS as i32 {
                Err((ResponseError::UnacceptableCredential, "Too many iterations".to_string()))
            } else if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
                Err((ResponseError::UnacceptableCredential, "Salt and salted password must not be empty".to_string()))
            } else {
                Ok(mechanism)
            }
        });
        match checked {
            Ok(mechanism) => {
                let credential = ScramCredential::from_salted_password(
                    mechanism,
                    upsertion.salt.to_vec(),
                    &upsertion.salted_password,
                    upsertion.iterations as u32,
                );
                changes.push((name.clone(), SecurityChange::SetCredential { user: name, mechanism, credential }));
            }
            Err(error) => {
                outcome.insert(name, Err(error));
            }
        }
    }
    if !changes.is_empty() {
        let (names, changes): (Vec<String>, Vec<SecurityChange>) = changes.into_iter().unzip();
        let results = context.change_metadata(MetadataChange::Security(changes)).await;
        for (name, result) in names.into_iter().zip(results) {
            let entry = outcome.entry(name).or_insert(Ok(()));
            if let (Ok(()), Err(error)) = (&entry, result) {
                *entry = Err((error.code, error.message));
            }
        }
    }
    let results = users
        .into_iter()
        .map(|user| {
            let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.clone()));
            match outcome.remove(&user).unwrap_or(Ok(())) {
                Ok(()) => result,
                Err((code, why)) => result.with_error_code(code.code()).with_error_message(message(why)),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
