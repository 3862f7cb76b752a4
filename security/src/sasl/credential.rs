//! SCRAM's arithmetic (RFC 5802 §3) and the credential Kafka stores per user and mechanism:
//! `salt`, `StoredKey`, `ServerKey` and the iteration count — never the password, so a
//! leaked metadata log does not give away logins (a proof still needs the ClientKey).

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::ScramMechanism;

/// Bytes of salt that [`ScramCredential::generate`] draws: well above RFC 5802's advice,
/// like librdkafka's 64 and Kafka's own 32-byte random string.
const GENERATED_SALT_BYTES: usize = 32;

/// What the broker keeps to check a user's SCRAM logins for one mechanism (Kafka's
/// `ScramCredential` and `UserScramCredentialRecord`).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt of Hi, sent to the client in server-first.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`: checks a client's proof without being able to make one.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs server-final so the client knows the
    /// server holds the credential.
    pub server_key: Vec<u8>,
    /// Iterations of Hi; the server refuses a credential outside
    /// [`ScramMechanism::MIN_ITERATIONS`]`..=`[`ScramMechanism::MAX_ITERATIONS`].
    pub iterations: u32,
}

impl ScramCredential {
    /// The credential for a SaltedPassword the client computed itself, which is what
    /// AlterUserScramCredentials carries (the password never reaches the broker).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> Self {
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key(mechanism, salted_password)),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential for `password` with the given salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = salted_password(mechanism, password, &salt, iterations);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// The credential for `password` with a fresh random salt, for tools and tests that
    /// create users from a password.
    pub fn generate(mechanism: ScramMechanism, password: &str, iterations: u32) -> Self {
        Self::from_password(mechanism, password, generate_salt(), iterations)
    }

    /// Whether the server may use this credential: fewer iterations would be weak, more
    /// would let one PLAIN login hold the shard too long.
    pub(crate) fn iterations_in_bounds(&self) -> bool {
        (ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS).contains(&self.iterations)
    }

    /// Whether `password` is the one this credential was made from: `H(ClientKey)` recomputed
    /// with the stored salt and iterations equals `StoredKey`, compared in constant time.
    pub(crate) fn matches_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let salted = salted_password(mechanism, password, &self.salt, self.iterations);
        mechanism.hash(&client_key(mechanism, &salted)).ct_eq(&self.stored_key).into()
    }
}

/// Only the iteration count: the salt and keys are what an attacker would want from a log.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// A fresh random salt for a new credential, for [`ScramCredential::generate`] and for
/// clients that send SaltedPassword themselves (AlterUserScramCredentials).
pub fn generate_salt() -> Vec<u8> {
    let mut salt = vec![0; GENERATED_SALT_BYTES];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// RFC 5802's `Hi(password, salt, iterations)`: PBKDF2 with HMAC of the mechanism's hash,
/// as long as the hash. Kafka applies no SASLprep, only UTF-8, and neither does this.
pub fn salted_password(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut salted = vec![0; mechanism.hash_len()];
    match mechanism {
        ScramMechanism::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted),
        ScramMechanism::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut salted),
    }
    salted
}

/// `HMAC(SaltedPassword, "Client Key")`.
pub(crate) fn client_key(mechanism: ScramMechanism, salted_password: &[u8]) -> Vec<u8> {
    mechanism.hmac(salted_password, b"Client Key")
}

impl ScramMechanism {
    /// `H(data)`.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => mac::<Hmac<Sha256>>(key, data),
            ScramMechanism::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes keys longer than a block and pads shorter ones, so no length is refused.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_from_password_matches_one_from_its_salted_password() {
        for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let salted = salted_password(mechanism, "pencil", b"salt", 4096);
            assert_eq!(salted.len(), mechanism.hash_len());
            assert_eq!(
                ScramCredential::from_password(mechanism, "pencil", b"salt".to_vec(), 4096),
                ScramCredential::from_salted_password(mechanism, b"salt".to_vec(), &salted, 4096),
            );
        }
    }

    #[test]
    fn salted_password_is_pbkdf2_of_the_mechanisms_hash() {
        // RFC 7677's vector checks SHA-256 through a whole exchange; this pins SHA-512
        // (PBKDF2-HMAC-SHA512("password", "salt", 1), as Python's hashlib computes it).
        let expected = "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
                        c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce";
        let salted = salted_password(ScramMechanism::Sha512, "password", b"salt", 1);
        assert_eq!(salted.iter().map(|byte| format!("{byte:02x}")).collect::<String>(), expected);
    }

    #[test]
    fn generated_credentials_get_their_own_salt() {
        let a = ScramCredential::generate(ScramMechanism::Sha256, "pencil", 4096);
        let b = ScramCredential::generate(ScramMechanism::Sha256, "pencil", 4096);
        assert_eq!(a.salt.len(), GENERATED_SALT_BYTES);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let credential = ScramCredential {
            salt: vec![0xAB; 4],
            stored_key: vec![0xCD; 4],
            server_key: vec![0xEF; 4],
            iterations: 4096,
        };
        assert_eq!(format!("{credential:?}"), "ScramCredential { iterations: 4096, .. }");
    }
}
