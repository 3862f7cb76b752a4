//! Any bytes as the first and second SASL tokens of each mechanism, against a store that
//! holds one user: every step must answer or refuse, never panic. A second exchange opens
//! with a valid client-first, so the second token always reaches SCRAM's client-final parser.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sluice_security::sasl::{CredentialStore, Mechanism, SaslServer, ScramCredential, ScramMechanism};

/// `alice` (password `pencil`) with both SCRAM credentials.
struct OneUser {
    sha256: ScramCredential,
    sha512: ScramCredential,
}

impl CredentialStore for OneUser {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let credential = match mechanism {
            ScramMechanism::Sha256 => &self.sha256,
            ScramMechanism::Sha512 => &self.sha512,
        };
        (user == "alice").then(|| credential.clone())
    }
}

static STORE: LazyLock<OneUser> = LazyLock::new(|| {
    let credential = |mechanism| ScramCredential::generate(mechanism, "pencil", ScramMechanism::MIN_ITERATIONS);
    OneUser { sha256: credential(ScramMechanism::Sha256), sha512: credential(ScramMechanism::Sha512) }
});

fuzz_target!(|input: (u8, &[u8], &[u8])| {
    let (selector, first, second) = input;
    let mechanism = Mechanism::ALL[usize::from(selector) % Mechanism::ALL.len()];
    let store: &OneUser = &STORE;

    let mut server = SaslServer::new(mechanism);
    let _ = server.step(first, store);
    let _ = server.step(second, store);

    let opening: &[u8] = if mechanism == Mechanism::Plain { b"\0alice\0" } else { b"n,,n=alice,r=abc" };
    let mut server = SaslServer::new(mechanism);
    let _ = server.step(opening, store);
    let _ = server.step(second, store);
});
