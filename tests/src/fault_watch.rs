//! A resuming watcher for fault tests, and the check of what it delivered: every write once,
//! in revision order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::WatchCreateRequest;

/// One event the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub key: Vec<u8>,
    pub mod_revision: i64,
    pub delete: bool,
}

/// A watcher on a prefix from a revision on; the client library resumes it across failures.
pub struct Watcher {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<String>>,
}

impl Watcher {
    pub fn start(config: ClientConfig, prefix: &str, start_revision: i64) -> Watcher {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, halt) = (seen.clone(), stop.clone());
        let key = prefix.as_bytes().to_vec();
        let mut end = key.clone();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let thread = std::thread::spawn(move || {
            runtime::block_on(async move {
                let mut errors = Vec::new();
                let client = loop {
                    match Client::connect(config.clone()).await {
                        Ok(c) => break c,
                        Err(_) if halt.load(Ordering::SeqCst) => return errors,
                        Err(_) => runtime::sleep(Duration::from_millis(100)).await,
                    }
                };
                let create = WatchCreateRequest {
                    key: key.into(),
                    range_end: end.into(),
                    start_revision,
                    ..Default::default()
                };
                let mut watch = loop {
                    match client.watch(create.clone()).await {
                        Ok(w) => break w,
                        Err(_) if halt.load(Ordering::SeqCst) => return errors,
                        Err(_) => runtime::sleep(Duration::from_millis(100)).await,
                    }
                };
                while !halt.load(Ordering::SeqCst) {
                    match runtime::timeout(Duration::from_millis(200), watch.next()).await {
                        Err(_) => {}
                        Ok(None) => {
                            errors.push("watch stream ended".to_string());
                            break;
                        }
                        Ok(Some(Err(e))) => {
                            // The library resumes on the next call; note it and go on.
                            errors.push(format!("watch error (resumed): {e}"));
                            runtime::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(Some(Ok(resp))) => {
                            if resp.canceled {
                                errors.push(format!("watch canceled: {}", resp.cancel_reason));
                                break;
                            }
                            let mut seen = into.lock().expect("seen");
                            for ev in resp.events {
                                if let Some(kv) = ev.kv {
                                    seen.push(Seen {
                                        key: kv.key.to_vec(),
                                        mod_revision: kv.mod_revision,
                                        delete: ev.r#type != 0,
                                    });
                                }
                            }
                        }
                    }
                }
                watch.close();
                client.close();
                errors
            })
        });
        Watcher { seen, stop, thread }
    }

    /// The highest revision delivered so far.
    pub fn last_revision(&self) -> i64 {
        self.seen
            .lock()
            .expect("seen")
            .last()
            .map_or(0, |s| s.mod_revision)
    }

    /// Stops the watcher; returns what it saw and the errors it met.
    pub fn stop(self) -> (Vec<Seen>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let errors = self.thread.join().expect("watcher thread panicked");
        let seen = self.seen.lock().expect("seen").clone();
        (seen, errors)
    }
}

/// Checks the watcher's events against the final content of its prefix (`expected`: every
/// `(key, mod_revision)` of a put since the watch began, from the writers' keys, which are
/// written once each): revisions never go backwards, no event is delivered twice, and every
/// expected put was delivered. Returns the problems found.
pub fn check_watch(seen: &[Seen], expected: &[(Vec<u8>, i64)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut last = 0;
    let mut delivered = std::collections::HashSet::new();
    for s in seen {
        if s.mod_revision < last {
            problems.push(format!(
                "watch went back from revision {last} to {} ({})",
                s.mod_revision,
                String::from_utf8_lossy(&s.key)
            ));
        }
        last = last.max(s.mod_revision);
        if !delivered.insert((s.key.clone(), s.mod_revision)) {
            problems.push(format!(
                "watch delivered {} at revision {} twice",
                String::from_utf8_lossy(&s.key),
                s.mod_revision
            ));
        }
    }
    for (key, rev) in expected {
        if !delivered.contains(&(key.clone(), *rev)) {
            problems.push(format!(
                "watch missed {} at revision {rev}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    problems.truncate(20);
    problems
}
