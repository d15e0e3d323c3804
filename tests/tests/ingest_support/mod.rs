//! Shared by the media-ingest tests: a server on 127.0.0.1:0 and waiting on its events.
#![allow(dead_code, unreachable_pub)]

use media_ingest::{
    IngestConfig, IngestEvent, IngestHandle, IngestServer, KeyVerifier, PublishOptions, StaticKeys,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::{broadcast, oneshot};

pub const KEY: &str = "a-good-key";

pub struct Running {
    pub addr: SocketAddr,
    pub handle: IngestHandle,
    pub events: broadcast::Receiver<IngestEvent>,
    _stop: oneshot::Sender<()>,
}

/// The default configuration, changed by `edit`, on 127.0.0.1:0.
pub fn config(edit: impl FnOnce(&mut IngestConfig)) -> IngestConfig {
    let mut config = IngestConfig::default();
    config.rtmp_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    edit(&mut config);
    config
}

pub async fn start(config: IngestConfig, verifier: Arc<dyn KeyVerifier>) -> Running {
    let server = IngestServer::bind(config, verifier).await.expect("bound");
    let (addr, handle) = (server.local_addr(), server.handle());
    let events = handle.events();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        handle,
        events,
        _stop: stop,
    }
}

pub fn good_keys() -> Arc<dyn KeyVerifier> {
    Arc::new(StaticKeys::new().allow("live", KEY, PublishOptions::default()))
}

/// Waits for the first event that `wanted` accepts, returning it.
pub async fn expect_event(
    events: &mut broadcast::Receiver<IngestEvent>,
    wanted: impl Fn(&IngestEvent) -> bool,
) -> IngestEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => {}
                Err(error) => panic!("event stream failed: {error}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the expected event in time")
}

/// Collects the lifecycle of `session` until its `doneConnect`.
pub async fn lifecycle(
    events: &mut broadcast::Receiver<IngestEvent>,
    session: u64,
) -> Vec<&'static str> {
    let mut names = Vec::new();
    loop {
        let event = expect_event(events, |e| e.session() == session).await;
        names.push(event.name());
        if matches!(event, IngestEvent::DoneConnect { .. }) {
            return names;
        }
    }
}

/// A publisher that the server has accepted.
pub struct Published {
    /// ffmpeg, publishing.
    pub publisher: harness::FfmpegRun,
    /// The stream it publishes.
    pub stream: media_ingest::StreamName,
    /// Its session.
    pub session: u64,
}

/// Publishes the test signal for `seconds` with ffmpeg to `live/KEY` and waits until the
/// server has accepted it.
pub async fn publish(ffmpeg: &harness::Ffmpeg, server: &mut Running, seconds: u64) -> Published {
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let publisher = ffmpeg
        .publish(
            &url,
            &harness::TestSignal::lasting(Duration::from_secs(seconds)),
        )
        .expect("publishing");
    match expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await
    {
        IngestEvent::PostPublish {
            stream, session, ..
        } => Published {
            publisher,
            stream,
            session,
        },
        _ => unreachable!("the predicate only accepts postPublish"),
    }
}
