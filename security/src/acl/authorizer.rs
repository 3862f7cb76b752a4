//! The ACLs in force and the decisions made from them, with the rules of Kafka's KRaft
//! `StandardAuthorizer`:
//!
//! 1. a super user may do anything;
//! 2. the entries that apply are those on the resource's LITERAL name, the LITERAL wildcard
//!    and every PREFIXED prefix of the name, for the session's principal or `User:*`, from
//!    the client's host or `*`, for the operation or ALL;
//! 3. an ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and an ALLOW of
//!    ALTER_CONFIGS also allows DESCRIBE_CONFIGS; a DENY refuses only what it names;
//! 4. any DENY that applies refuses, whatever allows; otherwise any ALLOW allows;
//! 5. a resource without any ACL at all is allowed only with
//!    `allow.everyone.if.no.acl.found`.

use std::collections::{BTreeSet, HashSet};

use super::index::AclIndex;
use super::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermission, ResourceType, WILDCARD,
    WILDCARD_PRINCIPAL,
};

/// The authorized-operations value of a response whose request did not ask for it (Kafka's
/// `AUTHORIZED_OPERATIONS_OMITTED`).
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The resource name Kafka's `authorizeByResourceType` asks about before looking at the
/// ACLs by type: a plain decision on a made-up name lets super users and
/// `allow.everyone.if.no.acl.found` (with no ACL that applies to it) through exactly as for
/// a named resource. Kept as Kafka's, so the same ACLs give the same answer.
const PROBE_NAME: &str = "hardcode";

/// The bindings in force plus the two settings that decide what they do not cover.
///
/// The set of bindings is the truth; an index derived from it, updated with it, answers
/// the decisions without scanning it. Changes are rare (CreateAcls, DeleteAcls, the
/// metadata log); decisions run for every request.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    bindings: BTreeSet<AclBinding>,
    index: AclIndex,
    super_users: HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    /// An authorizer without bindings. `super_users` are principals (`User:admin`) allowed
    /// everything (`super.users`); `allow_everyone_if_no_acl_found` allows every action on a
    /// resource that no ACL at all applies to (`allow.everyone.if.no.acl.found`, default
    /// false).
    pub fn new(super_users: impl IntoIterator<Item = String>, allow_everyone_if_no_acl_found: bool) -> Self {
        Authorizer {
            bindings: BTreeSet::new(),
            index: AclIndex::default(),
            super_users: super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    /// Puts a binding in force; false if it already was, which Kafka answers as a success.
    /// The binding is not checked here, since replaying the metadata log must not fail:
    /// check a client's bindings with [`AclBinding::validate_new`] before storing them. One
    /// whose pattern type is not LITERAL or PREFIXED is kept and described but applies to
    /// no resource.
    pub fn add(&mut self, binding: AclBinding) -> bool {
        if self.bindings.contains(&binding) {
            return false;
        }
        self.index.insert(&binding);
        self.bindings.insert(binding)
    }

    /// Takes one binding out of force; false if it was not in force.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        if !self.bindings.remove(binding) {
            return false;
        }
        self.index.remove(binding);
        true
    }

    /// Takes out every binding `filter` matches (DeleteAcls) and returns them, sorted.
    /// Check the filter with [`AclBindingFilter::validate`] first.
    pub fn remove_matching(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let removed = self.describe(filter);
        for binding in &removed {
            self.remove(binding);
        }
        removed
    }

    /// The bindings `filter` matches (DescribeAcls), sorted, so grouped by pattern.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.bindings.iter().filter(|binding| filter.matches(binding)).cloned().collect()
    }

    /// How many bindings are in force.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether no binding is in force.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Whether `principal` (`User:alice`), connected from `host` (the client's IP address as
    /// text), may perform `operation` on the resource `name` of `resource_type`.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let mut resource_has_acls = false;
        let mut allowed = false;
        for entry in self.index.applicable(resource_type, name) {
            resource_has_acls = true;
            if !is_for(entry, principal, host) || !covers(entry, operation) {
                continue;
            }
            // As in Kafka, anything but ALLOW refuses; only ALLOW and DENY can be created.
            if entry.permission != AclPermission::Allow {
                return false;
            }
            allowed = true;
        }
        allowed || (!resource_has_acls && self.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` from `host` may perform `operation` on at least one resource of
    /// `resource_type`, as Kafka's default `Authorizer.authorizeByResourceType` decides
    /// (KIP-679; InitProducerId without a transactional id asks it for WRITE on topics):
    /// yes if allowed on the probe name; otherwise no if a LITERAL wildcard DENY applies,
    /// yes if a LITERAL wildcard ALLOW applies, and otherwise yes if some ALLOW's pattern is
    /// not wholly covered by DENYs: a LITERAL name without a LITERAL DENY of the same name
    /// or a PREFIXED DENY of a prefix of it, or a PREFIXED name without a PREFIXED DENY of a
    /// prefix of it. Only ACLs for `operation` itself or ALL count here: ALLOW READ does not
    /// imply DESCRIBE. `Any` or `Unknown` as type or operation is refused (Kafka throws).
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
            || matches!(operation, AclOperation::Any | AclOperation::Unknown)
        {
            return false;
        }
        if self.authorize(principal, host, operation, resource_type, PROBE_NAME) {
            return true;
        }
        let Some(of_type) = self.index.of_type(resource_type) else {
            return false;
        };
        let has = |entries: &BTreeSet<AccessControlEntry>, permission: AclPermission| {
            entries.iter().any(|entry| {
                entry.permission == permission
                    && is_for(entry, principal, host)
                    && (entry.operation == operation || entry.operation == AclOperation::All)
            })
        };
        let denied = |entries: &BTreeSet<AccessControlEntry>| has(entries, AclPermission::Deny);
        let allowed = |entries: &BTreeSet<AccessControlEntry>| has(entries, AclPermission::Allow);
        if let Some(wildcard) = of_type.literal.get(WILDCARD) {
            if denied(wildcard) {
                return false;
            }
            if allowed(wildcard) {
                return true;
            }
        }
        let covered_by_prefix_deny = |name: &str| of_type.prefixes_of(name).any(denied);
        of_type
            .literal
            .iter()
            .any(|(name, entries)| allowed(entries) && !denied(entries) && !covered_by_prefix_deny(name))
            || of_type.prefixed.iter().any(|(name, entries)| allowed(entries) && !covered_by_prefix_deny(name))
    }

    /// The authorized-operations bitfield of Metadata, DescribeGroups and DescribeCluster:
    /// bit `1 << code` for each operation the resource type supports that `principal` from
    /// `host` may perform on `name`.
    pub fn authorized_operations(&self, principal: &str, host: &str, resource_type: ResourceType, name: &str) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|&&operation| self.authorize(principal, host, operation, resource_type, name))
            .fold(0, |bits, operation| bits | (1 << operation.code()))
    }
}

/// Whether `entry` is for this principal and host.
fn is_for(entry: &AccessControlEntry, principal: &str, host: &str) -> bool {
    (entry.principal == principal || entry.principal == WILDCARD_PRINCIPAL)
        && (entry.host == WILDCARD || entry.host == host)
}

/// Whether `entry` grants or refuses `operation`, counting ALL and what an ALLOW implies.
fn covers(entry: &AccessControlEntry, operation: AclOperation) -> bool {
    use AclOperation::*;
    if entry.operation == All || entry.operation == operation {
        return true;
    }
    // Whoever may read, write, delete or alter a resource may see that it exists; whoever
    // may change its configs may read them. Refusing one of those does not hide it.
    entry.permission == AclPermission::Allow
        && match operation {
            Describe => matches!(entry.operation, Read | Write | Delete | Alter),
            DescribeConfigs => entry.operation == AlterConfigs,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{PatternType, ResourcePattern, CLUSTER_RESOURCE_NAME};
    use super::*;

    const ALICE: &str = "User:alice";
    const HOST: &str = "10.0.0.1";

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding::new(
            ResourcePattern::new(resource_type, name, pattern_type),
            AccessControlEntry::new(principal, host, operation, permission),
        )
    }

    fn topic(name: &str, pattern_type: PatternType, operation: AclOperation, permission: AclPermission) -> AclBinding {
        acl(ResourceType::Topic, name, pattern_type, ALICE, "*", operation, permission)
    }

    fn with(bindings: impl IntoIterator<Item = AclBinding>) -> Authorizer {
        let mut authorizer = Authorizer::default();
        for binding in bindings {
            authorizer.add(binding);
        }
        authorizer
    }

    fn alice_may(authorizer: &Authorizer, operation: AclOperation, topic: &str) -> bool {
        authorizer.authorize(ALICE, HOST, operation, ResourceType::Topic, topic)
    }

    use AclOperation::*;
    use AclPermission::{Allow, Deny};
    use PatternType::{Literal, Prefixed};

    #[test]
    fn without_acls_everything_is_denied_by_default() {
        let authorizer = Authorizer::default();
        assert!(!alice_may(&authorizer, Read, "orders"));
        assert!(!authorizer.authorize_by_resource_type(ALICE, HOST, Write, ResourceType::Topic));
        assert_eq!(authorizer.authorized_operations(ALICE, HOST, ResourceType::Topic, "orders"), 0);
    }

    #[test]
    fn allow_everyone_applies_only_to_resources_without_any_acl() {
        let mut authorizer = Authorizer::new([], true);
        authorizer.add(acl(ResourceType::Topic, "orders", Literal, "User:bob", "*", Read, Allow));
        assert!(alice_may(&authorizer, Read, "payments"));
        assert!(!alice_may(&authorizer, Read, "orders"), "an ACL for someone else still counts");
        assert!(authorizer.authorize(ALICE, HOST, Alter, ResourceType::Cluster, CLUSTER_RESOURCE_NAME));
    }

    #[test]
    fn super_users_may_do_anything_even_when_denied() {
        let mut authorizer = Authorizer::new(["User:admin".to_owned()], false);
        authorizer.add(acl(ResourceType::Topic, "*", Literal, "User:*", "*", All, Deny));
        assert!(authorizer.authorize("User:admin", HOST, Delete, ResourceType::Topic, "orders"));
        assert!(authorizer.authorize_by_resource_type("User:admin", HOST, Write, ResourceType::Topic));
        assert!(!authorizer.authorize("User:Admin", HOST, Delete, ResourceType::Topic, "orders"));
        assert_eq!(
            authorizer.authorized_operations("User:admin", HOST, ResourceType::TransactionalId, "tx"),
            0b1_0001_0000
        );
    }

    #[test]
    fn literal_acls_match_the_exact_name_or_the_wildcard() {
        let authorizer = with([topic("orders", Literal, Read, Allow)]);
        assert!(alice_may(&authorizer, Read, "orders"));
        assert!(!alice_may(&authorizer, Read, "orders-eu"));
        assert!(!alice_may(&authorizer, Read, "order"));
        let authorizer = with([topic("*", Literal, Read, Allow)]);
        assert!(alice_may(&authorizer, Read, "anything"));
        assert!(alice_may(&authorizer, Read, "*"));
    }

    #[test]
    fn prefixed_acls_match_names_that_start_with_the_prefix() {
        let authorizer = with([topic("orders-", Prefixed, Write, Allow)]);
        assert!(alice_may(&authorizer, Write, "orders-eu"));
        assert!(alice_may(&authorizer, Write, "orders-"));
        assert!(!alice_may(&authorizer, Write, "orders"));
        assert!(!alice_may(&authorizer, Write, "x-orders-eu"));
        let authorizer = with([topic("*", Prefixed, Write, Allow)]);
        assert!(!alice_may(&authorizer, Write, "orders"), "a prefixed * is no wildcard");
        assert!(alice_may(&authorizer, Write, "*x"));
    }

    #[test]
    fn deny_wins_over_allow_wherever_it_comes_from() {
        let authorizer = with([topic("orders-eu", Literal, Read, Allow), topic("orders-", Prefixed, Read, Deny)]);
        assert!(!alice_may(&authorizer, Read, "orders-eu"));
        let authorizer = with([topic("orders-", Prefixed, All, Allow), topic("*", Literal, Read, Deny)]);
        assert!(!alice_may(&authorizer, Read, "orders-eu"));
        assert!(alice_may(&authorizer, Write, "orders-eu"));
    }

    #[test]
    fn all_matches_every_operation_both_ways() {
        let authorizer = with([topic("orders", Literal, All, Allow)]);
        for operation in ResourceType::Topic.supported_operations() {
            assert!(alice_may(&authorizer, *operation, "orders"), "{operation}");
        }
        let authorizer = with([topic("orders", Literal, All, Allow), topic("orders", Literal, All, Deny)]);
        assert!(!alice_may(&authorizer, Describe, "orders"));
    }

    #[test]
    fn an_allow_implies_describe_and_describe_configs_but_a_deny_does_not() {
        for operation in [Read, Write, Delete, Alter] {
            let authorizer = with([topic("orders", Literal, operation, Allow)]);
            assert!(alice_may(&authorizer, Describe, "orders"), "{operation}");
            assert!(!alice_may(&authorizer, DescribeConfigs, "orders"), "{operation}");
        }
        for operation in [Create, DescribeConfigs, AlterConfigs] {
            let authorizer = with([topic("orders", Literal, operation, Allow)]);
            assert!(!alice_may(&authorizer, Describe, "orders"), "{operation}");
        }
        let authorizer = with([topic("orders", Literal, AlterConfigs, Allow)]);
        assert!(alice_may(&authorizer, DescribeConfigs, "orders"));
        assert!(!alice_may(&authorizer, AlterConfigs, "other"));

        let authorizer = with([topic("orders", Literal, Describe, Allow), topic("orders", Literal, Read, Deny)]);
        assert!(alice_may(&authorizer, Describe, "orders"), "DENY READ does not deny DESCRIBE");
        assert!(!alice_may(&authorizer, Read, "orders"));
        let authorizer = with([topic("orders", Literal, Read, Allow)]);
        assert!(!alice_may(&authorizer, Write, "orders"), "implication goes one way only");
    }

    #[test]
    fn principal_must_be_equal_or_the_user_wildcard() {
        let authorizer = with([acl(ResourceType::Topic, "t", Literal, "User:*", "*", Read, Allow)]);
        assert!(authorizer.authorize("User:anyone", HOST, Read, ResourceType::Topic, "t"));
        let authorizer = with([acl(ResourceType::Topic, "t", Literal, "User:bob", "*", Read, Allow)]);
        assert!(!alice_may(&authorizer, Read, "t"));
        assert!(!authorizer.authorize("User:Bob", HOST, Read, ResourceType::Topic, "t"), "case-sensitive");
        assert!(!authorizer.authorize("Group:bob", HOST, Read, ResourceType::Topic, "t"));
        let authorizer = with([acl(ResourceType::Topic, "t", Literal, "Group:*", "*", Read, Allow)]);
        assert!(!authorizer.authorize("Group:ops", HOST, Read, ResourceType::Topic, "t"), "only User:* is a wildcard");
    }

    #[test]
    fn host_must_be_equal_or_the_wildcard() {
        let authorizer = with([acl(ResourceType::Topic, "t", Literal, ALICE, HOST, Read, Allow)]);
        assert!(alice_may(&authorizer, Read, "t"));
        assert!(!authorizer.authorize(ALICE, "10.0.0.2", Read, ResourceType::Topic, "t"));
        let authorizer = with([
            acl(ResourceType::Topic, "t", Literal, ALICE, "*", Read, Allow),
            acl(ResourceType::Topic, "t", Literal, ALICE, "10.0.0.2", Read, Deny),
        ]);
        assert!(alice_may(&authorizer, Read, "t"));
        assert!(!authorizer.authorize(ALICE, "10.0.0.2", Read, ResourceType::Topic, "t"));
    }

    #[test]
    fn resource_types_do_not_mix() {
        let authorizer = with([acl(ResourceType::Group, "orders", Literal, ALICE, "*", Read, Allow)]);
        assert!(!alice_may(&authorizer, Read, "orders"));
        assert!(authorizer.authorize(ALICE, HOST, Read, ResourceType::Group, "orders"));
    }

    #[test]
    fn add_reports_duplicates_and_remove_takes_bindings_out_of_force() {
        let mut authorizer = Authorizer::default();
        let binding = topic("orders", Literal, Read, Allow);
        assert!(authorizer.add(binding.clone()));
        assert!(!authorizer.add(binding.clone()));
        assert_eq!(authorizer.len(), 1);
        assert!(alice_may(&authorizer, Read, "orders"));
        assert!(authorizer.remove(&binding));
        assert!(!authorizer.remove(&binding));
        assert!(authorizer.is_empty());
        assert!(!alice_may(&authorizer, Read, "orders"));
    }

    #[test]
    fn describe_and_remove_matching_use_the_filter_and_sort() {
        let mut authorizer = with([
            topic("b", Literal, Read, Allow),
            topic("a", Prefixed, Read, Allow),
            topic("a", Literal, Write, Deny),
            acl(ResourceType::Group, "g", Literal, ALICE, "*", Read, Allow),
        ]);
        let topics = AclBindingFilter { resource_type: ResourceType::Topic, ..AclBindingFilter::ANY };
        assert_eq!(
            authorizer.describe(&topics),
            [topic("a", Literal, Write, Deny), topic("a", Prefixed, Read, Allow), topic("b", Literal, Read, Allow)]
        );
        let for_ab = AclBindingFilter { name: Some("ab".into()), pattern_type: PatternType::Match, ..topics.clone() };
        assert_eq!(authorizer.remove_matching(&for_ab), [topic("a", Prefixed, Read, Allow)]);
        assert_eq!(authorizer.len(), 3);
        assert!(authorizer.remove_matching(&for_ab).is_empty());
        assert!(!alice_may(&authorizer, Read, "ab"));
        assert_eq!(authorizer.remove_matching(&AclBindingFilter::ANY).len(), 3);
        assert!(authorizer.is_empty());
    }

    #[test]
    fn unmatchable_bindings_are_kept_but_decide_nothing() {
        let mut authorizer = Authorizer::new([], true);
        authorizer.add(topic("orders", PatternType::Match, Read, Deny));
        assert_eq!(authorizer.len(), 1);
        assert!(alice_may(&authorizer, Read, "orders"));
    }

    #[test]
    fn authorized_operations_sets_one_bit_per_allowed_supported_operation() {
        let authorizer = with([topic("orders", Literal, Read, Allow), topic("orders", Literal, AlterConfigs, Allow)]);
        let expected = [Read, Describe, DescribeConfigs, AlterConfigs].iter().fold(0, |bits, op| bits | 1 << op.code());
        assert_eq!(authorizer.authorized_operations(ALICE, HOST, ResourceType::Topic, "orders"), expected);
        assert_eq!(expected, 0b1101_0000_1000);
        let authorizer = with([acl(ResourceType::Cluster, CLUSTER_RESOURCE_NAME, Literal, ALICE, "*", All, Allow)]);
        assert_eq!(
            authorizer.authorized_operations(ALICE, HOST, ResourceType::Cluster, CLUSTER_RESOURCE_NAME),
            1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12
        );
        assert_eq!(authorizer.authorized_operations(ALICE, HOST, ResourceType::Any, "x"), 0);
    }

    fn by_type(authorizer: &Authorizer, operation: AclOperation) -> bool {
        authorizer.authorize_by_resource_type(ALICE, HOST, operation, ResourceType::Topic)
    }

    #[test]
    fn by_resource_type_allows_when_some_allow_is_not_covered_by_denies() {
        assert!(by_type(&with([topic("t", Literal, Write, Allow)]), Write));
        assert!(by_type(&with([topic("t", Literal, All, Allow)]), Write));
        assert!(by_type(&with([topic("t-", Prefixed, Write, Allow)]), Write));
        assert!(by_type(&with([topic("*", Literal, Write, Allow)]), Write));
        assert!(!by_type(&with([topic("t", Literal, Write, Allow)]), Read));
        assert!(!by_type(&with([topic("t", Literal, Write, Allow)]), Describe), "no implication here");
        assert!(!by_type(&with([acl(ResourceType::Group, "t", Literal, ALICE, "*", Write, Allow)]), Write));
        assert!(!by_type(&with([acl(ResourceType::Topic, "t", Literal, "User:bob", "*", Write, Allow)]), Write));
        assert!(!by_type(&with([acl(ResourceType::Topic, "t", Literal, ALICE, "10.9.9.9", Write, Allow)]), Write));
        assert!(by_type(&with([acl(ResourceType::Topic, "t", Literal, "User:*", HOST, Write, Allow)]), Write));
    }

    #[test]
    fn by_resource_type_denies_what_denies_cover() {
        let allow_t = topic("t", Literal, Write, Allow);
        assert!(!by_type(&with([allow_t.clone(), topic("t", Literal, Write, Deny)]), Write));
        assert!(!by_type(&with([allow_t.clone(), topic("t", Prefixed, All, Deny)]), Write));
        assert!(!by_type(&with([allow_t.clone(), topic("*", Literal, Write, Deny)]), Write));
        assert!(!by_type(&with([topic("*", Literal, Write, Allow), topic("*", Literal, Write, Deny)]), Write));
        // A longer prefix or another name covers only part of what the allow allows.
        assert!(by_type(&with([topic("t", Prefixed, Write, Allow), topic("t", Literal, Write, Deny)]), Write));
        assert!(by_type(&with([topic("t", Prefixed, Write, Allow), topic("tx", Prefixed, Write, Deny)]), Write));
        assert!(!by_type(&with([topic("tx", Prefixed, Write, Allow), topic("t", Prefixed, Write, Deny)]), Write));
        // A deny for another operation, principal or host covers nothing.
        assert!(by_type(&with([allow_t.clone(), topic("t", Literal, Read, Deny)]), Write));
        assert!(by_type(
            &with([allow_t.clone(), acl(ResourceType::Topic, "t", Literal, ALICE, "10.9.9.9", Write, Deny)]),
            Write
        ));
        // One uncovered allow is enough.
        assert!(by_type(&with([allow_t, topic("u", Literal, Write, Deny), topic("u", Literal, Write, Allow)]), Write));
    }

    #[test]
    fn by_resource_type_follows_the_default_rule_like_kafka() {
        assert!(Authorizer::new([], true).authorize_by_resource_type(ALICE, HOST, Write, ResourceType::Topic));
        // Any wildcard ACL applies to the probe name, so the default rule no longer does.
        let mut authorizer = Authorizer::new([], true);
        authorizer.add(acl(ResourceType::Topic, "*", Literal, "User:bob", "*", Read, Allow));
        assert!(!authorizer.authorize_by_resource_type(ALICE, HOST, Write, ResourceType::Topic));
    }

    #[test]
    fn by_resource_type_refuses_filter_values() {
        let authorizer = Authorizer::new(["User:admin".to_owned()], true);
        assert!(!authorizer.authorize_by_resource_type("User:admin", HOST, Write, ResourceType::Any));
        assert!(!authorizer.authorize_by_resource_type("User:admin", HOST, Write, ResourceType::Unknown));
        assert!(!authorizer.authorize_by_resource_type("User:admin", HOST, AclOperation::Any, ResourceType::Topic));
        assert!(!authorizer.authorize_by_resource_type("User:admin", HOST, Unknown, ResourceType::Topic));
    }

    // Reference models: the rules written as plainly as possible, over a scan of every
    // binding, for the property tests to hold the index and the shortcuts to.

    fn applies_to_name(pattern: &ResourcePattern, resource_type: ResourceType, name: &str) -> bool {
        pattern.resource_type == resource_type
            && match pattern.pattern_type {
                Literal => pattern.name == name || pattern.name == WILDCARD,
                Prefixed => name.starts_with(&pattern.name),
                _ => false,
            }
    }

    fn reference_authorize(authorizer: &Authorizer, operation: AclOperation, name: &str) -> bool {
        let on_resource: Vec<_> =
            authorizer.bindings.iter().filter(|b| applies_to_name(&b.pattern, ResourceType::Topic, name)).collect();
        let applying: Vec<_> = on_resource
            .iter()
            .map(|b| &b.entry)
            .filter(|e| (e.principal == ALICE || e.principal == "User:*") && (e.host == "*" || e.host == HOST))
            .filter(|e| {
                e.operation == All
                    || e.operation == operation
                    || (e.permission == Allow
                        && (operation == Describe && [Read, Write, Delete, Alter].contains(&e.operation)
                            || operation == DescribeConfigs && e.operation == AlterConfigs))
            })
            .collect();
        if applying.iter().any(|e| e.permission == Deny) {
            return false;
        }
        applying.iter().any(|e| e.permission == Allow)
            || (on_resource.is_empty() && authorizer.allow_everyone_if_no_acl_found)
    }

    /// Allowed on the probe name, or on some name counting only ACLs for `operation` or ALL.
    /// The names worth trying are every binding's name and each one extended by a letter no
    /// generated name uses (a name only a PREFIXED pattern reaches).
    fn reference_by_type(authorizer: &Authorizer, operation: AclOperation) -> bool {
        let strict = |name: &str| {
            let applying: Vec<_> = authorizer
                .bindings
                .iter()
                .filter(|b| applies_to_name(&b.pattern, ResourceType::Topic, name))
                .map(|b| &b.entry)
                .filter(|e| (e.principal == ALICE || e.principal == "User:*") && (e.host == "*" || e.host == HOST))
                .filter(|e| e.operation == All || e.operation == operation)
                .collect();
            !applying.iter().any(|e| e.permission == Deny) && applying.iter().any(|e| e.permission == Allow)
        };
        reference_authorize(authorizer, operation, PROBE_NAME)
            || authorizer.bindings.iter().any(|b| strict(&b.pattern.name) || strict(&format!("{}z", b.pattern.name)))
    }

    fn arb_binding() -> impl Strategy<Value = AclBinding> {
        (
            prop_oneof![Just(ResourceType::Topic), Just(ResourceType::Group)],
            prop_oneof![Just("*".to_owned()), "[ab]{1,3}"],
            prop_oneof![Just(Literal), Just(Prefixed)],
            prop_oneof![Just(ALICE), Just("User:*"), Just("User:bob")],
            prop_oneof![Just("*"), Just(HOST), Just("10.0.0.2")],
            prop_oneof![Just(Read), Just(Write), Just(Describe), Just(All), Just(AlterConfigs)],
            prop_oneof![Just(Allow), Just(Deny)],
        )
            .prop_map(|(resource_type, name, pattern_type, principal, host, operation, permission)| {
                acl(resource_type, &name, pattern_type, principal, host, operation, permission)
            })
    }

    proptest! {
        #[test]
        fn decisions_agree_with_a_scan_of_every_binding(
            bindings in prop::collection::vec(arb_binding(), 0..24),
            allow_everyone in any::<bool>(),
            name in prop_oneof![Just("*".to_owned()), "[ab]{1,4}"],
        ) {
            let mut authorizer = Authorizer::new([], allow_everyone);
            for binding in bindings {
                authorizer.add(binding);
            }
            for operation in [Read, Write, Describe, DescribeConfigs, AlterConfigs] {
                prop_assert_eq!(
                    alice_may(&authorizer, operation, &name),
                    reference_authorize(&authorizer, operation, &name),
                    "{} on {}", operation, name
                );
            }
            for operation in [Read, Write, Describe] {
                prop_assert_eq!(
                    by_type(&authorizer, operation),
                    reference_by_type(&authorizer, operation),
                    "{} by type", operation
                );
            }
        }

        #[test]
        fn a_match_filter_finds_exactly_the_bindings_that_apply_to_the_name(
            bindings in prop::collection::vec(arb_binding(), 0..24),
            name in prop_oneof![Just("*".to_owned()), "[ab]{1,4}"],
        ) {
            let authorizer = with(bindings);
            let filter = AclBindingFilter {
                resource_type: ResourceType::Topic,
                name: Some(name.clone()),
                pattern_type: PatternType::Match,
                ..AclBindingFilter::ANY
            };
            let expected: Vec<_> = authorizer
                .bindings
                .iter()
                .filter(|b| applies_to_name(&b.pattern, ResourceType::Topic, &name))
                .cloned()
                .collect();
            prop_assert_eq!(authorizer.describe(&filter), expected);
            let mut indexed: Vec<_> = authorizer.index.applicable(ResourceType::Topic, &name).cloned().collect();
            indexed.sort();
            let mut described: Vec<_> = authorizer.describe(&filter).into_iter().map(|b| b.entry).collect();
            described.sort();
            prop_assert_eq!(indexed, described);
        }

        #[test]
        fn a_binding_on_a_literal_name_is_found_by_a_match_filter_and_applies(
            binding in arb_binding(),
        ) {
            let binding = AclBinding { pattern: ResourcePattern { pattern_type: Literal, ..binding.pattern }, ..binding };
            let authorizer = with([binding.clone()]);
            let filter = AclBindingFilter {
                resource_type: binding.pattern.resource_type,
                name: Some(binding.pattern.name.clone()),
                pattern_type: PatternType::Match,
                ..AclBindingFilter::ANY
            };
            prop_assert_eq!(authorizer.describe(&filter), vec![binding.clone()]);
            let entry = &binding.entry;
            let principal = if entry.principal == "User:*" { "User:someone" } else { entry.principal.as_str() };
            let host = if entry.host == "*" { "192.0.2.1" } else { entry.host.as_str() };
            let operation = if entry.operation == All { Create } else { entry.operation };
            prop_assert_eq!(
                authorizer.authorize(principal, host, operation, binding.pattern.resource_type, &binding.pattern.name),
                entry.permission == Allow
            );
        }

        #[test]
        fn the_index_equals_one_rebuilt_from_the_bindings_after_any_changes(
            changes in prop::collection::vec((any::<bool>(), arb_binding()), 0..48),
        ) {
            let mut authorizer = Authorizer::default();
            for (add, binding) in changes {
                if add {
                    authorizer.add(binding);
                } else {
                    authorizer.remove_matching(&AclBindingFilter {
                        resource_type: binding.pattern.resource_type,
                        name: Some(binding.pattern.name),
                        pattern_type: PatternType::Match,
                        ..AclBindingFilter::ANY
                    });
                }
                prop_assert_eq!(&authorizer.index, &AclIndex::of(&authorizer.bindings));
            }
        }
    }
}
