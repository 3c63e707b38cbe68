//! Helpers for multi-process tests that restart members with other flags, watch the member's
//! HTTP endpoints and keep a bounded write load running (downgrade, probes). Kept apart from
//! `cluster.rs`, which they only use through its public API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::RangeRequest;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::http::HttpResponse;

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`
/// and the last observation.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `GET http://127.0.0.1:{port}{path}` over HTTP/1.0 (the body is everything until close).
pub fn http_get(port: u16, path: &str) -> std::io::Result<HttpResponse> {
    crate::http::get(&format!("127.0.0.1:{port}"), path)
}

/// A path on member `i`'s metrics listener.
pub fn member_get(c: &Cluster, i: usize, path: &str) -> Result<HttpResponse, String> {
    http_get(c.nodes[i].metrics_port, path).map_err(|e| format!("GET {path} on m{i}: {e}"))
}

/// Member `i`'s `/version` as JSON.
pub fn version_json(c: &Cluster, i: usize) -> Result<Value, String> {
    let r = member_get(c, i, "/version")?;
    serde_json::from_str(&r.body).map_err(|e| format!("/version of m{i}: {e}: {}", r.body))
}

/// Waits until member `i`'s `/version` shows `server`, `cluster` and `storage` (full versions,
/// e.g. "0.1.0"; `None` = any).
pub fn wait_versions(
    c: &Cluster,
    i: usize,
    server: Option<&str>,
    cluster: Option<&str>,
    storage: Option<&str>,
) {
    let what = format!("m{i} at server {server:?} cluster {cluster:?} storage {storage:?}");
    wait_until(&what, Duration::from_secs(30), || {
        let v = version_json(c, i)?;
        let matches =
            |field: &str, want: Option<&str>| want.is_none_or(|w| v[field].as_str() == Some(w));
        if matches("qraftserver", server)
            && matches("qraftcluster", cluster)
            && matches("storage", storage)
        {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
}

/// Member `i`'s `Maintenance.Status` through `qraftctl endpoint status -w json`.
pub fn endpoint_status(c: &Cluster, i: usize) -> Result<Value, String> {
    let (ok, out, err) = c.ctl(i, &["endpoint", "status", "-w", "json"]);
    if !ok {
        return Err(format!("endpoint status on m{i}: {err}"));
    }
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    Ok(v[0]["Status"].clone())
}

/// Stops member `i` (kill -9) and starts it again on its data with `args` in place of its
/// previous extra flags.
pub fn restart_with(c: &mut Cluster, i: usize, args: &[&str]) {
    c.nodes[i].extra_args = args.iter().map(|a| a.to_string()).collect();
    c.restart(i);
}

/// Waits until member `i` answers a linearizable read through its own endpoint.
pub fn wait_serving(c: &Cluster, i: usize) {
    let config = c.client_config(vec![c.nodes[i].client_url()]);
    wait_until(
        &format!("m{i} to serve a linearizable read"),
        Duration::from_secs(30),
        || {
            runtime::block_on(async {
                let client = Client::connect(config.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let r = client.get("__probe").await.map_err(|e| e.to_string());
                client.close();
                r.map(|_| ())
            })
        },
    );
}

/// Member `i`'s whole log (every start appends to it).
pub fn member_log(c: &Cluster, i: usize) -> String {
    let path = c.root.join(format!("{}.log", c.nodes[i].name));
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until member `i`'s process has exited; returns its whole log.
pub fn wait_exited(c: &mut Cluster, i: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.nodes[i].is_running() {
        assert!(
            Instant::now() < deadline,
            "m{i} is still running:\n{}",
            c.nodes[i].log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    member_log(c, i)
}

/// A bounded write load on its own thread: puts `{prefix}{n}` = `v{n}` for n = 0.. until
/// stopped or `max` puts were tried, through a client of every member, reconnecting after an
/// error. Only acknowledged puts are remembered.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(String, String)>>>,
}

impl WriteLoad {
    pub fn start(config: ClientConfig, prefix: &str, max: usize) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let prefix = prefix.to_string();
        let thread = std::thread::spawn(move || {
            runtime::block_on(async move {
                let mut acked = Vec::new();
                let mut client = None;
                for n in 0..max {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if client.is_none() {
                        client = Client::connect(config.clone()).await.ok();
                    }
                    let Some(c) = &client else {
                        runtime::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let (key, value) = (format!("{prefix}{n:06}"), format!("v{n}"));
                    match c.put_kv(key.clone(), value.clone()).await {
                        Ok(_) => acked.push((key, value)),
                        Err(_) => {
                            c.close();
                            client = None;
                            runtime::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    runtime::sleep(Duration::from_millis(10)).await;
                }
                if let Some(c) = client {
                    c.close();
                }
                acked
            })
        });
        WriteLoad {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the load and returns every acknowledged `(key, value)`.
    pub fn finish(mut self) -> Vec<(String, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("write load thread"))
            .unwrap_or_default()
    }
}

impl Drop for WriteLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks that a linearizable read of `prefix` through member `i` holds every acknowledged
/// pair with its value.
pub fn assert_acknowledged_present(
    c: &Cluster,
    i: usize,
    prefix: &str,
    acked: &[(String, String)],
) {
    let client = c.client(i);
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let r = runtime::block_on(client.range(RangeRequest {
        key: prefix.as_bytes().to_vec().into(),
        range_end: end.into(),
        ..Default::default()
    }))
    .expect("range over the load's keys");
    client.close();
    let stored: std::collections::HashMap<Vec<u8>, Vec<u8>> = r
        .kvs
        .iter()
        .map(|kv| (kv.key.to_vec(), kv.value.to_vec()))
        .collect();
    for (key, value) in acked {
        assert_eq!(
            stored.get(key.as_bytes()).map(Vec::as_slice),
            Some(value.as_bytes()),
            "acknowledged {key}={value} missing or changed on m{i}"
        );
    }
}
