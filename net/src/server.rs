//! Connections: frames in, requests handled concurrently, responses out in request order.
//!
//! The reader decodes each frame's header at once (a bad one ends the connection: Kafka
//! closes on requests it cannot parse) and starts a task for the request; the writer
//! awaits those tasks in arrival order. A bounded queue between them limits the requests
//! in flight per connection, which pushes back on the client's socket. Requests that
//! change partitions or groups take their place in the connection's order as they are
//! decoded ([`crate::ordering`]), so their effects follow arrival order although they run
//! concurrently.

use crate::context::{ShardContext, ShardStats};
use crate::handlers::{self, RequestSource};
use crate::ordering::ConnectionOrder;
use crate::receive_low_water::{FrameNeed, LowWaterStream};
use crate::response_encoding::{shareable_records, ChunkedBuf, EncodedResponse};
use crate::security::connection_auth::{ConnectionAuth, FrameAction};
use crate::security::session::Session;
use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::io::{AsyncWriteExt, BufReader, BufWriter};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use glommio::task::JoinHandle;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_client::frame::read_frame_telling_length;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Requests one connection may have in progress before the reader stops reading.
pub const IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Read buffer per connection (many small requests per syscall).
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Write buffer per connection: gathers the small parts of a response (headers, sizes)
/// that lie between the record sets sent as their own buffers; larger writes bypass it.
const WRITE_BUFFER_BYTES: usize = 8 << 10;

/// How long a TLS handshake may take before the connection is dropped (a silent client
/// must not hold a task forever).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on listener `listener` (an index into `BrokerConfig::listeners`)
/// until the task is dropped.
pub async fn accept_loop(context: Rc<ShardContext>, listener: TcpListener, index: usize) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                ShardStats::bump(&context.stats.connections, 1);
                glommio::spawn_local(serve_accepted(context.clone(), stream, index)).detach();
            }
            Err(error) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(shard = context.id, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs a new connection: the TLS handshake first where the listener asks for it.
async fn serve_accepted(context: Rc<ShardContext>, stream: TcpStream, listener: usize) {
    let _open = OpenConnection::new(context.clone());
    let _ = stream.set_nodelay(true);
    let peer_address = stream.peer_addr().ok();
    let client_ip: Rc<str> = peer_address.map_or_else(|| "".into(), |a| a.ip().to_string().into());
    let protocol = context.broker.listeners[listener].protocol;
    let session = Session::anonymous(client_ip, listener);
    if !protocol.uses_tls() {
        // Clients write a plaintext request in one piece; a low-water mark saved nothing
        // measurable there (bench/compare_builds.sh), so plaintext keeps the default.
        return serve_connection(context, stream, session, peer_address, None).await;
    }
    let frame_need = FrameNeed::default();
    let stream = LowWaterStream::new(stream, frame_need.clone());
    let tls = context.broker.security.tls.as_ref().expect("TLS listeners start only with a certificate");
    let acceptor = futures_rustls::TlsAcceptor::from(tls.for_protocol(protocol).current());
    let handshake = async { acceptor.accept(stream).await.map_err(glommio::GlommioError::from) };
    let stream = match glommio::timer::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::info!(shard = context.id, peer = ?peer_address, %error, "TLS handshake failed");
            return;
        }
    };
    let session = match tls_principal(&context, stream.get_ref().1) {
        Ok(Some(principal)) => session.as_principal(&principal),
        Ok(None) => session,
        Err(reason) => {
            tracing::info!(shard = context.id, peer = ?peer_address, %reason, "client certificate refused");
            return;
        }
    };
    serve_connection(context, stream, session, peer_address, Some(frame_need)).await
}

/// The principal of a TLS client's certificate (Kafka's `ssl.principal.mapping.rules` on
/// its subject), or `None` when it sent none.
fn tls_principal(context: &ShardContext, connection: &rustls::ServerConnection) -> Result<Option<String>, String> {
    let Some(leaf) = connection.peer_certificates().and_then(|chain| chain.first()) else {
        return Ok(None);
    };
    let subject = sluice_security::tls::subject_rfc2253(leaf).map_err(|e| e.to_string())?;
    let name = match &context.broker.security.principal_mapping {
        Some(mapper) => mapper.map(&subject).map_err(|e| format!("{subject}: {e}"))?,
        None => subject,
    };
    Ok(Some(format!("User:{name}")))
}

type PendingResponse = JoinHandle<Option<EncodedResponse>>;

/// Counts a connection as open for as long as it lives, whichever way it ends.
struct OpenConnection(Rc<ShardContext>);

impl OpenConnection {
    fn new(context: Rc<ShardContext>) -> Self {
        ShardStats::bump(&context.stats.connections_open, 1);
        OpenConnection(context)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        ShardStats::drop_one(&self.0.stats.connections_open);
    }
}

/// Serves one connection's requests until it closes. `frame_need`, where the socket under
/// `stream` follows it, is told each frame's length ([`crate::receive_low_water`]).
async fn serve_connection<S>(
    context: Rc<ShardContext>,
    stream: S,
    session: Session,
    peer_address: Option<SocketAddr>,
    frame_need: Option<FrameNeed>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let peer = peer_address.map(|a| a.to_string()).unwrap_or_default();
    tracing::debug!(shard = context.id, %peer, principal = %session.principal, "connection");
    // Kafka shows the peer as "/address" (without the port) in DescribeGroups; made once
    // per connection, shared by its requests.
    let client_host: Rc<str> = peer_address.map_or_else(|| "/".into(), |a| format!("/{}", a.ip()).into());
    let sasl = context.broker.listeners[session.listener].protocol.uses_sasl();
    let mut auth = ConnectionAuth::new(session, sasl);
    let (reader, writer) = futures_lite::io::split(stream);
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let order = ConnectionOrder::new(context.id);
    let (queue, pending) = local_channel::new_bounded::<PendingResponse>(IN_FLIGHT_PER_CONNECTION);
    let writing = glommio::spawn_local(write_responses(pending, BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer)));
    let ready =
        |bytes: EncodedResponse| -> PendingResponse { glommio::spawn_local(async move { Some(bytes) }).detach() };
    loop {
        let limit = auth.frame_limit(context.broker.max_request_bytes);
        let read = read_frame_telling_length(&mut reader, limit, |length| {
            if let Some(need) = &frame_need {
                need.frame_started(length);
            }
        });
        let frame = match read.await.map_err(|e| e.to_string()) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(reason) => {
                tracing::warn!(shard = context.id, %peer, %reason, "closing connection");
                break;
            }
        };
        let response = match auth.on_frame(&context, &frame) {
            FrameAction::Handle(session) => start_request(&context, frame, &client_host, session, &order),
            FrameAction::Answer(bytes) => Ok(ready(bytes)),
            FrameAction::AnswerAndClose(bytes) => {
                let _ = queue.send(ready(bytes)).await;
                break;
            }
            FrameAction::Close(reason) => Err(reason),
        };
        match response {
            Ok(response) => {
                if queue.send(response).await.is_err() {
                    break;
                }
            }
            Err(reason) => {
                tracing::warn!(shard = context.id, %peer, %reason, "closing connection");
                break;
            }
        }
    }
    // Requests already started are answered before the socket closes.
    drop(queue);
    writing.await;
}

async fn write_responses<W: futures_lite::AsyncWrite + Unpin>(
    pending: local_channel::LocalReceiver<PendingResponse>,
    mut writer: W,
) {
    while let Some(response) = pending.recv().await {
        let Some(Some(chunks)) = response.await else { continue };
        for chunk in chunks {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}

/// A request frame, decoded.
#[derive(Debug)]
pub enum DecodedRequest {
    /// A served API at a served version.
    Request {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// Echoed in the response.
        correlation_id: i32,
        /// The header's client id (empty when null; shares the frame's bytes).
        client_id: StrBytes,
        /// The body (boxed: request bodies are large, the other variant tiny).
        request: Box<RequestKind>,
    },
    /// ApiVersions at a version we do not serve: answered in v0 (KIP-511).
    UnsupportedApiVersions {
        /// Echoed in the response.
        correlation_id: i32,
    },
}

/// Decodes a frame (without its size prefix): header, then body with `kafka-protocol`.
/// An error means the connection must close. This is the path `cargo fuzz` drives
/// (`fuzz/fuzz_targets/request_decode.rs`).
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, String> {
    if frame.len() < 8 {
        return Err(format!("request of {} bytes is shorter than a header", frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(raw_key).map_err(|_| format!("unknown API key {raw_key}"))?;
    if key == ApiKey::ApiVersions && !handlers::is_served(key, version) {
        return Ok(DecodedRequest::UnsupportedApiVersions { correlation_id });
    }
    if !handlers::is_served(key, version) {
        return Err(format!("{key:?} v{version} is not supported"));
    }
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, key.request_header_version(version))
        .map_err(|e| format!("bad {key:?} v{version} header: {e}"))?;
    let client_id = header.client_id.unwrap_or_default();
    let request =
        RequestKind::decode(key, &mut body, version).map_err(|e| format!("bad {key:?} v{version} request: {e}"))?;
    Ok(DecodedRequest::Request { key, version, correlation_id, client_id, request: Box::new(request) })
}

/// Decodes a frame and starts handling it. An error means the connection must close.
fn start_request(
    context: &Rc<ShardContext>,
    frame: Bytes,
    client_host: &Rc<str>,
    session: Rc<Session>,
    order: &ConnectionOrder,
) -> Result<PendingResponse, String> {
    let (key, version, correlation_id, client_id, request) = match decode_request(frame.clone())? {
        DecodedRequest::Request { key, version, correlation_id, client_id, request } => {
            (key, version, correlation_id, client_id, request)
        }
        DecodedRequest::UnsupportedApiVersions { correlation_id } => {
            let response = ResponseKind::ApiVersions(handlers::unsupported_version_response());
            let bytes = encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)?;
            return Ok(glommio::spawn_local(async move { Some(bytes) }).detach());
        }
    };
    let context = context.clone();
    let source = RequestSource { client_id, client_host: client_host.clone(), session };
    // Taken here, in arrival order: the place of this request's effects.
    let admission = handlers::has_ordered_effects(key).then(|| order.admission());
    ShardStats::bump(&context.stats.requests_in_flight, 1);
    let started = Instant::now();
    Ok(glommio::spawn_local(async move {
        let response = handlers::handle(context.clone(), version, *request, source, admission, frame).await;
        ShardStats::drop_one(&context.stats.requests_in_flight);
        ShardStats::bump(&context.stats.requests, 1);
        let encoded = match response {
            Some(response) => match encode_response(key, version, correlation_id, &response) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    // A response the crate cannot encode is our bug; the client sees a
                    // timeout for this request only, so log it loudly.
                    tracing::error!(?key, version, %error, "cannot encode response");
                    None
                }
            },
            None => None, // acks=0 Produce: handled, nothing to send
        };
        context.requests.record(key, started.elapsed());
        encoded
    })
    .detach())
}

/// Encodes a response with its size prefix and header.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<EncodedResponse, String> {
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    if let ResponseKind::Fetch(fetch) = response {
        let shareable = shareable_records(fetch);
        if !shareable.is_empty() {
            // Sized first: the size prefix sits in the first chunk, which is finished
            // (and shared) before the end is known.
            let size = header.compute_size(header_version).map_err(|e| e.to_string())?
                + fetch.compute_size(version).map_err(|e| e.to_string())?;
            let size = i32::try_from(size).map_err(|_| "response larger than 2 GiB".to_string())?;
            let mut out = ChunkedBuf::new(shareable);
            out.put_i32(size);
            header.encode(&mut out, header_version).map_err(|e| e.to_string())?;
            fetch.encode(&mut out, version).map_err(|e| e.to_string())?;
            debug_assert_eq!(out.offset(), size as usize + 4, "compute_size agrees with encode");
            return Ok(out.finish());
        }
    }
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    header.encode(&mut out, header_version).map_err(|e| e.to_string())?;
    response.encode(&mut out, version).map_err(|e| e.to_string())?;
    let size = i32::try_from(out.len() - 4).map_err(|_| "response larger than 2 GiB".to_string())?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(vec![out.freeze()])
}
