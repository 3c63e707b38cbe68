//! The listener over TLS: HTTP/2 negotiated by ALPN `h2`, plaintext refused on a TLS URL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpStream;
use futures::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use prost::Message;
use qraft_proto::etcdserverpb::{MemberListRequest, MemberListResponse};
use qraft_server::grpc::{GrpcLimits, GrpcServer};
use qraft_server::http::FuturesIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::raw_http2::{Spawn, frame};
use crate::scripted_core::ScriptedCore;

const WAIT: Duration = Duration::from_secs(10);

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf certificate");
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).expect("trust the CA");
    let mut client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    (Arc::new(server), Arc::new(client))
}

fn start_tls(server_config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let server = async_std::task::block_on(GrpcServer::bind(
        &["https://127.0.0.1:0".parse().expect("a valid URL")],
        Some(server_config),
        Arc::new(ScriptedCore::default()),
        GrpcLimits::default(),
    ))
    .expect("bind");
    let addr = server.local_addrs()[0];
    async_std::task::spawn(server.run());
    addr
}

#[test]
fn grpc_over_tls_negotiates_h2() {
    let (server_config, client_config) = tls_configs();
    let addr = start_tls(server_config);
    async_std::task::block_on(async_std::future::timeout(WAIT, async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let tls = TlsConnector::from(client_config)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(Spawn, FuturesIo::new(tls))
                .await
                .expect("HTTP/2 handshake");
        async_std::task::spawn(connection);
        let body = frame(0, &MemberListRequest::default().encode_to_vec());
        let request = Request::post(format!("https://{addr}/etcdserverpb.Cluster/MemberList"))
            .header("content-type", "application/grpc")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let collected = response.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert_eq!(trailers["grpc-status"], "0");
        let data = collected.to_bytes();
        let members = MemberListResponse::decode(&data[5..]).expect("a member list");
        assert_eq!(members.members.len(), 1);
    }))
    .expect("in time");
}

#[test]
fn plaintext_http2_on_a_tls_url_gets_no_answer() {
    let (server_config, _) = tls_configs();
    let addr = start_tls(server_config);
    async_std::task::block_on(async_std::future::timeout(WAIT, async move {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        assert!(
            !answer.windows(4).any(|w| w == b"HTTP"),
            "no HTTP answer in plaintext"
        );
    }))
    .expect("closed in time");
}
