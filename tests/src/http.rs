//! A minimal blocking HTTP/1.0 client for talking to local test servers (etcd's JSON
//! gateway, qraft's metrics listener). HTTP/1.0 with `Connection: close` means the body is simply everything until the
//! server closes the connection: no chunked decoding, no keep-alive.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Status code and body of a response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// POSTs `body` as JSON to `http://{addr}{path}`.
pub fn post_json(addr: &str, path: &str, body: &str) -> std::io::Result<HttpResponse> {
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &request, Duration::from_secs(30))
}

/// POSTs `body` as JSON with extra header lines (`("Authorization", token)`).
pub fn post_json_with(
    addr: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &request, Duration::from_secs(30))
}

/// An HTTP request whose answer streams (the gateway's `/v3/watch`): the status and body
/// lines read so far are returned as soon as `wanted(lines)` holds, or when `timeout` ends.
/// The connection stays open (and is returned) so more lines can be read.
pub struct LineStream {
    stream: TcpStream,
    pending: Vec<u8>,
    pub status: u16,
}

impl LineStream {
    /// POSTs `body` to `path` and reads the response head.
    pub fn post(addr: &str, path: &str, body: &str) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let request = format!(
            "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut this = LineStream {
            stream,
            pending: Vec::new(),
            status: 0,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = this.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&this.pending[..end]).into_owned();
                this.pending.drain(..end + 4);
                this.status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| std::io::Error::other(format!("no status in {head:.200}")))?;
                return Ok(this);
            }
            if std::time::Instant::now() > deadline || !this.fill()? {
                return Err(std::io::Error::other("no response head"));
            }
        }
    }

    /// Reads more bytes; false when the server closed the connection.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// The next body line (without its newline), or an error after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> std::io::Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..=end);
                return Ok(line);
            }
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "no line in {timeout:?}; have {:?}",
                    String::from_utf8_lossy(&self.pending)
                )));
            }
            if !self.fill()? {
                return Err(std::io::Error::other("connection closed"));
            }
        }
    }
}

/// `GET http://{addr}{path}`.
pub fn get(addr: &str, path: &str) -> std::io::Result<HttpResponse> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, &request, Duration::from_secs(20))
}

/// Sends one request and reads the response until the server closes the connection.
fn exchange(addr: &str, request: &str, read_timeout: Duration) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(read_timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("malformed HTTP response: {text:.200}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:.200}")))?;
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}
