//! Serves one HTTP/2 request as one gRPC call: checks the gRPC headers, finds the method,
//! turns request messages into `ClientRequest`s for the core and its answers into the body.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::stream::{self, BoxStream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method as HttpMethod, Request, Response, StatusCode};
use qraft_proto::qraftpb::ClientRequest;

use qraft_io::metrics::Metrics;

use super::body::GrpcBody;
use super::codec::{FrameDecoder, MessageEncoding, PREFIX_LEN};
use super::handler::CallContext;
use super::health_check;
use super::listener::Serving;
use super::methods::{self, Method, Shape};
use super::recipes::{self, Recipe};
use super::status::{Code, Status};

/// Serves one call. Never fails at the HTTP level except for requests that are not gRPC.
pub(super) async fn serve_call(
    serving: Serving,
    ctx: CallContext,
    request: Request<Incoming>,
) -> Response<GrpcBody> {
    if request.method() != HttpMethod::POST {
        return plain_http(StatusCode::METHOD_NOT_ALLOWED);
    }
    let is_grpc = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        return plain_http(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let encoding =
        MessageEncoding::from_header(request.headers().get("grpc-encoding").map(|v| v.as_bytes()));
    let reply_encoding = encoding.as_ref().map_or(MessageEncoding::Identity, |e| {
        reply_encoding(request.headers(), *e)
    });
    let encodings = encoding.map(|e| (e, reply_encoding));
    let body = match prepare(&serving, ctx, request, encodings).await {
        Ok(body) => body,
        Err(status) => GrpcBody::status(status),
    };
    grpc_response(body, reply_encoding)
}

/// grpc-go's rule: answers are compressed with the request's compressor, unless the client
/// said it does not accept it.
fn reply_encoding(headers: &HeaderMap, request: MessageEncoding) -> MessageEncoding {
    let accepted = headers
        .get("grpc-accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|list| list.split(',').any(|e| e.trim() == "gzip"));
    match request {
        MessageEncoding::Gzip if accepted => MessageEncoding::Gzip,
        _ => MessageEncoding::Identity,
    }
}

/// `encodings`: the request's message encoding and the answer's, or the status that refuses
/// the request's.
async fn prepare(
    serving: &Serving,
    ctx: CallContext,
    request: Request<Incoming>,
    encodings: Result<(MessageEncoding, MessageEncoding), Status>,
) -> Result<GrpcBody, Status> {
    let Serving {
        core,
        limits,
        metrics,
        ..
    } = serving;
    let (encoding, reply_encoding) = encodings?;
    if request.uri().path() == health_check::CHECK_PATH {
        let mut messages =
            request_messages(request.into_body(), limits.max_recv_message_bytes, encoding);
        return health_check::check(single_message(&mut messages).await?)
            .map(|message| GrpcBody::message(message, reply_encoding));
    }
    if let Some(recipe) = recipes::lookup(request.uri().path()) {
        return serve_recipe(serving, ctx, request, recipe?, encoding, reply_encoding).await;
    }
    let method = methods::lookup(request.uri().path())?;
    let token = auth_token(request.headers());
    let mut messages =
        request_messages(request.into_body(), limits.max_recv_message_bytes, encoding);
    match method.shape {
        Shape::Unary => {
            let request = single_request(&mut messages, method, token, metrics).await?;
            let response = core.call(ctx, request).await;
            Ok(match (method.encode)(response) {
                Ok(message) => {
                    metrics.client.sent(PREFIX_LEN + message.len());
                    GrpcBody::message(message, reply_encoding)
                }
                Err(status) => GrpcBody::status(status),
            })
        }
        Shape::ServerStream => {
            let request = single_request(&mut messages, method, token, metrics).await?;
            let responses = core.open_stream(ctx, stream::iter([request]).boxed());
            let (_no_abort, abort) = oneshot::channel();
            Ok(GrpcBody::stream(
                responses,
                method.encode,
                abort,
                metrics.clone(),
                reply_encoding,
            ))
        }
        Shape::Bidirectional => {
            let (abort_tx, abort) = oneshot::channel();
            let requests = request_stream(messages, method, token, abort_tx, metrics.clone());
            let responses = core.open_stream(ctx, requests);
            Ok(GrpcBody::stream(
                responses,
                method.encode,
                abort,
                metrics.clone(),
                reply_encoding,
            ))
        }
    }
}

/// A call of etcd's lock or election services.
async fn serve_recipe(
    serving: &Serving,
    ctx: CallContext,
    request: Request<Incoming>,
    recipe: Recipe,
    encoding: MessageEncoding,
    reply_encoding: MessageEncoding,
) -> Result<GrpcBody, Status> {
    let token = auth_token(request.headers());
    let deadline = recipes::deadline(request.headers());
    let mut messages = request_messages(
        request.into_body(),
        serving.limits.max_recv_message_bytes,
        encoding,
    );
    let message = single_message(&mut messages).await?;
    serving
        .metrics
        .client
        .received(None, PREFIX_LEN + message.len());
    let client = recipes::inner_client(&serving.core, ctx, token);
    Ok(match recipe {
        Recipe::Unary(run) => match recipes::run_unary(run, client, message, deadline).await {
            Ok(reply) => {
                serving.metrics.client.sent(PREFIX_LEN + reply.len());
                GrpcBody::message(reply, reply_encoding)
            }
            Err(status) => GrpcBody::status(status),
        },
        Recipe::ServerStream(run) => GrpcBody::messages(
            recipes::run_stream(run, client, message, deadline),
            serving.metrics.clone(),
            reply_encoding,
        ),
    })
}

/// The bearer token etcd clients send as the `token` metadata (the HTTP gateway's
/// `authorization` is accepted too).
pub(super) fn auth_token(headers: &HeaderMap) -> String {
    ["token", "authorization"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_owned()
}

/// Decodes one request message, counting it (by type) and its bytes for the metrics.
pub(super) fn decode_request(
    method: Method,
    token: &str,
    message: Bytes,
    metrics: &Metrics,
) -> Result<ClientRequest, Status> {
    let wire_bytes = PREFIX_LEN + message.len();
    let request = (method.decode)(message).map_err(|error| {
        Status::new(
            Code::Internal,
            format!("grpc: error unmarshalling request: {error}"),
        )
    })?;
    metrics.client.received(Some(&request), wire_bytes);
    Ok(ClientRequest {
        token: token.to_owned(),
        cert_common_name: String::new(),
        token_claims: None,
        request: Some(request),
    })
}

/// The one request message of a unary or server-streaming call; a second one is a protocol
/// violation, as in grpc-go.
async fn single_request(
    messages: &mut BoxStream<'static, Result<Bytes, Status>>,
    method: Method,
    token: String,
    metrics: &Metrics,
) -> Result<ClientRequest, Status> {
    let message = single_message(messages).await?;
    decode_request(method, &token, message, metrics)
}

/// The one message of a unary or server-streaming call, still encoded.
async fn single_message(
    messages: &mut BoxStream<'static, Result<Bytes, Status>>,
) -> Result<Bytes, Status> {
    let Some(first) = messages.next().await else {
        return Err(Status::new(
            Code::Internal,
            "grpc: client sent no request message",
        ));
    };
    let first = first?;
    if messages.next().await.transpose()?.is_some() {
        return Err(Status::new(
            Code::Internal,
            "grpc: client streaming protocol violation: got second message for a unary call",
        ));
    }
    Ok(first)
}

/// Requests of a bidirectional call. A bad message stops the stream and reports its status
/// through `abort`, which ends the response with it.
fn request_stream(
    messages: BoxStream<'static, Result<Bytes, Status>>,
    method: Method,
    token: String,
    abort: oneshot::Sender<Status>,
    metrics: Arc<Metrics>,
) -> BoxStream<'static, ClientRequest> {
    stream::unfold((messages, Some(abort)), move |(mut messages, mut abort)| {
        let token = token.clone();
        let metrics = metrics.clone();
        async move {
            let outcome = match messages.next().await? {
                Ok(message) => decode_request(method, &token, message, &metrics),
                Err(status) => Err(status),
            };
            match outcome {
                Ok(request) => Some((request, (messages, abort))),
                Err(status) => {
                    if let Some(abort) = abort.take() {
                        // The response may already be gone; then nobody needs the status.
                        let _ = abort.send(status);
                    }
                    None
                }
            }
        }
    })
    .boxed()
}

/// The gRPC messages of a request body, each checked against the receive limit.
fn request_messages(
    body: Incoming,
    max_bytes: usize,
    encoding: MessageEncoding,
) -> BoxStream<'static, Result<Bytes, Status>> {
    struct State {
        body: Incoming,
        decoder: FrameDecoder,
        done: bool,
    }
    let state = State {
        body,
        decoder: FrameDecoder::new(max_bytes, encoding),
        done: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            match state.decoder.next_message() {
                Ok(Some(message)) => return Some((Ok(message), state)),
                Ok(None) => {}
                Err(status) => {
                    state.done = true;
                    return Some((Err(status), state));
                }
            }
            match state.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        state.decoder.push(data);
                    }
                }
                Some(Err(error)) => {
                    state.done = true;
                    let status = Status::new(Code::Cancelled, format!("request body: {error}"));
                    return Some((Err(status), state));
                }
                None => {
                    state.done = true;
                    if state.decoder.has_partial_message() {
                        let status = Status::new(
                            Code::Internal,
                            "grpc: request body ended inside a message",
                        );
                        return Some((Err(status), state));
                    }
                    return None;
                }
            }
        }
    })
    .boxed()
}

fn grpc_response(body: GrpcBody, encoding: MessageEncoding) -> Response<GrpcBody> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    if encoding == MessageEncoding::Gzip {
        headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
    }
    headers.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static("gzip,identity"),
    );
    headers.insert(
        "qraft-version",
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    response
}

fn plain_http(status: StatusCode) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody::empty());
    *response.status_mut() = status;
    response
}
