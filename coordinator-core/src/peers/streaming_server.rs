//! The streaming server's side of the coordinator: a [`KeyVerifier`] that asks the coordinator
//! (`PUBLISH-REQUEST`) instead of checking keys itself, ends the streams it kills
//! (`STREAM-KILL`), and reports publishers that leave (`PUBLISH-END`).

use super::uplink::{Uplink, UplinkDown, UplinkEvent};
use crate::proto::ControlMessage;
use async_trait::async_trait;
use media_ingest::{
    IngestEvent, IngestHandle, KeyVerifier, PublishOptions, PublishRequest, StreamName,
    VerifiedKey, VerifyError,
};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long the coordinator has to answer a `PUBLISH-REQUEST` (the original's 20 s).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Asks the coordinator whether a publisher may publish. Clone it into the ingest server and
/// into [`CoordinatorVerifier::serve`], which carries out the coordinator's side.
#[derive(Clone)]
pub struct CoordinatorVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set by [`CoordinatorVerifier::serve`]; until then every publisher is refused.
    uplink: OnceLock<Uplink>,
    answer_timeout: Duration,
    next_request: AtomicU64,
    /// Request id → who waits for its answer.
    pending: Mutex<HashMap<String, Waiter>>,
    /// Accepted publishers' streams and their stream ids.
    active: Mutex<HashMap<StreamName, String>>,
}

struct Waiter {
    channel: String,
    /// Where the answer goes (`Some(stream id)` accepts); `None` once the publisher gave up
    /// waiting, so that a late acceptance is ended at once instead of leaving a stream nobody
    /// publishes.
    answer: Option<oneshot::Sender<Option<String>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation: a poisoned map is still consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CoordinatorVerifier {
    /// A verifier whose questions an answer slower than `answer_timeout` denies. It asks once
    /// [`CoordinatorVerifier::serve`] runs (the server's address, which the link announces,
    /// is known only once the server is bound).
    pub fn new(answer_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                uplink: OnceLock::new(),
                answer_timeout,
                next_request: AtomicU64::new(1),
                pending: Mutex::new(HashMap::new()),
                active: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The coordinator's side of the server, until `shutdown`: questions go out on `uplink`,
    /// answers go to waiting publishers, `STREAM-KILL` ends streams, publishers that leave are
    /// reported. A lost link ends every publisher (the coordinator has stopped their encodes
    /// already).
    pub async fn serve(
        self,
        ingest: IngestHandle,
        uplink: Uplink,
        mut link_events: mpsc::Receiver<UplinkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if self.inner.uplink.set(uplink).is_err() {
            tracing::error!("CoordinatorVerifier::serve called twice; the first link stays");
        }
        let mut events = ingest.events();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = link_events.recv() => match event {
                    Some(UplinkEvent::Message(message)) => self.handle_message(&ingest, &message),
                    Some(UplinkEvent::Disconnected(_)) => self.link_lost(&ingest),
                    Some(_) => {}
                    None => return,
                },
                event = events.recv() => match event {
                    Ok(IngestEvent::DonePublish { stream, .. }) => self.publisher_left(&stream),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::error!(missed, "ingest events lost; PUBLISH-END may be missing");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn handle_message(&self, ingest: &IngestHandle, message: &ControlMessage) {
        match message.method() {
            "PUBLISH-ACCEPT" | "PUBLISH-DENY" => {
                let Some(request_id) = message.header("Request-ID") else {
                    return tracing::warn!(?message, "an answer without Request-ID");
                };
                let stream_id = (message.method() == "PUBLISH-ACCEPT")
                    .then(|| message.header("Stream-ID").map(str::to_owned))
                    .flatten();
                let waiter = lock(&self.inner.pending).remove(request_id);
                match (waiter, stream_id) {
                    (
                        Some(Waiter {
                            answer: Some(answer),
                            ..
                        }),
                        stream_id,
                    ) => {
                        let _ = answer.send(stream_id);
                    }
                    (
                        Some(Waiter {
                            answer: None,
                            channel,
                        }),
                        Some(stream_id),
                    ) => {
                        tracing::warn!(%channel, "accepted after the publisher gave up; ending it");
                        let end = ControlMessage::new("PUBLISH-END")
                            .with("Stream-Channel", channel)
                            .with("Stream-ID", stream_id);
                        let _ = self.send(end);
                    }
                    _ => tracing::debug!(request_id, "an answer nobody waits for"),
                }
            }
            "STREAM-KILL" => {
                let (Some(channel), Some(id)) = (
                    message.header("Stream-Channel"),
                    message.header("Stream-ID"),
                ) else {
                    return tracing::warn!(?message, "STREAM-KILL without channel or id");
                };
                let doomed: Vec<StreamName> = lock(&self.inner.active)
                    .iter()
                    .filter(|(name, stream_id)| {
                        name.app == channel && (id == "*" || *stream_id == id)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in doomed {
                    tracing::info!(channel, stream_id = id, "stream killed by the coordinator");
                    ingest.end_stream(&name);
                }
            }
            "ERROR" => tracing::warn!(
                code = message.header("Error-Code"),
                detail = message.header("Error-Message"),
                "the coordinator refused a message"
            ),
            other => tracing::debug!(method = other, "ignored coordinator message"),
        }
    }

    fn send(&self, message: ControlMessage) -> Result<(), UplinkDown> {
        self.inner.uplink.get().ok_or(UplinkDown)?.send(message)
    }

    fn link_lost(&self, ingest: &IngestHandle) {
        // Waiting publishers are denied (their answers will never come) …
        lock(&self.inner.pending).clear();
        // … and publishing ones end: nobody encodes their streams any more.
        let names: Vec<StreamName> = lock(&self.inner.active).drain().map(|(n, _)| n).collect();
        for name in names {
            ingest.end_stream(&name);
        }
    }

    fn publisher_left(&self, stream: &StreamName) {
        let Some(stream_id) = lock(&self.inner.active).remove(stream) else {
            return;
        };
        let end = ControlMessage::new("PUBLISH-END")
            .with("Stream-Channel", &stream.app)
            .with("Stream-ID", stream_id);
        if self.send(end).is_err() {
            tracing::warn!(channel = %stream.app, "PUBLISH-END not sent: the link is down");
        }
    }
}

/// `::ffff:1.2.3.4` as `1.2.3.4`.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[async_trait]
impl KeyVerifier for CoordinatorVerifier {
    async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
        let request_id = self
            .inner
            .next_request
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let (answer, answered) = oneshot::channel();
        let waiter = Waiter {
            channel: request.app.clone(),
            answer: Some(answer),
        };
        lock(&self.inner.pending).insert(request_id.clone(), waiter);
        let ask = ControlMessage::new("PUBLISH-REQUEST")
            .with("Request-ID", &request_id)
            .with("Stream-Channel", &request.app)
            .with("Stream-Key", &request.key)
            .with("User-IP", plain_ip(request.client.ip()));
        if self.send(ask).is_err() {
            lock(&self.inner.pending).remove(&request_id);
            return Err(VerifyError::Unavailable(
                "the coordinator link is down".into(),
            ));
        }
        let timeout = self.inner.answer_timeout;
        let answer = tokio::time::timeout(timeout, answered).await;
        if answer.is_err()
            && let Some(waiter) = lock(&self.inner.pending).get_mut(&request_id)
        {
            waiter.answer = None;
        }
        match answer {
            Ok(Ok(Some(stream_id))) => {
                let name = StreamName {
                    app: request.app.clone(),
                    key: request.key.clone(),
                };
                lock(&self.inner.active).insert(name, stream_id);
                Ok(VerifiedKey::checked(PublishOptions::default()))
            }
            Ok(Ok(None)) => Err(VerifyError::Denied("the coordinator denied it".into())),
            Ok(Err(_)) => Err(VerifyError::Unavailable(
                "the coordinator link was lost".into(),
            )),
            Err(_) => Err(VerifyError::TimedOut(timeout)),
        }
    }
}
