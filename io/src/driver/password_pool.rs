//! The threads that run the core's bcrypt work ([`PasswordWork`]) so the loop never does:
//! a few dedicated OS threads (bcrypt is CPU-bound; async-std's blocking pool would grow to
//! hundreds of threads under a flood). The core bounds the jobs in flight
//! (`MAX_PASSWORD_WORK`), so the queue between them stays bounded too. Results come back to
//! the loop through [`PasswordResults`], which it selects on with its other inputs.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use qraft_core::server::{PasswordDone, PasswordWork};

/// Worker threads: two keep a sign-in storm to two cores' worth of bcrypt while other work
/// (raft, reads) still gets CPU.
const WORKERS: usize = 2;

pub(crate) struct PasswordPool {
    jobs: std_mpsc::Sender<PasswordWork>,
}

/// Where the pool's results arrive, for the loop to select on.
pub(crate) type PasswordResults = mpsc::UnboundedReceiver<PasswordDone>;

impl PasswordPool {
    pub(crate) fn start() -> std::io::Result<(Self, PasswordResults)> {
        let (jobs, job_rx) = std_mpsc::channel::<PasswordWork>();
        let (done_tx, results) = mpsc::unbounded();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for i in 0..WORKERS {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("qraft-bcrypt-{i}"))
                .spawn(move || work(&job_rx, &done_tx))?;
        }
        Ok((PasswordPool { jobs }, results))
    }

    /// Queues a job; its result arrives on `results`.
    pub(crate) fn submit(&self, work: PasswordWork) {
        // The workers live as long as the pool; a send fails only if they all panicked.
        if self.jobs.send(work).is_err() {
            tracing::error!("the password workers stopped");
        }
    }
}

fn work(
    jobs: &Mutex<std_mpsc::Receiver<PasswordWork>>,
    done: &mpsc::UnboundedSender<PasswordDone>,
) {
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(work) = next else {
            // The pool was dropped: the loop stopped.
            return;
        };
        if done.unbounded_send(work.run()).is_err() {
            return;
        }
    }
}
