//! The filters of DescribeAcls and DeleteAcls: seven fields, each either a value to match or
//! a "match anything" (Kafka's `ResourcePatternFilter` and `AccessControlEntryFilter`).

use super::{AclBinding, AclError, AclOperation, AclPermission, PatternType, ResourceType, WILDCARD};

/// Selects bindings, as DescribeAcls and each DeleteAcls filter carry it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// A type, or `Any` for every type.
    pub resource_type: ResourceType,
    /// A name, or `None` for every name; how it compares depends on `pattern_type`.
    pub name: Option<String>,
    /// `Literal` or `Prefixed`: that type and the exact name. `Any`: the exact name with any
    /// pattern type. `Match`: every pattern that applies to `name` taken as a resource name.
    pub pattern_type: PatternType,
    /// A principal (`Type:name`, compared exactly, so `User:*` finds only wildcard ACLs), or
    /// `None` for every principal.
    pub principal: Option<String>,
    /// A host (compared exactly), or `None` for every host.
    pub host: Option<String>,
    /// An operation, or `Any`.
    pub operation: AclOperation,
    /// A permission, or `Any`.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Matches every binding.
    pub const ANY: AclBindingFilter = AclBindingFilter {
        resource_type: ResourceType::Any,
        name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    };

    /// Whether `binding` is one this filter selects.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    /// Refuses the filters Kafka's controller refuses in DeleteAcls (and DescribeAcls
    /// refuses too): one with an UNKNOWN field, which a client only sends when it used a code
    /// this broker does not know, so matching "nothing" silently would mislead it.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown {
            return Err(AclError::UnknownPatternFilter);
        }
        if self.operation == AclOperation::Unknown || self.permission == AclPermission::Unknown {
            return Err(AclError::UnknownEntryFilter);
        }
        Ok(())
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        let pattern = &binding.pattern;
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        let any_pattern_type = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !any_pattern_type && self.pattern_type != pattern.pattern_type {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        // MATCH: what would apply to a resource called `name`. Kafka throws on a binding of
        // any other pattern type; such a binding cannot be created, so it simply matches
        // nothing here.
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(pattern.name.as_str()),
            PatternType::Unknown | PatternType::Any | PatternType::Match => false,
        }
    }

    fn matches_entry(&self, binding: &AclBinding) -> bool {
        let entry = &binding.entry;
        self.principal.as_ref().is_none_or(|principal| *principal == entry.principal)
            && self.host.as_ref().is_none_or(|host| *host == entry.host)
            && (self.operation == AclOperation::Any || self.operation == entry.operation)
            && (self.permission == AclPermission::Any || self.permission == entry.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AccessControlEntry, ResourcePattern};
    use super::*;

    fn binding(resource_type: ResourceType, name: &str, pattern_type: PatternType) -> AclBinding {
        AclBinding::new(
            ResourcePattern::new(resource_type, name, pattern_type),
            AccessControlEntry::new("User:alice", "*", AclOperation::Read, AclPermission::Allow),
        )
    }

    fn by_name(name: Option<&str>, pattern_type: PatternType) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Topic,
            name: name.map(str::to_owned),
            pattern_type,
            ..AclBindingFilter::ANY
        }
    }

    #[test]
    fn the_any_filter_matches_everything() {
        for resource_type in ResourceType::VALUES {
            for pattern_type in PatternType::VALUES {
                assert!(AclBindingFilter::ANY.matches(&binding(*resource_type, "x", *pattern_type)));
            }
        }
    }

    #[test]
    fn resource_type_must_be_equal_unless_any() {
        let filter = AclBindingFilter { resource_type: ResourceType::Group, ..AclBindingFilter::ANY };
        assert!(filter.matches(&binding(ResourceType::Group, "g", PatternType::Literal)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "g", PatternType::Literal)));
    }

    #[test]
    fn a_concrete_pattern_type_matches_that_type_and_the_exact_name() {
        let literal = by_name(Some("foo"), PatternType::Literal);
        assert!(literal.matches(&binding(ResourceType::Topic, "foo", PatternType::Literal)));
        assert!(!literal.matches(&binding(ResourceType::Topic, "foo", PatternType::Prefixed)));
        assert!(!literal.matches(&binding(ResourceType::Topic, "*", PatternType::Literal)));
        let prefixed = by_name(Some("foo"), PatternType::Prefixed);
        assert!(prefixed.matches(&binding(ResourceType::Topic, "foo", PatternType::Prefixed)));
        assert!(!prefixed.matches(&binding(ResourceType::Topic, "fo", PatternType::Prefixed)));
        let wildcard = by_name(Some("*"), PatternType::Literal);
        assert!(wildcard.matches(&binding(ResourceType::Topic, "*", PatternType::Literal)));
        assert!(!wildcard.matches(&binding(ResourceType::Topic, "foo", PatternType::Literal)));
    }

    #[test]
    fn pattern_type_any_matches_the_exact_name_with_any_pattern_type() {
        let filter = by_name(Some("foo"), PatternType::Any);
        assert!(filter.matches(&binding(ResourceType::Topic, "foo", PatternType::Literal)));
        assert!(filter.matches(&binding(ResourceType::Topic, "foo", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "fo", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "*", PatternType::Literal)));
    }

    #[test]
    fn pattern_type_match_finds_everything_that_applies_to_the_name() {
        let filter = by_name(Some("foobar"), PatternType::Match);
        assert!(filter.matches(&binding(ResourceType::Topic, "foobar", PatternType::Literal)));
        assert!(filter.matches(&binding(ResourceType::Topic, "*", PatternType::Literal)));
        assert!(filter.matches(&binding(ResourceType::Topic, "foo", PatternType::Prefixed)));
        assert!(filter.matches(&binding(ResourceType::Topic, "foobar", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "foo", PatternType::Literal)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "foobarbaz", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "*", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "foobar", PatternType::Unknown)));
    }

    #[test]
    fn a_missing_name_matches_every_name_of_the_pattern_type() {
        let filter = by_name(None, PatternType::Prefixed);
        assert!(filter.matches(&binding(ResourceType::Topic, "anything", PatternType::Prefixed)));
        assert!(!filter.matches(&binding(ResourceType::Topic, "anything", PatternType::Literal)));
        let filter = by_name(None, PatternType::Match);
        assert!(filter.matches(&binding(ResourceType::Topic, "anything", PatternType::Literal)));
    }

    #[test]
    fn entry_fields_match_exactly_or_anything() {
        let allow_read = binding(ResourceType::Topic, "t", PatternType::Literal);
        let by = |edit: &dyn Fn(&mut AclBindingFilter)| {
            let mut filter = AclBindingFilter::ANY;
            edit(&mut filter);
            filter.matches(&allow_read)
        };
        assert!(by(&|f| f.principal = Some("User:alice".into())));
        assert!(!by(&|f| f.principal = Some("User:bob".into())));
        assert!(!by(&|f| f.principal = Some("User:*".into())));
        assert!(by(&|f| f.host = Some("*".into())));
        assert!(!by(&|f| f.host = Some("10.0.0.1".into())));
        assert!(by(&|f| f.operation = AclOperation::Read));
        assert!(!by(&|f| f.operation = AclOperation::All));
        assert!(by(&|f| f.permission = AclPermission::Allow));
        assert!(!by(&|f| f.permission = AclPermission::Deny));
    }

    #[test]
    fn validation_refuses_unknown_fields_only() {
        assert_eq!(AclBindingFilter::ANY.validate(), Ok(()));
        let with = |edit: &dyn Fn(&mut AclBindingFilter)| {
            let mut filter = AclBindingFilter::ANY;
            edit(&mut filter);
            filter.validate()
        };
        assert_eq!(with(&|f| f.pattern_type = PatternType::Match), Ok(()));
        assert_eq!(with(&|f| f.resource_type = ResourceType::Unknown), Err(AclError::UnknownPatternFilter));
        assert_eq!(with(&|f| f.pattern_type = PatternType::Unknown), Err(AclError::UnknownPatternFilter));
        assert_eq!(with(&|f| f.operation = AclOperation::Unknown), Err(AclError::UnknownEntryFilter));
        assert_eq!(with(&|f| f.permission = AclPermission::Unknown), Err(AclError::UnknownEntryFilter));
        assert_eq!(AclError::UnknownPatternFilter.to_string(), "Unknown patternFilter.");
    }
}
