//! The etcd target: etcd's own gRPC API through the `etcd-client` crate (feature `etcd`).
//!
//! etcd-client needs tokio. Its runtime lives inside `EtcdTarget` and every call is spawned
//! there; results come back over runtime-agnostic channels, so the driver stays on its own
//! executor and the rest of qraft never sees tokio.

use std::sync::Arc;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};

use super::target::{
    BoxFut, Conn, EventStream, KeepAlive, Page, Target, TargetError, WatchedEvent,
};

/// Events forwarded ahead of the watcher before the forwarding task waits.
const EVENT_BUFFER: usize = 1024;

pub struct EtcdTarget {
    endpoints: Vec<String>,
    runtime: Arc<tokio::runtime::Runtime>,
    /// TLS towards `https://` endpoints, trusting this CA (PEM).
    ca_pem: Option<Vec<u8>>,
}

impl EtcdTarget {
    /// `endpoints` like `http://127.0.0.1:2379`, or `https://…` with `cacert` (the CA that
    /// signed etcd's client certificate, so the comparison can run both systems encrypted).
    /// `threads` sizes the client runtime.
    pub fn new(
        endpoints: Vec<String>,
        threads: usize,
        cacert: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()?;
        let ca_pem = match cacert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("reading the CA certificate {}: {e}", path.display())
            })?),
            None => None,
        };
        Ok(Self {
            endpoints,
            runtime: Arc::new(runtime),
            ca_pem,
        })
    }
}

/// Runs `call` on the etcd runtime and awaits its result from any executor.
fn on_runtime<T, F>(runtime: &tokio::runtime::Runtime, call: F) -> BoxFut<'static, T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, TargetError>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    runtime.spawn(async move {
        let _ = tx.send(call.await);
    });
    Box::pin(async move {
        rx.await
            .unwrap_or_else(|_| Err(TargetError::new("etcd runtime dropped the call")))
    })
}

fn err(e: etcd_client::Error) -> TargetError {
    TargetError::new(e)
}

impl Target for EtcdTarget {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn connect(&self) -> BoxFut<'_, Box<dyn Conn>> {
        let endpoints = self.endpoints.clone();
        let runtime = self.runtime.clone();
        let options = self.ca_pem.as_ref().map(|pem| {
            ConnectOptions::new()
                .with_tls(TlsOptions::new().ca_certificate(Certificate::from_pem(pem.clone())))
        });
        let connecting = on_runtime(&self.runtime, async move {
            Client::connect(endpoints, options).await.map_err(err)
        });
        Box::pin(async move {
            let client = connecting.await?;
            Ok(Box::new(EtcdConn { client, runtime }) as Box<dyn Conn>)
        })
    }
}

struct EtcdConn {
    client: Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Conn for EtcdConn {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        let mut kv = self.client.kv_client();
        on_runtime(&self.runtime, async move {
            kv.put(key, value, None).await.map(drop).map_err(err)
        })
    }

    fn range(&self, key: Vec<u8>, serializable: bool) -> BoxFut<'_, ()> {
        let mut kv = self.client.kv_client();
        let options = serializable.then(|| GetOptions::new().with_serializable());
        on_runtime(&self.runtime, async move {
            kv.get(key, options).await.map(drop).map_err(err)
        })
    }

    fn range_page(&self, from: Vec<u8>, limit: i64, revision: i64) -> BoxFut<'_, Page> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new()
            .with_from_key()
            .with_limit(limit)
            .with_revision(revision);
        on_runtime(&self.runtime, async move {
            let response = kv.get(from, Some(options)).await.map_err(err)?;
            Ok(Page {
                keys: response.kvs().len() as u64,
                more_after: response
                    .more()
                    .then(|| response.kvs().last().map(|kv| kv.key().to_vec()))
                    .flatten(),
                revision: response.header().map_or(0, |h| h.revision()),
            })
        })
    }

    fn txn_put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        let mut kv = self.client.kv_client();
        let txn = Txn::new().and_then(vec![TxnOp::put(key, value, None)]);
        on_runtime(&self.runtime, async move {
            kv.txn(txn).await.map(drop).map_err(err)
        })
    }

    fn lease_grant(&self, ttl: i64) -> BoxFut<'_, i64> {
        let mut lease = self.client.lease_client();
        on_runtime(&self.runtime, async move {
            lease.grant(ttl, None).await.map(|r| r.id()).map_err(err)
        })
    }

    fn lease_keep_alive(&self, id: i64) -> BoxFut<'_, Box<dyn KeepAlive>> {
        let mut lease = self.client.lease_client();
        let (requests, mut rounds) = mpsc::channel::<oneshot::Sender<Result<(), TargetError>>>(1);
        let opening = on_runtime(&self.runtime, async move {
            let (mut keeper, mut stream) = lease.keep_alive(id).await.map_err(err)?;
            tokio::spawn(async move {
                while let Some(reply) = rounds.next().await {
                    let round = async {
                        keeper.keep_alive().await.map_err(err)?;
                        match stream.message().await.map_err(err)? {
                            Some(_) => Ok(()),
                            None => Err(TargetError::new("keep-alive stream ended")),
                        }
                    };
                    let _ = reply.send(round.await);
                }
            });
            Ok(())
        });
        Box::pin(async move {
            opening.await?;
            Ok(Box::new(EtcdKeepAlive { requests }) as Box<dyn KeepAlive>)
        })
    }

    fn watch_range(&self, key: Vec<u8>, range_end: Vec<u8>) -> BoxFut<'_, Box<dyn EventStream>> {
        let mut watch = self.client.watch_client();
        let options = (!range_end.is_empty()).then(|| WatchOptions::new().with_range(range_end));
        let (mut events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let opening = on_runtime(&self.runtime, async move {
            let mut stream = watch.watch(key, options).await.map_err(err)?;
            // The first response confirms the watch exists; puts start only after it.
            match stream.message().await.map_err(err)? {
                Some(created) if created.created() => {}
                _ => return Err(TargetError::new("watch was not created")),
            }
            tokio::spawn(async move {
                loop {
                    let item = match stream.message().await {
                        Ok(Some(response)) => Ok(Some(
                            response
                                .events()
                                .iter()
                                .filter_map(|e| {
                                    e.kv().map(|kv| (kv.mod_revision(), kv.value().to_vec()))
                                })
                                .collect::<Vec<_>>(),
                        )),
                        Ok(None) => Ok(None),
                        Err(e) => Err(err(e)),
                    };
                    let last = !matches!(item, Ok(Some(_)));
                    if events_tx.send(item).await.is_err() || last {
                        break;
                    }
                }
            });
            Ok(())
        });
        Box::pin(async move {
            opening.await?;
            Ok(Box::new(EtcdEvents { events }) as Box<dyn EventStream>)
        })
    }
}

struct EtcdKeepAlive {
    requests: mpsc::Sender<oneshot::Sender<Result<(), TargetError>>>,
}

impl KeepAlive for EtcdKeepAlive {
    fn keep_alive(&mut self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(reply)
                .await
                .map_err(|_| TargetError::new("keep-alive task ended"))?;
            answer
                .await
                .unwrap_or_else(|_| Err(TargetError::new("keep-alive task ended")))
        })
    }
}

struct EtcdEvents {
    events: mpsc::Receiver<Result<Option<Vec<WatchedEvent>>, TargetError>>,
}

impl EventStream for EtcdEvents {
    fn next(&mut self) -> BoxFut<'_, Option<Vec<WatchedEvent>>> {
        Box::pin(async move { self.events.next().await.unwrap_or(Ok(None)) })
    }
}
