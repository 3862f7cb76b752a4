//! The admin Unix socket on shard 0: line-delimited JSON requests, one reply line each.
//! Nothing a client sends can take the broker down: bad JSON and unknown commands get an
//! error reply; an over-long line gets one and the connection closes; clients beyond the
//! limit, silent ones and ones that vanish are dropped.

use super::commands::AdminState;
use super::protocol::{error_line, ok_line, parse_request, AdminRequest, REQUEST_LINE_BYTES_MAX};
use super::{with_timeout, ConnectionSlots};
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use glommio::net::{UnixListener, UnixStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Admin connections served at once; more are told so and closed.
const CONNECTIONS_MAX: usize = 16;
/// A connection that sends no complete line for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Binds the socket at `path` with mode 0600. A socket file already there is stale (the
/// data directory's lock means no other broker serves it) and is replaced; any other kind
/// of file there is an error. The socket is bound under a temporary name, restricted, then
/// renamed into place, so it is never reachable at `path` with a wider mode.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| format!("cannot remove stale {}: {e}", path.display()))?;
        }
        Ok(_) => return Err(format!("{} exists and is not a socket", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = Path::new(&temporary);
    let _ = std::fs::remove_file(temporary);
    let listener =
        UnixListener::bind(temporary).map_err(|e| format!("cannot bind admin socket {}: {e}", temporary.display()))?;
    let placed = std::fs::set_permissions(temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(temporary, path));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(temporary);
        return Err(format!("cannot set up admin socket {}: {error}", path.display()));
    }
    Ok(listener)
}

/// Accepts admin clients until the task is dropped.
pub async fn serve(state: Rc<AdminState>, listener: UnixListener) {
    let slots = ConnectionSlots::new(CONNECTIONS_MAX);
    loop {
        let mut stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin socket accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = slots.take() else {
            let reply = error_line(&format!("too many admin connections (at most {CONNECTIONS_MAX})"));
            glommio::spawn_local(async move {
                let _ = stream.write_all(&reply).await;
            })
            .detach();
            continue;
        };
        let state = state.clone();
        glommio::spawn_local(async move {
            serve_client(&state, stream).await;
            drop(slot);
        })
        .detach();
    }
}

/// How reading one request line ended.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A whole line (newline removed) is in the buffer.
    Line,
    /// The client closed the connection between lines.
    Closed,
    /// The client closed the connection in the middle of a line.
    ClosedMidLine,
    /// The line exceeds [`REQUEST_LINE_BYTES_MAX`].
    TooLong,
}

/// Reads up to the next newline into `line`, never buffering more than the cap.
async fn read_line<R: futures_lite::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<LineRead> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() { LineRead::Closed } else { LineRead::ClosedMidLine });
        }
        let (taken, complete) = match available.iter().position(|b| *b == b'\n') {
            Some(newline) => (newline, true),
            None => (available.len(), false),
        };
        if line.len() + taken > REQUEST_LINE_BYTES_MAX {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken + usize::from(complete));
        if complete {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}

async fn serve_client(state: &AdminState, stream: UnixStream) {
    let (reader, mut writer) = futures_lite::io::split(stream);
    let mut reader = BufReader::with_capacity(8 << 10, reader);
    let mut line = Vec::new();
    loop {
        let read = match with_timeout(IDLE_TIMEOUT, read_line(&mut reader, &mut line)).await {
            Some(Ok(read)) => read,
            Some(Err(_)) | None => return, // reset or silent: nobody to answer
        };
        let (reply, stop_after_reply) = match read {
            LineRead::Closed => return,
            LineRead::ClosedMidLine => (error_line("connection closed in the middle of a request line"), false),
            LineRead::TooLong => {
                (error_line(&format!("request line longer than {REQUEST_LINE_BYTES_MAX} bytes; closing")), false)
            }
            LineRead::Line => match parse_request(&line) {
                Ok(request) => {
                    let shutdown = request == AdminRequest::Shutdown {};
                    match state.execute(request).await {
                        Ok(fields) => (ok_line(fields), shutdown),
                        Err(error) => (error_line(&error), false),
                    }
                }
                Err(error) => (error_line(&error), false),
            },
        };
        let written = writer.write_all(&reply).await.and(writer.flush().await);
        if stop_after_reply {
            // Only now: stopping first could end shard 0 before the reply is out.
            state.stop_broker();
        }
        if written.is_err() || read != LineRead::Line {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all_lines(input: &[u8]) -> Vec<(LineRead, Vec<u8>)> {
        futures_lite::future::block_on(async {
            let mut reader = BufReader::with_capacity(16, input);
            let mut results = Vec::new();
            loop {
                let mut line = Vec::new();
                let read = read_line(&mut reader, &mut line).await.unwrap();
                let last = read != LineRead::Line;
                results.push((read, line));
                if last {
                    return results;
                }
            }
        })
    }

    #[test]
    fn lines_split_at_newlines_whatever_the_read_sizes() {
        let lines = read_all_lines(b"{\"command\":\"status\"}\r\n\n{\"command\":\"metrics\"}\n");
        assert_eq!(lines[0], (LineRead::Line, b"{\"command\":\"status\"}".to_vec()));
        assert_eq!(lines[1], (LineRead::Line, Vec::new()));
        assert_eq!(lines[2], (LineRead::Line, b"{\"command\":\"metrics\"}".to_vec()));
        assert_eq!(lines[3].0, LineRead::Closed);
    }

    #[test]
    fn a_line_cut_by_the_client_is_told_apart_from_a_clean_close() {
        let lines = read_all_lines(b"{\"command\":\"sta");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, LineRead::ClosedMidLine);
    }

    #[test]
    fn an_over_long_line_stops_reading_at_the_cap() {
        let mut input = vec![b'x'; REQUEST_LINE_BYTES_MAX];
        input.push(b'\n');
        assert_eq!(read_all_lines(&input)[0].0, LineRead::Line, "exactly the cap is accepted");
        input.insert(0, b'x');
        let lines = read_all_lines(&input);
        assert_eq!(lines[0].0, LineRead::TooLong);
        assert!(lines[0].1.len() <= REQUEST_LINE_BYTES_MAX);
    }
}
