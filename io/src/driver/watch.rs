//! One client watch stream: a reader task feeds the client's watch requests to the loop's watch
//! hub; this task writes the hub's responses to the client in order. Reading and writing are
//! separate tasks because a frame read must never be abandoned half-way (that would desync the
//! stream), which racing it against the writer would do.

use qraft_core::server::{NextOnStream, StreamCall};
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::handle::{DriverHandle, stopped};
use super::storage_contract::DriverStorage;
use crate::runtime;
use crate::transport::{ConnectionRoom, RequestStream, ResponseSink};

pub async fn serve(
    handle: DriverHandle<impl DriverStorage>,
    connection: ConnectionRoom,
    first: ClientRequest,
    mut requests: RequestStream,
    mut responses: ResponseSink,
) {
    let Ok((stream, mut rx)) = handle.open_watch(connection).await else {
        let _ = responses.send(&stopped()).await;
        return;
    };
    let reader_handle = handle.clone();
    let reader = runtime::spawn(async move {
        // Each request carries its own token, checked as it arrives; the connection's
        // certificate name (stamped on the first request) stands for the whole stream.
        let cert_common_name = first.cert_common_name.clone();
        let mut next = Some(first);
        while let Some(ClientRequest {
            token,
            request: Some(In::Watch(w)),
            ..
        }) = next.take()
        {
            let caller = (token, cert_common_name.clone());
            if !reader_handle.watch(stream, caller, w).await {
                break;
            }
            // What a later request on a watch stream means is the core's call (anything but
            // a watch request ends the stream).
            next = match requests.next().await {
                Some(Ok(request))
                    if StreamCall::Watch.next_request(&request) == NextOnStream::Serve =>
                {
                    Some(request)
                }
                _ => None,
            };
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
