//! A minimal HTTP/1.1 responder for Prometheus on shard 0: read the request head (up to a
//! cap), answer `GET /metrics` with the exposition and anything else with an error status,
//! then close. No keep-alive, no request bodies.

use super::commands::AdminState;
use super::{prometheus, with_timeout, ConnectionSlots};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// Longest request head read; a longer one is answered 431.
const REQUEST_HEAD_BYTES_MAX: usize = 8 << 10;
/// Scrapes served at once; more wait in the listen backlog.
const CONNECTIONS_MAX: usize = 16;
/// A client that does not send its request head within this is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves scrapes until the task is dropped.
pub async fn serve(state: Rc<AdminState>, listener: TcpListener) {
    let slots = ConnectionSlots::new(CONNECTIONS_MAX);
    loop {
        let Some(slot) = slots.take() else {
            glommio::timer::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match listener.accept().await {
            Ok(stream) => {
                let state = state.clone();
                glommio::spawn_local(async move {
                    answer(&state, stream).await;
                    drop(slot);
                })
                .detach();
            }
            Err(error) => {
                tracing::warn!(%error, "metrics listener accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`.
    Metrics,
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line: 400.
    BadRequest,
}

/// Routes on the request line alone (`GET /metrics HTTP/1.1`; a query string is ignored).
pub fn route(head: &[u8]) -> Route {
    let Some(request_line) = head.split(|b| *b == b'\n').next().and_then(|l| std::str::from_utf8(l).ok()) else {
        return Route::BadRequest;
    };
    let mut parts = request_line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" {
        return Route::MethodNotAllowed;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        _ => Route::NotFound,
    }
}

/// Reads until the blank line that ends the head. `None` when the client hung up first or
/// the head is longer than the cap (then `Some(false)`).
async fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> Option<bool> {
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= REQUEST_HEAD_BYTES_MAX {
            return Some(false);
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Some(true)
}

async fn answer(state: &AdminState, mut stream: TcpStream) {
    let mut head = Vec::new();
    let (status, content_type, body) = match with_timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut head)).await {
        None | Some(None) => return,
        Some(Some(false)) => ("431 Request Header Fields Too Large", "text/plain", "request head too large\n".into()),
        Some(Some(true)) => match route(&head) {
            Route::Metrics => {
                let reports = state.reports().await;
                ("200 OK", prometheus::CONTENT_TYPE, prometheus::render(super::VERSION, state.uptime_ms(), &reports))
            }
            Route::NotFound => ("404 Not Found", "text/plain", "only /metrics is here\n".into()),
            Route::MethodNotAllowed => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
            Route::BadRequest => ("400 Bad Request", "text/plain", "bad request line\n".into()),
        },
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe garbage\r\n\r\n"), Route::BadRequest);
    }
}
