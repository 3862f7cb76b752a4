//! `sluice acl list|create|delete`: ACL bindings over the Kafka protocol (DescribeAcls,
//! CreateAcls, DeleteAcls), like `kafka-acls.sh`, for a principal with ALTER (DESCRIBE to
//! list) on the cluster. Names of operations and the like are Kafka's, in any case, with or
//! without underscores (`Read`, `IDEMPOTENT_WRITE`, `IdempotentWrite`).

use crate::client_args::{run_client, BrokerArgs};
use crate::table::print_table;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{ClientError, KafkaConnection};
use sluice_security::acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourcePattern,
    ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};

/// ACL administration.
#[derive(clap::Subcommand)]
pub enum AclCommand {
    /// ACLs matching the filters (all of them without any).
    List(FilterArgs),
    /// Allow (or with --deny refuse) principals operations on a resource; one ACL per
    /// principal and operation.
    Create(CreateArgs),
    /// Delete the ACLs matching the filters (at least one), and print them.
    Delete(FilterArgs),
}

/// The resource of an ACL or filter: at most one of the four kinds.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("resource").multiple(false)))]
pub struct ResourceArgs {
    /// A topic, or with --prefixed the topics whose names start with it; `*` is every topic.
    #[arg(long, group = "resource", value_name = "NAME")]
    topic: Option<String>,
    /// A consumer group (or a prefix with --prefixed); `*` is every group.
    #[arg(long, group = "resource", value_name = "NAME")]
    group: Option<String>,
    /// The cluster itself (`kafka-cluster`): ACL, user, topic-creation and broker rights.
    #[arg(long, group = "resource")]
    cluster: bool,
    /// A producer's transactional.id (or a prefix with --prefixed); `*` is every id.
    #[arg(long, group = "resource", value_name = "ID")]
    transactional_id: Option<String>,
    /// The name is a prefix (Kafka's PREFIXED pattern type), not a whole name (LITERAL).
    #[arg(long)]
    prefixed: bool,
}

impl ResourceArgs {
    /// The resource type and name given, if any.
    fn resource(&self) -> Option<(ResourceType, String)> {
        if self.cluster {
            return Some((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()));
        }
        [
            (ResourceType::Topic, &self.topic),
            (ResourceType::Group, &self.group),
            (ResourceType::TransactionalId, &self.transactional_id),
        ]
        .into_iter()
        .find_map(|(kind, name)| name.clone().map(|name| (kind, name)))
    }

    fn pattern_type(&self) -> PatternType {
        if self.prefixed {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        }
    }
}

/// `acl create` arguments.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Who: `User:NAME` (a SASL user, or a certificate's mapped subject), `User:*` for
    /// everyone; repeatable.
    #[arg(long = "principal", required = true, value_name = "PRINCIPAL")]
    principals: Vec<String>,
    /// What: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
    /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL; repeatable.
    #[arg(long = "operation", required = true, value_name = "OPERATION")]
    operations: Vec<AclOperation>,
    #[command(flatten)]
    resource: ResourceArgs,
    /// From which client IP address; `*` is any.
    #[arg(long, default_value = WILDCARD)]
    host: String,
    /// Refuse rather than allow (a DENY wins over every ALLOW).
    #[arg(long)]
    deny: bool,
}

/// The filters of `acl list` and `acl delete`; each one left out matches anything.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// Only this principal, exactly (`User:*` matches only ACLs written for `User:*`).
    #[arg(long)]
    principal: Option<String>,
    /// Only this operation.
    #[arg(long)]
    operation: Option<AclOperation>,
    #[command(flatten)]
    resource: ResourceArgs,
    /// Only this host, exactly.
    #[arg(long)]
    host: Option<String>,
    /// Only ALLOW ACLs.
    #[arg(long, conflicts_with = "deny")]
    allow: bool,
    /// Only DENY ACLs.
    #[arg(long)]
    deny: bool,
}

impl FilterArgs {
    /// The filter these flags describe. A resource name is matched exactly, as a LITERAL
    /// pattern or with --prefixed a PREFIXED one (`kafka-acls`' default); without a
    /// resource, every pattern matches (only the prefixed ones with --prefixed).
    fn filter(&self) -> AclBindingFilter {
        let (resource_type, name, pattern_type) = match self.resource.resource() {
            Some((kind, name)) => (kind, Some(name), self.resource.pattern_type()),
            None if self.resource.prefixed => (ResourceType::Any, None, PatternType::Prefixed),
            None => (ResourceType::Any, None, PatternType::Any),
        };
        let permission = match (self.allow, self.deny) {
            (true, _) => AclPermission::Allow,
            (_, true) => AclPermission::Deny,
            _ => AclPermission::Any,
        };
        AclBindingFilter {
            resource_type,
            name,
            pattern_type,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.unwrap_or(AclOperation::Any),
            permission,
        }
    }
}

impl CreateArgs {
    /// One binding per principal and operation, each checked as the broker will check it.
    fn bindings(&self) -> Result<Vec<AclBinding>, String> {
        let (resource_type, name) = self
            .resource
            .resource()
            .ok_or("acl create needs a resource: --topic, --group, --cluster or --transactional-id")?;
        let pattern = ResourcePattern::new(resource_type, name, self.resource.pattern_type());
        let permission = if self.deny { AclPermission::Deny } else { AclPermission::Allow };
        let mut bindings = Vec::new();
        for principal in &self.principals {
            for operation in &self.operations {
                let entry = AccessControlEntry::new(principal.clone(), self.host.clone(), *operation, permission);
                let binding = AclBinding::new(pattern.clone(), entry);
                binding.validate_new().map_err(|e| format!("{}: {e}", describe_binding(&binding)))?;
                bindings.push(binding);
            }
        }
        Ok(bindings)
    }
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Runs an acl subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: AclCommand) -> Result<(), String> {
    let bindings = match &command {
        AclCommand::Create(args) => args.bindings()?,
        AclCommand::Delete(args) if args.filter() == AclBindingFilter::ANY => {
            return Err("acl delete without a filter would delete every ACL: give at least one (see --help)".into())
        }
        _ => Vec::new(),
    };
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            AclCommand::List(args) => list(&mut connection, &args.filter()).await,
            AclCommand::Create(_) => create(&mut connection, &bindings).await,
            AclCommand::Delete(args) => delete(&mut connection, &args.filter()).await,
        }
        .map_err(|e| e.to_string())
    })
}

const HEADER: [&str; 7] = ["RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"];

fn row(binding: &AclBinding) -> Vec<String> {
    let (pattern, entry) = (&binding.pattern, &binding.entry);
    vec![
        pattern.resource_type.to_string(),
        pattern.name.clone(),
        pattern.pattern_type.to_string(),
        entry.principal.clone(),
        entry.host.clone(),
        entry.operation.to_string(),
        entry.permission.to_string(),
    ]
}

/// `ALLOW User:alice READ on TOPIC orders- (PREFIXED) from *`.
fn describe_binding(binding: &AclBinding) -> String {
    let (pattern, entry) = (&binding.pattern, &binding.entry);
    format!(
        "{} {} {} on {} {} ({}) from {}",
        entry.permission,
        entry.principal,
        entry.operation,
        pattern.resource_type,
        pattern.name,
        pattern.pattern_type,
        entry.host
    )
}

fn binding_from_wire(
    resource_type: i8,
    name: &StrBytes,
    pattern_type: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding::new(
        ResourcePattern::new(
            ResourceType::from_code(resource_type),
            name.as_str(),
            PatternType::from_code(pattern_type),
        ),
        AccessControlEntry::new(
            principal.as_str(),
            host.as_str(),
            AclOperation::from_code(operation),
            AclPermission::from_code(permission),
        ),
    )
}

async fn list(connection: &mut KafkaConnection, filter: &AclBindingFilter) -> Result<(), ClientError> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.name.as_deref().map(str_bytes))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(str_bytes))
        .with_host_filter(filter.host.as_deref().map(str_bytes))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let response = connection.send(&request).await?;
    ClientError::check(|| "list ACLs".to_string(), response.error_code, response.error_message.as_ref())?;
    let mut bindings: Vec<AclBinding> = response
        .resources
        .iter()
        .flat_map(|resource| {
            resource.acls.iter().map(|acl| {
                binding_from_wire(
                    resource.resource_type,
                    &resource.resource_name,
                    resource.pattern_type,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                )
            })
        })
        .collect();
    bindings.sort();
    print_table(&HEADER, &bindings.iter().map(row).collect::<Vec<_>>());
    Ok(())
}

async fn create(connection: &mut KafkaConnection, bindings: &[AclBinding]) -> Result<(), ClientError> {
    let creations = bindings
        .iter()
        .map(|binding| {
            let (pattern, entry) = (&binding.pattern, &binding.entry);
            AclCreation::default()
                .with_resource_type(pattern.resource_type.code())
                .with_resource_name(str_bytes(&pattern.name))
                .with_resource_pattern_type(pattern.pattern_type.code())
                .with_principal(str_bytes(&entry.principal))
                .with_host(str_bytes(&entry.host))
                .with_operation(entry.operation.code())
                .with_permission_type(entry.permission.code())
        })
        .collect();
    let response = connection.send(&CreateAclsRequest::default().with_creations(creations)).await?;
    if response.results.len() != bindings.len() {
        return Err(ClientError::Protocol {
            address: connection.address().to_string(),
            reason: format!("CreateAcls answered {} results for {} ACLs", response.results.len(), bindings.len()),
        });
    }
    // Every outcome is printed; the last failure is the command's.
    let mut failure = Ok(());
    for (binding, result) in bindings.iter().zip(&response.results) {
        let described = describe_binding(binding);
        match ClientError::check(|| format!("create {described}"), result.error_code, result.error_message.as_ref()) {
            Ok(()) => println!("created {described}"),
            Err(error) => {
                if let Err(earlier) = std::mem::replace(&mut failure, Err(error)) {
                    eprintln!("sluice: {earlier}");
                }
            }
        }
    }
    failure
}

async fn delete(connection: &mut KafkaConnection, filter: &AclBindingFilter) -> Result<(), ClientError> {
    let wire = DeleteAclsFilter::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.name.as_deref().map(str_bytes))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(str_bytes))
        .with_host_filter(filter.host.as_deref().map(str_bytes))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let response = connection.send(&DeleteAclsRequest::default().with_filters(vec![wire])).await?;
    let result = response.filter_results.first().ok_or_else(|| ClientError::Protocol {
        address: connection.address().to_string(),
        reason: "DeleteAcls answered no filter result".into(),
    })?;
    ClientError::check(|| "delete ACLs".to_string(), result.error_code, result.error_message.as_ref())?;
    let mut deleted = Vec::new();
    for acl in &result.matching_acls {
        let binding = binding_from_wire(
            acl.resource_type,
            &acl.resource_name,
            acl.pattern_type,
            &acl.principal,
            &acl.host,
            acl.operation,
            acl.permission_type,
        );
        let described = describe_binding(&binding);
        ClientError::check(|| format!("delete {described}"), acl.error_code, acl.error_message.as_ref())?;
        deleted.push(binding);
    }
    deleted.sort();
    println!("deleted {} ACL{}", deleted.len(), if deleted.len() == 1 { "" } else { "s" });
    if !deleted.is_empty() {
        print_table(&HEADER, &deleted.iter().map(row).collect::<Vec<_>>());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AclCommand,
    }

    fn parse(flags: &[&str]) -> Result<AclCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("acl").chain(flags.iter().copied())).map(|cli| cli.command)
    }

    fn filter(flags: &[&str]) -> AclBindingFilter {
        match parse(flags).unwrap() {
            AclCommand::List(args) | AclCommand::Delete(args) => args.filter(),
            AclCommand::Create(_) => unreachable!(),
        }
    }

    #[test]
    fn create_makes_one_checked_binding_per_principal_and_operation() {
        let AclCommand::Create(args) = parse(&[
            "create",
            "--principal",
            "User:alice",
            "--principal",
            "User:bob",
            "--operation",
            "Read",
            "--operation",
            "describe",
            "--topic",
            "orders-",
            "--prefixed",
        ])
        .unwrap() else {
            panic!()
        };
        let bindings = args.bindings().unwrap();
        assert_eq!(bindings.len(), 4);
        assert_eq!(describe_binding(&bindings[0]), "ALLOW User:alice READ on TOPIC orders- (PREFIXED) from *");
        assert_eq!(bindings[3].entry.operation, AclOperation::Describe);
        let AclCommand::Create(args) =
            parse(&["create", "--principal", "User:x", "--operation", "IdempotentWrite", "--cluster", "--deny"])
                .unwrap()
        else {
            panic!()
        };
        let binding = &args.bindings().unwrap()[0];
        assert_eq!(describe_binding(binding), "DENY User:x IDEMPOTENT_WRITE on CLUSTER kafka-cluster (LITERAL) from *");
    }

    #[test]
    fn create_refuses_what_the_broker_would_refuse() {
        let bindings = |flags: &[&str]| match parse(flags).unwrap() {
            AclCommand::Create(args) => args.bindings(),
            _ => unreachable!(),
        };
        let error = bindings(&["create", "--principal", "User:x", "--operation", "Read"]).unwrap_err();
        assert!(error.contains("needs a resource"), "{error}");
        let error = bindings(&["create", "--principal", "alice", "--operation", "Read", "--group", "g"]).unwrap_err();
        assert!(error.contains("principalType:principalName"), "{error}");
        let error = bindings(&["create", "--principal", "User:x", "--operation", "any", "--group", "g"]).unwrap_err();
        assert!(error.contains("Invalid operation ANY"), "{error}");
        assert!(parse(&["create", "--principal", "User:x", "--operation", "Reed", "--topic", "t"]).is_err());
        assert!(
            parse(&["create", "--principal", "User:x", "--operation", "Read", "--topic", "t", "--group", "g"]).is_err()
        );
    }

    #[test]
    fn filters_match_anything_left_out() {
        assert_eq!(filter(&["list"]), AclBindingFilter::ANY);
        let narrow = filter(&["delete", "--principal", "User:a", "--topic", "t", "--deny", "--operation", "write"]);
        assert_eq!(narrow.resource_type, ResourceType::Topic);
        assert_eq!(narrow.name.as_deref(), Some("t"));
        assert_eq!(narrow.pattern_type, PatternType::Literal);
        assert_eq!(narrow.principal.as_deref(), Some("User:a"));
        assert_eq!(narrow.operation, AclOperation::Write);
        assert_eq!(narrow.permission, AclPermission::Deny);
        assert_eq!(filter(&["list", "--prefixed"]).pattern_type, PatternType::Prefixed);
        assert_eq!(filter(&["list", "--allow"]).permission, AclPermission::Allow);
        assert!(parse(&["list", "--allow", "--deny"]).is_err());
    }

    #[test]
    fn delete_without_a_filter_is_refused_before_connecting() {
        let AclCommand::Delete(args) = parse(&["delete"]).unwrap() else { panic!() };
        let brokers = BrokerArgs {
            brokers: "127.0.0.1:1".into(),
            security: crate::client_args::SecurityArgs {
                security_protocol: sluice_security::listeners::SecurityProtocol::Plaintext,
                sasl_mechanism: None,
                sasl_username: None,
                sasl_password_file: None,
                tls_ca: None,
                tls_cert: None,
                tls_key: None,
            },
        };
        let error = run(brokers, AclCommand::Delete(args)).unwrap_err();
        assert!(error.contains("would delete every ACL"), "{error}");
    }
}
