//! The server side of Kafka's SASL mechanisms, as pure state machines: the connection loop
//! feeds each SaslAuthenticate token (or raw v0 frame) to [`SaslServer::step`] and sends
//! back what it returns. PLAIN and both SCRAMs check against the same stored SCRAM
//! credentials ([`CredentialStore`]), which the metadata image provides; [`check_password`]
//! is PLAIN's check for a name and password that arrive outside SASL (HTTP basic auth).
//! [`SaslClient`] is the client side, for the `sluice` client commands.

mod client;
mod credential;
mod error;
mod mechanism;
mod plain;
mod scram;
mod scram_messages;

pub use client::{SaslClient, SaslClientError, SaslClientStep};
pub use credential::{generate_salt, salted_password, ScramCredential};
pub use error::SaslError;
pub use mechanism::{Mechanism, ScramMechanism};
pub use plain::check_password;

/// Largest token a step accepts. PLAIN and SCRAM messages are a few hundred bytes; the cap
/// keeps a hostile client from making the server parse and hash megabytes (Kafka's own
/// pre-authentication frame limit is 512 KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Where the exchanges find users' SCRAM credentials.
pub trait CredentialStore {
    /// The credential of `user` for `mechanism`, if the user has one.
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// What a successful step asks the connection to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this token to the client and pass its answer to the next step.
    Challenge(Vec<u8>),
    /// The client is authenticated as `user` (principal `User:<user>`); send `reply`, the
    /// final token (empty for PLAIN, server-final for SCRAM).
    Complete {
        /// The authenticated user name.
        user: String,
        /// The final token for the client.
        reply: Vec<u8>,
    },
}

/// One authentication exchange on a connection, from the first client token to
/// [`SaslStep::Complete`] or an error; re-authentication starts a new one.
pub struct SaslServer {
    state: State,
}

enum State {
    Plain,
    ScramFirst(scram::AwaitingClientFirst),
    ScramFinal(scram::AwaitingClientFinal),
    /// Completed or failed: the exchange takes no more tokens.
    Finished,
}

impl SaslServer {
    /// A new exchange for `mechanism`; a SCRAM exchange draws its server nonce here.
    pub fn new(mechanism: Mechanism) -> Self {
        let state = match mechanism.scram() {
            None => State::Plain,
            Some(scram) => State::ScramFirst(scram::AwaitingClientFirst::new(scram)),
        };
        SaslServer { state }
    }

    /// A SCRAM exchange with a fixed server nonce, to reproduce published vectors.
    #[cfg(test)]
    fn with_server_nonce(mechanism: Mechanism, server_nonce: &str) -> Self {
        let scram = mechanism.scram().expect("a SCRAM mechanism");
        SaslServer {
            state: State::ScramFirst(scram::AwaitingClientFirst::with_server_nonce(scram, server_nonce.to_owned())),
        }
    }

    /// Takes the client's next token. After [`SaslStep::Complete`] or an error the exchange
    /// is over and every further step is an error.
    pub fn step(&mut self, token: &[u8], store: &dyn CredentialStore) -> Result<SaslStep, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        if token.len() > MAX_TOKEN_BYTES {
            return Err(SaslError::visible(format!(
                "SASL token of {} bytes is larger than the limit of {MAX_TOKEN_BYTES} bytes",
                token.len()
            )));
        }
        match state {
            State::Plain => {
                plain::authenticate(token, store).map(|user| SaslStep::Complete { user, reply: Vec::new() })
            }
            State::ScramFirst(exchange) => {
                let (next, server_first) = exchange.receive(token, store)?;
                self.state = State::ScramFinal(next);
                Ok(SaslStep::Challenge(server_first))
            }
            State::ScramFinal(exchange) => {
                exchange.receive(token).map(|(user, server_final)| SaslStep::Complete { user, reply: server_final })
            }
            State::Finished => Err(SaslError::visible("SASL authentication exchange has already finished")),
        }
    }
}

#[cfg(test)]
mod testing {
    use std::collections::HashMap;
    use std::sync::LazyLock;

    use super::{CredentialStore, ScramCredential, ScramMechanism};

    pub(super) type Users = HashMap<(String, ScramMechanism), ScramCredential>;

    impl CredentialStore for Users {
        fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
            self.get(&(user.to_owned(), mechanism)).cloned()
        }
    }

    /// Every test user's password.
    pub(super) const PASSWORD: &str = "pencil";

    /// `alice` with both SCRAM credentials, `sha256only` with SCRAM-SHA-256 only. Computed
    /// once: Hi's 4096 iterations are slow in a debug build.
    pub(super) fn users() -> Users {
        static USERS: LazyLock<Users> = LazyLock::new(|| {
            [
                ("alice", ScramMechanism::Sha256),
                ("alice", ScramMechanism::Sha512),
                ("sha256only", ScramMechanism::Sha256),
            ]
            .into_iter()
            .map(|(user, mechanism)| {
                let credential = ScramCredential::generate(mechanism, PASSWORD, ScramMechanism::MIN_ITERATIONS);
                ((user.to_owned(), mechanism), credential)
            })
            .collect()
        });
        USERS.clone()
    }

    pub(super) fn one_user(user: &str, mechanism: ScramMechanism, credential: ScramCredential) -> Users {
        [((user.to_owned(), mechanism), credential)].into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::testing::users;
    use super::*;

    #[test]
    fn every_step_after_the_end_is_an_error() {
        let mut server = SaslServer::new(Mechanism::Plain);
        assert!(matches!(server.step(b"\0alice\0pencil", &users()), Ok(SaslStep::Complete { .. })));
        let error = server.step(b"\0alice\0pencil", &users()).unwrap_err();
        assert_eq!(error.client_message, "SASL authentication exchange has already finished");

        let mut server = SaslServer::new(Mechanism::ScramSha256);
        assert!(server.step(b"n,,n=mallory,r=abc", &users()).is_err());
        assert!(server.step(b"n,,n=alice,r=abc", &users()).is_err());
    }

    #[test]
    fn oversized_tokens_are_refused_before_parsing() {
        for mechanism in Mechanism::ALL {
            let error = SaslServer::new(mechanism).step(&vec![b'a'; MAX_TOKEN_BYTES + 1], &users()).unwrap_err();
            assert_eq!(error.client_message, "SASL token of 65537 bytes is larger than the limit of 65536 bytes");
        }
    }

    proptest! {
        #[test]
        fn any_first_token_is_answered_without_panicking(token in proptest::collection::vec(any::<u8>(), 0..512)) {
            for mechanism in Mechanism::ALL {
                let _ = SaslServer::new(mechanism).step(&token, &users());
            }
        }

        #[test]
        fn any_second_token_is_answered_without_panicking(token in proptest::collection::vec(any::<u8>(), 0..512)) {
            let store = users();
            for mechanism in Mechanism::ALL {
                let mut server = SaslServer::new(mechanism);
                // PLAIN's exchange ends at its first token; an empty password ends it without Hi.
                let first: &[u8] = if mechanism == Mechanism::Plain { b"\0alice\0" } else { b"n,,n=alice,r=abc" };
                let _ = server.step(first, &store);
                let _ = server.step(&token, &store);
            }
        }

        /// Arbitrary bytes rarely parse, so also try tokens shaped like client-first...
        #[test]
        fn any_client_first_shaped_token_is_answered_without_panicking(
            header in "[nyp][,=](a=[a-z=23CD]{0,6})?,", user in "[a-z=23CD,]{0,10}", r in "[!-~]{0,10}",
            extra in "(,[a-z=]{0,12}){0,2}",
        ) {
            for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
                let _ = SaslServer::new(mechanism).step(format!("{header}n={user},r={r}{extra}").as_bytes(), &users());
            }
        }

        /// ...and like client-final.
        #[test]
        fn any_client_final_shaped_token_is_answered_without_panicking(
            c in "[A-Za-z0-9+/=]{0,8}", r in "[!-~]{0,40}", extra in "(,[a-z=]{0,4}){0,2}", p in "[A-Za-z0-9+/=]{0,90}",
        ) {
            let store = users();
            for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
                let mut server = SaslServer::new(mechanism);
                server.step(b"n,,n=alice,r=abc", &store).unwrap();
                let _ = server.step(format!("c={c},r={r}{extra},p={p}").as_bytes(), &store);
            }
        }
    }
}
