//! Users' SCRAM credentials and the ACLs, kept with the metadata: shard 0 changes them
//! (AlterUserScramCredentials, CreateAcls, DeleteAcls, the admin socket), stores the table
//! and pushes the new snapshot to every shard, which then authenticates from it and
//! rebuilds its own authorizer from its bindings, without asking anyone.

use serde::{Deserialize, Serialize};
use sluice_security::acl::AclBinding;
use sluice_security::sasl::{CredentialStore, ScramCredential, ScramMechanism};
use std::collections::{BTreeMap, BTreeSet};

/// A SCRAM credential as stored (the password never is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCredential {
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    iterations: u32,
}

/// An ACL binding as stored: Kafka's codes for the enums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredAcl {
    resource_type: i8,
    resource_name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
}

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
                    Some(mechanism) => {
                        let credential = ScramCredential {
                            salt: c.salt,
                            stored_key: c.stored_key,
                            server_key: c.server_key,
                            iterations: c.iterations,
                        };
                        state.credentials.entry(user.clone()).or_default().insert(mechanism, credential);
                    }
                    None => tracing::error!(user, mechanism, "stored credential of an unknown mechanism: skipped"),
                }
            }
        }
        for acl in stored.acls {
            match acl_from_stored(&acl) {
                Some(binding) => {
                    state.acls.insert(binding);
                }
                None => tracing::error!(?acl, "stored ACL with unknown codes: skipped"),
            }
        }
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
                    .map(|(mechanism, c)| {
                        let stored = StoredCredential {
                            salt: c.salt,
                            stored_key: c.stored_key,
                            server_key: c.server_key,
                            iterations: c.iterations,
                        };
                        (mechanism.name().to_string(), stored)
                    })
                    .collect();
                (user, credentials)
            })
            .collect();
        let acls = state.acls.iter().map(acl_to_stored).collect();
        StoredSecurity { users, acls }
    }
}

fn acl_to_stored(binding: &AclBinding) -> StoredAcl {
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
