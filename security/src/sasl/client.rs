//! The client side of Kafka's SASL mechanisms, as a pure state machine for the `sluice`
//! tools: [`SaslClient::initial_response`] is the first SaslAuthenticate token, and each
//! answer of the broker goes to [`SaslClient::step`] until it says
//! [`SaslClientStep::Complete`].
//!
//! SCRAM (RFC 5802 §5, as librdkafka and Kafka's Java client speak it): client-first with a
//! fresh random nonce and no channel binding, client-final with the proof computed from
//! SaltedPassword, then a check of server-final's signature, so a client knows that the
//! broker holds the user's credential and not merely a copy of the exchange. PLAIN is one
//! token and an empty answer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::Rng;
use subtle::ConstantTimeEq;

use super::credential::client_key;
use super::{salted_password, Mechanism, ScramMechanism};

/// Characters of the client's nonce: 32 alphanumerics, ~190 random bits, as the server's.
const CLIENT_NONCE_CHARS: usize = 32;

/// Why a client-side step failed. The broker's own refusals (a wrong password) arrive as
/// SaslAuthenticate error codes before any step sees them; these are what the client finds
/// wrong with the broker's answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslClientError {
    /// server-first or server-final does not follow RFC 5802's grammar.
    #[error("malformed SCRAM {message} from the broker: {reason}")]
    Malformed {
        /// "server-first" or "server-final".
        message: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// server-first's nonce does not extend the one this client sent: the answer belongs to
    /// another exchange.
    #[error("the broker's SCRAM nonce does not start with this client's nonce")]
    NonceMismatch,
    /// server-first asks for an iteration count outside what Kafka allows; a huge one would
    /// make the client hash for minutes.
    #[error(
        "the broker asks for {0} SCRAM iterations, outside {min}..={max}",
        min = ScramMechanism::MIN_ITERATIONS,
        max = ScramMechanism::MAX_ITERATIONS
    )]
    Iterations(u32),
    /// server-final carries `e=`: the server refused the proof.
    #[error("the broker refused the SCRAM proof: {0}")]
    ServerError(String),
    /// server-final's signature is not the one the user's credential makes: the broker does
    /// not hold this user's credential (or something between is answering for it).
    #[error("the broker's SCRAM signature is wrong: it does not hold this user's credential")]
    BadServerSignature,
    /// A step after the exchange completed or failed.
    #[error("the SASL exchange has already finished")]
    Finished,
}

/// What to do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslClientStep {
    /// Send this token in the next SaslAuthenticate and pass its answer to the next step.
    Respond(Vec<u8>),
    /// Authenticated: the broker accepted the client and, for SCRAM, proved itself.
    Complete,
}

/// One client authentication exchange, from the initial response to
/// [`SaslClientStep::Complete`] or an error.
pub struct SaslClient {
    state: State,
}

enum State {
    /// PLAIN has sent its only token; any successful answer completes it.
    PlainSent,
    /// client-first sent.
    ScramFirstSent(ScramStart),
    /// client-final sent; server-final must carry this signature.
    ScramFinalSent {
        mechanism: ScramMechanism,
        server_signature: Vec<u8>,
    },
    Finished,
}

struct ScramStart {
    mechanism: ScramMechanism,
    password: String,
    client_nonce: String,
    /// `n=<user>,r=<nonce>`: the start of AuthMessage.
    client_first_bare: String,
}

impl SaslClient {
    /// An exchange as `user` with `password`; returns the exchange and its first token
    /// (PLAIN's whole message, or SCRAM's client-first with a fresh nonce).
    pub fn start(mechanism: Mechanism, user: &str, password: &str) -> (Self, Vec<u8>) {
        let nonce: String =
            rand::thread_rng().sample_iter(Alphanumeric).take(CLIENT_NONCE_CHARS).map(char::from).collect();
        Self::start_with_nonce(mechanism, user, password, nonce)
    }

    fn start_with_nonce(mechanism: Mechanism, user: &str, password: &str, client_nonce: String) -> (Self, Vec<u8>) {
        let Some(scram) = mechanism.scram() else {
            // RFC 4616: `[authzid] NUL authcid NUL passwd`, without an authzid as librdkafka.
            let token = format!("\0{user}\0{password}").into_bytes();
            return (SaslClient { state: State::PlainSent }, token);
        };
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(user));
        let token = format!("{GS2_HEADER}{client_first_bare}").into_bytes();
        let start = ScramStart { mechanism: scram, password: password.to_owned(), client_nonce, client_first_bare };
        (SaslClient { state: State::ScramFirstSent(start) }, token)
    }

    /// Takes the broker's answer to the last token sent (SaslAuthenticate's `auth_bytes`,
    /// after its error code said success). After `Complete` or an error, every further
    /// step is [`SaslClientError::Finished`].
    pub fn step(&mut self, answer: &[u8]) -> Result<SaslClientStep, SaslClientError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::PlainSent => Ok(SaslClientStep::Complete),
            State::ScramFirstSent(start) => {
                let (client_final, mechanism, server_signature) = start.client_final(answer)?;
                self.state = State::ScramFinalSent { mechanism, server_signature };
                Ok(SaslClientStep::Respond(client_final))
            }
            State::ScramFinalSent { mechanism, server_signature } => {
                check_server_final(mechanism, answer, &server_signature).map(|()| SaslClientStep::Complete)
            }
            State::Finished => Err(SaslClientError::Finished),
        }
    }
}

/// No channel binding and no authzid (Kafka supports neither), so client-final's `c=` is
/// always `biws`.
const GS2_HEADER: &str = "n,,";

impl ScramStart {
    /// Reads server-first; returns client-final and the signature server-final must carry.
    fn client_final(self, server_first: &[u8]) -> Result<(Vec<u8>, ScramMechanism, Vec<u8>), SaslClientError> {
        let malformed = |reason: &str| SaslClientError::Malformed { message: "server-first", reason: reason.into() };
        let server_first = std::str::from_utf8(server_first).map_err(|_| malformed("not valid UTF-8"))?;
        let (nonce, salt, iterations) = parse_server_first(server_first).map_err(|why| malformed(&why))?;
        // The server's part must be there too: an echo of our own nonce alone is no exchange.
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(SaslClientError::NonceMismatch);
        }
        if !(ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslClientError::Iterations(iterations));
        }
        let mechanism = self.mechanism;
        let salted = salted_password(mechanism, &self.password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(GS2_HEADER));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = client_key(mechanism, &salted);
        let client_signature = mechanism.hmac(&mechanism.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(key, signature)| key ^ signature).collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        let server_signature = mechanism.hmac(&server_key, auth_message.as_bytes());
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes();
        Ok((client_final, mechanism, server_signature))
    }
}

/// server-first-message: `r=<nonce>,s=<base64 salt>,i=<iterations>[,<ext>...]`; a leading
/// `m=` (a mandatory extension) is refused, as RFC 5802 asks of a client that knows none.
fn parse_server_first(message: &str) -> Result<(&str, Vec<u8>, u32), String> {
    if message.starts_with("m=") {
        return Err("mandatory extensions (m=) are not supported".to_owned());
    }
    let mut attributes = message.split(',');
    let mut next = |name: char| {
        let attribute = attributes.next().unwrap_or_default();
        match attribute.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(format!("expected a non-empty '{name}=' attribute")),
        }
    };
    let nonce = next('r')?;
    let salt = next('s')?;
    let iterations = next('i')?;
    if !nonce.bytes().all(|byte| (0x21..=0x7E).contains(&byte)) {
        return Err("the nonce must be printable ASCII".to_owned());
    }
    let salt = BASE64.decode(salt).map_err(|_| "'s=' is not valid base64".to_owned())?;
    let iterations = iterations.parse().map_err(|_| format!("'i={iterations}' is not an iteration count"))?;
    Ok((nonce, salt, iterations))
}

/// server-final-message: `v=<base64 signature>` or `e=<error>`; the signature is compared
/// in constant time, like every key comparison of the crate.
fn check_server_final(mechanism: ScramMechanism, message: &[u8], expected: &[u8]) -> Result<(), SaslClientError> {
    let malformed = |reason: &str| SaslClientError::Malformed { message: "server-final", reason: reason.into() };
    let message = std::str::from_utf8(message).map_err(|_| malformed("not valid UTF-8"))?;
    let first = message.split(',').next().unwrap_or_default();
    if let Some(error) = first.strip_prefix("e=") {
        return Err(SaslClientError::ServerError(error.to_owned()));
    }
    let signature = first.strip_prefix("v=").ok_or_else(|| malformed("expected 'v=' or 'e='"))?;
    let signature = BASE64.decode(signature).map_err(|_| malformed("'v=' is not valid base64"))?;
    if signature.len() != mechanism.hash_len() || !bool::from(signature.ct_eq(expected)) {
        return Err(SaslClientError::BadServerSignature);
    }
    Ok(())
}

/// RFC 5802's saslname: `,` travels as `=2C` and `=` as `=3D`.
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::testing::{one_user, users, Users, PASSWORD};
    use crate::sasl::{SaslServer, SaslStep, ScramCredential};

    /// Runs a whole exchange between a client and the crate's server; the server's user on
    /// success, else the first side's failure as text.
    fn exchange(mechanism: Mechanism, user: &str, password: &str, store: &Users) -> Result<String, String> {
        let (mut client, mut token) = SaslClient::start(mechanism, user, password);
        let mut server = SaslServer::new(mechanism);
        loop {
            let (answer, authenticated) = match server.step(&token, store).map_err(|e| e.client_message)? {
                SaslStep::Challenge(answer) => (answer, None),
                SaslStep::Complete { user, reply } => (reply, Some(user)),
            };
            match client.step(&answer).map_err(|e| e.to_string())? {
                SaslClientStep::Respond(next) => token = next,
                SaslClientStep::Complete => return authenticated.ok_or_else(|| "client done first".to_owned()),
            }
        }
    }

    #[test]
    fn scram_sha_256_and_512_exchanges_with_the_server_complete_on_both_sides() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            assert_eq!(exchange(mechanism, "alice", PASSWORD, &users()), Ok("alice".to_owned()), "{mechanism:?}");
        }
    }

    #[test]
    fn plain_exchange_with_the_server_completes() {
        assert_eq!(exchange(Mechanism::Plain, "alice", PASSWORD, &users()), Ok("alice".to_owned()));
        let (_, token) = SaslClient::start(Mechanism::Plain, "alice", PASSWORD);
        assert_eq!(token, b"\0alice\0pencil");
    }

    #[test]
    fn wrong_password_is_refused_by_the_server() {
        let fixed = "Authentication failed during authentication due to invalid credentials with SASL mechanism";
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let error = exchange(mechanism, "alice", "wrong", &users()).unwrap_err();
            assert_eq!(error, format!("{fixed} {}", mechanism.name()));
        }
        let error = exchange(Mechanism::Plain, "alice", "wrong", &users()).unwrap_err();
        assert_eq!(error, "Authentication failed: Invalid username or password");
    }

    #[test]
    fn names_with_commas_and_equals_signs_are_escaped_for_the_server() {
        let user = "a,b=c";
        let credential = ScramCredential::generate(ScramMechanism::Sha512, PASSWORD, ScramMechanism::MIN_ITERATIONS);
        let store = one_user(user, ScramMechanism::Sha512, credential);
        let (_, first) = SaslClient::start(Mechanism::ScramSha512, user, PASSWORD);
        assert!(first.starts_with(b"n,,n=a=2Cb=3Dc,r="), "{}", String::from_utf8_lossy(&first));
        assert_eq!(exchange(Mechanism::ScramSha512, user, PASSWORD, &store), Ok(user.to_owned()));
    }

    /// RFC 7677 §3 from the client's side, byte for byte.
    #[test]
    fn rfc_7677_scram_sha_256_vector() {
        let nonce = "rOprNGfwEbeRWgbNEkqO".to_owned();
        let (mut client, first) = SaslClient::start_with_nonce(Mechanism::ScramSha256, "user", "pencil", nonce);
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.step(server_first),
            Ok(SaslClientStep::Respond(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
                    .to_vec()
            ))
        );
        assert_eq!(client.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Ok(SaslClientStep::Complete));
        assert_eq!(client.step(b""), Err(SaslClientError::Finished));
    }

    /// The server's answers up to server-final, for tests that tamper with it.
    fn until_server_final(mechanism: Mechanism) -> (SaslClient, Vec<u8>) {
        let store = users();
        let (mut client, first) = SaslClient::start(mechanism, "alice", PASSWORD);
        let mut server = SaslServer::new(mechanism);
        let Ok(SaslStep::Challenge(server_first)) = server.step(&first, &store) else { panic!("server-first") };
        let Ok(SaslClientStep::Respond(client_final)) = client.step(&server_first) else { panic!("client-final") };
        let Ok(SaslStep::Complete { reply, .. }) = server.step(&client_final, &store) else { panic!("server-final") };
        (client, reply)
    }

    #[test]
    fn server_final_with_a_bad_signature_is_refused() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let (mut client, reply) = until_server_final(mechanism);
            let signature = BASE64.decode(&reply[2..]).unwrap();
            let mut tampered = signature.clone();
            tampered[0] ^= 1;
            let tampered = format!("v={}", BASE64.encode(tampered)).into_bytes();
            assert_eq!(client.step(&tampered), Err(SaslClientError::BadServerSignature), "{mechanism:?}");
            assert_eq!(client.step(&reply), Err(SaslClientError::Finished), "no second try");
            // A signature cut short fails the same way, without a panic on the lengths.
            let (mut client, _) = until_server_final(mechanism);
            let short = format!("v={}", BASE64.encode(&signature[..8])).into_bytes();
            assert_eq!(client.step(&short), Err(SaslClientError::BadServerSignature));
        }
    }

    #[test]
    fn server_final_with_an_error_or_garbage_is_refused() {
        let (mut client, _) = until_server_final(Mechanism::ScramSha512);
        assert_eq!(client.step(b"e=invalid-proof"), Err(SaslClientError::ServerError("invalid-proof".to_owned())));
        let (mut client, _) = until_server_final(Mechanism::ScramSha512);
        assert!(matches!(client.step(b"x=1"), Err(SaslClientError::Malformed { message: "server-final", .. })));
    }

    #[test]
    fn server_first_that_does_not_extend_the_client_nonce_is_refused() {
        let nonce = "clientnonce".to_owned();
        for server_first in ["r=othernonceSERVER,s=c2FsdA==,i=4096", "r=clientnonce,s=c2FsdA==,i=4096"] {
            let (mut client, _) =
                SaslClient::start_with_nonce(Mechanism::ScramSha256, "alice", PASSWORD, nonce.clone());
            assert_eq!(client.step(server_first.as_bytes()), Err(SaslClientError::NonceMismatch), "{server_first}");
        }
    }

    #[test]
    fn server_first_with_iterations_out_of_bounds_is_refused_before_hashing() {
        for iterations in [1, 4095, 16385, u32::MAX] {
            let (mut client, _) =
                SaslClient::start_with_nonce(Mechanism::ScramSha512, "alice", PASSWORD, "abc".to_owned());
            let server_first = format!("r=abcSERVER,s=c2FsdA==,i={iterations}");
            assert_eq!(client.step(server_first.as_bytes()), Err(SaslClientError::Iterations(iterations)));
        }
    }

    #[test]
    fn malformed_server_first_is_refused() {
        for server_first in [
            "",
            "m=ext,r=abcSERVER,s=c2FsdA==,i=4096",
            "r=abcSERVER,i=4096,s=c2FsdA==",
            "r=abcSERVER,s=c2FsdA==",
            "r=abcSERVER,s=!!,i=4096",
            "r=abcSERVER,s=c2FsdA==,i=many",
            "r=abc SERVER,s=c2FsdA==,i=4096",
            "r=,s=c2FsdA==,i=4096",
        ] {
            let (mut client, _) =
                SaslClient::start_with_nonce(Mechanism::ScramSha512, "alice", PASSWORD, "abc".to_owned());
            let result = client.step(server_first.as_bytes());
            assert!(matches!(result, Err(SaslClientError::Malformed { message: "server-first", .. })), "{result:?}");
        }
    }
}
