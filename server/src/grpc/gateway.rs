//! etcd's JSON gateway (`/v3/...` over HTTP/1.1 on the client URLs): each path calls the gRPC
//! method it is bound to through the same decode → core → encode path as a gRPC call
//! ([`super::methods`]), with JSON instead of protobuf on the wire ([`super::gateway_json`]).
//!
//! As grpc-gateway does: unary answers are the response's JSON; streams (`/v3/watch`,
//! `/v3/lease/keepalive`, `/v3/maintenance/snapshot`) answer one `{"result":…}` line per
//! message, and `{"error":…}` as the last line if the call fails; a request stream is a
//! sequence of JSON objects in the body. Errors of unary calls are
//! `{"error":…,"code":…,"message":…}` with the HTTP status grpc-gateway maps the code to.
//! The lock and election paths run their recipes ([`super::recipes`]) the same way.

use futures::stream::{self, BoxStream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method as HttpMethod, Request, Response, StatusCode};
use prost_reflect::MessageDescriptor;

use super::body::GrpcBody;
use super::call::{auth_token, decode_request};
use super::gateway_json::{self, Route};
use super::handler::CallContext;
use super::listener::Serving;
use super::methods::{self, Method, Shape};
use super::recipes::{self, Recipe};
use super::status::{Code, Status};

/// Serves one `/v3/...` request.
pub(super) async fn serve(
    serving: Serving,
    ctx: CallContext,
    request: Request<Incoming>,
) -> Response<GrpcBody> {
    let route = match gateway_json::lookup(request.uri().path()) {
        Ok(Some(route)) => route,
        Ok(None) => return plain_text(StatusCode::NOT_FOUND, "Not Found\n"),
        Err(status) => return error_response(&status),
    };
    if request.method() != HttpMethod::POST {
        return plain_text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    if let Some(recipe) = recipes::lookup(route.grpc_path) {
        let outcome = match recipe {
            Ok(recipe) => call_recipe(&serving, ctx, request, recipe, &route).await,
            Err(status) => Err(status),
        };
        return outcome.unwrap_or_else(|status| error_response(&status));
    }
    let method = match methods::lookup(route.grpc_path) {
        Ok(method) => method,
        Err(status) => return error_response(&status),
    };
    match call(&serving, ctx, request, method, &route).await {
        Ok(response) => response,
        Err(status) => error_response(&status),
    }
}

async fn call(
    serving: &Serving,
    ctx: CallContext,
    request: Request<Incoming>,
    method: Method,
    route: &Route,
) -> Result<Response<GrpcBody>, Status> {
    let token = auth_token(request.headers());
    // JSON (base64 bytes) is larger than the protobuf the gRPC limit is about.
    let max_body = serving.limits.max_recv_message_bytes.saturating_mul(2);
    let metrics = serving.metrics.clone();
    match method.shape {
        Shape::Unary => {
            let body = read_body(request.into_body(), max_body).await?;
            let message = gateway_json::request_from_json(&route.input, &body)?;
            let request = decode_request(method, &token, message, &metrics)?;
            let response = serving.core.call(ctx, request).await;
            let json = gateway_json::response_to_json(&route.output, (method.encode)(response)?)?;
            Ok(json_response(StatusCode::OK, &json))
        }
        Shape::ServerStream => {
            let body = read_body(request.into_body(), max_body).await?;
            let message = gateway_json::request_from_json(&route.input, &body)?;
            let request = decode_request(method, &token, message, &metrics)?;
            let responses = serving
                .core
                .open_stream(ctx, stream::iter([request]).boxed());
            stream_response(encoded(responses, method), route.output.clone()).await
        }
        Shape::Bidirectional => {
            let requests = request_messages(request.into_body(), max_body, route.input.clone())
                .filter_map(move |message| {
                    let token = token.clone();
                    let metrics = metrics.clone();
                    async move { decode_request(method, &token, message, &metrics).ok() }
                })
                .boxed();
            let responses = serving.core.open_stream(ctx, requests);
            stream_response(encoded(responses, method), route.output.clone()).await
        }
    }
}

/// A request to etcd's lock or election services.
async fn call_recipe(
    serving: &Serving,
    ctx: CallContext,
    request: Request<Incoming>,
    recipe: Recipe,
    route: &Route,
) -> Result<Response<GrpcBody>, Status> {
    let token = auth_token(request.headers());
    let max_body = serving.limits.max_recv_message_bytes.saturating_mul(2);
    let body = read_body(request.into_body(), max_body).await?;
    let message = gateway_json::request_from_json(&route.input, &body)?;
    serving.metrics.client.received(None, message.len());
    let client = recipes::inner_client(&serving.core, ctx, token);
    match recipe {
        Recipe::Unary(run) => {
            let reply = recipes::run_unary(run, client, message, None).await?;
            let json = gateway_json::response_to_json(&route.output, reply)?;
            Ok(json_response(StatusCode::OK, &json))
        }
        Recipe::ServerStream(run) => {
            let messages = recipes::run_stream(run, client, message, None);
            stream_response(messages, route.output.clone()).await
        }
    }
}

/// The whole body, refused past `max` bytes.
async fn read_body(mut body: Incoming, max: usize) -> Result<Vec<u8>, Status> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Status::new(Code::InvalidArgument, format!("request body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > max {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!("grpc: received message larger than max ({max} bytes of JSON)"),
                ));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

/// The messages of a streamed request body: consecutive JSON objects, each as protobuf bytes.
/// The stream ends with the body, or at the first value that is not JSON or not a request
/// (grpc-gateway then half-closes the call, as here), or past `max` buffered bytes.
fn request_messages(
    body: Incoming,
    max: usize,
    input: MessageDescriptor,
) -> BoxStream<'static, Bytes> {
    struct State {
        body: Incoming,
        buffer: Vec<u8>,
        done: bool,
    }
    let state = State {
        body,
        buffer: Vec::new(),
        done: false,
    };
    stream::unfold(state, move |mut state| {
        let input = input.clone();
        async move {
            loop {
                if state.done {
                    return None;
                }
                let mut values = serde_json::Deserializer::from_slice(&state.buffer)
                    .into_iter::<serde_json::Value>();
                match values.next() {
                    Some(Ok(value)) => {
                        let used = values.byte_offset();
                        state.buffer.drain(..used);
                        match gateway_json::request_from_value(&input, value) {
                            Ok(message) => return Some((message, state)),
                            Err(_) => return None,
                        }
                    }
                    Some(Err(error)) if !error.is_eof() => return None,
                    // Incomplete (or only whitespace): read on.
                    Some(Err(_)) | None => {}
                }
                match state.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            state.buffer.extend_from_slice(data);
                        }
                        if state.buffer.len() > max {
                            state.done = true;
                        }
                    }
                    Some(Err(_)) | None => state.done = true,
                }
            }
        }
    })
    .boxed()
}

/// The core's answers of a streaming call as encoded messages (or the status that ends it).
fn encoded(
    responses: super::handler::ResponseStream,
    method: Method,
) -> BoxStream<'static, Result<Bytes, Status>> {
    responses.map(method.encode).boxed()
}

/// Streams `{"result":…}` lines; waits for the first message so that a call failing at once
/// gets its HTTP status, as grpc-gateway's does.
async fn stream_response(
    mut messages: BoxStream<'static, Result<Bytes, Status>>,
    output: MessageDescriptor,
) -> Result<Response<GrpcBody>, Status> {
    let Some(first) = messages.next().await else {
        return Ok(json_lines(stream::empty().boxed()));
    };
    let first_line = gateway_json::response_to_json(&output, first?)?;
    let rest = stream::unfold((messages, false), move |(mut messages, finished)| {
        let output = output.clone();
        async move {
            if finished {
                return None;
            }
            let line = messages
                .next()
                .await?
                .and_then(|bytes| gateway_json::response_to_json(&output, bytes));
            Some(match line {
                Ok(json) => (serde_json::json!({ "result": json }), (messages, false)),
                Err(status) => (gateway_json::stream_error(&status), (messages, true)),
            })
        }
    });
    let lines = stream::iter([serde_json::json!({ "result": first_line })])
        .chain(rest)
        .boxed();
    Ok(json_lines(lines))
}

fn json_lines(lines: BoxStream<'static, serde_json::Value>) -> Response<GrpcBody> {
    let frames = lines
        .map(|line| {
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            Frame::data(Bytes::from(bytes))
        })
        .boxed();
    let mut response = Response::new(GrpcBody::from_frames(frames));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json_response(status: StatusCode, json: &serde_json::Value) -> Response<GrpcBody> {
    let bytes = serde_json::to_vec(json).unwrap_or_default();
    let mut response = Response::new(GrpcBody::full(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(status: &Status) -> Response<GrpcBody> {
    let code = StatusCode::from_u16(gateway_json::http_status(status.code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &gateway_json::error_body(status))
}

/// Go's `http.Error`: a text answer with `nosniff`.
pub(super) fn plain_text(status: StatusCode, text: &'static str) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
