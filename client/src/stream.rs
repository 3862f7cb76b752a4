//! The byte stream under a connection: plain TCP, or TLS over TCP.
//!
//! An enum rather than a boxed trait object, so that the plain path (the load generator,
//! the brokers' follower fetchers) pays one well-predicted branch per read or write and no
//! virtual call. The TLS stream is boxed: rustls' connection state is a few KiB, and the
//! plain variant should not carry that size.

use crate::connection::{ClientError, Result, DEFAULT_IO_TIMEOUT};
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::ClientConfig;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::ToSocketAddrs;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A connected stream to a broker.
pub enum BrokerStream {
    /// PLAINTEXT and SASL_PLAINTEXT.
    Plain(TcpStream),
    /// SSL and SASL_SSL, after the handshake.
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl BrokerStream {
    /// Connects to `address` (HOST:PORT), trying every address the name resolves to; with
    /// `tls`, completes a TLS handshake that checks the broker's certificate against HOST.
    /// Reads and writes (the handshake's too) time out after [`DEFAULT_IO_TIMEOUT`].
    pub async fn connect(address: &str, tls: Option<&Arc<ClientConfig>>) -> Result<BrokerStream> {
        let connect_error = |reason: String| ClientError::Connect { address: address.into(), reason };
        let stream = connect_any(address).await?;
        let _ = stream.set_nodelay(true);
        let timeout = Some(DEFAULT_IO_TIMEOUT);
        let set_timeouts = stream.set_read_timeout(timeout).and_then(|()| stream.set_write_timeout(timeout));
        set_timeouts.map_err(|source| ClientError::Io { address: address.into(), source: source.into() })?;
        let Some(config) = tls else {
            return Ok(BrokerStream::Plain(stream));
        };
        let name = server_name(address).map_err(connect_error)?;
        let stream = TlsConnector::from(Arc::clone(config))
            .connect(name, stream)
            .await
            .map_err(|error| connect_error(format!("TLS handshake failed: {error}")))?;
        Ok(BrokerStream::Tls(Box::new(stream)))
    }
}

/// The name a broker's certificate must carry: the host of HOST:PORT, a DNS name or an IP
/// address (brackets of an IPv6 address removed), as librdkafka checks it.
fn server_name(address: &str) -> std::result::Result<ServerName<'static>, String> {
    let host = address.rsplit_once(':').map_or(address, |(host, _port)| host);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(host.to_owned()).map_err(|_| format!("{host:?} is not a name TLS can check"))
}

/// Tries every address the name resolves to.
async fn connect_any(address: &str) -> Result<TcpStream> {
    let connect_error = |reason: String| ClientError::Connect { address: address.into(), reason };
    let candidates = address.to_socket_addrs().map_err(|e| connect_error(e.to_string()))?;
    let mut last_error = "the name resolves to no address".to_string();
    for candidate in candidates {
        match TcpStream::connect_timeout(candidate, DEFAULT_IO_TIMEOUT).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(connect_error(last_error))
}

impl AsyncRead for BrokerStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_read_vectored(cx, bufs),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read_vectored(cx, bufs),
        }
    }
}

impl AsyncWrite for BrokerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerStream::Plain(stream) => Pin::new(stream).poll_close(cx),
            BrokerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_close(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_is_the_host_of_the_address() {
        assert_eq!(server_name("localhost:9093").unwrap(), ServerName::try_from("localhost").unwrap());
        assert_eq!(server_name("127.0.0.1:9093").unwrap(), ServerName::try_from("127.0.0.1").unwrap());
        assert_eq!(server_name("[::1]:9093").unwrap(), ServerName::try_from("::1").unwrap());
        assert!(server_name("bad name:9093").is_err());
    }
}
