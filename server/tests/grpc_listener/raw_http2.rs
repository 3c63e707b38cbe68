//! Framing and protocol errors, sent with a bare HTTP/2 client: compressed and oversized
//! messages, unknown methods, non-gRPC requests, truncated bodies.

use std::net::SocketAddr;
use std::time::Duration;

use async_std::net::TcpStream;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use prost::Message;
use qraft_proto::etcdserverpb::{PutRequest, PutResponse};
use qraft_server::grpc::GrpcLimits;
use qraft_server::http::FuturesIo;

use crate::scripted_core::ScriptedCore;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
pub struct Spawn;

impl<F> hyper::rt::Executor<F> for Spawn
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        async_std::task::spawn(future);
    }
}

struct Answer {
    http_status: StatusCode,
    grpc_status: Option<String>,
    grpc_message: Option<String>,
    data: Bytes,
}

/// Sends one request and collects the whole answer, trailers included.
fn send(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    async_std::task::block_on(async_std::future::timeout(WAIT, async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(Spawn, FuturesIo::new(tcp))
                .await
                .expect("HTTP/2 handshake");
        async_std::task::spawn(connection);
        let request = Request::post(format!("http://{addr}{path}"))
            .header("content-type", content_type)
            .header("te", "trailers")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let http_status = response.status();
        let collected = response.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let text = |name: &str| {
            trailers
                .get(name)
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        Answer {
            http_status,
            grpc_status: text("grpc-status"),
            grpc_message: text("grpc-message"),
            data: collected.to_bytes(),
        }
    }))
    .expect("answered in time")
}

pub fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn put_request(value_len: usize) -> Vec<u8> {
    PutRequest {
        key: Bytes::from_static(b"k"),
        value: Bytes::from(vec![b'v'; value_len]),
        ..Default::default()
    }
    .encode_to_vec()
}

const GRPC: &str = "application/grpc";

#[test]
fn a_well_formed_unary_call_answers_one_message_and_ok() {
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        GRPC,
        frame(0, &put_request(3)),
    );
    assert_eq!(answer.http_status, StatusCode::OK);
    assert_eq!(answer.grpc_status.as_deref(), Some("0"));
    assert_eq!(answer.data[0], 0, "uncompressed");
    let len = u32::from_be_bytes([
        answer.data[1],
        answer.data[2],
        answer.data[3],
        answer.data[4],
    ]);
    assert_eq!(len as usize, answer.data.len() - 5);
    let put = PutResponse::decode(&answer.data[5..]).expect("a PutResponse");
    assert_eq!(put.header.map(|h| h.revision), Some(1));
}

#[test]
fn a_compressed_message_without_grpc_encoding_is_internal() {
    // grpc-go's answer: the flag says compressed, but the call named no compressor.
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        GRPC,
        frame(1, &put_request(3)),
    );
    assert_eq!(answer.grpc_status.as_deref(), Some("13"));
    assert_eq!(
        answer.grpc_message.as_deref(),
        Some("grpc: compressed flag set with identity or empty encoding")
    );
    assert!(answer.data.is_empty());
}

#[test]
fn oversized_messages_are_resource_exhausted() {
    let limits = GrpcLimits {
        max_recv_message_bytes: 1024,
    };
    let addr = crate::start(ScriptedCore::default(), limits);
    let message = put_request(2048);
    let answer = send(addr, "/etcdserverpb.KV/Put", GRPC, frame(0, &message));
    assert_eq!(answer.grpc_status.as_deref(), Some("8"));
    assert_eq!(
        answer.grpc_message.as_deref(),
        Some(
            format!(
                "grpc: received message larger than max ({} vs. 1024)",
                message.len()
            )
            .as_str()
        )
    );
}

#[test]
fn unknown_methods_and_services_are_unimplemented() {
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let answer = send(addr, "/etcdserverpb.KV/Scan", GRPC, frame(0, b""));
    assert_eq!(answer.grpc_status.as_deref(), Some("12"));
    assert_eq!(
        answer.grpc_message.as_deref(),
        Some("unknown method Scan for service etcdserverpb.KV")
    );
    let answer = send(addr, "/v2pb.Keys/Get", GRPC, frame(0, b""));
    assert_eq!(
        answer.grpc_message.as_deref(),
        Some("unknown service v2pb.Keys")
    );
}

#[test]
fn garbage_and_truncated_bodies_get_errors_not_crashes() {
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        GRPC,
        frame(0, &[0xff, 0xff, 0xff]),
    );
    assert_eq!(
        answer.grpc_status.as_deref(),
        Some("13"),
        "undecodable message"
    );
    let mut truncated = frame(0, &put_request(10));
    truncated.truncate(8);
    let answer = send(addr, "/etcdserverpb.KV/Put", GRPC, truncated);
    assert_eq!(
        answer.grpc_status.as_deref(),
        Some("13"),
        "body ends mid-message"
    );
    let mut two = frame(0, &put_request(1));
    two.extend(frame(0, &put_request(1)));
    let answer = send(addr, "/etcdserverpb.KV/Put", GRPC, two);
    assert_eq!(
        answer.grpc_status.as_deref(),
        Some("13"),
        "two messages on a unary call"
    );
    // The listener still serves after all of that.
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        GRPC,
        frame(0, &put_request(1)),
    );
    assert_eq!(answer.grpc_status.as_deref(), Some("0"));
}

#[test]
fn requests_that_are_not_grpc_get_plain_http_errors() {
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(answer.http_status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.grpc_status, None);
}

#[test]
fn raw_tcp_garbage_closes_the_connection_and_the_listener_keeps_serving() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    async_std::task::block_on(async_std::future::timeout(WAIT, async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage")
            .await
            .expect("write");
        let mut sink = Vec::new();
        // The server closes the connection (with or without a GOAWAY first).
        let _ = tcp.read_to_end(&mut sink).await;
    }))
    .expect("closed in time");
    let answer = send(
        addr,
        "/etcdserverpb.KV/Put",
        GRPC,
        frame(0, &put_request(1)),
    );
    assert_eq!(answer.grpc_status.as_deref(), Some("0"));
}
