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
