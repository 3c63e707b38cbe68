//! Raw QUIC access to a member's ports for abuse tests: open connections with any TLS
//! configuration (wrong ALPN, foreign certificates) and write arbitrary bytes on streams,
//! bypassing the client library's framing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{ClientConfig, Endpoint, EndpointConfig, TransportConfig};

/// How the member treated a stream we wrote to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutcome {
    /// It answered with these bytes and finished its side.
    Answered(Vec<u8>),
    /// It reset its side of the stream (with this application error code).
    Reset(u64),
    /// It stopped reading our side before we finished writing.
    Stopped(u64),
    /// It closed the whole connection.
    ConnectionClosed(String),
    /// No answer within the wait.
    Silent,
}

/// A client endpoint on an ephemeral 127.0.0.1 port dialing with `tls`.
pub fn endpoint(tls: rustls::ClientConfig) -> Endpoint {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
    let mut endpoint = Endpoint::new(
        EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::AsyncStdRuntime),
    )
    .expect("client endpoint");
    let crypto = QuicClientConfig::try_from(tls).expect("TLS 1.3 config usable for QUIC");
    let mut config = ClientConfig::new(Arc::new(crypto));
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_secs(5)).expect("idle timeout"),
    ));
    config.transport_config(Arc::new(transport));
    endpoint.set_default_client_config(config);
    endpoint
}

/// Dials `addr` (certificate name 127.0.0.1); the error text when the handshake fails. A
/// connection the server rejects after the handshake (TLS 1.3 verifies the client's
/// certificate last) shows up as closed within a short wait.
pub async fn connect(endpoint: &Endpoint, addr: SocketAddr) -> Result<quinn::Connection, String> {
    let connecting = endpoint
        .connect(addr, "127.0.0.1")
        .map_err(|e| e.to_string())?;
    let conn = qraft_io::runtime::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
    // Give a post-handshake rejection the time to arrive.
    qraft_io::runtime::sleep(Duration::from_millis(300)).await;
    match conn.close_reason() {
        Some(reason) => Err(reason.to_string()),
        None => Ok(conn),
    }
}

/// Opens a bidirectional stream, writes `bytes`, optionally finishes, and reports what the
/// member did within `wait`.
pub async fn bidi(
    conn: &quinn::Connection,
    bytes: &[u8],
    finish: bool,
    wait: Duration,
) -> StreamOutcome {
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return StreamOutcome::ConnectionClosed(e.to_string()),
    };
    if let Err(e) = send.write_all(bytes).await {
        return match e {
            quinn::WriteError::Stopped(code) => StreamOutcome::Stopped(code.into_inner()),
            quinn::WriteError::ConnectionLost(e) => StreamOutcome::ConnectionClosed(e.to_string()),
            other => StreamOutcome::ConnectionClosed(other.to_string()),
        };
    }
    if finish {
        let _ = send.finish();
    }
    read_outcome(&mut recv, wait).await
}

/// Opens a unidirectional stream (the peer protocol's kind), writes `bytes` and finishes;
/// reports whether the member stopped it or closed the connection within `wait`.
pub async fn uni(conn: &quinn::Connection, bytes: &[u8], wait: Duration) -> StreamOutcome {
    let mut send = match conn.open_uni().await {
        Ok(s) => s,
        Err(e) => return StreamOutcome::ConnectionClosed(e.to_string()),
    };
    if let Err(e) = send.write_all(bytes).await {
        return match e {
            quinn::WriteError::Stopped(code) => StreamOutcome::Stopped(code.into_inner()),
            other => StreamOutcome::ConnectionClosed(other.to_string()),
        };
    }
    let _ = send.finish();
    match qraft_io::runtime::timeout(wait, send.stopped()).await {
        Ok(Ok(Some(code))) => StreamOutcome::Stopped(code.into_inner()),
        Ok(Ok(None)) => StreamOutcome::Answered(Vec::new()),
        Ok(Err(e)) => StreamOutcome::ConnectionClosed(e.to_string()),
        Err(_) => match conn.close_reason() {
            Some(reason) => StreamOutcome::ConnectionClosed(reason.to_string()),
            None => StreamOutcome::Silent,
        },
    }
}

async fn read_outcome(recv: &mut quinn::RecvStream, wait: Duration) -> StreamOutcome {
    let read = qraft_io::runtime::timeout(wait, recv.read_to_end(64 * 1024 * 1024)).await;
    match read {
        Ok(Ok(bytes)) => StreamOutcome::Answered(bytes),
        Ok(Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))) => {
            StreamOutcome::Reset(code.into_inner())
        }
        Ok(Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e)))) => {
            StreamOutcome::ConnectionClosed(e.to_string())
        }
        Ok(Err(e)) => StreamOutcome::ConnectionClosed(e.to_string()),
        Err(_) => StreamOutcome::Silent,
    }
}

/// Decodes an answer as one length-prefixed frame of `M`.
pub fn decode_frame<M: prost::Message + Default>(bytes: &[u8]) -> Option<M> {
    let (len, body) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    M::decode(body.get(..len)?).ok()
}

/// Sends `count` datagrams of random garbage (sizes 1..=1400, seeded) to `addr`.
pub fn udp_garbage(addr: SocketAddr, count: usize, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    for i in 0..count {
        let len = rng.random_range(1..=1400);
        let mut datagram: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Every fourth one looks like a QUIC long-header Initial packet.
        if i % 4 == 0 {
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
            if datagram.len() > 5 {
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
        }
        let _ = socket.send_to(&datagram, addr);
    }
}
