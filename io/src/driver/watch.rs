//! One client watch stream: a reader task feeds the client's watch requests to the loop's watch
//! hub; this task writes the hub's responses to the client in order. Reading and writing are
//! separate tasks because a frame read must never be abandoned half-way (that would desync the
//! stream), which racing it against the writer would do.

use qraft_proto::etcdserverpb::WatchRequest;
use qraft_proto::qraftpb::ClientResponse;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;

use super::handle::{DriverHandle, stopped};
use crate::runtime;
use crate::transport::{ConnectionRoom, RequestStream, ResponseSink};

pub async fn serve(
    handle: DriverHandle,
    connection: ConnectionRoom,
    first: WatchRequest,
    mut requests: RequestStream,
    mut responses: ResponseSink,
) {
    let Ok((stream, mut rx)) = handle.open_watch(connection).await else {
        let _ = responses.send(&stopped()).await;
        return;
    };
    let reader_handle = handle.clone();
    let reader = runtime::spawn(async move {
        if !reader_handle.watch(stream, first).await {
            return;
        }
        while let Some(Ok(request)) = requests.next().await {
            match request.request {
                Some(In::Watch(w)) => {
                    if !reader_handle.watch(stream, w).await {
                        break;
                    }
                }
                _ => break,
            }
        }
        // The client is gone or misbehaved: the loop drops the stream's watchers, which ends
        // the writer below.
        reader_handle.close_watch(stream);
    });
    while let Some(batch) = rx.next().await {
        let frames: Vec<ClientResponse> = batch
            .into_iter()
            .map(|w| ClientResponse {
                response: Some(Out::Watch(w)),
            })
            .collect();
        if responses.send_all(&frames).await.is_err() {
            break;
        }
    }
    handle.close_watch(stream);
    reader.cancel().await;
}
