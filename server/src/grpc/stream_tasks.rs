//! Runs hyper's per-stream futures inside their connection's own task instead of spawning a
//! task for each request.
//!
//! Why: with a task per stream, every answer takes two hand-offs between the runtime's threads
//! (the core's reply wakes the stream's task, which hands the frames to h2 and wakes the
//! connection's task to write them). Polled here, the reply wakes the connection's task once,
//! the stream hands its frames to h2 and the same poll writes them; answers that arrive
//! together are written together. Measured in docs/performance.md ("The gRPC path, cheaper").
//!
//! Invariant: a stream future lives no longer than its connection — when the connection's
//! future ends (the client closed or broke it), the streams still running are dropped, which
//! ends their watches and keep-alives as a reset stream would.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

/// The executor handed to hyper: queues each stream future for [`InTask`].
#[derive(Clone)]
pub(super) struct StreamSpawner {
    queue: mpsc::UnboundedSender<BoxFuture<'static, ()>>,
}

impl<F> hyper::rt::Executor<F> for StreamSpawner
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        // Refused only when the connection's future is gone, and its streams with it.
        let _ = self.queue.unbounded_send(Box::pin(future));
    }
}

/// A connection's future together with the stream futures its executor was given.
/// Completes with the connection.
pub(super) struct InTask<C> {
    connection: Pin<Box<C>>,
    queued: mpsc::UnboundedReceiver<BoxFuture<'static, ()>>,
    streams: FuturesUnordered<BoxFuture<'static, ()>>,
}

/// An executor for hyper, and the future to run the connection `make` builds with it.
pub(super) fn in_task<C: Future>(make: impl FnOnce(StreamSpawner) -> C) -> InTask<C> {
    let (queue, queued) = mpsc::unbounded();
    InTask {
        connection: Box::pin(make(StreamSpawner { queue })),
        queued,
        streams: FuturesUnordered::new(),
    }
}

impl<C> InTask<C> {
    /// Moves newly spawned streams into the set and polls the ready ones until none is.
    fn poll_streams(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(stream)) = self.queued.poll_next_unpin(cx) {
            self.streams.push(stream);
        }
        // `Ready(None)` (no streams) and `Pending` both mean nothing more to do now.
        while let Poll::Ready(Some(())) = self.streams.poll_next_unpin(cx) {}
    }
}

impl<C: Future> Future for InTask<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        // Streams first: answers they hand to h2 are written by the connection's poll below.
        this.poll_streams(cx);
        if let Poll::Ready(out) = this.connection.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        // Requests the connection just read start at once (they go to the core).
        this.poll_streams(cx);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;
    use hyper::rt::Executor;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn spawned_streams_run_inside_and_end_with_the_connection() {
        let done = Arc::new(AtomicUsize::new(0));
        let (finish_tx, finish_rx) = oneshot::channel::<()>();
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let counter = done.clone();
        let task = in_task(move |spawner| async move {
            let counter2 = counter.clone();
            spawner.execute(async move {
                let _ = finish_rx.await;
                counter2.fetch_add(1, Ordering::SeqCst);
            });
            // Never finishes on its own: dropped with the connection.
            spawner.execute(futures::future::pending::<()>());
            let _ = close_rx.await;
            "closed"
        });
        let mut task = Box::pin(task);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(task.as_mut().poll(&mut cx).is_pending());
        assert_eq!(task.streams.len(), 2);
        finish_tx.send(()).expect("stream waiting");
        assert!(task.as_mut().poll(&mut cx).is_pending());
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert_eq!(task.streams.len(), 1);
        close_tx.send(()).expect("connection waiting");
        assert_eq!(task.as_mut().poll(&mut cx), Poll::Ready("closed"));
    }
}
