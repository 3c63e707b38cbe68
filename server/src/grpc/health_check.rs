//! gRPC's standard health service, `grpc.health.v1.Health/Check`, which load balancers, service
//! meshes and `grpc_health_probe` call on etcd's client URLs (etcd registers it on every
//! client listener). The overall service (`""`) is SERVING for as long as the listener
//! accepts calls, as with etcd's default registration; whether the member has a leader or a
//! quorum is what `/health` and `/readyz` answer. Other service names are unknown (NOT_FOUND),
//! as grpc-go's health server answers them. `Watch` is not offered (UNIMPLEMENTED).

use hyper::body::Bytes;
use prost::Message;

use super::status::{Code, Status};

pub(super) const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; `status` is its `ServingStatus` enum.
#[derive(Clone, PartialEq, Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `ServingStatus.SERVING`.
const SERVING: i32 = 1;

/// Answers one Check request message.
pub(super) fn check(message: Bytes) -> Result<Bytes, Status> {
    let request = HealthCheckRequest::decode(message).map_err(|error| {
        Status::new(
            Code::Internal,
            format!("grpc: error unmarshalling request: {error}"),
        )
    })?;
    if !request.service.is_empty() {
        return Err(Status::new(Code::NotFound, "unknown service"));
    }
    let response = HealthCheckResponse { status: SERVING };
    Ok(Bytes::from(response.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overall_service_is_serving_and_others_are_unknown() {
        let ask = |service: &str| {
            check(Bytes::from(
                HealthCheckRequest {
                    service: service.to_owned(),
                }
                .encode_to_vec(),
            ))
        };
        let answer = ask("").expect("serving");
        let decoded = HealthCheckResponse::decode(answer).expect("decode");
        assert_eq!(decoded.status, SERVING);
        let unknown = ask("etcdserverpb.KV").expect_err("unknown service");
        assert_eq!(unknown.code, Code::NotFound as i32);
        let garbage = check(Bytes::from_static(&[0xff, 0xff])).expect_err("bad message");
        assert_eq!(garbage.code, Code::Internal as i32);
    }
}
