//! HTTP/1.1 on a client URL, as etcd serves it beside gRPC on the same port: `/v3/...` is the
//! JSON gateway ([`super::gateway`]); every other path goes to the member's HTTP endpoints
//! (`/health`, `/livez`, `/readyz`, `/metrics`, `/version`) — the same [`Responder`] the
//! `--listen-metrics-urls` listener serves, so both listeners answer alike.

use std::convert::Infallible;

use futures::{AsyncRead, AsyncWrite};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};

use super::body::GrpcBody;
use super::gateway;
use super::handler::CallContext;
use super::listener::Serving;
use crate::http::{FuturesIo, HEADER_READ_TIMEOUT, RuntimeTimer, into_response};

pub(super) async fn serve_http1<S>(
    stream: S,
    ctx: CallContext,
    serving: Serving,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let serving = serving.clone();
        let ctx = ctx.clone();
        async move {
            let response = if serving.gateway && request.uri().path().starts_with("/v3/") {
                gateway::serve(serving, ctx, request).await
            } else if let Some(endpoints) = &serving.http {
                let uri = request.uri();
                let reply = endpoints
                    .respond_boxed(request.method().as_str(), uri.path(), uri.query())
                    .await;
                into_response(reply, GrpcBody::full)
            } else {
                gateway::plain_text(StatusCode::NOT_FOUND, "404 page not found\n")
            };
            Ok::<_, Infallible>(response)
        }
    });
    http1::Builder::new()
        .timer(RuntimeTimer)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(FuturesIo::new(stream), service)
        .await?;
    Ok(())
}
