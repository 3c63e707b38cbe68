//! etcd's v3lock and v3election services: RPCs that are not one core request but a sequence of
//! them (etcd runs clientv3's concurrency recipes inside the server). This is their method
//! table and the harness that runs them for a gRPC call or a gateway request.
//!
//! A unary recipe runs on a task of its own, so that when the client goes away (stream reset,
//! connection closed) or its `grpc-timeout` passes while the recipe waits, the recipe notices
//! and cleans up (deletes the lock key it created, resigns) as etcd does when the call's context
//! ends, instead of being dropped half-way.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{BoxFuture, Shared};
use futures::stream::BoxStream;
use hyper::HeaderMap;
use prost::bytes::Bytes;

use super::handler::{CallContext, CoreHandle};
use super::inner_client::InnerClient;
use super::status::{Code, Status};
use super::{election_service, lock_service};

/// A unary recipe: the request message in, the response message out.
pub type UnaryRecipe = fn(InnerClient, Bytes, Caller) -> BoxFuture<'static, Result<Bytes, Status>>;
/// A server-streaming recipe (Election.Observe).
pub type StreamRecipe = fn(InnerClient, Bytes, Caller) -> BoxStream<'static, Result<Bytes, Status>>;

#[derive(Clone, Copy)]
pub enum Recipe {
    Unary(UnaryRecipe),
    ServerStream(StreamRecipe),
}

/// The recipe served at `path`; `None` for a path of another service; gRPC's UNIMPLEMENTED
/// for an unknown method of these services.
pub fn lookup(path: &str) -> Option<Result<Recipe, Status>> {
    let (service, name) = path.strip_prefix('/')?.split_once('/')?;
    let recipe = match (service, name) {
        ("v3lockpb.Lock", "Lock") => Recipe::Unary(lock_service::lock),
        ("v3lockpb.Lock", "Unlock") => Recipe::Unary(lock_service::unlock),
        ("v3electionpb.Election", "Campaign") => Recipe::Unary(election_service::campaign),
        ("v3electionpb.Election", "Proclaim") => Recipe::Unary(election_service::proclaim),
        ("v3electionpb.Election", "Leader") => Recipe::Unary(election_service::leader),
        ("v3electionpb.Election", "Resign") => Recipe::Unary(election_service::resign),
        ("v3electionpb.Election", "Observe") => Recipe::ServerStream(election_service::observe),
        ("v3lockpb.Lock" | "v3electionpb.Election", _) => {
            return Some(Err(Status::new(
                Code::Unimplemented,
                format!("unknown method {name} for service {service}"),
            )));
        }
        _ => return None,
    };
    Some(Ok(recipe))
}

/// What a running recipe knows about its caller: whether it is still there and its deadline.
#[derive(Clone)]
pub struct Caller {
    gone: Shared<oneshot::Receiver<()>>,
    deadline: Option<Instant>,
}

impl Caller {
    /// Runs `work` unless the caller goes away or its deadline passes first: `Err` with the
    /// status etcd's context gives then (`context canceled`, `context deadline exceeded`).
    pub async fn unless_gone<T>(&self, work: impl Future<Output = T>) -> Result<T, Status> {
        let deadline = async {
            match self.deadline {
                Some(at) => {
                    qraft_io::runtime::sleep(at.saturating_duration_since(Instant::now())).await
                }
                None => futures::future::pending().await,
            }
        };
        futures::select_biased! {
            output = work.fuse() => Ok(output),
            _ = self.gone.clone().fuse() => Err(Status::new(Code::Cancelled, "context canceled")),
            () = deadline.fuse() => {
                Err(Status::new(Code::DeadlineExceeded, "context deadline exceeded"))
            }
        }
    }
}

/// Runs a unary recipe on a task of its own and waits for its answer. If this future is
/// dropped (the client went away), the task sees its caller gone at its next wait.
pub async fn run_unary(
    recipe: UnaryRecipe,
    client: InnerClient,
    message: Bytes,
    deadline: Option<Instant>,
) -> Result<Bytes, Status> {
    let (_alive, gone) = oneshot::channel::<()>();
    let caller = Caller {
        gone: gone.shared(),
        deadline,
    };
    qraft_io::runtime::spawn(recipe(client, message, caller))
        .join()
        .await
}

/// Opens a streaming recipe. The stream holds the caller's liveness itself: dropping it is
/// the caller going away.
pub fn run_stream(
    recipe: StreamRecipe,
    client: InnerClient,
    message: Bytes,
    deadline: Option<Instant>,
) -> BoxStream<'static, Result<Bytes, Status>> {
    use futures::StreamExt;
    let (alive, gone) = oneshot::channel::<()>();
    let caller = Caller {
        gone: gone.shared(),
        deadline,
    };
    recipe(client, message, caller)
        .map(move |item| {
            let _ = &alive;
            item
        })
        .boxed()
}

/// The client for a recipe's inner requests: the caller's connection and token.
pub fn inner_client(core: &Arc<dyn CoreHandle>, ctx: CallContext, token: String) -> InnerClient {
    InnerClient::new(core.clone(), ctx, token)
}

/// The call's deadline from gRPC's `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`).
pub fn deadline(headers: &HeaderMap) -> Option<Instant> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn recipes_are_found_by_grpc_path() {
        assert!(matches!(
            lookup("/v3lockpb.Lock/Lock"),
            Some(Ok(Recipe::Unary(_)))
        ));
        assert!(matches!(
            lookup("/v3electionpb.Election/Observe"),
            Some(Ok(Recipe::ServerStream(_)))
        ));
        let Some(Err(status)) = lookup("/v3lockpb.Lock/Steal") else {
            panic!("unknown method of a known service");
        };
        assert_eq!(
            status.message,
            "unknown method Steal for service v3lockpb.Lock"
        );
        assert!(lookup("/etcdserverpb.KV/Range").is_none());
    }

    #[test]
    fn grpc_timeouts_parse_as_grpc_go_writes_them() {
        let mut headers = HeaderMap::new();
        assert!(deadline(&headers).is_none());
        headers.insert("grpc-timeout", HeaderValue::from_static("1500m"));
        let at = deadline(&headers).expect("a deadline");
        let left = at.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_millis(1500) && left > Duration::from_millis(1000));
        for bad in ["", "m", "123456789S", "10x", "-1S"] {
            headers.insert("grpc-timeout", HeaderValue::from_static(bad));
            assert!(deadline(&headers).is_none(), "{bad:?}");
        }
    }
}
