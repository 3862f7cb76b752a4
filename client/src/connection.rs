//! One connection to one Kafka broker.
//!
//! On connect it asks the broker for its API versions (ApiVersions v3, falling back to v0
//! as KIP-511 describes), authenticates when its [`ConnectionSecurity`] has SASL
//! credentials, and then sends each request at the highest version both sides speak.
//! Requests are answered in order on a Kafka connection, so [`KafkaConnection::send`]
//! writes one request and reads its response; [`KafkaConnection::into_pipelined`] turns it
//! into a connection with many requests in flight (see [`crate::pipeline`]).

use crate::frame::FrameError;
use crate::security::ConnectionSecurity;
use crate::stream::BrokerStream;
use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::io::{AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::ResponseError;
use std::collections::HashMap;
use std::time::Duration;

/// Largest response frame accepted; a Fetch response is bounded by the `max_bytes` the
/// client asks for, so anything larger is a broken or hostile peer.
pub const RESPONSE_BYTES_MAX: usize = 512 << 20;

/// How long a connection attempt, and each read or write, may take.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The newest version this client sends per API, where it is lower than what
/// `kafka-protocol` encodes: Produce v13 and Fetch v13+ name topics by id only.
const CLIENT_VERSION_CAPS: &[(ApiKey, i16)] = &[(ApiKey::Produce, 12), (ApiKey::Fetch, 12)];

/// What can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No address of the broker accepted a connection.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The broker address as given.
        address: String,
        /// Why.
        reason: String,
    },
    /// The connection failed after it was established.
    #[error("connection to {address} failed: {source}")]
    Io {
        /// The broker address.
        address: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The broker serves no version of the API that this client can send.
    #[error("broker {address} does not serve {api:?} in a version this client speaks")]
    Unsupported {
        /// The broker address.
        address: String,
        /// The API.
        api: ApiKey,
    },
    /// The SASL exchange could not complete for a reason the client found (the broker's
    /// own refusals, such as a wrong password, are [`ClientError::Kafka`]).
    #[error("authentication to {address} failed: {reason}")]
    Authentication {
        /// The broker address.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// The broker's bytes could not be understood.
    #[error("malformed response from {address}: {reason}")]
    Protocol {
        /// The broker address.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{operation}: {error:?} ({code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was being done.
        operation: String,
        /// The error code's meaning.
        error: ResponseError,
        /// The raw code.
        code: i16,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
}

/// Result of client operations.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// Turns a Kafka error code (0 = none) into a result.
    pub fn check(operation: impl FnOnce() -> String, code: i16, message: Option<&StrBytes>) -> Result<()> {
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(error) => Err(ClientError::Kafka {
                operation: operation(),
                error,
                code,
                message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
            }),
        }
    }
}

/// One connection to a Kafka broker.
pub struct KafkaConnection {
    address: String,
    client_id: StrBytes,
    reader: BufReader<ReadHalf<BrokerStream>>,
    writer: WriteHalf<BrokerStream>,
    next_correlation_id: i32,
    versions: BrokerVersions,
    /// Kept for [`KafkaConnection::connect_to_another`].
    security: ConnectionSecurity,
}

/// The versions a broker serves, learned from ApiVersions, and the version each request
/// is sent at.
#[derive(Debug, Clone, Default)]
pub struct BrokerVersions {
    /// The broker address (for error messages).
    address: String,
    /// API key → the broker's (min, max) versions.
    ranges: HashMap<i16, (i16, i16)>,
}

impl BrokerVersions {
    /// The version a request of `key` is sent at: the highest that the broker, the
    /// protocol crate and this client all speak.
    pub fn version_for(&self, key: ApiKey, crate_max: i16) -> Result<i16> {
        let cap = CLIENT_VERSION_CAPS.iter().find(|(k, _)| *k == key).map_or(crate_max, |(_, cap)| *cap);
        let (broker_min, broker_max) = self
            .ranges
            .get(&(key as i16))
            .copied()
            .ok_or_else(|| ClientError::Unsupported { address: self.address.clone(), api: key })?;
        let version = broker_max.min(crate_max).min(cap);
        if version < broker_min.max(key.valid_versions().min) {
            return Err(ClientError::Unsupported { address: self.address.clone(), api: key });
        }
        Ok(version)
    }
}

impl KafkaConnection {
    /// Connects to `address` (HOST:PORT) over PLAINTEXT and learns the broker's API
    /// versions.
    pub async fn connect(address: &str, client_id: &str) -> Result<Self> {
        Self::connect_with_security(address, client_id, &ConnectionSecurity::default()).await
    }

    /// Connects to `address` (HOST:PORT) secured as `security` says: the TLS handshake
    /// first, if any, then ApiVersions, then the SASL exchange, if any. With the default
    /// settings this is [`KafkaConnection::connect`].
    pub async fn connect_with_security(address: &str, client_id: &str, security: &ConnectionSecurity) -> Result<Self> {
        let stream = BrokerStream::connect(address, security.tls.as_ref()).await?;
        let (reader, writer) = futures_lite::io::split(stream);
        let mut connection = KafkaConnection {
            address: address.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            reader: BufReader::with_capacity(64 << 10, reader),
            writer,
            next_correlation_id: 0,
            versions: BrokerVersions { address: address.to_string(), ranges: HashMap::new() },
            security: security.clone(),
        };
        connection.negotiate_versions().await?;
        if let Some(credentials) = &security.sasl {
            crate::security::authenticate(&mut connection, credentials).await?;
        }
        Ok(connection)
    }

    /// A new connection to another broker (a coordinator, a partition leader) with this
    /// one's client id and security settings.
    pub async fn connect_to_another(&self, address: &str) -> Result<Self> {
        Self::connect_with_security(address, self.client_id.as_str(), &self.security).await
    }

    /// The address this connection was made to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The version a request of `key` is sent at: the highest that the broker, the
    /// protocol crate and this client all speak.
    pub fn version_for(&self, key: ApiKey, crate_max: i16) -> Result<i16> {
        self.versions.version_for(key, crate_max)
    }

    /// Hands the socket to a pipelined connection: up to `max_in_flight` requests
    /// outstanding at once, answered in order (what Kafka producers do with
    /// `max.in.flight.requests.per.connection`). Must run on a glommio executor.
    pub fn into_pipelined(self, max_in_flight: usize) -> crate::pipeline::PipelinedConnection {
        crate::pipeline::PipelinedConnection::start(
            self.address,
            self.client_id,
            self.versions,
            self.reader,
            self.writer,
            self.next_correlation_id,
            max_in_flight,
        )
    }

    /// Sends a request at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response> {
        let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
        let version = self.version_for(key, R::VERSIONS.max)?;
        self.send_at(request, version).await
    }

    /// Sends a request at a given version and waits for its response.
    pub async fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.write_request(request, version).await?;
        let body = self.read_frame().await?;
        decode_response::<R>(body, version, correlation_id, &self.address)
    }

    /// Sends a request the broker does not answer (Produce with acks=0).
    pub async fn send_without_response<R: Request>(&mut self, request: &R) -> Result<()> {
        let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
        let version = self.version_for(key, R::VERSIONS.max)?;
        self.write_request(request, version).await.map(|_| ())
    }

    /// Writes one request; returns its correlation id.
    async fn write_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(key, version, correlation_id, &self.client_id, request)
            .map_err(|reason| self.protocol_error(format!("cannot encode {key:?} v{version}: {reason}")))?;
        self.writer.write_all(&frame).await.map_err(|e| self.io_error(e))?;
        self.writer.flush().await.map_err(|e| self.io_error(e))?;
        Ok(correlation_id)
    }

    /// ApiVersions v3 first; a broker that does not speak it answers in v0 with
    /// UNSUPPORTED_VERSION and its ranges (KIP-511), and v0 is asked again.
    async fn negotiate_versions(&mut self) -> Result<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response = self.send_api_versions(&request, 3).await?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.send_api_versions(&request, 0).await?;
        }
        ClientError::check(|| format!("ApiVersions from {}", self.address), response.error_code, None)?;
        self.versions.ranges =
            response.api_keys.iter().map(|api| (api.api_key, (api.min_version, api.max_version))).collect();
        Ok(())
    }

    /// An ApiVersions exchange whose response is read in v0 whenever it says
    /// UNSUPPORTED_VERSION (KIP-511: the broker falls back to the v0 format).
    async fn send_api_versions(&mut self, request: &ApiVersionsRequest, version: i16) -> Result<ApiVersionsResponse> {
        self.write_request(request, version).await?;
        let mut body = self.read_frame().await?;
        // The response header of ApiVersions is v0 at every version (no tagged fields).
        ResponseHeader::decode(&mut body, 0).map_err(|e| self.protocol_error(e.to_string()))?;
        let error_code = if body.len() >= 2 { i16::from_be_bytes([body[0], body[1]]) } else { 0 };
        let decode_version = if error_code == ResponseError::UnsupportedVersion.code() { 0 } else { version };
        ApiVersionsResponse::decode(&mut body, decode_version)
            .map_err(|e| self.protocol_error(format!("ApiVersions v{decode_version} response: {e}")))
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        read_response_frame(&mut self.reader, &self.address).await
    }

    fn io_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Io { address: self.address.clone(), source }
    }

    fn protocol_error(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol { address: self.address.clone(), reason: reason.into() }
    }
}

/// Decodes a response frame (without its size): the header, whose correlation id must be
/// the request's, then the body.
pub(super) fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
    address: &str,
) -> Result<R::Response> {
    let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
    let protocol_error = |reason: String| ClientError::Protocol { address: address.to_string(), reason };
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| protocol_error(format!("{key:?} v{version} response header: {e}")))?;
    if header.correlation_id != correlation_id {
        return Err(protocol_error(format!(
            "response carries correlation id {}, expected {correlation_id}",
            header.correlation_id
        )));
    }
    R::Response::decode(&mut body, version).map_err(|e| protocol_error(format!("{key:?} v{version} response: {e}")))
}

/// Reads one size-prefixed response frame (without its size).
pub(super) async fn read_response_frame<R: futures_lite::AsyncRead + Unpin>(
    reader: &mut R,
    address: &str,
) -> Result<Bytes> {
    match crate::frame::read_frame(reader, RESPONSE_BYTES_MAX).await {
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => {
            Err(ClientError::Io { address: address.to_string(), source: std::io::ErrorKind::UnexpectedEof.into() })
        }
        Err(FrameError::Io(source)) => Err(ClientError::Io { address: address.to_string(), source }),
        Err(size) => Err(ClientError::Protocol { address: address.to_string(), reason: format!("response {size}") }),
    }
}

/// Encodes a request with its size prefix and header.
pub(super) fn encode_request<R: Request>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    request: &R,
) -> std::result::Result<Bytes, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = key.request_header_version(version);
    let size = header.compute_size(header_version).map_err(|e| e.to_string())?
        + request.compute_size(version).map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(i32::try_from(size).map_err(|_| format!("request of {size} bytes"))?);
    header.encode(&mut out, header_version).map_err(|e| e.to_string())?;
    request.encode(&mut out, version).map_err(|e| e.to_string())?;
    debug_assert_eq!(out.len(), 4 + size, "compute_size agrees with encode");
    Ok(out.freeze())
}
