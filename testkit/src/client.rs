//! A raw RESP client for differential tests: it sends bytes exactly as
//! given and returns each reply's bytes exactly as received, so replies
//! from `redis-server` and `keyferry serve` compare byte for byte.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// How long one read may block before the test fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking connection to a server on the loopback interface.
pub struct RawClient {
    reader: BufReader<TcpStream>,
}

impl RawClient {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends one command as a RESP array of bulk strings.
    pub fn send_command(&mut self, argv: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", argv.len()).into_bytes();
        for arg in argv {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.send(&out)
    }

    /// Sends a command and returns its reply's bytes.
    pub fn command(&mut self, argv: &[&[u8]]) -> io::Result<Vec<u8>> {
        self.send_command(argv)?;
        self.read_reply()
    }

    /// Reads one whole reply (nested aggregates included) and returns its
    /// bytes as they came off the wire.
    pub fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        self.read_into(&mut raw)?;
        Ok(raw)
    }

    /// True when the server has closed the connection (reads end of file).
    pub fn is_closed(&mut self) -> io::Result<bool> {
        Ok(self.reader.fill_buf()?.is_empty())
    }

    fn read_into(&mut self, raw: &mut Vec<u8>) -> io::Result<()> {
        let start = raw.len();
        if self.reader.read_until(b'\n', raw)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a reply",
            ));
        }
        let line = &raw[start..];
        let header = std::str::from_utf8(&line[1..])
            .map(str::trim_end)
            .unwrap_or("");
        let count = || header.parse::<i64>().map_err(|_| bad_header(line));
        match line[0] {
            // Simple string, error, integer, null, boolean, double, big number.
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(()),
            // Bulk string, bulk error, verbatim string; -1 is null.
            b'$' | b'!' | b'=' => match usize::try_from(count()?) {
                Ok(len) => {
                    let mut body = vec![0; len + 2];
                    self.reader.read_exact(&mut body)?;
                    raw.extend(body);
                    Ok(())
                }
                Err(_) => Ok(()),
            },
            // Array, set, push, attribute; a map has two replies per entry.
            b'*' | b'~' | b'>' | b'|' | b'%' => {
                let per_entry = if matches!(line[0], b'%' | b'|') { 2 } else { 1 };
                for _ in 0..count()?.max(0) * per_entry {
                    self.read_into(raw)?;
                }
                Ok(())
            }
            _ => Err(bad_header(line)),
        }
    }
}

fn bad_header(line: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a RESP reply: {:?}", String::from_utf8_lossy(line)),
    )
}
