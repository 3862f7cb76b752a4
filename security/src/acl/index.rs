//! Where the authorizer looks up the entries that apply to a resource. Every Produce and
//! Fetch asks, so a lookup must not scan the bindings: per resource type, LITERAL names
//! (the wildcard among them) sit in a hash map, and PREFIXED names in another, probed once
//! per distinct prefix length. A cluster has few distinct prefix lengths (naming schemes
//! like `team-` or `app.env.`), so a decision costs a few hash lookups however many ACLs
//! there are.
//!
//! The index is derived: `Authorizer` keeps the set of bindings as the truth and
//! applies every change to both.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{AccessControlEntry, AclBinding, PatternType, ResourceType, WILDCARD};

/// The entries of each indexed pattern, by resource type. No map holds an empty value, so
/// two indexes of the same bindings compare equal however they were built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct AclIndex {
    by_type: HashMap<ResourceType, TypeIndex>,
}

/// The patterns of one resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct TypeIndex {
    /// LITERAL names, [`WILDCARD`] included.
    pub(super) literal: HashMap<String, BTreeSet<AccessControlEntry>>,
    /// PREFIXED names.
    pub(super) prefixed: HashMap<String, BTreeSet<AccessControlEntry>>,
    /// For each length in bytes of a `prefixed` name, how many names have it: the lengths
    /// a lookup probes.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl AclIndex {
    /// The index of `bindings`, built from scratch.
    #[cfg(test)]
    pub(super) fn of<'a>(bindings: impl IntoIterator<Item = &'a AclBinding>) -> Self {
        let mut index = AclIndex::default();
        for binding in bindings {
            index.insert(binding);
        }
        index
    }

    /// Adds a binding that was not in the index. Bindings whose pattern type is not
    /// LITERAL or PREFIXED are left out: no resource name can match them.
    pub(super) fn insert(&mut self, binding: &AclBinding) {
        let pattern = &binding.pattern;
        let prefixed = match pattern.pattern_type {
            PatternType::Literal => false,
            PatternType::Prefixed => true,
            PatternType::Unknown | PatternType::Any | PatternType::Match => return,
        };
        let of_type = self.by_type.entry(pattern.resource_type).or_default();
        let names = if prefixed {
            if !of_type.prefixed.contains_key(&pattern.name) {
                *of_type.prefix_lengths.entry(pattern.name.len()).or_default() += 1;
            }
            &mut of_type.prefixed
        } else {
            &mut of_type.literal
        };
        names.entry(pattern.name.clone()).or_default().insert(binding.entry.clone());
    }

    /// Takes out a binding that was in the index.
    pub(super) fn remove(&mut self, binding: &AclBinding) {
        let pattern = &binding.pattern;
        let Some(of_type) = self.by_type.get_mut(&pattern.resource_type) else {
            return;
        };
        let names = match pattern.pattern_type {
            PatternType::Literal => &mut of_type.literal,
            PatternType::Prefixed => &mut of_type.prefixed,
            PatternType::Unknown | PatternType::Any | PatternType::Match => return,
        };
        let Some(entries) = names.get_mut(&pattern.name) else {
            return;
        };
        entries.remove(&binding.entry);
        if entries.is_empty() {
            names.remove(&pattern.name);
            if pattern.pattern_type == PatternType::Prefixed {
                let length = pattern.name.len();
                if let Some(count) = of_type.prefix_lengths.get_mut(&length) {
                    *count -= 1;
                    if *count == 0 {
                        of_type.prefix_lengths.remove(&length);
                    }
                }
            }
        }
        self.prune(pattern.resource_type);
    }

    fn prune(&mut self, resource_type: ResourceType) {
        if self
            .by_type
            .get(&resource_type)
            .is_some_and(|of_type| of_type.literal.is_empty() && of_type.prefixed.is_empty())
        {
            self.by_type.remove(&resource_type);
        }
    }

    /// The patterns of one resource type, if it has any.
    pub(super) fn of_type(&self, resource_type: ResourceType) -> Option<&TypeIndex> {
        self.by_type.get(&resource_type)
    }

    /// Every entry that applies to the resource `name` of `resource_type`, whoever it is
    /// for: the LITERAL name, the LITERAL wildcard and each PREFIXED prefix of the name.
    pub(super) fn applicable<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AccessControlEntry> + 'a {
        self.of_type(resource_type).into_iter().flat_map(move |of_type| {
            let exact = of_type.literal.get(name);
            let wildcard = if name == WILDCARD { None } else { of_type.literal.get(WILDCARD) };
            exact.into_iter().chain(wildcard).chain(of_type.prefixes_of(name)).flatten()
        })
    }
}

impl TypeIndex {
    /// The entries of every PREFIXED pattern that is a prefix of `name` (`name` itself
    /// included). A length that falls inside a character is no prefix of a valid name.
    pub(super) fn prefixes_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a BTreeSet<AccessControlEntry>> + 'a {
        self.prefix_lengths
            .keys()
            .take_while(move |&&length| length <= name.len())
            .filter_map(move |&length| name.get(..length))
            .filter_map(move |prefix| self.prefixed.get(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AclOperation, AclPermission, ResourcePattern};
    use super::*;

    fn binding(name: &str, pattern_type: PatternType, principal: &str) -> AclBinding {
        AclBinding::new(
            ResourcePattern::new(ResourceType::Topic, name, pattern_type),
            AccessControlEntry::new(principal, "*", AclOperation::Read, AclPermission::Allow),
        )
    }

    fn principals<'a>(index: &'a AclIndex, name: &'a str) -> Vec<&'a str> {
        let mut found: Vec<_> = index.applicable(ResourceType::Topic, name).map(|e| e.principal.as_str()).collect();
        found.sort();
        found
    }

    #[test]
    fn lookup_finds_literal_wildcard_and_every_prefix() {
        let index = AclIndex::of(&[
            binding("foobar", PatternType::Literal, "User:literal"),
            binding("foo", PatternType::Literal, "User:shorter-literal"),
            binding("*", PatternType::Literal, "User:wildcard"),
            binding("f", PatternType::Prefixed, "User:f"),
            binding("foo", PatternType::Prefixed, "User:foo"),
            binding("foobar", PatternType::Prefixed, "User:foobar"),
            binding("foobarbaz", PatternType::Prefixed, "User:longer"),
            binding("fa", PatternType::Prefixed, "User:fa"),
            binding("*", PatternType::Prefixed, "User:star-prefix"),
        ]);
        assert_eq!(
            principals(&index, "foobar"),
            ["User:f", "User:foo", "User:foobar", "User:literal", "User:wildcard"]
        );
        assert_eq!(principals(&index, "*"), ["User:star-prefix", "User:wildcard"]);
        assert_eq!(principals(&index, ""), ["User:wildcard"]);
        assert!(index.applicable(ResourceType::Group, "foobar").next().is_none());
    }

    #[test]
    fn a_prefix_length_inside_a_character_is_skipped() {
        let index = AclIndex::of(&[
            binding("é", PatternType::Prefixed, "User:e"),
            binding("a", PatternType::Prefixed, "User:a"),
        ]);
        // "é" is two bytes: probing length 2 of "aé" would cut it in half.
        assert_eq!(principals(&index, "aé"), ["User:a"]);
        assert_eq!(principals(&index, "éa"), ["User:e"]);
    }

    #[test]
    fn removal_restores_the_index_of_the_rest() {
        let all = [
            binding("foo", PatternType::Prefixed, "User:a"),
            binding("foo", PatternType::Prefixed, "User:b"),
            binding("bar", PatternType::Prefixed, "User:a"),
            binding("foo", PatternType::Literal, "User:a"),
        ];
        let mut index = AclIndex::of(&all);
        index.remove(&all[0]);
        assert_eq!(index, AclIndex::of(&all[1..]));
        index.remove(&all[1]);
        assert_eq!(index, AclIndex::of(&all[2..]));
        index.remove(&all[2]);
        index.remove(&all[3]);
        assert_eq!(index, AclIndex::default());
    }

    #[test]
    fn unmatchable_pattern_types_are_not_indexed() {
        let mut index = AclIndex::default();
        let odd = binding("foo", PatternType::Match, "User:a");
        index.insert(&odd);
        assert_eq!(index, AclIndex::default());
        index.remove(&odd);
        assert_eq!(index, AclIndex::default());
    }
}
