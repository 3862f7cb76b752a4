//! The server side of a SCRAM exchange (RFC 5802 §5): client-first → server-first,
//! client-final → server-final. Checks the proof against the stored credential only, so the
//! broker never sees the password.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::Rng;
use subtle::ConstantTimeEq;

use super::scram_messages::{parse_client_final, parse_client_first};
use super::{CredentialStore, SaslError, ScramMechanism};

/// Characters of the server's nonce: 32 alphanumerics are ~190 random bits (Kafka: 130), so
/// no two exchanges share one and a client-final cannot be replayed into another exchange.
const SERVER_NONCE_CHARS: usize = 32;

/// An exchange waiting for client-first.
pub(super) struct AwaitingClientFirst {
    mechanism: ScramMechanism,
    server_nonce: String,
}

/// An exchange that has sent server-first and waits for client-final.
pub(super) struct AwaitingClientFinal {
    mechanism: ScramMechanism,
    user: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    gs2_header: String,
    /// This exchange's server nonce, which client-final's nonce must end with.
    server_nonce: String,
    /// `client-first-bare + "," + server-first + ","`: AuthMessage up to client-final.
    auth_message_start: String,
}

impl AwaitingClientFirst {
    pub(super) fn new(mechanism: ScramMechanism) -> Self {
        let server_nonce =
            rand::thread_rng().sample_iter(Alphanumeric).take(SERVER_NONCE_CHARS).map(char::from).collect();
        Self::with_server_nonce(mechanism, server_nonce)
    }

    pub(super) fn with_server_nonce(mechanism: ScramMechanism, server_nonce: String) -> Self {
        AwaitingClientFirst { mechanism, server_nonce }
    }

    /// Reads client-first and answers server-first. An unknown user fails here, as in Kafka.
    pub(super) fn receive(
        self,
        token: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<(AwaitingClientFinal, Vec<u8>), SaslError> {
        let malformed = |why: &str| SaslError::visible(format!("Invalid SCRAM client first message: {why}"));
        let text = std::str::from_utf8(token).map_err(|_| malformed("not valid UTF-8"))?;
        let first = parse_client_first(text).map_err(|why| malformed(&why))?;
        if first.token_auth {
            return Err(SaslError::visible("Delegation token authentication is not supported"));
        }
        if first.authzid.as_ref().is_some_and(|authzid| *authzid != first.user) {
            return Err(SaslError::visible(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        let mechanism = self.mechanism;
        let invalid = |detail: String| SaslError::scram_invalid_credentials(mechanism, detail);
        let credential = store.scram_credential(&first.user, mechanism).ok_or_else(|| {
            invalid(format!("{} login of user '{}', who has no such credential", mechanism.name(), first.user))
        })?;
        if !credential.iterations_in_bounds() {
            return Err(invalid(format!(
                "the {} credential of user '{}' has {} iterations, outside {}..={}",
                mechanism.name(),
                first.user,
                credential.iterations,
                ScramMechanism::MIN_ITERATIONS,
                ScramMechanism::MAX_ITERATIONS,
            )));
        }
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = format!("r={nonce},s={},i={}", BASE64.encode(&credential.salt), credential.iterations);
        let next = AwaitingClientFinal {
            mechanism,
            auth_message_start: format!("{},{server_first},", first.bare),
            gs2_header: first.gs2_header.to_owned(),
            user: first.user,
            stored_key: credential.stored_key,
            server_key: credential.server_key,
            server_nonce: self.server_nonce,
        };
        Ok((next, server_first.into_bytes()))
    }
}

impl AwaitingClientFinal {
    /// Checks client-final's proof; on success returns the user and server-final.
    pub(super) fn receive(self, token: &[u8]) -> Result<(String, Vec<u8>), SaslError> {
        let mechanism = self.mechanism;
        let malformed = |why: &str| SaslError::visible(format!("Invalid SCRAM client final message: {why}"));
        let invalid = |detail: String| SaslError::scram_invalid_credentials(mechanism, detail);
        let text = std::str::from_utf8(token).map_err(|_| malformed("not valid UTF-8"))?;
        let last = parse_client_final(text).map_err(|why| malformed(&why))?;
        if last.proof.len() != mechanism.hash_len() {
            return Err(malformed(&format!(
                "the proof has {} bytes, {} needs {}",
                last.proof.len(),
                mechanism.name(),
                mechanism.hash_len()
            )));
        }
        // Kafka never reads `c=` (a wrong one fails the proof); checking it here makes the log
        // say what was wrong.
        if last.channel_binding != self.gs2_header.as_bytes() {
            return Err(invalid(format!("user '{}' sent a channel binding other than its GS2 header", self.user)));
        }
        // As Kafka: the nonce must end with this exchange's (fresh, so a replayed client-final
        // fails). RFC 5802 wants client nonce + server nonce exactly, but librdkafka before
        // 2.x (Debian's kcat: 2.0.2) sends its nonce followed by the server's whole `r=`.
        if !last.nonce.ends_with(&self.server_nonce) {
            // Nonces are public once sent: the log may show both.
            return Err(invalid(format!(
                "user '{}' sent the nonce {:?}, which does not end with this exchange's {:?}",
                self.user, last.nonce, self.server_nonce
            )));
        }
        let auth_message = self.auth_message_start + last.without_proof;
        let client_signature = mechanism.hmac(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> =
            last.proof.iter().zip(&client_signature).map(|(proof, signature)| proof ^ signature).collect();
        if !bool::from(mechanism.hash(&client_key).ct_eq(&self.stored_key)) {
            return Err(invalid(format!("user '{}' sent a wrong proof (wrong password)", self.user)));
        }
        let server_signature = mechanism.hmac(&self.server_key, auth_message.as_bytes());
        Ok((self.user, format!("v={}", BASE64.encode(server_signature)).into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::credential::client_key;
    use crate::sasl::testing::{one_user, users, PASSWORD};
    use crate::sasl::{salted_password, Mechanism, SaslServer, SaslStep, ScramCredential};

    /// RFC 7677 §3, byte for byte.
    #[test]
    fn rfc_7677_scram_sha_256_vector() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let store = one_user(
            "user",
            ScramMechanism::Sha256,
            ScramCredential::from_password(ScramMechanism::Sha256, "pencil", salt, 4096),
        );
        let mut server = SaslServer::with_server_nonce(Mechanism::ScramSha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        assert_eq!(
            server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store),
            Ok(SaslStep::Challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
            ))
        );
        assert_eq!(
            server.step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &store
            ),
            Ok(SaslStep::Complete {
                user: "user".to_owned(),
                reply: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            })
        );
    }

    /// RFC 7677's exchange with SHA-512; the proof and signature were computed independently
    /// with Python's hashlib and hmac modules.
    #[test]
    fn scram_sha_512_vector_from_an_independent_implementation() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let store = one_user(
            "user",
            ScramMechanism::Sha512,
            ScramCredential::from_password(ScramMechanism::Sha512, "pencil", salt, 4096),
        );
        let mut server = SaslServer::with_server_nonce(Mechanism::ScramSha512, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store).unwrap();
        assert_eq!(
            server.step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==",
                &store
            ),
            Ok(SaslStep::Complete {
                user: "user".to_owned(),
                reply: b"v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw=="
                    .to_vec()
            })
        );
    }

    /// A SCRAM client, enough to drive the server: computes the proof from the password.
    struct TestClient {
        mechanism: ScramMechanism,
        password: &'static str,
        gs2_header: &'static str,
        client_first_bare: String,
    }

    impl TestClient {
        fn new(mechanism: ScramMechanism, user: &str, password: &'static str) -> Self {
            TestClient { mechanism, password, gs2_header: "n,,", client_first_bare: format!("n={user},r=clientnonce") }
        }

        fn client_first(&self) -> Vec<u8> {
            format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
        }

        /// client-final for `server_first`, with the channel binding and nonce given.
        fn client_final_with(&self, server_first: &[u8], channel_binding: &str, nonce: Option<&str>) -> Vec<u8> {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut attributes = server_first.split(',').map(|attribute| &attribute[2..]);
            let (server_nonce, salt, iterations) =
                (attributes.next().unwrap(), attributes.next().unwrap(), attributes.next().unwrap());
            let salt = BASE64.decode(salt).unwrap();
            let salted = salted_password(self.mechanism, self.password, &salt, iterations.parse().unwrap());
            let without_proof = format!("c={},r={}", BASE64.encode(channel_binding), nonce.unwrap_or(server_nonce));
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let client_key = client_key(self.mechanism, &salted);
            let signature = self.mechanism.hmac(&self.mechanism.hash(&client_key), auth_message.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(key, signature)| key ^ signature).collect();
            format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()
        }

        fn client_final(&self, server_first: &[u8]) -> Vec<u8> {
            self.client_final_with(server_first, self.gs2_header, None)
        }
    }

    const SHA512: Mechanism = Mechanism::ScramSha512;

    const FIXED_TEXT: &str =
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";

    #[test]
    fn scram_sha_512_exchange_succeeds_and_signs_server_final() {
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        let client_final = client.client_final(&server_first);
        let Ok(SaslStep::Complete { user, reply }) = server.step(&client_final, &store) else { panic!() };
        assert_eq!(user, "alice");
        // The client's check of server-final: ServerSignature from its own SaltedPassword.
        let credential = store.scram_credential("alice", ScramMechanism::Sha512).unwrap();
        let client_final = std::str::from_utf8(&client_final).unwrap();
        let auth_message = format!(
            "{},{},{}",
            client.client_first_bare,
            std::str::from_utf8(&server_first).unwrap(),
            client_final.rsplit_once(',').unwrap().0
        );
        let signature = ScramMechanism::Sha512.hmac(&credential.server_key, auth_message.as_bytes());
        assert_eq!(reply, format!("v={}", BASE64.encode(signature)).into_bytes());
    }

    #[test]
    fn scram_wrong_password_fails_with_the_fixed_text() {
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", "wrong");
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        let error = server.step(&client.client_final(&server_first), &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
        assert!(error.detail.contains("wrong proof"), "{}", error.detail);
    }

    #[test]
    fn scram_unknown_user_fails_at_client_first_with_the_fixed_text() {
        for user in ["mallory", "sha256only"] {
            let client = TestClient::new(ScramMechanism::Sha512, user, PASSWORD);
            let error = SaslServer::new(SHA512).step(&client.client_first(), &users()).unwrap_err();
            assert_eq!(error.client_message, FIXED_TEXT);
        }
    }

    #[test]
    fn scram_credential_with_too_few_iterations_is_not_used() {
        let credential = ScramCredential::from_password(ScramMechanism::Sha512, PASSWORD, b"salt".to_vec(), 4095);
        let store = one_user("weak", ScramMechanism::Sha512, credential);
        let client = TestClient::new(ScramMechanism::Sha512, "weak", PASSWORD);
        let error = SaslServer::new(SHA512).step(&client.client_first(), &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
        assert!(error.detail.contains("4095 iterations"), "{}", error.detail);
    }

    #[test]
    fn scram_tampered_nonce_fails() {
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        // A proof that is right for the tampered nonce: only the nonce check can refuse it.
        let client_final = client.client_final_with(&server_first, "n,,", Some("clientnonceXXXX"));
        let error = server.step(&client_final, &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
        assert!(error.detail.contains("nonce"), "{}", error.detail);
        // The server nonce cut short fails too.
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        let echoed = std::str::from_utf8(&server_first).unwrap().split(',').next().unwrap().trim_start_matches("r=");
        let cut = &echoed[..echoed.len() - 1];
        let client_final = client.client_final_with(&server_first, "n,,", Some(cut));
        let error = server.step(&client_final, &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
        assert!(error.detail.contains("nonce"), "{}", error.detail);
    }

    #[test]
    fn scram_accepts_old_librdkafkas_nonce_as_kafka_does() {
        // librdkafka 2.0.2 echoes its own nonce followed by the server's whole `r=` value.
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        let echoed = std::str::from_utf8(&server_first).unwrap().split(',').next().unwrap().trim_start_matches("r=");
        let doubled = format!("clientnonce{echoed}");
        let client_final = client.client_final_with(&server_first, "n,,", Some(&doubled));
        assert!(matches!(server.step(&client_final, &store), Ok(SaslStep::Complete { .. })));
    }

    #[test]
    fn scram_wrong_channel_binding_fails() {
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        let client_final = client.client_final_with(&server_first, "y,,", None);
        let error = server.step(&client_final, &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
        assert!(error.detail.contains("channel binding"), "{}", error.detail);
    }

    #[test]
    fn scram_authzid_header_is_the_channel_binding() {
        let store = users();
        let mut client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        client.gs2_header = "n,a=alice,";
        let mut server = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &store) else { panic!() };
        assert!(matches!(server.step(&client.client_final(&server_first), &store), Ok(SaslStep::Complete { .. })));
    }

    #[test]
    fn scram_authzid_other_than_the_user_fails() {
        let mut client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        client.gs2_header = "n,a=bob,";
        let error = SaslServer::new(SHA512).step(&client.client_first(), &users()).unwrap_err();
        assert_eq!(
            error.client_message,
            "Authentication failed: Client requested an authorization id that is different from username"
        );
    }

    #[test]
    fn scram_tokenauth_extension_is_refused() {
        let error = SaslServer::new(SHA512).step(b"n,,n=alice,r=abc,tokenauth=true", &users()).unwrap_err();
        assert_eq!(error.client_message, "Delegation token authentication is not supported");
    }

    #[test]
    fn scram_malformed_messages_are_described_to_the_client() {
        let error = SaslServer::new(SHA512).step(b"y,,n=alice,r=abc", &users()).unwrap_err();
        assert_eq!(
            error.client_message,
            "Invalid SCRAM client first message: channel binding is not supported, the GS2 flag must be 'n'"
        );
        let mut server = SaslServer::new(SHA512);
        server.step(b"n,,n=alice,r=abc", &users()).unwrap();
        let error = server.step(b"c=biws,r=abc,p=AAAA", &users()).unwrap_err();
        assert_eq!(
            error.client_message,
            "Invalid SCRAM client final message: the proof has 3 bytes, SCRAM-SHA-512 needs 64"
        );
    }

    #[test]
    fn scram_client_final_replayed_into_a_new_exchange_fails() {
        let store = users();
        let client = TestClient::new(ScramMechanism::Sha512, "alice", PASSWORD);
        let mut first = SaslServer::new(SHA512);
        let Ok(SaslStep::Challenge(server_first)) = first.step(&client.client_first(), &store) else { panic!() };
        let client_final = client.client_final(&server_first);
        assert!(matches!(first.step(&client_final, &store), Ok(SaslStep::Complete { .. })));

        let mut second = SaslServer::new(SHA512);
        second.step(&client.client_first(), &store).unwrap();
        let error = second.step(&client_final, &store).unwrap_err();
        assert_eq!(error.client_message, FIXED_TEXT);
    }

    #[test]
    fn scram_sha_256_exchange_uses_the_sha_256_credential() {
        let client = TestClient::new(ScramMechanism::Sha256, "sha256only", PASSWORD);
        let mut server = SaslServer::new(Mechanism::ScramSha256);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&client.client_first(), &users()) else { panic!() };
        assert!(matches!(server.step(&client.client_final(&server_first), &users()), Ok(SaslStep::Complete { .. })));
    }
}
