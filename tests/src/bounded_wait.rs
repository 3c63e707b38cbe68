//! Bounded waits for the tokio-driven tests: every wait on a server ends, and a wait that runs
//! out names what did not answer instead of hanging the test run.

use std::future::Future;
use std::time::Duration;

/// `future`'s output, or a panic naming `what` when it has not finished within `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {limit:?}"))
}
