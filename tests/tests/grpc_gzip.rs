//! gRPC calls whose messages are gzip-compressed (`grpc-encoding: gzip`), from tonic (the
//! client etcd-client is built on) with its gzip compressor: unary calls and a Watch stream
//! both ways. qraft inflates the requests and, as grpc-go does, answers compressed with the
//! request's compressor; an encoding it has no compressor for is UNIMPLEMENTED with grpc-go's
//! message.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use futures::StreamExt;
use qraft_proto::etcdserverpb::{
    PutRequest, PutResponse, RangeRequest, RangeResponse, WatchCreateRequest, WatchRequest,
    WatchResponse, watch_request,
};
use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

async fn client(url: &str) -> Grpc<Channel> {
    let channel = Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    Grpc::new(channel)
}

fn encoding_of<T>(response: &tonic::Response<T>) -> Option<String> {
    response
        .metadata()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[test]
fn gzip_requests_are_served_and_answered_compressed() {
    let cluster = GrpcCluster::start(1, ClusterOptions::default());
    let url = cluster.endpoints()[0].clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut gzip = client(&url)
            .await
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
        // A value that compresses well, larger than a frame.
        let value = "qraft ".repeat(50_000).into_bytes();
        gzip.ready().await.expect("ready");
        let put = gzip
            .unary(
                tonic::Request::new(PutRequest {
                    key: b"gz".to_vec().into(),
                    value: value.clone().into(),
                    ..Default::default()
                }),
                "/etcdserverpb.KV/Put".parse().expect("path"),
                ProstCodec::<PutRequest, PutResponse>::default(),
            )
            .await
            .expect("gzip put");
        assert_eq!(encoding_of(&put).as_deref(), Some("gzip"));
        let revision = put.into_inner().header.expect("header").revision;
        assert_eq!(revision, 2);

        gzip.ready().await.expect("ready");
        let range = gzip
            .unary(
                tonic::Request::new(RangeRequest {
                    key: b"gz".to_vec().into(),
                    ..Default::default()
                }),
                "/etcdserverpb.KV/Range".parse().expect("path"),
                ProstCodec::<RangeRequest, RangeResponse>::default(),
            )
            .await
            .expect("gzip range");
        assert_eq!(encoding_of(&range).as_deref(), Some("gzip"));
        assert_eq!(&range.into_inner().kvs[0].value[..], &value[..]);

        // A Watch stream, compressed both ways, sees a put made afterwards.
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: b"gz".to_vec().into(),
                    ..Default::default()
                },
            )),
        };
        gzip.ready().await.expect("ready");
        let watch = gzip
            .streaming(
                tonic::Request::new(
                    futures::stream::iter([create]).chain(futures::stream::pending()),
                ),
                "/etcdserverpb.Watch/Watch".parse().expect("path"),
                ProstCodec::<WatchRequest, WatchResponse>::default(),
            )
            .await
            .expect("gzip watch");
        assert_eq!(encoding_of(&watch).as_deref(), Some("gzip"));
        let mut events = watch.into_inner();
        let created = events.next().await.expect("created").expect("ok");
        assert!(created.created);
        gzip.ready().await.expect("ready");
        gzip.unary(
            tonic::Request::new(PutRequest {
                key: b"gz".to_vec().into(),
                value: b"v2".to_vec().into(),
                ..Default::default()
            }),
            "/etcdserverpb.KV/Put".parse().expect("path"),
            ProstCodec::<PutRequest, PutResponse>::default(),
        )
        .await
        .expect("second put");
        let event = events.next().await.expect("event").expect("ok");
        assert_eq!(&event.events[0].kv.as_ref().expect("kv").value[..], b"v2");

        // A plain client on the same server gets plain answers.
        let mut plain = client(&url).await;
        plain.ready().await.expect("ready");
        let range = plain
            .unary(
                tonic::Request::new(RangeRequest {
                    key: b"gz".to_vec().into(),
                    ..Default::default()
                }),
                "/etcdserverpb.KV/Range".parse().expect("path"),
                ProstCodec::<RangeRequest, RangeResponse>::default(),
            )
            .await
            .expect("plain range");
        assert_eq!(encoding_of(&range), None);
        assert_eq!(range.into_inner().kvs[0].version, 2);
    });
}
