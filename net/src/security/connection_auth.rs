//! A connection's SASL state: which frames it may send before it authenticated, the
//! exchange itself (SaslHandshake, then SaslAuthenticate requests, or the raw tokens of the
//! pre-KIP-152 framing after a v0 handshake), and re-authentication (KIP-368).
//!
//! The connection's read loop hands every frame here first, in arrival order, and acts on
//! the answer. Clients wait for each SASL answer before sending the next token, so the
//! exchange runs inline in the read loop and its answers take their place in the
//! connection's response queue like any other.

use super::session::Session;
use crate::context::ShardContext;
use crate::response_encoding::EncodedResponse;
use crate::server::encode_response;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::sasl::{Mechanism, SaslServer, SaslStep};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Largest frame a connection may send before it authenticated (Kafka's
/// `sasl.server.max.receive.size`).
pub const SASL_MAX_RECEIVE_BYTES: usize = 512 << 10;

/// Kafka waits at least this long between two re-authentications of a connection.
const REAUTH_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What the read loop does with a frame.
pub enum FrameAction {
    /// An ordinary request: handle it as the session it carries.
    Handle(Rc<Session>),
    /// Send this (already encoded) answer and read on.
    Answer(EncodedResponse),
    /// Send this answer, then close the connection.
    AnswerAndClose(EncodedResponse),
    /// Close without an answer; the reason goes to the log.
    Close(String),
}

enum State {
    /// The listener has no SASL: the session is final.
    NoSasl,
    /// A SASL listener before SaslHandshake: only ApiVersions and SaslHandshake pass.
    AwaitingHandshake,
    /// After a v0 SaslHandshake: the next frames are raw tokens without a Kafka header.
    RawTokens(Exchange),
    /// After a v1 SaslHandshake: tokens come in SaslAuthenticate requests.
    Authenticating(Exchange),
    /// Authenticated; `reauthenticating` holds a KIP-368 exchange in progress.
    Authenticated { mechanism: Mechanism, expires: Option<Instant>, reauthenticating: Option<Exchange> },
}

/// An exchange in progress, and its mechanism.
struct Exchange {
    server: SaslServer,
    mechanism: Mechanism,
}

impl Exchange {
    fn new(mechanism: Mechanism) -> Self {
        Exchange { server: SaslServer::new(mechanism), mechanism }
    }
}

/// One connection's authentication.
pub struct ConnectionAuth {
    state: State,
    session: Rc<Session>,
    last_reauth_start: Option<Instant>,
}

impl ConnectionAuth {
    /// A connection whose listener authenticates with SASL (`sasl`) or not; `session` is
    /// its identity so far (anonymous, or its TLS client certificate's principal).
    pub fn new(session: Session, sasl: bool) -> Self {
        let state = if sasl { State::AwaitingHandshake } else { State::NoSasl };
        ConnectionAuth { state, session: Rc::new(session), last_reauth_start: None }
    }

    /// Whether requests may be handled yet (and so how large a frame may be).
    pub fn authenticated(&self) -> bool {
        matches!(self.state, State::NoSasl | State::Authenticated { .. })
    }

    /// Largest frame the connection may send now.
    pub fn frame_limit(&self, max_request_bytes: usize) -> usize {
        if self.authenticated() {
            max_request_bytes
        } else {
            SASL_MAX_RECEIVE_BYTES
        }
    }

    /// Decides what to do with the next frame.
    pub fn on_frame(&mut self, context: &ShardContext, frame: &Bytes) -> FrameAction {
        if let State::RawTokens(exchange) = &mut self.state {
            // The pre-KIP-152 framing: the frame is the token itself.
            let mechanism = exchange.mechanism;
            let step = exchange.server.step(frame, &context.credentials());
            return match step {
                Ok(SaslStep::Challenge(token)) => FrameAction::Answer(raw_token(&token)),
                Ok(SaslStep::Complete { user, reply }) => {
                    self.complete(context, mechanism, &user);
                    FrameAction::Answer(raw_token(&reply))
                }
                Err(error) => FrameAction::Close(format!("SASL authentication failed: {}", error.detail)),
            };
        }
        let Some(key) = frame.get(..2).and_then(|b| ApiKey::try_from(i16::from_be_bytes([b[0], b[1]])).ok()) else {
            return FrameAction::Close("unknown API key".into());
        };
        match key {
            ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => self.sasl_request(context, key, frame),
            ApiKey::ApiVersions => FrameAction::Handle(self.session.clone()),
            _ => match &self.state {
                State::NoSasl => FrameAction::Handle(self.session.clone()),
                State::Authenticated { expires: Some(expires), .. } if Instant::now() > *expires => {
                    FrameAction::Close("the SASL session expired without re-authentication".into())
                }
                State::Authenticated { .. } => FrameAction::Handle(self.session.clone()),
                _ => FrameAction::Close(format!("{key:?} request before SASL authentication")),
            },
        }
    }

    fn sasl_request(&mut self, context: &ShardContext, key: ApiKey, frame: &Bytes) -> FrameAction {
        let (version, correlation_id, request) = match crate::server::decode_request(frame.clone()) {
            Ok(crate::server::DecodedRequest::Request { version, correlation_id, request, .. }) => {
                (version, correlation_id, request)
            }
            Ok(crate::server::DecodedRequest::UnsupportedApiVersions { .. }) => unreachable!("not ApiVersions"),
            Err(reason) => return FrameAction::Close(reason),
        };
        let encode = |response: ResponseKind| encode_response(key, version, correlation_id, &response);
        let (response, close) = match *request {
            RequestKind::SaslHandshake(request) => {
                let (response, close) = self.handshake(context, version, request);
                (ResponseKind::SaslHandshake(response), close)
            }
            RequestKind::SaslAuthenticate(request) => {
                let (response, close) = self.authenticate(context, version, request);
                (ResponseKind::SaslAuthenticate(response), close)
            }
            _ => unreachable!("the API key said SASL"),
        };
        match encode(response) {
            Ok(bytes) if close => FrameAction::AnswerAndClose(bytes),
            Ok(bytes) => FrameAction::Answer(bytes),
            Err(error) => FrameAction::Close(format!("cannot encode the SASL answer: {error}")),
        }
    }

    fn handshake(
        &mut self,
        context: &ShardContext,
        version: i16,
        request: SaslHandshakeRequest,
    ) -> (SaslHandshakeResponse, bool) {
        let enabled = &context.broker.security.sasl_mechanisms;
        let names = enabled.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
        let response = SaslHandshakeResponse::default().with_mechanisms(names);
        let requested = Mechanism::from_name(request.mechanism.as_str()).filter(|m| enabled.contains(m));
        match (&mut self.state, requested) {
            (State::AwaitingHandshake, Some(mechanism)) => {
                let exchange = Exchange::new(mechanism);
                self.state = if version == 0 { State::RawTokens(exchange) } else { State::Authenticating(exchange) };
                (response, false)
            }
            (State::AwaitingHandshake, None) => {
                tracing::info!(mechanism = %request.mechanism.as_str(), "SASL mechanism not enabled");
                (response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), true)
            }
            (State::Authenticated { mechanism, expires: Some(_), reauthenticating }, requested)
                if self.last_reauth_start.is_none_or(|at| at.elapsed() >= REAUTH_MIN_INTERVAL) =>
            {
                // KIP-368: the same mechanism, on the same connection.
                if requested != Some(*mechanism) {
                    tracing::info!(mechanism = %request.mechanism.as_str(), "re-authentication with another mechanism");
                    return (response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), true);
                }
                *reauthenticating = Some(Exchange::new(*mechanism));
                self.last_reauth_start = Some(Instant::now());
                (response, false)
            }
            _ => (response.with_error_code(ResponseError::IllegalSaslState.code()), false),
        }
    }

    fn authenticate(
        &mut self,
        context: &ShardContext,
        version: i16,
        request: SaslAuthenticateRequest,
    ) -> (SaslAuthenticateResponse, bool) {
        let failed = |code: ResponseError, message: String| {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)));
            (response, true)
        };
        let reauthenticating = matches!(&self.state, State::Authenticated { reauthenticating: Some(_), .. });
        let exchange = match &mut self.state {
            State::Authenticating(exchange) => exchange,
            State::Authenticated { reauthenticating: Some(exchange), .. } => exchange,
            State::Authenticated { .. } | State::NoSasl => {
                let response = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "SaslAuthenticate request received after successful authentication",
                    )));
                return (response, false);
            }
            _ => return failed(ResponseError::IllegalSaslState, "SaslAuthenticate before SaslHandshake".to_string()),
        };
        let mechanism = exchange.mechanism;
        match exchange.server.step(&request.auth_bytes, &context.credentials()) {
            Ok(SaslStep::Challenge(token)) => {
                (SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token)), false)
            }
            Ok(SaslStep::Complete { user, reply }) => {
                let principal = format!("User:{user}");
                if reauthenticating && *self.session.principal != *principal {
                    return failed(
                        ResponseError::SaslAuthenticationFailed,
                        format!(
                            "Cannot change principals during re-authentication from {}: {principal}",
                            self.session.principal
                        ),
                    );
                }
                let lifetime = self.complete(context, mechanism, &user);
                let lifetime_ms = if version >= 1 { lifetime.map_or(0, |l| l.as_millis() as i64) } else { 0 };
                let response = SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(reply))
                    .with_session_lifetime_ms(lifetime_ms);
                (response, false)
            }
            Err(error) => {
                tracing::info!(client = %self.session.client_ip, mechanism = mechanism.name(), detail = %error.detail,
                    "SASL authentication failed");
                failed(ResponseError::SaslAuthenticationFailed, error.client_message)
            }
        }
    }

    /// The exchange succeeded as `user`: the session takes that principal and, with
    /// `connections.max.reauth.ms`, an expiry. Returns the session's lifetime.
    fn complete(&mut self, context: &ShardContext, mechanism: Mechanism, user: &str) -> Option<Duration> {
        let lifetime = context.broker.security.max_reauth;
        self.session = Rc::new(self.session.as_principal(&format!("User:{user}")));
        self.state =
            State::Authenticated { mechanism, expires: lifetime.map(|l| Instant::now() + l), reauthenticating: None };
        tracing::debug!(principal = %self.session.principal, mechanism = mechanism.name(), "authenticated");
        lifetime
    }
}

/// A token in the pre-KIP-152 framing: its size, then its bytes.
fn raw_token(token: &[u8]) -> EncodedResponse {
    let mut out = BytesMut::with_capacity(4 + token.len());
    out.put_i32(token.len() as i32);
    out.put_slice(token);
    vec![out.freeze()]
}
