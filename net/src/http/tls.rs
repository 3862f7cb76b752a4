//! HTTPS for the HTTP endpoints (`--http-tls`), with the broker's certificate: the SASL_SSL
//! listeners' configuration (no client certificate asked), taken afresh for every
//! connection so that a SIGHUP reload reaches new HTTPS connections too.
//!
//! Handshakes run in tasks of their own, so a slow or silent client holds up no one else;
//! axum is handed only finished TLS streams, through [`TlsListener`].

use futures::future::Either;
use sluice_security::tls::ReloadableServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Handshakes in progress at once; past it, accepting waits and new connections queue in
/// the kernel's backlog.
const HANDSHAKES_MAX: usize = 64;
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Handshaken = (TlsStream<TcpStream>, SocketAddr);

/// Accepts TCP connections and hands axum those whose TLS handshake succeeded.
pub struct TlsListener {
    handshaken: mpsc::Receiver<Handshaken>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` (a task on the current tokio runtime), until this
    /// listener is dropped.
    pub fn new(listener: TcpListener, tls: Arc<ReloadableServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (ready, handshaken) = mpsc::channel(HANDSHAKES_MAX);
        tokio::spawn(accept(listener, tls, ready));
        Ok(TlsListener { handshaken, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> Handshaken {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task ends only once this end is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Accepts and handshakes until the [`TlsListener`] is dropped (axum stopped serving).
async fn accept(listener: TcpListener, tls: Arc<ReloadableServerConfig>, ready: mpsc::Sender<Handshaken>) {
    let handshaking = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        let next = std::pin::pin!(next_connection(&listener, &handshaking));
        let (tcp, peer, permit) = match futures::future::select(next, std::pin::pin!(ready.closed())).await {
            Either::Left((connection, _)) => connection,
            Either::Right(_) => return,
        };
        let (acceptor, ready) = (TlsAcceptor::from(tls.current()), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // Fails only when serving stopped; the stream is dropped then.
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "HTTPS handshake failed"),
                Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
            }
            drop(permit);
        });
    }
}

/// The next TCP connection, once fewer than [`HANDSHAKES_MAX`] handshakes are running.
async fn next_connection(
    listener: &TcpListener,
    handshaking: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let permit = handshaking.clone().acquire_owned().await.expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => return (tcp, peer, permit),
            // The client gave up before we took its connection.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => {}
            // Out of descriptors and the like: retrying at once would spin (axum waits too).
            Err(error) => {
                tracing::error!(%error, "cannot accept an HTTPS connection; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
