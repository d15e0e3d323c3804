//! The livestreams that have a streamer, here or (in a cluster) on another node: their
//! session, their recent chunks for late joiners, and what happens when one starts, gets a
//! chunk or ends.

use super::{FanOut, LISTENERS, Shared};
use crate::cluster::{Event, Message, Session};
use bytes::Bytes;
use socketioxide::extract::SocketRef;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, MutexGuard},
};

/// A livestream with a streamer.
#[derive(Debug)]
pub(crate) struct Live {
    session: Session,
    /// Whether the streamer is connected to this node.
    here: bool,
    history: VecDeque<Bytes>,
}

impl Live {
    pub(crate) fn new(session: Session, here: bool) -> Self {
        Self {
            session,
            here,
            history: VecDeque::new(),
        }
    }
}

pub(crate) type LiveMap = HashMap<String, Live>;

/// A chunk that could not be relayed: the cluster's outbox is full.
#[derive(Debug)]
pub(super) struct Overloaded;

impl Shared {
    pub(super) fn live(&self) -> MutexGuard<'_, LiveMap> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A streamer was admitted here.
    pub(super) fn started_here(&self, livestream: &str, session: Session) {
        let mut live = self.live();
        live.insert(livestream.to_owned(), Live::new(session, true));
        if let Some(cluster) = &self.cluster {
            match cluster.reserve() {
                Some(outgoing) => outgoing.send(session, livestream, Event::Started),
                // The others learn of it from its first chunk, or from its lease.
                None => tracing::warn!(livestream, "cluster outbox full; start not announced"),
            }
        }
    }

    /// Relays a checked chunk of this node's streamer: to the other nodes, kept for late
    /// joiners, and to every listener here. All or nothing: with the cluster's outbox full,
    /// nobody gets it and the streamer is told.
    pub(super) fn relay(&self, livestream: &str, chunk: Bytes) -> Result<(), Overloaded> {
        let outgoing = match &self.cluster {
            Some(cluster) => Some(cluster.reserve().ok_or(Overloaded)?),
            None => None,
        };
        {
            let mut live = self.live();
            let Some(stream) = live.get_mut(livestream).filter(|s| s.here) else {
                return Ok(());
            };
            if let Some(outgoing) = outgoing {
                outgoing.send(stream.session, livestream, Event::Chunk(chunk.clone()));
            }
            self.keep(stream, &chunk);
            self.broadcast(livestream, &chunk);
        }
        metrics::counter!("castaway_chunks_relayed_total").increment(1);
        Ok(())
    }

    /// Queues `chunk` to every listener of `livestream` here, encoded once and shared (see
    /// [`FanOut`]); those with a full queue are dropped as too slow. Called under the live
    /// lock, so a listener joining meanwhile gets a chunk from the history or from here, never
    /// both.
    fn broadcast(&self, livestream: &str, chunk: &Bytes) {
        use futures::FutureExt as _;
        let Some(ns) = self.io.get().and_then(|io| io.of(LISTENERS)) else {
            return;
        };
        // Ready at once: FanOut queues synchronously. Full queues are reported to the
        // overflow callback, by socket.
        let _ = ns
            .within(livestream.to_owned())
            .emit("audio", chunk)
            .now_or_never();
    }

    fn keep(&self, stream: &mut Live, chunk: &Bytes) {
        stream.history.push_back(chunk.clone());
        while stream.history.len() > self.config.history_chunks {
            stream.history.pop_front();
        }
    }

    /// Joins `s` to `livestream` and returns the recent chunks, under the live lock, so a chunk
    /// relayed meanwhile reaches it exactly once; `None` if the livestream is not live here.
    pub(super) fn join(&self, s: &SocketRef<FanOut>, livestream: &str) -> Option<Vec<Bytes>> {
        let live = self.live();
        let stream = live.get(livestream)?;
        s.join(livestream.to_owned());
        Some(stream.history.iter().cloned().collect())
    }

    pub(super) fn listeners(&self, livestream: &str) -> Vec<SocketRef<FanOut>> {
        self.io
            .get()
            .and_then(|io| io.of(LISTENERS))
            .map(|ns| ns.within(livestream.to_owned()).sockets())
            .unwrap_or_default()
    }

    /// This node's streamer of `livestream` left. The livestream is free again (lease and flag)
    /// before any listener hears that it ended, so a listener's `error` means a streamer may
    /// start anew.
    pub(super) async fn streamer_left(&self, livestream: &str, session: Session) {
        if let Some(cluster) = &self.cluster
            && let Err(error) = cluster.release(livestream, &session).await
        {
            tracing::warn!(%error, livestream, "cannot release the lease; it will expire");
        }
        if let Err(error) = self.store.release_streamer(livestream).await {
            tracing::error!(%error, livestream, "cannot clear streamerConnected");
        }
        self.end_here(livestream, session);
        if let Some(cluster) = &self.cluster {
            match cluster.reserve() {
                Some(outgoing) => outgoing.send(session, livestream, Event::Ended),
                None => tracing::warn!(livestream, "cluster outbox full; the lease will tell"),
            }
        }
        tracing::info!(livestream, "streamer left");
    }

    /// Ends `session` of `livestream` for this node's listeners, if it is the current one.
    fn end_here(&self, livestream: &str, session: Session) {
        let listeners = {
            let mut live = self.live();
            if live.get(livestream).is_none_or(|s| s.session != session) {
                return;
            }
            live.remove(livestream);
            self.listeners(livestream)
        };
        let ended = format!("Livestream {livestream} has ended.");
        for listener in listeners {
            let _ = listener.emit("error", &ended);
            let _ = listener.disconnect();
        }
    }

    /// Another node's news. A session this node does not know yet replaces the one it knew
    /// (its `ended` may have been lost); a streamer connected here is never displaced.
    pub(crate) fn apply(&self, message: Message) {
        let Message {
            session,
            livestream,
            event,
            ..
        } = message;
        match event {
            Event::Ended => self.end_here(&livestream, session),
            Event::Started => {
                let mut live = self.live();
                let known = live.get(&livestream);
                if known.is_none_or(|s| !s.here && s.session != session) {
                    live.insert(livestream, Live::new(session, false));
                }
            }
            Event::Chunk(chunk) => {
                let mut live = self.live();
                let stream = live
                    .entry(livestream.clone())
                    .or_insert_with(|| Live::new(session, false));
                if stream.here {
                    return;
                }
                if stream.session != session {
                    *stream = Live::new(session, false);
                }
                self.keep(stream, &chunk);
                self.broadcast(&livestream, &chunk);
                metrics::counter!("castaway_cluster_chunks_received_total").increment(1);
            }
        }
    }

    /// For a listener's admission in a cluster: whether `livestream` has a streamer anywhere
    /// (by its lease); if on another node, this node learns of it now.
    pub(super) async fn live_anywhere(&self, livestream: &str) -> redis::RedisResult<bool> {
        let Some(cluster) = &self.cluster else {
            return Ok(self.live().contains_key(livestream));
        };
        if self.live().contains_key(livestream) {
            return Ok(true);
        }
        let holders = cluster.holders(&[livestream.to_owned()]).await?;
        let Some(Some(session)) = holders.first() else {
            return Ok(false);
        };
        self.live()
            .entry(livestream.to_owned())
            .or_insert_with(|| Live::new(*session, false));
        Ok(true)
    }

    /// In a cluster, every third of a lease: renews the leases of this node's streamers, and
    /// ends other nodes' livestreams whose lease is gone or changed hands (their node died, or
    /// their `ended` was lost). Runs until the relay is dropped.
    pub(crate) async fn watch_leases(shared: std::sync::Weak<Self>) {
        let Some(period) = shared
            .upgrade()
            .and_then(|s| s.cluster.as_ref().map(|c| c.lease() / 3))
        else {
            return;
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.check_leases().await;
        }
    }

    async fn check_leases(self: &Arc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let (here, elsewhere): (Vec<_>, Vec<_>) = self
            .live()
            .iter()
            .map(|(id, s)| (id.clone(), s.session, s.here))
            .partition(|(_, _, here)| *here);
        for (livestream, session, _) in here {
            match cluster.renew(&livestream, &session).await {
                Ok(true) => {}
                // Expired (Redis was away longer than a lease): take it again if it is free.
                Ok(false) => match cluster.claim(&livestream, &session).await {
                    Ok(true) => tracing::info!(livestream, "lease taken again"),
                    Ok(false) => {
                        tracing::error!(livestream, "another node holds this streamer's lease")
                    }
                    Err(error) => tracing::warn!(%error, livestream, "cannot renew the lease"),
                },
                Err(error) => tracing::warn!(%error, livestream, "cannot renew the lease"),
            }
        }
        let ids: Vec<String> = elsewhere.iter().map(|(id, _, _)| id.clone()).collect();
        match cluster.holders(&ids).await {
            Ok(holders) => {
                for ((livestream, session, _), holder) in elsewhere.into_iter().zip(holders) {
                    if holder != Some(session) {
                        tracing::info!(livestream, "streamer gone from the cluster");
                        self.end_here(&livestream, session);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the cluster's leases"),
        }
    }
}
