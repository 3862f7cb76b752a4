//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` reads it, with the password checked
//! against the user's SCRAM credential, so one set of credentials serves both mechanisms
//! and no password is ever stored.

use super::{CredentialStore, SaslError, ScramMechanism};

const INVALID_CREDENTIALS: &str = "Authentication failed: Invalid username or password";

/// Checks the client's only message, `[authzid] NUL authcid NUL passwd`; returns the user.
pub(super) fn authenticate(token: &[u8], store: &dyn CredentialStore) -> Result<String, SaslError> {
    // At most 4 pieces, so a fourth NUL and beyond count as Kafka counts them.
    let tokens: Vec<&[u8]> = token.splitn(4, |&byte| byte == 0).collect();
    let [authzid, user, password] = tokens[..] else {
        return Err(SaslError::visible(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        )));
    };
    let text = |bytes| {
        std::str::from_utf8(bytes).map_err(|_| SaslError::visible("Invalid SASL/PLAIN response: not valid UTF-8"))
    };
    let (authzid, user, password) = (text(authzid)?, text(user)?, text(password)?);
    require_names(user, password)?;
    // Kafka checks this after the password; before it, a refused login costs no Hi.
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::visible(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    verify(user, password, store)?;
    Ok(user.to_owned())
}

/// Checks `password` against `user`'s stored SCRAM credential exactly as a PLAIN login
/// would, for logins that carry a name and password outside SASL (the HTTP endpoints'
/// basic auth). Costs one Hi, milliseconds: callers that check often cache successes.
pub fn check_password(user: &str, password: &str, store: &dyn CredentialStore) -> Result<(), SaslError> {
    require_names(user, password)?;
    verify(user, password, store)
}

fn require_names(user: &str, password: &str) -> Result<(), SaslError> {
    if user.is_empty() {
        return Err(SaslError::visible("Authentication failed: username not specified"));
    }
    if password.is_empty() {
        return Err(SaslError::visible("Authentication failed: password not specified"));
    }
    Ok(())
}

fn verify(user: &str, password: &str, store: &dyn CredentialStore) -> Result<(), SaslError> {
    // The stronger hash when the user has both.
    let Some((mechanism, credential)) = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|mechanism| Some((mechanism, store.scram_credential(user, mechanism)?)))
    else {
        return Err(SaslError::new(
            INVALID_CREDENTIALS,
            format!("PLAIN login of user '{user}', who has no SCRAM credential"),
        ));
    };
    if !credential.iterations_in_bounds() {
        return Err(SaslError::new(
            INVALID_CREDENTIALS,
            format!(
                "the {} credential of user '{user}' has {} iterations, outside {}..={}",
                mechanism.name(),
                credential.iterations,
                ScramMechanism::MIN_ITERATIONS,
                ScramMechanism::MAX_ITERATIONS,
            ),
        ));
    }
    if !credential.matches_password(mechanism, password) {
        return Err(SaslError::new(INVALID_CREDENTIALS, format!("PLAIN login of user '{user}' with a wrong password")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::testing::{one_user, users};
    use crate::sasl::ScramCredential;

    fn client_message(token: &[u8], store: &dyn CredentialStore) -> String {
        authenticate(token, store).unwrap_err().client_message
    }

    #[test]
    fn plain_succeeds_with_the_right_password() {
        assert_eq!(authenticate(b"\0alice\0pencil", &users()), Ok("alice".to_owned()));
        assert_eq!(authenticate(b"alice\0alice\0pencil", &users()), Ok("alice".to_owned()));
    }

    #[test]
    fn plain_checks_a_user_who_has_only_scram_sha_256() {
        assert_eq!(authenticate(b"\0sha256only\0pencil", &users()), Ok("sha256only".to_owned()));
        assert_eq!(client_message(b"\0sha256only\0pencil2", &users()), INVALID_CREDENTIALS);
    }

    #[test]
    fn plain_prefers_the_scram_sha_512_credential() {
        let mut store = one_user(
            "bob",
            ScramMechanism::Sha256,
            ScramCredential::from_password(ScramMechanism::Sha256, "old", b"salt".to_vec(), 4096),
        );
        store.insert(
            ("bob".to_owned(), ScramMechanism::Sha512),
            ScramCredential::from_password(ScramMechanism::Sha512, "new", b"salt".to_vec(), 4096),
        );
        assert_eq!(authenticate(b"\0bob\0new", &store), Ok("bob".to_owned()));
        assert_eq!(client_message(b"\0bob\0old", &store), INVALID_CREDENTIALS);
    }

    #[test]
    fn plain_wrong_password_and_unknown_user_read_the_same() {
        let wrong = authenticate(b"\0alice\0pencil2", &users()).unwrap_err();
        let unknown = authenticate(b"\0mallory\0pencil", &users()).unwrap_err();
        assert_eq!(wrong.client_message, INVALID_CREDENTIALS);
        assert_eq!(unknown.client_message, INVALID_CREDENTIALS);
        assert_ne!(wrong.detail, unknown.detail);
    }

    #[test]
    fn plain_needs_exactly_three_tokens() {
        assert_eq!(client_message(b"alice\0pencil", &users()), "Invalid SASL/PLAIN response: expected 3 tokens, got 2");
        assert_eq!(client_message(b"", &users()), "Invalid SASL/PLAIN response: expected 3 tokens, got 1");
        assert_eq!(
            client_message(b"\0alice\0pencil\0", &users()),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4"
        );
        assert_eq!(
            client_message(b"\0alice\0pen\0c\0il", &users()),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4"
        );
    }

    #[test]
    fn plain_refuses_empty_names() {
        assert_eq!(client_message(b"\0\0pencil", &users()), "Authentication failed: username not specified");
        assert_eq!(client_message(b"\0alice\0", &users()), "Authentication failed: password not specified");
    }

    #[test]
    fn plain_authzid_must_be_the_user() {
        assert_eq!(
            client_message(b"bob\0alice\0pencil", &users()),
            "Authentication failed: Client requested an authorization id that is different from username"
        );
    }

    #[test]
    fn check_password_answers_as_a_plain_login_does() {
        assert_eq!(check_password("alice", "pencil", &users()), Ok(()));
        assert_eq!(check_password("sha256only", "pencil", &users()), Ok(()));
        let wrong = check_password("alice", "pencil2", &users()).unwrap_err();
        assert_eq!(wrong.client_message, INVALID_CREDENTIALS);
        assert_eq!(wrong.detail, authenticate(b"\0alice\0pencil2", &users()).unwrap_err().detail);
        assert_eq!(check_password("mallory", "pencil", &users()).unwrap_err().client_message, INVALID_CREDENTIALS);
        let empty = check_password("alice", "", &users()).unwrap_err();
        assert_eq!(empty.client_message, "Authentication failed: password not specified");
    }

    #[test]
    fn plain_refuses_invalid_utf8() {
        assert_eq!(client_message(b"\0al\xFFice\0pencil", &users()), "Invalid SASL/PLAIN response: not valid UTF-8");
    }
}
