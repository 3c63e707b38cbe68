//! Keeps a connection to every peer up, as etcd keeps its streams to every peer, whether raft
//! has anything to send or not: a follower otherwise never dials the other followers, and
//! could not tell which of them are up. Each change is reported as [`PeerEvent::Link`]: the
//! driver hands it to the core, whose strict reconfiguration check counts the peers this
//! member has been connected to for etcd's health interval.

use std::sync::{Arc, Weak};

use futures::SinkExt;

use super::Backoff;
use super::peer::{PeerEvent, Shared};
use super::peer_send::Dialer;
use crate::runtime;

/// Dials the peer, reports the link up, waits for the connection to close, reports it down,
/// and dials again after a backoff; ends when the peer is retired or the dialer is gone. The
/// connection is the one the writers use (the dialer's), kept alive by QUIC keep-alives and
/// given up after the peer idle timeout when the peer is gone.
pub(super) async fn keep_connected(shared: Arc<Shared>, dialer: Weak<Dialer>) {
    let mut events = shared.events.clone();
    let mut backoff = Backoff::new(
        shared.config.backoff_min,
        shared.config.backoff_max,
        shared.member_id.rotate_left(17),
    );
    loop {
        let (peer, connected) = {
            let Some(dialer) = dialer.upgrade() else {
                return;
            };
            if dialer.is_retired() {
                return;
            }
            (dialer.id, dialer.connection().await)
        };
        match connected {
            Ok(conn) => {
                backoff.reset();
                if events
                    .send(PeerEvent::Link { peer, up: true })
                    .await
                    .is_err()
                {
                    return;
                }
                conn.closed().await;
                if events
                    .send(PeerEvent::Link { peer, up: false })
                    .await
                    .is_err()
                {
                    return;
                }
                // A peer that accepts and closes at once is not redialed in a busy loop.
                runtime::sleep(backoff.next_delay()).await;
            }
            Err(_) => runtime::sleep(backoff.next_delay()).await,
        }
    }
}
