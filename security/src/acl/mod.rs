//! Kafka's ACL model: the four enums with their wire codes, resource patterns, access
//! control entries and the bindings that pair them, as CreateAcls, DescribeAcls, DeleteAcls
//! and the metadata log's `AccessControlEntryRecord` carry them.
//!
//! - this file: the types, their names and codes, and the checks a new binding must pass;
//! - `filter`: the seven-field filters of DescribeAcls and DeleteAcls;
//! - `authorizer`: the bindings in force and the decisions made from them;
//! - `index`: the lookup structure that keeps those decisions cheap.

mod authorizer;
mod filter;
mod index;

use std::fmt;
use std::str::FromStr;

pub use authorizer::{Authorizer, AUTHORIZED_OPERATIONS_OMITTED};
pub use filter::AclBindingFilter;

/// The only name a CLUSTER resource may have.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// The principal of a connection that did not authenticate (PLAINTEXT, or SSL without a
/// client certificate).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The resource name and host that match every name and host, as a LITERAL pattern.
pub const WILDCARD: &str = "*";

/// The principal that matches every principal in an ACL.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Defines one of Kafka's ACL enums: its variants with their wire codes and printed names,
/// `from_code`/`code`, `name`, `Display` and a lenient `FromStr` for the CLI. One macro keeps
/// the four enums from drifting apart.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        pub enum $enum_name:ident ($kind:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident = $code:literal => $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i8)]
        pub enum $enum_name {
            $( $(#[$variant_meta])* $variant = $code, )+
        }

        impl $enum_name {
            /// Every value, in code order.
            pub const VALUES: &'static [$enum_name] = &[$($enum_name::$variant),+];

            /// The value a wire code stands for. A code this version does not know reads as
            /// `Unknown`, as Kafka's `fromCode` does, so a request from a newer client fails
            /// validation with Kafka's message instead of failing to decode.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $( $code => $enum_name::$variant, )+
                    _ => $enum_name::Unknown,
                }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The name Kafka prints (its Java enum constant), e.g. in `kafka-acls` output.
            pub fn name(self) -> &'static str {
                match self {
                    $( $enum_name::$variant => $name, )+
                }
            }
        }

        impl fmt::Display for $enum_name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        /// Parses the printed name, ignoring case and underscores, so both Kafka's enum
        /// names (`CLUSTER_ACTION`) and `kafka-acls`' spelling (`ClusterAction`) work.
        impl FromStr for $enum_name {
            type Err = ParseNameError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::VALUES
                    .iter()
                    .copied()
                    .find(|value| same_name(value.name(), text))
                    .ok_or_else(|| ParseNameError {
                        kind: $kind,
                        input: text.to_owned(),
                        expected: Self::VALUES.iter().map(|value| value.name()).collect(),
                    })
            }
        }
    };
}

kafka_enum! {
    /// The kind of resource an ACL protects (Kafka's `ResourceType`).
    pub enum ResourceType ("resource type") {
        /// A code this version does not know; never valid in a binding or filter.
        Unknown = 0 => "UNKNOWN",
        /// Filters only: any resource type.
        Any = 1 => "ANY",
        /// A topic.
        Topic = 2 => "TOPIC",
        /// A consumer group.
        Group = 3 => "GROUP",
        /// The cluster itself, always named [`CLUSTER_RESOURCE_NAME`].
        Cluster = 4 => "CLUSTER",
        /// A producer's `transactional.id`.
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// A delegation token.
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// A user, for creating and describing tokens on their behalf.
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// How a pattern's name is compared with a resource name (Kafka's `PatternType`).
    pub enum PatternType ("pattern type") {
        /// A code this version does not know; never valid.
        Unknown = 0 => "UNKNOWN",
        /// Filters only: the exact name, with any pattern type.
        Any = 1 => "ANY",
        /// Filters only: every pattern that would apply to the (literal) name.
        Match = 2 => "MATCH",
        /// The name itself, or every name when it is [`WILDCARD`].
        Literal = 3 => "LITERAL",
        /// Every name that starts with the pattern's name.
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// What a principal wants to do to a resource (Kafka's `AclOperation`).
    pub enum AclOperation ("operation") {
        /// A code this version does not know; never valid.
        Unknown = 0 => "UNKNOWN",
        /// Filters only: any operation.
        Any = 1 => "ANY",
        /// Every operation, in an ACL.
        All = 2 => "ALL",
        /// Consume, commit offsets, join a group.
        Read = 3 => "READ",
        /// Produce; transactional writes.
        Write = 4 => "WRITE",
        /// Create topics.
        Create = 5 => "CREATE",
        /// Delete topics, records, groups.
        Delete = 6 => "DELETE",
        /// Add partitions; cluster-wide changes such as ACLs.
        Alter = 7 => "ALTER",
        /// See that a resource exists and its metadata.
        Describe = 8 => "DESCRIBE",
        /// Broker-to-broker actions such as replica fetches.
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// Read configs.
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// Change configs.
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// Get a producer id for idempotent writes.
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        /// Create delegation tokens for a user.
        CreateTokens = 13 => "CREATE_TOKENS",
        /// Describe a user's delegation tokens.
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

kafka_enum! {
    /// Whether an ACL grants or refuses (Kafka's `AclPermissionType`).
    pub enum AclPermission ("permission type") {
        /// A code this version does not know; never valid.
        Unknown = 0 => "UNKNOWN",
        /// Filters only: either permission.
        Any = 1 => "ANY",
        /// Refuses; wins over every ALLOW.
        Deny = 2 => "DENY",
        /// Grants.
        Allow = 3 => "ALLOW",
    }
}

impl ResourceType {
    /// The operations that mean something on this type (Kafka's
    /// `AclEntry.supportedOperations`): the ones an authorized-operations bitfield reports.
    /// Empty for `Unknown` and `Any`, which are not types of a real resource.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => {
                &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
            }
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}

/// Whether `text` spells `name`, ignoring ASCII case, underscores and surrounding spaces.
fn same_name(name: &str, text: &str) -> bool {
    let significant = |s: &str| s.chars().filter(|&c| c != '_').map(|c| c.to_ascii_uppercase()).collect::<String>();
    significant(name) == significant(text.trim())
}

/// A name that is none of an enum's values, e.g. a mistyped `--operation` in the CLI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {input:?}: expected one of {}", .expected.join(", "))]
pub struct ParseNameError {
    /// Which enum was parsed ("operation", "resource type", ...).
    pub kind: &'static str,
    /// The text given.
    pub input: String,
    /// The names that would have been accepted.
    pub expected: Vec<&'static str>,
}

/// Which resources an ACL covers: a type, a name and how the name is compared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The name, the prefix, or [`WILDCARD`].
    pub name: String,
    /// How `name` is compared with a resource's name.
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    /// A pattern from its three fields.
    pub fn new(resource_type: ResourceType, name: impl Into<String>, pattern_type: PatternType) -> Self {
        ResourcePattern { resource_type, name: name.into(), pattern_type }
    }
}

/// Who may (or may not) do what from where: the half of an ACL that is about the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// `Type:name`, e.g. `User:alice`, or [`WILDCARD_PRINCIPAL`].
    pub principal: String,
    /// The client's IP address as text, or [`WILDCARD`] for every host.
    pub host: String,
    /// The operation granted or refused.
    pub operation: AclOperation,
    /// Grant or refuse.
    pub permission: AclPermission,
}

impl AccessControlEntry {
    /// An entry from its four fields.
    pub fn new(
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission: AclPermission,
    ) -> Self {
        AccessControlEntry { principal: principal.into(), host: host.into(), operation, permission }
    }
}

/// One ACL. Bindings order by pattern first, so a sorted list is already grouped the way a
/// DescribeAcls response groups them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resources covered.
    pub pattern: ResourcePattern,
    /// Who, what, from where, and whether allowed.
    pub entry: AccessControlEntry,
}

impl AclBinding {
    /// A binding from its two halves.
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> Self {
        AclBinding { pattern, entry }
    }

    /// Checks a binding a client asks to create, in the order Kafka checks it (the broker's
    /// `AclApis` first, then the controller's `AclControlManager.validateNewAcl`), so the
    /// first problem found carries the same message. The principal check is sluice's own:
    /// Kafka accepts an empty type or name, which no session principal can ever match.
    pub fn validate_new(&self) -> Result<(), AclError> {
        let pattern = &self.pattern;
        let entry = &self.entry;
        if pattern.resource_type == ResourceType::Cluster && pattern.name != CLUSTER_RESOURCE_NAME {
            return Err(AclError::InvalidClusterName);
        }
        if pattern.name.is_empty() {
            return Err(AclError::EmptyResourceName);
        }
        if matches!(pattern.resource_type, ResourceType::Unknown | ResourceType::Any) {
            return Err(AclError::InvalidResourceType(pattern.resource_type));
        }
        if !matches!(pattern.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err(AclError::InvalidPatternType(pattern.pattern_type));
        }
        if matches!(entry.operation, AclOperation::Unknown | AclOperation::Any) {
            return Err(AclError::InvalidOperation(entry.operation));
        }
        if !matches!(entry.permission, AclPermission::Allow | AclPermission::Deny) {
            return Err(AclError::InvalidPermission(entry.permission));
        }
        match entry.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
            _ => Err(AclError::InvalidPrincipal(entry.principal.clone())),
        }
    }
}

/// Why a binding or filter is refused. Every case maps to INVALID_REQUEST, with this text as
/// the error message, worded as Kafka words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A CLUSTER binding named anything but [`CLUSTER_RESOURCE_NAME`].
    #[error("The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}")]
    InvalidClusterName,
    /// A binding with an empty resource name.
    #[error("Invalid empty resource name")]
    EmptyResourceName,
    /// A binding for resource type ANY or UNKNOWN.
    #[error("Invalid resourceType {0}")]
    InvalidResourceType(ResourceType),
    /// A binding whose pattern type is not LITERAL or PREFIXED.
    #[error("Invalid patternType {0}")]
    InvalidPatternType(PatternType),
    /// A binding for operation ANY or UNKNOWN.
    #[error("Invalid operation {0}")]
    InvalidOperation(AclOperation),
    /// A binding whose permission is not ALLOW or DENY.
    #[error("Invalid permissionType {0}")]
    InvalidPermission(AclPermission),
    /// A principal that is not `Type:name`.
    #[error("expected a string in format principalType:principalName but got {0}")]
    InvalidPrincipal(String),
    /// A filter with an UNKNOWN resource type or pattern type.
    #[error("Unknown patternFilter.")]
    UnknownPatternFilter,
    /// A filter with an UNKNOWN operation or permission.
    #[error("Unknown entryFilter.")]
    UnknownEntryFilter,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_binding(name: &str) -> AclBinding {
        AclBinding::new(
            ResourcePattern::new(ResourceType::Topic, name, PatternType::Literal),
            AccessControlEntry::new("User:alice", "*", AclOperation::Read, AclPermission::Allow),
        )
    }

    #[test]
    fn codes_match_kafka_and_round_trip() {
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::ClusterAction.code(), 9);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(AclPermission::Allow.code(), 3);
        for code in i8::MIN..=i8::MAX {
            let value = AclOperation::from_code(code);
            assert!(value.code() == code || value == AclOperation::Unknown);
        }
        for value in AclOperation::VALUES {
            assert_eq!(AclOperation::from_code(value.code()), *value);
        }
        for value in ResourceType::VALUES {
            assert_eq!(ResourceType::from_code(value.code()), *value);
        }
        assert_eq!(ResourceType::VALUES.len(), 8);
        assert_eq!(PatternType::VALUES.len(), 5);
        assert_eq!(AclOperation::VALUES.len(), 15);
        assert_eq!(AclPermission::VALUES.len(), 4);
    }

    #[test]
    fn unknown_codes_read_as_unknown() {
        assert_eq!(ResourceType::from_code(8), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(-1), PatternType::Unknown);
        assert_eq!(AclOperation::from_code(15), AclOperation::Unknown);
        assert_eq!(AclPermission::from_code(i8::MAX), AclPermission::Unknown);
    }

    #[test]
    fn names_print_as_kafka_and_parse_in_any_case() {
        assert_eq!(ResourceType::TransactionalId.to_string(), "TRANSACTIONAL_ID");
        assert_eq!(PatternType::Prefixed.to_string(), "PREFIXED");
        assert_eq!(AclOperation::IdempotentWrite.to_string(), "IDEMPOTENT_WRITE");
        assert_eq!(AclPermission::Allow.to_string(), "ALLOW");
        assert_eq!("topic".parse(), Ok(ResourceType::Topic));
        assert_eq!("TransactionalId".parse(), Ok(ResourceType::TransactionalId));
        assert_eq!("transactional_id".parse(), Ok(ResourceType::TransactionalId));
        assert_eq!(" Prefixed ".parse(), Ok(PatternType::Prefixed));
        assert_eq!("ClusterAction".parse(), Ok(AclOperation::ClusterAction));
        assert_eq!("describe_configs".parse(), Ok(AclOperation::DescribeConfigs));
        assert_eq!("deny".parse(), Ok(AclPermission::Deny));
        for value in AclOperation::VALUES {
            assert_eq!(value.name().parse(), Ok(*value));
            assert_eq!(value.name().to_lowercase().parse(), Ok(*value));
        }
    }

    #[test]
    fn an_unknown_name_lists_the_accepted_ones() {
        let error = "reed".parse::<AclOperation>().unwrap_err();
        assert_eq!(error.input, "reed");
        let message = error.to_string();
        assert!(
            message.starts_with("unknown operation \"reed\": expected one of UNKNOWN, ANY, ALL, READ"),
            "{message}"
        );
        assert!("".parse::<AclPermission>().is_err());
        assert!("TOPICS".parse::<ResourceType>().is_err());
    }

    #[test]
    fn supported_operations_follow_kafka() {
        assert_eq!(ResourceType::Topic.supported_operations().len(), 8);
        assert!(ResourceType::Group.supported_operations().contains(&AclOperation::AlterConfigs));
        assert!(ResourceType::Cluster.supported_operations().contains(&AclOperation::IdempotentWrite));
        assert_eq!(
            ResourceType::TransactionalId.supported_operations(),
            &[AclOperation::Describe, AclOperation::Write]
        );
        assert!(ResourceType::Any.supported_operations().is_empty());
    }

    #[test]
    fn a_valid_binding_passes() {
        assert_eq!(topic_binding("orders").validate_new(), Ok(()));
        let mut prefixed = topic_binding("orders-");
        prefixed.pattern.pattern_type = PatternType::Prefixed;
        prefixed.entry.principal = "Group:ops".into();
        assert_eq!(prefixed.validate_new(), Ok(()));
        let cluster = AclBinding::new(
            ResourcePattern::new(ResourceType::Cluster, CLUSTER_RESOURCE_NAME, PatternType::Literal),
            AccessControlEntry::new(WILDCARD_PRINCIPAL, "10.0.0.1", AclOperation::All, AclPermission::Deny),
        );
        assert_eq!(cluster.validate_new(), Ok(()));
        let mut dn = topic_binding("*");
        dn.entry.principal = "User:CN=a,OU=b:c".into();
        assert_eq!(dn.validate_new(), Ok(()));
    }

    #[test]
    fn validation_refuses_what_kraft_refuses_with_its_messages() {
        let refused = |edit: &dyn Fn(&mut AclBinding)| {
            let mut binding = topic_binding("orders");
            edit(&mut binding);
            binding.validate_new().unwrap_err().to_string()
        };
        assert_eq!(
            refused(&|b| {
                b.pattern.resource_type = ResourceType::Cluster;
                b.pattern.name = "my-cluster".into();
            }),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
        assert_eq!(refused(&|b| b.pattern.name.clear()), "Invalid empty resource name");
        assert_eq!(refused(&|b| b.pattern.resource_type = ResourceType::Any), "Invalid resourceType ANY");
        assert_eq!(refused(&|b| b.pattern.resource_type = ResourceType::Unknown), "Invalid resourceType UNKNOWN");
        assert_eq!(refused(&|b| b.pattern.pattern_type = PatternType::Match), "Invalid patternType MATCH");
        assert_eq!(refused(&|b| b.pattern.pattern_type = PatternType::Any), "Invalid patternType ANY");
        assert_eq!(refused(&|b| b.pattern.pattern_type = PatternType::Unknown), "Invalid patternType UNKNOWN");
        assert_eq!(refused(&|b| b.entry.operation = AclOperation::Any), "Invalid operation ANY");
        assert_eq!(refused(&|b| b.entry.operation = AclOperation::Unknown), "Invalid operation UNKNOWN");
        assert_eq!(refused(&|b| b.entry.permission = AclPermission::Any), "Invalid permissionType ANY");
        assert_eq!(refused(&|b| b.entry.permission = AclPermission::Unknown), "Invalid permissionType UNKNOWN");
        for principal in ["alice", "User:", ":alice", ""] {
            assert_eq!(
                refused(&|b| b.entry.principal = principal.into()),
                format!("expected a string in format principalType:principalName but got {principal}")
            );
        }
    }

    #[test]
    fn bindings_sort_by_pattern_first() {
        let mut a = topic_binding("b");
        a.entry.principal = "User:a".into();
        let mut b = topic_binding("a");
        b.entry.principal = "User:z".into();
        let mut sorted = vec![a.clone(), b.clone()];
        sorted.sort();
        assert_eq!(sorted, vec![b, a]);
    }
}
