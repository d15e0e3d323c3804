//! The tokio driver: accepts RTMP connections and runs each on its own task.

mod amf0;
pub(crate) mod chunks;
mod connection;
pub(crate) mod guard;
mod handshake;

use crate::{
    Error, IngestConfig,
    events::IngestEvent,
    streams::{StreamName, Streams, Subscription},
    verify::KeyVerifier,
};
use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, broadcast, watch},
    task::JoinSet,
};

/// How long connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection shares with the server.
pub(crate) struct Context {
    pub(crate) config: IngestConfig,
    pub(crate) verifier: Arc<dyn KeyVerifier>,
    pub(crate) streams: Streams,
    pub(crate) events: broadcast::Sender<IngestEvent>,
}

impl Context {
    pub(crate) fn emit(&self, event: IngestEvent) {
        // Err only means nobody subscribes.
        let _ = self.events.send(event);
    }
}

/// An RTMP ingest server bound to its address; [`IngestServer::run`] serves it.
pub struct IngestServer {
    listener: TcpListener,
    context: Arc<Context>,
    local_addr: SocketAddr,
}

/// A handle to a running server's streams and events; cheap to clone.
#[derive(Clone)]
pub struct IngestHandle {
    streams: Streams,
    events: broadcast::Sender<IngestEvent>,
}

impl IngestServer {
    /// Validates `config` and binds its RTMP address (port 0 picks a free port). Every
    /// publisher will be checked by `verifier` before it is accepted.
    pub async fn bind(config: IngestConfig, verifier: Arc<dyn KeyVerifier>) -> Result<Self, Error> {
        config.validate()?;
        let listener = TcpListener::bind(config.rtmp_listen).await?;
        let local_addr = listener.local_addr()?;
        let streams = Streams::new(config.stream_ring_frames, config.gop_cache_bytes);
        let (events, _) = broadcast::channel(1024);
        let context = Arc::new(Context {
            config,
            verifier,
            streams,
            events,
        });
        Ok(Self {
            listener,
            context,
            local_addr,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to this server's streams and events, usable while it runs.
    pub fn handle(&self) -> IngestHandle {
        IngestHandle {
            streams: self.context.streams.clone(),
            events: self.context.events.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then closes every connection (publishers' streams end)
    /// and returns once they are gone, or after 5 s.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let (stop, stopped) = watch::channel(false);
        let limit = Arc::new(Semaphore::new(self.context.config.max_connections));
        let next_session = AtomicU64::new(1);
        let mut connections = JoinSet::new();
        tracing::info!(addr = %self.local_addr, "RTMP ingest listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, client) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Usually out of file descriptors: back off instead of spinning.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                        tracing::warn!(%client, limit = self.context.config.max_connections, "connection limit reached; refusing");
                        metrics::counter!("media_ingest_connections_refused_total").increment(1);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let id = next_session.fetch_add(1, Ordering::Relaxed);
                    let context = Arc::clone(&self.context);
                    let stopped = stopped.clone();
                    metrics::gauge!("media_ingest_connections").increment(1.0);
                    connections.spawn(async move {
                        connection::serve(stream, client, id, context, stopped).await;
                        metrics::gauge!("media_ingest_connections").decrement(1.0);
                        drop(permit);
                    });
                }
                Some(finished) = connections.join_next() => report(finished),
            }
        }
        tracing::info!("RTMP ingest shutting down");
        let _ = stop.send(true);
        let drain = async {
            while let Some(finished) = connections.join_next().await {
                report(finished);
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            connections.abort_all();
        }
        Ok(())
    }
}

/// A connection task that panicked ended that connection only; say so.
fn report(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        metrics::counter!("media_ingest_connection_panics_total").increment(1);
        tracing::error!("an RTMP connection task panicked; the server goes on");
    }
}

impl IngestHandle {
    /// Session lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<IngestEvent> {
        self.events.subscribe()
    }

    /// Consumes a live stream (as the HLS packager does), if a verified publisher publishes it.
    pub fn subscribe(&self, stream: &StreamName) -> Option<Subscription> {
        self.streams.subscribe(stream)
    }

    /// The streams being published now.
    pub fn live_streams(&self) -> Vec<StreamName> {
        self.streams.names()
    }

    /// Disconnects the publisher of `stream` (an operator's or coordinator's kill): its stream
    /// ends as if it had left. `false` if nobody publishes it.
    pub fn end_stream(&self, stream: &StreamName) -> bool {
        self.streams.end(stream)
    }
}

/// Runs the connection loop over arbitrary bytes, for the fuzz target: the bytes arrive as the
/// client's input, then the client closes. Must never panic or hang.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub async fn fuzz_connection(input: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let config = IngestConfig {
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..IngestConfig::default()
    };
    let streams = Streams::new(config.stream_ring_frames, config.gop_cache_bytes);
    let verifier: Arc<dyn KeyVerifier> = Arc::new(crate::verify::danger::AcceptAnyKey);
    let context = Arc::new(Context {
        config,
        verifier,
        streams,
        events: broadcast::channel(16).0,
    });
    let (client, server) = tokio::io::duplex(64 << 10);
    let (_stop, stopped) = watch::channel(false);
    let serving = connection::serve(
        server,
        SocketAddr::from(([127, 0, 0, 1], 1)),
        1,
        context,
        stopped,
    );
    // The client reads the server's replies while it writes, as a real peer does; otherwise a
    // reply-heavy input fills the pipe and both sides wait for the write deadline.
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let feeding = async move {
        let _ = to_server.write_all(input).await;
        let _ = to_server.shutdown().await;
    };
    let draining = async move {
        let _ = tokio::io::copy(&mut from_server, &mut tokio::io::sink()).await;
    };
    tokio::join!(serving, feeding, draining);
}
