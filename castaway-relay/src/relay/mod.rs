//! The Socket.IO side: admission of streamers and listeners, and the relay of uploads.
//!
//! Admission runs in a connect middleware, so before the client hears that it is connected:
//! the client holds back its emits until then, and nothing it sends is lost or acted on
//! unvalidated. A refused client is still connected, told why on `error` (the event the
//! original's clients listen to; a bare `connect_error` would be invisible to them), and
//! disconnected.
//!
//! Uploads are handled where socketioxide decodes them, synchronously and in the order they
//! arrive (its message handlers are spawned as tasks, which may run out of order): a chunk is
//! checked, kept for late joiners, and handed to each listener's socket queue, the same `Bytes`
//! for all.

mod fanout;
mod live;

pub(crate) use fanout::{FanOut, Overflow};

use crate::{
    CastawayConfig,
    cluster::{Cluster, Session},
    store::LivestreamStore,
    verify::{TokenVerifier, VerifiedUser},
};
use bytes::Bytes;
use socketioxide::{
    SocketIo,
    extract::{Data, SocketRef, TryData},
    handler::{ConnectHandler as _, FromMessage},
    socket::Socket,
};
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Instant,
};

/// What both namespaces share.
pub(crate) struct Shared {
    pub(crate) config: CastawayConfig,
    pub(crate) verifier: Arc<dyn TokenVerifier>,
    pub(crate) store: Arc<dyn LivestreamStore>,
    pub(crate) io: OnceLock<SocketIo<FanOut>>,
    /// Livestreams with a streamer (here, or on another node of the cluster).
    live: Mutex<live::LiveMap>,
    /// The other nodes, with a Redis URL.
    pub(crate) cluster: Option<Arc<Cluster>>,
}

/// The outcome of admission, kept in the socket's extensions.
#[derive(Debug, Clone)]
enum Admission {
    Refused(String),
    Streamer { uid: String, livestream: String },
    Listener { uid: String, livestream: String },
}

/// Whether a streamer has heard its `success` yet: whichever comes first, the connect handler
/// or an upload sent right after connecting, says it, so it always precedes the upload's.
#[derive(Debug, Clone, Default)]
struct Greeted(Arc<std::sync::atomic::AtomicBool>);

impl Greeted {
    fn greet(&self, s: &SocketRef<FanOut>, uid: &str, livestream: &str) {
        if !self.0.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let _ = s.emit(
                "success",
                &format!("User {uid} connected as streamer to livestream {livestream}."),
            );
        }
    }
}

/// A streamer's upload budget (token bucket).
#[derive(Debug, Clone)]
struct Budget(Arc<Mutex<(f64, Instant)>>);

#[derive(Debug, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Auth {
    id_token: Option<String>,
    livestream_id: Option<String>,
}

const LISTENERS: &str = "/listener";

impl Shared {
    pub(crate) fn new(
        config: CastawayConfig,
        verifier: Arc<dyn TokenVerifier>,
        store: Arc<dyn LivestreamStore>,
        cluster: Option<Arc<Cluster>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            verifier,
            store,
            io: OnceLock::new(),
            live: Mutex::new(live::LiveMap::new()),
            cluster,
        })
    }

    /// Registers both namespaces on `io`.
    pub(crate) fn attach(self: &Arc<Self>, io: &SocketIo<FanOut>, overflow: &Overflow) {
        let _ = self.io.set(io.clone());
        let shared = Arc::downgrade(self);
        overflow.on_full(move |namespace, sids| {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let Some(ns) = shared.io.get().and_then(|io| io.of(namespace)) else {
                return;
            };
            for listener in sids.into_iter().filter_map(|sid| ns.get_socket(sid)) {
                drop_slow(&listener);
            }
        });
        let shared = self.clone();
        let admit = move |s: SocketRef<FanOut>, TryData(auth): TryData<Auth>| {
            let shared = shared.clone();
            async move {
                shared.admit(&s, auth.unwrap_or_default(), true).await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        io.ns("/streamer", connected.with(admit));
        let shared = self.clone();
        let admit = move |s: SocketRef<FanOut>, TryData(auth): TryData<Auth>| {
            let shared = shared.clone();
            async move {
                shared.admit(&s, auth.unwrap_or_default(), false).await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        io.ns(LISTENERS, connected.with(admit));
    }

    /// Decides whether `s` may stream (or listen) and, if so, gives it its handlers. Always
    /// lets the socket connect: a refusal is delivered on `error` once connected.
    async fn admit(self: &Arc<Self>, s: &SocketRef<FanOut>, auth: Auth, streamer: bool) {
        let timeout = self.config.admission_timeout;
        let outcome = tokio::time::timeout(timeout, self.check(s, auth, streamer))
            .await
            .unwrap_or_else(|_| Err("Admission timed out.".to_owned()));
        let admission = match outcome {
            Err(reason) => Admission::Refused(reason),
            Ok((user, livestream, session)) if streamer => {
                self.started_here(&livestream, session);
                let budget = Budget(Arc::new(Mutex::new((
                    f64::from(self.config.upload_burst),
                    Instant::now(),
                ))));
                s.extensions.insert(budget);
                s.extensions.insert(Greeted::default());
                s.on("upload", async |_: Uploaded| {});
                let shared = self.clone();
                let id = livestream.clone();
                s.on_disconnect(async move || shared.streamer_left(&id, session).await);
                Admission::Streamer {
                    uid: user.uid().to_owned(),
                    livestream,
                }
            }
            Ok((user, livestream, _)) => Admission::Listener {
                uid: user.uid().to_owned(),
                livestream,
            },
        };
        s.extensions.insert(admission);
        s.extensions.insert(self.clone());
    }

    async fn check(
        &self,
        s: &SocketRef<FanOut>,
        auth: Auth,
        streamer: bool,
    ) -> Result<(VerifiedUser, String, Session), String> {
        let headers = &s.req_parts().headers;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let token = header("id-token")
            .or(auth.id_token)
            .filter(|t| !t.is_empty())
            .ok_or("Id token not provided.")?;
        let id = header("livestream-id")
            .or(auth.livestream_id)
            .filter(|t| !t.is_empty())
            .ok_or("Livestream id not provided.")?;
        let user = self
            .verifier
            .verify(&token)
            .await
            .map_err(|_| "Invalid id token.".to_owned())?;
        let unavailable = |error: crate::store::StoreError| {
            tracing::error!(%error, "livestream store unavailable");
            "The livestream could not be checked; try again.".to_owned()
        };
        let livestream = self
            .store
            .get(&id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| format!("Livestream {id} does not exist."))?;
        let session: Session = rand::random();
        if streamer {
            if livestream.artist_id != user.uid() {
                return Err("User is not authorized to livestream in this room.".into());
            }
            self.claim(&id, &session).await?;
        } else {
            // In a cluster the lease says whether the livestream is on; the flag may be stale.
            let started = match &self.cluster {
                Some(_) => self.live_anywhere(&id).await.map_err(|error| {
                    tracing::error!(%error, "cluster unavailable");
                    "The livestream could not be checked; try again.".to_owned()
                })?,
                None => livestream.streamer_connected && self.live().contains_key(&id),
            };
            if !started {
                return Err(format!("Livestream {id} has not started."));
            }
            let listening = self.listeners(&id).len();
            if listening >= self.config.max_listeners_per_livestream {
                return Err(format!("Livestream {id} is full."));
            }
        }
        Ok((user, id, session))
    }

    /// Makes `session` the one streamer of livestream `id`: the store's flag on one node, the
    /// cluster's lease (then the flag, for the HTTP API's readers) in a cluster.
    async fn claim(&self, id: &str, session: &Session) -> Result<(), String> {
        let unavailable = |error: &dyn std::fmt::Display| {
            tracing::error!(%error, "livestream store or cluster unavailable");
            "The livestream could not be checked; try again.".to_owned()
        };
        let taken = format!("Livestream {id} already has a streamer.");
        let Some(cluster) = &self.cluster else {
            return match self.store.claim_streamer(id).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(taken),
                Err(error) => Err(unavailable(&error)),
            };
        };
        match cluster.claim(id, session).await {
            Ok(true) => {}
            Ok(false) => return Err(taken),
            Err(error) => return Err(unavailable(&error)),
        }
        match self.store.claim_streamer(id).await {
            // Set by a node that died: the lease it held has expired.
            Ok(false) => tracing::info!(livestream = id, "streamerConnected was left set"),
            Ok(true) => {}
            Err(error) => {
                if let Err(error) = cluster.release(id, session).await {
                    tracing::warn!(%error, livestream = id, "cannot release the lease");
                }
                return Err(unavailable(&error));
            }
        }
        Ok(())
    }
}

/// What a streamer is told when its chunk reached nobody because the cluster is behind.
const OVERLOADED: &str = "The relay is overloaded: this chunk was not relayed; send it again.";

/// What a listener that fell too far behind is told.
const TOO_SLOW: &str = "Too slow: too many chunks were waiting for you.";

/// Sends the history to a listener that just joined (its own copies: this is once per join).
fn deliver(listener: &SocketRef<FanOut>, chunks: &[Bytes]) {
    for chunk in chunks {
        if listener.emit("audio", chunk).is_err() {
            drop_slow(listener);
            return;
        }
    }
}

/// A listener whose queue is full is too slow: it gets no more audio (it leaves the
/// livestream's room), and as soon as its queue has room again it is told why and
/// disconnected; a connection that never drains is closed by engine.io's ping timeout.
fn drop_slow(listener: &SocketRef<FanOut>) {
    tracing::info!(sid = %listener.id, "listener too slow; dropping it");
    metrics::counter!("castaway_listeners_dropped_total").increment(1);
    listener.leave_all();
    let listener = listener.clone();
    tokio::spawn(async move {
        let mut retry = tokio::time::interval(SLOW_LISTENER_RETRY);
        for _ in 0..SLOW_LISTENER_RETRIES {
            retry.tick().await;
            if !listener.connected() {
                return;
            }
            if listener.emit("error", TOO_SLOW).is_ok() {
                let _ = listener.disconnect();
                return;
            }
        }
    });
}

/// How often a dropped listener's queue is checked for room for its `error`, and for how
/// long (engine.io's ping timeout ends a dead connection well within it).
const SLOW_LISTENER_RETRY: std::time::Duration = std::time::Duration::from_millis(100);
const SLOW_LISTENER_RETRIES: u32 = 1200;

/// After admission: a refused socket is told why and disconnected; an admitted one hears
/// `success` (and a listener gets the latest chunks at once).
async fn connected(s: SocketRef<FanOut>) {
    let (Some(admission), Some(shared)) = (
        s.extensions.get::<Admission>(),
        s.extensions.get::<Arc<Shared>>(),
    ) else {
        let _ = s.disconnect();
        return;
    };
    match admission {
        Admission::Refused(reason) => {
            tracing::info!(sid = %s.id, %reason, "refused");
            let _ = s.emit("error", &reason);
            let _ = s.disconnect();
        }
        Admission::Streamer { uid, livestream } => {
            if let Some(greeted) = s.extensions.get::<Greeted>() {
                greeted.greet(&s, &uid, &livestream);
            }
        }
        Admission::Listener { uid, livestream } => {
            let Some(history) = shared.join(&s, &livestream) else {
                let _ = s.emit("error", &format!("Livestream {livestream} has ended."));
                let _ = s.disconnect();
                return;
            };
            let _ = s.emit(
                "success",
                &format!("User {uid} connected as listener to livestream {livestream}."),
            );
            deliver(&s, &history);
        }
    }
}

/// An `upload`, handled while socketioxide decodes it (see the module docs): by the time the
/// spawned (empty) handler runs, the chunk is relayed.
struct Uploaded;

impl FromMessage<FanOut> for Uploaded {
    type Error = std::convert::Infallible;

    fn from_message(
        s: Arc<Socket<FanOut>>,
        mut v: socketioxide_core::Value,
        ack: Option<i64>,
    ) -> Result<Self, Self::Error> {
        let socket = SocketRef::from(s.clone());
        let (Some(shared), Some(Admission::Streamer { uid, livestream })) = (
            s.extensions.get::<Arc<Shared>>(),
            s.extensions.get::<Admission>(),
        ) else {
            return Ok(Self);
        };
        if let Some(greeted) = s.extensions.get::<Greeted>() {
            greeted.greet(&socket, &uid, &livestream);
        }
        use socketioxide::handler::FromMessageParts as _;
        let chunk = match Data::<Bytes>::from_message_parts(&s, &mut v, &ack) {
            Ok(Data(chunk)) => chunk,
            Err(_) => {
                let _ = socket.emit("error", "Upload must be binary audio data.");
                return Ok(Self);
            }
        };
        let limit = shared.config.max_chunk_bytes;
        if chunk.len() > limit {
            let _ = socket.emit(
                "error",
                &format!(
                    "Chunk of {} bytes is over the limit of {limit} bytes.",
                    chunk.len()
                ),
            );
            return Ok(Self);
        }
        if let Some(budget) = s.extensions.get::<Budget>()
            && !budget.take(&shared.config)
        {
            let _ = socket.emit(
                "error",
                &format!(
                    "Uploading too fast: at most {} chunks per second.",
                    shared.config.uploads_per_second
                ),
            );
            return Ok(Self);
        }
        if shared.relay(&livestream, chunk).is_err() {
            metrics::counter!("castaway_uploads_refused_overloaded_total").increment(1);
            let _ = socket.emit("error", OVERLOADED);
            return Ok(Self);
        }
        let _ = socket.emit("success", &format!("Packet received from user {uid}"));
        Ok(Self)
    }
}

impl Budget {
    /// Takes one upload from the bucket, refilled at the sustained rate.
    fn take(&self, config: &CastawayConfig) -> bool {
        let mut bucket = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        let now = Instant::now();
        let refill = now.duration_since(*last).as_secs_f64() * f64::from(config.uploads_per_second);
        *tokens = (*tokens + refill).min(f64::from(config.upload_burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
