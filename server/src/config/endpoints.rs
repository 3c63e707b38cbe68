//! The member's URLs: where it listens (peers, clients, metrics, the extra gRPC listener) and
//! what it advertises, with etcd's defaults (advertised = listened unless given).

use super::{
    ConfigError, DEFAULT_CLIENT_URL, DEFAULT_PEER_URL, Flags, Scheme, Url, invalid, parse_list,
};

/// The URL lists of one member, parsed and checked to be bindable.
#[derive(Debug)]
pub(super) struct Endpoints {
    pub listen_peer_urls: Vec<Url>,
    pub listen_client_urls: Vec<Url>,
    pub advertise_client_urls: Vec<Url>,
    pub initial_advertise_peer_urls: Vec<Url>,
    pub listen_metrics_urls: Vec<Url>,
    pub listen_grpc_urls: Vec<Url>,
    /// HTTP/1.1-only client URLs; when any is given, the client URLs serve gRPC only.
    pub listen_client_http_urls: Vec<Url>,
}

/// A non-empty URL list from `text`, or from `default` when the flag is not given.
fn non_empty_list(
    flag: &'static str,
    text: Option<&str>,
    default: &str,
) -> Result<Vec<Url>, ConfigError> {
    let list =
        parse_list(text.unwrap_or(default)).map_err(|source| ConfigError::Url { flag, source })?;
    if list.is_empty() {
        return Err(invalid(format!("{flag} must name at least one URL")));
    }
    Ok(list)
}

/// An optional URL list: empty when the flag is not given.
fn optional_list(
    flag: &'static str,
    text: Option<&str>,
    empty_is_error: bool,
) -> Result<Vec<Url>, ConfigError> {
    match text {
        Some(text) if empty_is_error => non_empty_list(flag, Some(text), ""),
        Some(text) => parse_list(text).map_err(|source| ConfigError::Url { flag, source }),
        None => Ok(Vec::new()),
    }
}

impl Endpoints {
    pub(super) fn resolve(s: &Flags) -> Result<Self, ConfigError> {
        let listen_peer_urls = non_empty_list(
            "--listen-peer-urls",
            s.listen_peer_urls.as_deref(),
            DEFAULT_PEER_URL,
        )?;
        let listen_client_urls = non_empty_list(
            "--listen-client-urls",
            s.listen_client_urls.as_deref(),
            DEFAULT_CLIENT_URL,
        )?;
        let advertise_client_urls = match s.advertise_client_urls.as_deref() {
            Some(v) => non_empty_list("--advertise-client-urls", Some(v), "")?,
            None => listen_client_urls.clone(),
        };
        let initial_advertise_peer_urls = match s.initial_advertise_peer_urls.as_deref() {
            Some(v) => non_empty_list("--initial-advertise-peer-urls", Some(v), "")?,
            None => listen_peer_urls.clone(),
        };
        let endpoints = Endpoints {
            listen_peer_urls,
            listen_client_urls,
            advertise_client_urls,
            initial_advertise_peer_urls,
            // None by default, as etcd.
            listen_metrics_urls: optional_list(
                "--listen-metrics-urls",
                s.listen_metrics_urls.as_deref(),
                true,
            )?,
            // Off unless asked for; `http://` entries are the explicit request for plaintext.
            listen_grpc_urls: optional_list(
                "--listen-grpc-urls",
                s.listen_grpc_urls.as_deref(),
                false,
            )?,
            listen_client_http_urls: optional_list(
                "--listen-client-http-urls",
                s.listen_client_http_urls.as_deref(),
                false,
            )?,
        };
        endpoints.check_bindable()?;
        Ok(endpoints)
    }

    /// Every listen URL names an address to bind; metrics are served over plain HTTP only.
    /// Client URLs may be `http://` as in etcd: such a URL serves plaintext gRPC only (QUIC
    /// always runs TLS). Peer URLs too: see `PeerVerify`.
    fn check_bindable(&self) -> Result<(), ConfigError> {
        for (flag, list) in [
            ("--listen-peer-urls", &self.listen_peer_urls),
            ("--listen-client-urls", &self.listen_client_urls),
            ("--listen-metrics-urls", &self.listen_metrics_urls),
            ("--listen-grpc-urls", &self.listen_grpc_urls),
            ("--listen-client-http-urls", &self.listen_client_http_urls),
        ] {
            for u in list {
                u.bind_addr()
                    .map_err(|source| ConfigError::Url { flag, source })?;
            }
        }
        if let Some(u) = (self.listen_metrics_urls.iter()).find(|u| u.scheme != Scheme::Http) {
            return Err(invalid(format!(
                "--listen-metrics-urls: {u} must be http:// (TLS on the metrics listener is not supported yet)"
            )));
        }
        // One port serves both protocols, or (etcd's split) gRPC here and HTTP/1.1 there.
        for http in &self.listen_client_http_urls {
            let same = |u: &Url| u.bind_addr().ok() == http.bind_addr().ok();
            if self.listen_client_urls.iter().any(same) || self.listen_grpc_urls.iter().any(same) {
                return Err(invalid(format!(
                    "--listen-client-http-urls: {http} is also a gRPC client URL; give \
                     --listen-client-http-urls another port (or leave it out: every client URL \
                     then serves both)"
                )));
            }
        }
        Ok(())
    }

    /// The client-facing listeners, which `--client-cert-auth` must be able to enforce on.
    pub(super) fn client_listeners(&self) -> [(&'static str, &[Url]); 3] {
        [
            ("--listen-client-urls", &self.listen_client_urls),
            ("--listen-grpc-urls", &self.listen_grpc_urls),
            ("--listen-client-http-urls", &self.listen_client_http_urls),
        ]
    }
}
