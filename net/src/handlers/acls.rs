//! CreateAcls, DescribeAcls, DeleteAcls: the ACL bindings the authorizer decides with,
//! kept with the metadata. All three need the authorizer on (SECURITY_DISABLED
//! otherwise, as Kafka without one) and ALTER (create, delete) or DESCRIBE on the cluster.

use crate::context::ShardContext;
use crate::control::{MetadataChange, SecurityChange};
use crate::security::session::Session;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourcePattern,
    ResourceType,
};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Why an ACL request cannot run at all: SECURITY_DISABLED or CLUSTER_AUTHORIZATION_FAILED.
fn refusal(
    context: &ShardContext,
    session: &Session,
    operation: AclOperation,
) -> Option<(ResponseError, &'static str)> {
    if !context.authorizer_enabled() {
        Some((ResponseError::SecurityDisabled, "No Authorizer is configured."))
    } else if !context.authorize_cluster(session, operation) {
        Some((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed."))
    } else {
        None
    }
}

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

/// A filter from its seven wire fields.
fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(resource_type),
        name: name.map(|n| n.to_string()),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: AclOperation::from_code(operation),
        permission: AclPermission::from_code(permission),
    }
}

/// Answers CreateAcls: each binding is checked (KRaft's rules), then the valid ones are
/// stored in one change.
pub async fn create(context: &Rc<ShardContext>, request: CreateAclsRequest, session: &Session) -> CreateAclsResponse {
    if let Some((code, text)) = refusal(context, session, AclOperation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| AclCreationResult::default().with_error_code(code.code()).with_error_message(message(text)))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            let binding = AclBinding {
                pattern: ResourcePattern {
                    resource_type: ResourceType::from_code(c.resource_type),
                    name: c.resource_name.to_string(),
                    pattern_type: PatternType::from_code(c.resource_pattern_type),
                },
                entry: AccessControlEntry {
                    principal: c.principal.to_string(),
                    host: c.host.to_string(),
                    operation: AclOperation::from_code(c.operation),
                    permission: AclPermission::from_code(c.permission_type),
                },
            };
            binding.validate_new().map(|()| binding).map_err(|e| e.to_string())
        })
        .collect();
    let changes: Vec<SecurityChange> =
        checked.iter().filter_map(|c| c.as_ref().ok()).map(|b| SecurityChange::AddAcl(b.clone())).collect();
    let mut applied =
        if changes.is_empty() { Vec::new() } else { context.change_metadata(MetadataChange::Security(changes)).await }
            .into_iter();
    let results = checked
        .into_iter()
        .map(|check| {
            let outcome = match check {
                Err(why) => Err((ResponseError::InvalidRequest, why)),
                Ok(_) => applied.next().expect("one result per change").map_err(|e| (e.code, e.message)),
            };
            match outcome {
                Ok(()) => AclCreationResult::default(),
                Err((code, why)) => {
                    AclCreationResult::default().with_error_code(code.code()).with_error_message(message(why))
                }
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Answers DescribeAcls: the bindings the filter matches, grouped by resource pattern.
pub fn describe(context: &ShardContext, request: DescribeAclsRequest, session: &Session) -> DescribeAclsResponse {
    if let Some((code, text)) = refusal(context, session, AclOperation::Describe) {
        return DescribeAclsResponse::default().with_error_code(code.code()).with_error_message(message(text));
    }
    let filter = filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    if let Err(why) = filter.validate() {
        return DescribeAclsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(message(why.to_string()));
    }
    let mut grouped: BTreeMap<ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for binding in context.metadata().security.acls().iter().filter(|b| filter.matches(b)) {
        let entry = &binding.entry;
        grouped.entry(binding.pattern.clone()).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(entry.principal.clone()))
                .with_host(StrBytes::from_string(entry.host.clone()))
                .with_operation(entry.operation.code())
                .with_permission_type(entry.permission.code()),
        );
    }
    let resources = grouped
        .into_iter()
        .map(|(pattern, acls)| {
            DescribeAclsResource::default()
                .with_resource_type(pattern.resource_type.code())
                .with_resource_name(StrBytes::from_string(pattern.name))
                .with_pattern_type(pattern.pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

/// Answers DeleteAcls: each filter removes the bindings it matches and lists them.
pub async fn delete(context: &Rc<ShardContext>, request: DeleteAclsRequest, session: &Session) -> DeleteAclsResponse {
    if let Some((code, text)) = refusal(context, session, AclOperation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult::default().with_error_code(code.code()).with_error_message(message(text)))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let metadata = context.metadata();
    let matched: Vec<Result<Vec<AclBinding>, String>> = request
        .filters
        .iter()
        .map(|f| {
            let filter = filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            );
            filter.validate().map_err(|e| e.to_string())?;
            Ok(metadata.security.acls().iter().filter(|b| filter.matches(b)).cloned().collect())
        })
        .collect();
    let changes: Vec<SecurityChange> = matched
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .flatten()
        .map(|binding| SecurityChange::RemoveAcl(binding.clone()))
        .collect();
    let failure = if changes.is_empty() {
        None
    } else {
        context.change_metadata(MetadataChange::Security(changes)).await.into_iter().find_map(Result::err)
    };
    let results = matched
        .into_iter()
        .map(|outcome| match (outcome, &failure) {
            (Err(why), _) => DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(message(why)),
            (Ok(bindings), Some(error)) if !bindings.is_empty() => DeleteAclsFilterResult::default()
                .with_error_code(error.code.code())
                .with_error_message(message(error.message.clone())),
            (Ok(bindings), _) => DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.pattern.resource_type.code())
                            .with_resource_name(StrBytes::from_string(b.pattern.name))
                            .with_pattern_type(b.pattern.pattern_type.code())
                            .with_principal(StrBytes::from_string(b.entry.principal))
                            .with_host(StrBytes::from_string(b.entry.host))
                            .with_operation(b.entry.operation.code())
                            .with_permission_type(b.entry.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
