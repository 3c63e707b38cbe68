//! Turns the members' peer URLs into socket addresses for the transport, off the raft loop.
//!
//! A DNS lookup can take seconds (a slow or unreachable resolver) and must not hold up the
//! loop's heartbeats, so the loop only states which URLs it wants ([`PeerResolver::want`])
//! and a task of its own resolves them. The task:
//! - retries a name that failed to resolve, with a backoff from 250 ms to 5 s (a peer whose
//!   DNS record appears late, as a Kubernetes pod's does, is reached as soon as it exists);
//! - looks every name up again every [`REFRESH`], and hands the transport the new address when
//!   it changed (a member restarted elsewhere under the same name: etcd's dialer resolves on
//!   every dial and follows such moves too).
//!
//! Invariant: the transport knows a member only while the loop wants it. Both sides change the
//! transport's peers under the one lock of [`Shared`], and the task re-checks that the URL is
//! still wanted before registering what it resolved, so a lookup that finishes after its
//! member was removed registers nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};

use crate::runtime::{self, Task};
use crate::transport::{PeerAddr, PeerTransport};

/// How often a resolved name is looked up again.
const REFRESH: Duration = Duration::from_secs(10);
/// First and longest wait before a failed lookup is retried.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// A lookup that takes longer counts as failed (and is retried).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One wanted member: its URL and what the task knows about it.
struct Target {
    url: String,
    /// The address registered with the transport, if any.
    registered: Option<PeerAddr>,
    /// When to look the URL up next.
    due: Instant,
    /// The wait after the next failure.
    backoff: Duration,
    /// Whether the last failure was logged (a name failing for minutes is logged once).
    failing: bool,
}

struct Shared {
    wanted: BTreeMap<u64, Target>,
    transport: Arc<dyn PeerTransport>,
}

/// The loop's side: states the wanted peers; the task does the lookups.
pub(super) struct PeerResolver {
    shared: Arc<Mutex<Shared>>,
    wake: mpsc::Sender<()>,
    _task: Task<()>,
}

impl PeerResolver {
    pub fn start(transport: Arc<dyn PeerTransport>) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            wanted: BTreeMap::new(),
            transport,
        }));
        let (wake, woken) = mpsc::channel(1);
        let task = runtime::spawn(resolve_forever(Arc::clone(&shared), woken));
        Self {
            shared,
            wake,
            _task: task,
        }
    }

    /// Makes `wanted` (member → peer URL) the transport's peers: members not in it are removed
    /// at once; new members and changed URLs are registered as soon as they resolve.
    pub fn want(&mut self, wanted: BTreeMap<u64, String>) {
        let mut shared = lock(&self.shared);
        let gone: Vec<u64> = shared
            .wanted
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            shared.wanted.remove(&id);
            shared.transport.remove_peer(id);
        }
        let now = Instant::now();
        let mut changed = false;
        for (id, url) in wanted {
            if shared.wanted.get(&id).is_some_and(|t| t.url == url) {
                continue;
            }
            // A changed URL keeps the old address registered until the new one resolves.
            let registered = shared.wanted.remove(&id).and_then(|t| t.registered);
            shared.wanted.insert(
                id,
                Target {
                    url,
                    registered,
                    due: now,
                    backoff: RETRY_FIRST,
                    failing: false,
                },
            );
            changed = true;
        }
        drop(shared);
        if changed {
            // Full means a wake-up is already pending.
            let _ = self.wake.try_send(());
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // The lock guards plain data updated in single steps: a panic elsewhere leaves it usable.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The task: looks up every due URL, registers what changed, sleeps until the next one is due
/// or the loop wants something new. Ends when the loop's side is dropped.
async fn resolve_forever(shared: Arc<Mutex<Shared>>, mut woken: mpsc::Receiver<()>) {
    loop {
        let now = Instant::now();
        let due: Vec<(u64, String)> = lock(&shared)
            .wanted
            .iter()
            .filter(|(_, t)| t.due <= now)
            .map(|(id, t)| (*id, t.url.clone()))
            .collect();
        for (id, url) in due {
            let found = match runtime::timeout(LOOKUP_TIMEOUT, PeerAddr::from_url(&url)).await {
                Ok(Ok(addr)) => Ok(addr),
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err(format!("no answer in {LOOKUP_TIMEOUT:?}")),
            };
            record(&mut lock(&shared), id, &url, found);
        }
        let next = lock(&shared).wanted.values().map(|t| t.due).min();
        let sleep = next.map_or(REFRESH, |due| due.saturating_duration_since(Instant::now()));
        futures::select! {
            _ = runtime::sleep(sleep).fuse() => {}
            wake = woken.next() => if wake.is_none() { return },
        }
    }
}

/// Registers a lookup's result if its member still wants that URL.
fn record(shared: &mut Shared, id: u64, url: &str, found: Result<PeerAddr, String>) {
    let transport = Arc::clone(&shared.transport);
    let Some(target) = shared.wanted.get_mut(&id).filter(|t| t.url == url) else {
        return;
    };
    match found {
        Ok(addr) => {
            if target.failing {
                tracing::info!(member = format_args!("{id:x}"), %url, addr = %addr.addr, "peer resolved");
            }
            if target.registered.as_ref() != Some(&addr) {
                transport.add_peer(id, addr.clone());
                target.registered = Some(addr);
            }
            target.due = Instant::now() + REFRESH;
            target.backoff = RETRY_FIRST;
            target.failing = false;
        }
        Err(err) => {
            if !target.failing {
                tracing::warn!(member = format_args!("{id:x}"), %url, %err, "cannot resolve peer; retrying");
            }
            target.failing = true;
            target.due = Instant::now() + target.backoff;
            target.backoff = (target.backoff * 2).min(RETRY_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use qraft_proto::raftpb::Message;

    use super::*;

    /// Records what the resolver asked of the transport.
    #[derive(Default)]
    struct Recorder(StdMutex<Vec<String>>);

    impl PeerTransport for Recorder {
        fn send(&self, _msgs: Vec<Message>) {}
        fn add_peer(&self, id: u64, addr: PeerAddr) {
            self.0
                .lock()
                .unwrap()
                .push(format!("add {id} {}", addr.addr));
        }
        fn remove_peer(&self, id: u64) {
            self.0.lock().unwrap().push(format!("remove {id}"));
        }
        fn set_cluster_id(&self, _cluster_id: u64) {}
    }

    fn wait_for(recorder: &Recorder, len: usize) -> Vec<String> {
        for _ in 0..200 {
            let seen = recorder.0.lock().unwrap().clone();
            if seen.len() >= len {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        recorder.0.lock().unwrap().clone()
    }

    #[test]
    fn registers_resolved_peers_and_forgets_removed_ones() {
        let recorder = Arc::new(Recorder::default());
        let mut resolver = PeerResolver::start(recorder.clone());
        resolver.want(BTreeMap::from([
            (1, "https://127.0.0.1:2380".to_string()),
            (2, "https://127.0.0.2:2380".to_string()),
        ]));
        assert_eq!(
            wait_for(&recorder, 2),
            ["add 1 127.0.0.1:2380", "add 2 127.0.0.2:2380"]
        );
        resolver.want(BTreeMap::from([(2, "https://127.0.0.3:2380".to_string())]));
        assert_eq!(
            wait_for(&recorder, 4)[2..],
            ["remove 1", "add 2 127.0.0.3:2380"]
        );
        assert_eq!(lock(&resolver.shared).wanted.len(), 1);
    }

    #[test]
    fn a_url_that_does_not_resolve_is_retried_without_blocking_the_caller() {
        let recorder = Arc::new(Recorder::default());
        let mut resolver = PeerResolver::start(recorder.clone());
        let started = Instant::now();
        resolver.want(BTreeMap::from([(
            7,
            // Fails before any lookup: tests send no DNS query off the machine.
            "https://127.0.0.1:99999".to_string(),
        )]));
        assert!(started.elapsed() < Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(700));
        assert!(recorder.0.lock().unwrap().is_empty());
        let shared = lock(&resolver.shared);
        let target = &shared.wanted[&7];
        assert!(target.failing);
        assert!(
            target.backoff > RETRY_FIRST,
            "retried with a growing backoff"
        );
    }
}
