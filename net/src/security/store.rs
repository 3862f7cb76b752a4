//! Users' SCRAM credentials and the ACLs, kept with the metadata: shard 0 changes them
//! (AlterUserScramCredentials, CreateAcls, DeleteAcls, the admin socket), stores the table
//! and pushes the new snapshot to every shard, which then authenticates from it and
//! rebuilds its own authorizer from its bindings, without asking anyone. In a cluster the
//! controller quorum keeps them instead (records in its log, a part of its image), and
//! each image's part becomes a [`SecurityState`] ([`SecurityState::from_image`]).

use serde::{Deserialize, Serialize};
use sluice_replication::metadata::{AclBindingData, ScramCredentialData, SecurityImage};
use sluice_security::acl::AclBinding;
use sluice_security::sasl::{CredentialStore, ScramCredential, ScramMechanism};
use std::collections::{BTreeMap, BTreeSet};

/// A SCRAM credential as stored (the password never is): the metadata log's shape, so
/// the single-node table and a cluster's log hold the same fields.
type StoredCredential = ScramCredentialData;

/// An ACL binding as stored: Kafka's codes for the enums (the metadata log's shape too).
type StoredAcl = AclBindingData;

/// What is stored of the security state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct StoredSecurity {
    /// user → mechanism name → credential.
    #[serde(default)]
    users: BTreeMap<String, BTreeMap<String, StoredCredential>>,
    #[serde(default)]
    acls: Vec<StoredAcl>,
}

/// The security state of the broker: credentials by user and mechanism, and the ACL
/// bindings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSecurity", into = "StoredSecurity")]
pub struct SecurityState {
    credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclBinding>,
}

impl From<StoredSecurity> for SecurityState {
    fn from(stored: StoredSecurity) -> Self {
        let mut state = SecurityState::default();
        for (user, credentials) in stored.users {
            for (mechanism, c) in credentials {
                match ScramMechanism::from_name(&mechanism) {
                    Some(mechanism) => state.set_credential(&user, mechanism, credential_from_stored(c)),
                    None => tracing::error!(user, mechanism, "stored credential of an unknown mechanism: skipped"),
                }
            }
        }
        state.add_stored_acls(&stored.acls);
        state
    }
}

impl From<SecurityState> for StoredSecurity {
    fn from(state: SecurityState) -> Self {
        let users = state
            .credentials
            .into_iter()
            .map(|(user, credentials)| {
                let credentials = credentials
                    .into_iter()
                    .map(|(mechanism, c)| (mechanism.name().to_string(), credential_to_stored(c)))
                    .collect();
                (user, credentials)
            })
            .collect();
        let acls = state.acls.iter().map(acl_to_stored).collect();
        StoredSecurity { users, acls }
    }
}

/// The credential in the stored (and logged) shape.
pub(crate) fn credential_to_stored(credential: ScramCredential) -> ScramCredentialData {
    let ScramCredential { salt, stored_key, server_key, iterations } = credential;
    ScramCredentialData { salt, stored_key, server_key, iterations }
}

fn credential_from_stored(stored: StoredCredential) -> ScramCredential {
    let ScramCredentialData { salt, stored_key, server_key, iterations } = stored;
    ScramCredential { salt, stored_key, server_key, iterations }
}

/// The binding in the stored (and logged) shape.
pub(crate) fn acl_to_stored(binding: &AclBinding) -> AclBindingData {
    StoredAcl {
        resource_type: binding.pattern.resource_type.code(),
        resource_name: binding.pattern.name.clone(),
        pattern_type: binding.pattern.pattern_type.code(),
        principal: binding.entry.principal.clone(),
        host: binding.entry.host.clone(),
        operation: binding.entry.operation.code(),
        permission: binding.entry.permission.code(),
    }
}

/// The binding, if it is one that CreateAcls accepts (a stored table is ours, but may come
/// from a newer version that knows more codes).
fn acl_from_stored(acl: &StoredAcl) -> Option<AclBinding> {
    use sluice_security::acl::{
        AccessControlEntry, AclOperation, AclPermission, PatternType, ResourcePattern, ResourceType,
    };
    let binding = AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(acl.resource_type),
            name: acl.resource_name.clone(),
            pattern_type: PatternType::from_code(acl.pattern_type),
        },
        entry: AccessControlEntry {
            principal: acl.principal.clone(),
            host: acl.host.clone(),
            operation: AclOperation::from_code(acl.operation),
            permission: AclPermission::from_code(acl.permission),
        },
    };
    binding.validate_new().is_ok().then_some(binding)
}

impl SecurityState {
    /// The state a cluster's metadata image holds. Credentials of a mechanism and bindings
    /// with codes this version does not know (a newer version's) are skipped: the log
    /// must replay whatever it holds.
    pub fn from_image(image: &SecurityImage) -> SecurityState {
        let mut state = SecurityState::default();
        for ((user, code), credential) in &image.credentials {
            match ScramMechanism::from_code(*code) {
                Some(mechanism) => state.set_credential(user, mechanism, credential_from_stored(credential.clone())),
                None => tracing::error!(user, mechanism = code, "credential of an unknown mechanism: skipped"),
            }
        }
        state.add_stored_acls(&image.acls);
        state
    }

    fn add_stored_acls<'a>(&mut self, acls: impl IntoIterator<Item = &'a StoredAcl>) {
        for acl in acls {
            match acl_from_stored(acl) {
                Some(binding) => {
                    self.acls.insert(binding);
                }
                None => tracing::error!(?acl, "stored ACL with unknown codes: skipped"),
            }
        }
    }

    /// The users with credentials, and their mechanisms with iteration counts.
    pub fn users(&self) -> impl Iterator<Item = (&str, Vec<(ScramMechanism, u32)>)> {
        self.credentials
            .iter()
            .map(|(user, credentials)| (user.as_str(), credentials.iter().map(|(m, c)| (*m, c.iterations)).collect()))
    }

    /// Whether `user` has a credential for `mechanism`.
    pub fn has_credential(&self, user: &str, mechanism: ScramMechanism) -> bool {
        self.credentials.get(user).is_some_and(|c| c.contains_key(&mechanism))
    }

    /// Sets (creates or replaces) a credential.
    pub fn set_credential(&mut self, user: &str, mechanism: ScramMechanism, credential: ScramCredential) {
        self.credentials.entry(user.to_string()).or_default().insert(mechanism, credential);
    }

    /// Removes a credential; false if there was none.
    pub fn remove_credential(&mut self, user: &str, mechanism: ScramMechanism) -> bool {
        let Some(credentials) = self.credentials.get_mut(user) else { return false };
        let removed = credentials.remove(&mechanism).is_some();
        if credentials.is_empty() {
            self.credentials.remove(user);
        }
        removed
    }

    /// The ACL bindings.
    pub fn acls(&self) -> &BTreeSet<AclBinding> {
        &self.acls
    }

    /// The ACL bindings, to change.
    pub fn acls_mut(&mut self) -> &mut BTreeSet<AclBinding> {
        &mut self.acls
    }
}

impl CredentialStore for SecurityState {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.credentials.get(user)?.get(&mechanism).cloned()
    }
}
