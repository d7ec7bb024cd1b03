//! One client connection: read requests, run them, write the replies.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::commands::Session;
use crate::resp::parse_request;
use crate::shutdown::ShutdownSignal;

/// Bytes reserved for each read.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one client until it disconnects, sends a malformed request, or
/// shutdown fires.
///
/// Every complete request in a read is run and all their replies go out in
/// one write, so pipelined commands cost one round of syscalls. Shutdown is
/// only checked while waiting for input: commands already read are always
/// answered.
pub(super) async fn serve(
    mut stream: TcpStream,
    mut session: Session,
    mut shutdown: ShutdownSignal,
) -> io::Result<()> {
    let _connected = ConnectedGauge::increment();
    // Replies are written whole; Nagle would only delay them.
    stream.set_nodelay(true)?;
    let mut input = Vec::with_capacity(READ_CHUNK);
    let mut output = Vec::new();
    loop {
        input.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Ok(()),
            read = stream.read_buf(&mut input) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
        let close = run_complete_requests(&mut session, &mut input, &mut output);
        stream.write_all(&output).await?;
        output.clear();
        if close {
            return Ok(());
        }
    }
}

/// Runs every complete request at the start of `input`, removes them, and
/// appends their replies to `output`. Returns true when the connection must
/// close after the replies are sent (a protocol error, as in Redis).
fn run_complete_requests(session: &mut Session, input: &mut Vec<u8>, output: &mut Vec<u8>) -> bool {
    let mut used = 0;
    let close = loop {
        match parse_request(&input[used..], session.must_authenticate()) {
            Ok(Some(request)) => {
                used += request.len;
                if !request.argv.is_empty() {
                    session.execute(&request.argv).encode(output);
                }
            }
            Ok(None) => break false,
            Err(e) => {
                tracing::debug!(error = %e, "closing a connection after a protocol error");
                e.reply().encode(output);
                break true;
            }
        }
    };
    input.drain(..used);
    close
}

/// Counts the connection in `keyferry_connected_clients` while it lives.
struct ConnectedGauge;

impl ConnectedGauge {
    fn increment() -> Self {
        metrics::gauge!("keyferry_connected_clients").increment(1.0);
        Self
    }
}

impl Drop for ConnectedGauge {
    fn drop(&mut self) {
        metrics::gauge!("keyferry_connected_clients").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
        let (mut input, mut output) = (input.to_vec(), Vec::new());
        let close = run_complete_requests(&mut Session::new(None), &mut input, &mut output);
        (output, input, close)
    }

    #[test]
    fn answers_pipelined_requests_in_order_and_keeps_a_partial_one() {
        let (output, rest, close) =
            run(b"PING\r\n*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n\r\n*1\r\n$4\r\nPI");
        assert_eq!(output, b"+PONG\r\n$2\r\nhi\r\n");
        assert_eq!(rest, b"*1\r\n$4\r\nPI");
        assert!(!close);
    }

    #[test]
    fn answers_what_came_before_a_protocol_error_then_closes() {
        let (output, _, close) = run(b"PING\r\n*1\r\nx\r\nPING\r\n");
        assert_eq!(
            output,
            b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n"
        );
        assert!(close);
    }
}
