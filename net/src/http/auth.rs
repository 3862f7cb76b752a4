//! `--http-auth basic`: every request to the HTTP endpoints carries
//! `Authorization: Basic base64(user:password)`, checked against the SCRAM credentials
//! exactly as a SASL PLAIN login is ([`check_password`]), so one set of users serves Kafka
//! clients and HTTP clients. Authentication only, as Confluent's basic auth: any user with
//! a credential may scrape metrics and read and write schemas; no ACL is consulted.
//!
//! The credentials live in shard 0's metadata snapshots. Shard 0 publishes each snapshot's
//! security state into a [`PublishedSecurity`] (a std lock around an `Arc`), which this
//! thread reads: nothing of glommio's crosses (see [`super::inbox`] for why that matters).
//!
//! A check costs one Hi (PBKDF2: 4096 to 16384 rounds of HMAC, milliseconds), too much for
//! every lookup a serializer makes, so a success is remembered with the credentials it was
//! verified against and holds while they stay the same; failures are not remembered. Checks
//! run on the HTTP thread itself rather than a blocking pool: a stream of wrong passwords
//! then costs at most that one thread's time, never the shards' cores.

use crate::context::ShardContext;
use crate::metadata::Metadata;
use crate::security::store::SecurityState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use sluice_security::sasl::{check_password, CredentialStore, ScramCredential, ScramMechanism, MAX_TOKEN_BYTES};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// How the HTTP endpoints authenticate requests (`--http-auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpAuth {
    /// Every request is served.
    #[default]
    None,
    /// HTTP basic auth against the users' SCRAM credentials.
    Basic,
}

impl HttpAuth {
    /// `none` or `basic`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(HttpAuth::None),
            "basic" => Some(HttpAuth::Basic),
            _ => None,
        }
    }
}

/// The security state shard 0 applied last, readable from any thread.
#[derive(Clone, Default)]
pub struct PublishedSecurity(Arc<RwLock<Arc<SecurityState>>>);

impl PublishedSecurity {
    /// Makes `state` the current one.
    pub fn publish(&self, state: &Arc<SecurityState>) {
        // A panic while holding the lock cannot leave a half-written `Arc` behind.
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&*current, state) {
            *current = state.clone();
        }
    }

    /// The current state.
    pub fn current(&self) -> Arc<SecurityState> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Called by every shard as it applies a snapshot; only shard 0 holds a publisher.
pub(crate) fn publish(context: &ShardContext, metadata: &Metadata) {
    if let Some(published) = context.published_security.get() {
        published.publish(&metadata.security);
    }
}

/// Bounds the remembered logins: past it they are all forgotten (each user then pays one
/// Hi again), so distinct right passwords cannot grow the memory without end.
const REMEMBERED_MAX: usize = 1024;

/// A user's credentials of both mechanisms: what a PLAIN check reads, so a remembered
/// success holds exactly while they are unchanged.
type Credentials = [Option<ScramCredential>; 2];

/// Checks basic-auth headers against the published credentials; cheap to clone.
#[derive(Clone)]
pub struct BasicAuth {
    inner: Arc<Remembering>,
}

struct Remembering {
    security: PublishedSecurity,
    /// Drawn at start and hashed in with each remembered password, so that a memory dump
    /// does not give a fast offline check of passwords (the stored credentials need Hi).
    key: [u8; 32],
    /// Digest of (user, password) → the credentials that password was verified against.
    remembered: Mutex<HashMap<[u8; 32], Credentials>>,
}

impl BasicAuth {
    /// Checks against what `security` holds at each request.
    pub fn new(security: PublishedSecurity) -> Self {
        let key = rand::random();
        BasicAuth { inner: Arc::new(Remembering { security, key, remembered: Mutex::default() }) }
    }

    /// The user whose right name and password `headers` carry; `None` when the header is
    /// missing, malformed or wrong.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<String> {
        let (user, password) = basic_credentials(headers.get(header::AUTHORIZATION)?)?;
        let state = self.inner.security.current();
        let credentials = [ScramMechanism::Sha256, ScramMechanism::Sha512].map(|m| state.scram_credential(&user, m));
        let digest = self.digest(&user, &password);
        if credentials.iter().any(Option::is_some) && self.remembered().get(&digest) == Some(&credentials) {
            return Some(user);
        }
        if let Err(error) = check_password(&user, &password, &*state) {
            tracing::info!(detail = %error.detail, "HTTP basic authentication failed");
            return None;
        }
        let mut remembered = self.remembered();
        if remembered.len() >= REMEMBERED_MAX && !remembered.contains_key(&digest) {
            remembered.clear();
        }
        remembered.insert(digest, credentials);
        Some(user)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Credentials>> {
        // Only whole entries are ever written under the lock.
        self.inner.remembered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.inner.key);
        // The user's length first, so that no other split of the same bytes collides.
        hash.update((user.len() as u64).to_be_bytes());
        hash.update(user);
        hash.update(password);
        hash.finalize().into()
    }
}

/// `Basic base64(user:password)`: the name and password, split at the first colon (RFC
/// 7617). Longer than a SASL token may be, it is refused unread.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    // Clients pad; a few do not, and the padding carries nothing.
    const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    if value.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `router` with every request (its fallback included) needing basic auth; a refused one
/// gets `refusal()` as a 401 with `WWW-Authenticate: Basic realm="sluice"`.
pub fn require(router: Router, auth: BasicAuth, refusal: fn() -> Response) -> Router {
    router.layer(axum::middleware::from_fn_with_state(Guard { auth, refusal }, guard))
}

#[derive(Clone)]
struct Guard {
    auth: BasicAuth,
    refusal: fn() -> Response,
}

async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if guard.auth.authenticate(request.headers()).is_some() {
        return next.run(request).await;
    }
    let mut response = (guard.refusal)();
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="sluice""#));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

    fn basic(user_password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    fn with_user(user: &str, mechanism: ScramMechanism, password: &str) -> Arc<SecurityState> {
        let mut state = SecurityState::default();
        state.set_credential(user, mechanism, ScramCredential::generate(mechanism, password, 4096));
        Arc::new(state)
    }

    #[test]
    fn the_header_is_split_at_the_first_colon_and_other_schemes_are_refused() {
        let parse = |text: &str| basic_credentials(&HeaderValue::from_str(text).unwrap());
        // "alice:pa:ss" and "bob:" in base64.
        assert_eq!(parse("Basic YWxpY2U6cGE6c3M="), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse("basic  YWxpY2U6cGE6c3M"), Some(("alice".into(), "pa:ss".into())), "unpadded, any case");
        assert_eq!(parse("Basic Ym9iOg=="), Some(("bob".into(), String::new())));
        assert_eq!(parse("Basic Ym9i"), None, "no colon");
        assert_eq!(parse("Bearer YWxpY2U6cGE6c3M="), None);
        assert_eq!(parse("Basic !!!"), None);
        assert_eq!(parse(&format!("Basic {}", "A".repeat(MAX_TOKEN_BYTES))), None);
    }

    #[test]
    fn a_right_password_is_remembered_until_the_users_credential_changes() {
        let published = PublishedSecurity::default();
        let auth = BasicAuth::new(published.clone());
        assert_eq!(auth.authenticate(&basic("alice:pencil")), None, "no users: everything is refused");
        published.publish(&with_user("alice", ScramMechanism::Sha512, "pencil"));
        assert_eq!(auth.authenticate(&HeaderMap::new()), None);
        assert_eq!(auth.authenticate(&basic("alice:pencil2")), None);
        assert!(auth.remembered().is_empty(), "failures are not remembered");
        assert_eq!(auth.authenticate(&basic("alice:pencil")), Some("alice".into()));
        assert_eq!(auth.remembered().len(), 1);
        assert_eq!(auth.authenticate(&basic("alice:pencil")), Some("alice".into()));
        assert_eq!(auth.authenticate(&basic("mallory:pencil")), None);
        // A new password (new salt and keys): the remembered old one no longer opens.
        published.publish(&with_user("alice", ScramMechanism::Sha256, "eraser"));
        assert_eq!(auth.authenticate(&basic("alice:pencil")), None);
        assert_eq!(auth.authenticate(&basic("alice:eraser")), Some("alice".into()));
        published.publish(&Arc::new(SecurityState::default()));
        assert_eq!(auth.authenticate(&basic("alice:eraser")), None, "a deleted user is refused at once");
    }

    #[test]
    fn refused_requests_get_401_with_the_challenge_and_the_endpoints_own_body() {
        let published = PublishedSecurity::default();
        published.publish(&with_user("alice", ScramMechanism::Sha256, "pencil"));
        let router = Router::new().route("/metrics", get(|| async { "ok" }));
        let router = require(router, BasicAuth::new(published), || "refused\n".into_response());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let call = |path: &str, headers: HeaderMap| {
            let mut request = axum::http::Request::builder().uri(path).body(axum::body::Body::empty()).unwrap();
            *request.headers_mut() = headers;
            runtime.block_on(async {
                let response = router.clone().oneshot(request).await.unwrap();
                let (status, challenge) =
                    (response.status(), response.headers().get(header::WWW_AUTHENTICATE).cloned());
                let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
                (status, challenge, String::from_utf8_lossy(&body).into_owned())
            })
        };
        let (status, challenge, body) = call("/metrics", HeaderMap::new());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.unwrap(), r#"Basic realm="sluice""#);
        assert_eq!(body, "refused\n");
        assert_eq!(call("/metrics", basic("alice:pencil")), (StatusCode::OK, None, "ok".to_string()));
        assert_eq!(call("/metrics", basic("alice:pencil2")).0, StatusCode::UNAUTHORIZED);
        assert_eq!(call("/elsewhere", HeaderMap::new()).0, StatusCode::UNAUTHORIZED, "the fallback is guarded too");
        assert_eq!(call("/elsewhere", basic("alice:pencil")).0, StatusCode::NOT_FOUND);
    }
}
