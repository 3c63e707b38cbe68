//! The qraft target: the qraft client library (QUIC + TLS). Each connection is one `Client`,
//! i.e. one QUIC connection on which every request opens its own stream.

use std::path::PathBuf;

use prost::bytes::Bytes;
use qraft_io::client::{Client, ClientConfig, LeaseKeepAlive, Watch};
use qraft_proto::etcdserverpb::{
    LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest,
    request_op,
};

use super::target::{
    BoxFut, Conn, EventStream, KeepAlive, Page, Target, TargetError, WatchedEvent,
};

pub struct QraftTarget {
    endpoints: Vec<String>,
    cacert: PathBuf,
}

impl QraftTarget {
    /// `cacert`: the CA that signed the members' client certificates.
    pub fn new(endpoints: Vec<String>, cacert: PathBuf) -> Self {
        Self { endpoints, cacert }
    }
}

impl Target for QraftTarget {
    fn name(&self) -> &'static str {
        "qraft"
    }

    fn connect(&self) -> BoxFut<'_, Box<dyn Conn>> {
        Box::pin(async move {
            let config = ClientConfig::from_files(self.endpoints.clone(), &self.cacert, None)
                .map_err(TargetError::new)?;
            let client = Client::connect(config).await.map_err(TargetError::new)?;
            Ok(Box::new(QraftConn(client)) as Box<dyn Conn>)
        })
    }
}

struct QraftConn(Client);

impl Conn for QraftConn {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        let request = PutRequest {
            key: Bytes::from(key),
            value: Bytes::from(value),
            ..PutRequest::default()
        };
        Box::pin(async move {
            self.0
                .put(request)
                .await
                .map(drop)
                .map_err(TargetError::new)
        })
    }

    fn range(&self, key: Vec<u8>, serializable: bool) -> BoxFut<'_, ()> {
        let request = RangeRequest {
            key: Bytes::from(key),
            serializable,
            ..RangeRequest::default()
        };
        Box::pin(async move {
            self.0
                .range(request)
                .await
                .map(drop)
                .map_err(TargetError::new)
        })
    }

    fn range_page(&self, from: Vec<u8>, limit: i64, revision: i64) -> BoxFut<'_, Page> {
        let request = RangeRequest {
            key: Bytes::from(from),
            // "\0" as range end: every key from `key` on.
            range_end: Bytes::from_static(b"\0"),
            limit,
            revision,
            keys_only: false,
            ..RangeRequest::default()
        };
        Box::pin(async move {
            let response = self.0.range(request).await.map_err(TargetError::new)?;
            Ok(Page {
                keys: response.kvs.len() as u64,
                more_after: response
                    .more
                    .then(|| response.kvs.last().map(|kv| kv.key.to_vec()))
                    .flatten(),
                revision: response.header.map_or(0, |h| h.revision),
            })
        })
    }

    fn txn_put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        let put = PutRequest {
            key: Bytes::from(key),
            value: Bytes::from(value),
            ..PutRequest::default()
        };
        let request = TxnRequest {
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(put)),
            }],
            ..TxnRequest::default()
        };
        Box::pin(async move {
            self.0
                .txn(request)
                .await
                .map(drop)
                .map_err(TargetError::new)
        })
    }

    fn lease_grant(&self, ttl: i64) -> BoxFut<'_, i64> {
        let request = LeaseGrantRequest {
            ttl,
            ..LeaseGrantRequest::default()
        };
        Box::pin(async move {
            let granted = self
                .0
                .lease_grant(request)
                .await
                .map_err(TargetError::new)?;
            Ok(granted.id)
        })
    }

    fn lease_keep_alive(&self, lease: i64) -> BoxFut<'_, Box<dyn KeepAlive>> {
        let stream = self.0.lease_keep_alive(lease);
        Box::pin(async move { Ok(Box::new(QraftKeepAlive(stream)) as Box<dyn KeepAlive>) })
    }

    fn watch_range(&self, key: Vec<u8>, range_end: Vec<u8>) -> BoxFut<'_, Box<dyn EventStream>> {
        let create = WatchCreateRequest {
            key: Bytes::from(key),
            range_end: Bytes::from(range_end),
            ..WatchCreateRequest::default()
        };
        Box::pin(async move {
            let mut watch = self.0.watch(create).await.map_err(TargetError::new)?;
            // The first response confirms the watcher exists; puts start only after it.
            match watch.next().await {
                Some(Ok(created)) if created.created => {}
                Some(Err(err)) => return Err(TargetError::new(err)),
                _ => return Err(TargetError::new("watch was not created")),
            }
            Ok(Box::new(QraftEvents(watch)) as Box<dyn EventStream>)
        })
    }
}

struct QraftKeepAlive(LeaseKeepAlive);

impl KeepAlive for QraftKeepAlive {
    fn keep_alive(&mut self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let answer = self.0.keep_alive().await.map_err(TargetError::new)?;
            if answer.ttl <= 0 {
                return Err(TargetError::new("lease not found"));
            }
            Ok(())
        })
    }
}

struct QraftEvents(Watch);

impl EventStream for QraftEvents {
    fn next(&mut self) -> BoxFut<'_, Option<Vec<WatchedEvent>>> {
        Box::pin(async move {
            match self.0.next().await {
                None => Ok(None),
                Some(Err(err)) => Err(TargetError::new(err)),
                Some(Ok(response)) => Ok(Some(
                    response
                        .events
                        .iter()
                        .filter_map(|event| {
                            event
                                .kv
                                .as_ref()
                                .map(|kv| (kv.mod_revision, kv.value.to_vec()))
                        })
                        .collect(),
                )),
            }
        })
    }

    fn resumes(&self) -> u64 {
        self.0.resumes()
    }
}
