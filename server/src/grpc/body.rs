//! The response side of a call: gRPC messages as HTTP/2 DATA, then the status as trailers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::stream::{self, BoxStream, StreamExt};
use hyper::body::{Body, Bytes, Frame};
use qraft_io::metrics::Metrics;

use super::codec::{MessageEncoding, encode_frame};
use super::handler::ResponseStream;
use super::status::Status;

/// How one response message is put on the wire: `Ok(bytes)` for a message, `Err(status)` to
/// end the call (the core answered with an error, or with a response of the wrong kind).
pub type EncodeFn = fn(qraft_proto::qraftpb::ClientResponse) -> Result<Bytes, Status>;

/// A gRPC response body: a finite stream of frames, the last one always the trailers.
pub struct GrpcBody {
    frames: BoxStream<'static, Frame<Bytes>>,
}

impl GrpcBody {
    /// No frames at all, for answers to requests that are not gRPC.
    pub fn empty() -> Self {
        GrpcBody {
            frames: stream::empty().boxed(),
        }
    }

    /// Frames made elsewhere (the JSON gateway's lines).
    pub fn from_frames(frames: BoxStream<'static, Frame<Bytes>>) -> Self {
        GrpcBody { frames }
    }

    /// One block of bytes (an HTTP/1.1 answer).
    pub fn full(bytes: Bytes) -> Self {
        GrpcBody {
            frames: stream::iter([Frame::data(bytes)]).boxed(),
        }
    }

    /// A call that ends with `status` and no message.
    pub fn status(status: Status) -> Self {
        GrpcBody {
            frames: stream::iter([Frame::trailers(status.to_trailers())]).boxed(),
        }
    }

    /// A unary answer: one message then OK.
    pub fn message(message: Bytes, encoding: MessageEncoding) -> Self {
        GrpcBody {
            frames: stream::iter([
                Frame::data(encode_frame(&message, encoding)),
                Frame::trailers(Status::ok().to_trailers()),
            ])
            .boxed(),
        }
    }

    /// A streaming answer. Ends with OK when the core ends the stream, with the core's status
    /// at its first error, or with the status the request decoder reports through `abort`
    /// (bad frame, oversized message) — whichever comes first.
    /// `metrics` counts the bytes of every message sent (as sent, i.e. compressed).
    pub fn stream(
        responses: ResponseStream,
        encode: EncodeFn,
        abort: oneshot::Receiver<Status>,
        metrics: Arc<Metrics>,
        encoding: MessageEncoding,
    ) -> Self {
        enum Event {
            Response(Option<qraft_proto::qraftpb::ClientResponse>),
            Abort(Status),
        }
        let responses = responses
            .map(|r| Event::Response(Some(r)))
            .chain(stream::iter([Event::Response(None)]));
        // A dropped sender means the client half-closed cleanly: no event, keep streaming.
        let aborts = stream::once(abort).filter_map(|r| async move { r.ok().map(Event::Abort) });
        let events = stream::select(responses, aborts);
        let frames = events
            .scan(false, move |finished, event| {
                if *finished {
                    return futures::future::ready(None);
                }
                let frame = match event {
                    Event::Response(Some(response)) => match encode(response) {
                        Ok(message) => {
                            let frame = encode_frame(&message, encoding);
                            metrics.client.sent(frame.len());
                            Frame::data(frame)
                        }
                        Err(status) => {
                            *finished = true;
                            Frame::trailers(status.to_trailers())
                        }
                    },
                    Event::Response(None) => {
                        *finished = true;
                        Frame::trailers(Status::ok().to_trailers())
                    }
                    Event::Abort(status) => {
                        *finished = true;
                        Frame::trailers(status.to_trailers())
                    }
                };
                futures::future::ready(Some(frame))
            })
            .boxed();
        GrpcBody { frames }
    }
}

impl GrpcBody {
    /// A streaming answer of messages already encoded (a recipe's, see `super::recipes`): OK
    /// when the stream ends, or the first error's status.
    pub fn messages(
        messages: BoxStream<'static, Result<Bytes, Status>>,
        metrics: Arc<Metrics>,
        encoding: MessageEncoding,
    ) -> Self {
        let frames = messages
            .map(Some)
            .chain(stream::iter([None]))
            .scan(false, move |finished, message| {
                if *finished {
                    return futures::future::ready(None);
                }
                let frame = match message {
                    Some(Ok(message)) => {
                        let frame = encode_frame(&message, encoding);
                        metrics.client.sent(frame.len());
                        Frame::data(frame)
                    }
                    Some(Err(status)) => {
                        *finished = true;
                        Frame::trailers(status.to_trailers())
                    }
                    None => {
                        *finished = true;
                        Frame::trailers(Status::ok().to_trailers())
                    }
                };
                futures::future::ready(Some(frame))
            })
            .boxed();
        GrpcBody { frames }
    }
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.frames.poll_next_unpin(cx).map(|frame| frame.map(Ok))
    }
}
