//! The relay as a server: Socket.IO and the HTTP API on one port.

use crate::{
    CastawayConfig, Error, api, relay::Shared, store::LivestreamStore, verify::TokenVerifier,
};
use axum::Router;
use socketioxide::SocketIo;
use std::{future::Future, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// A bound relay, ready to [`run`](CastawayServer::run).
pub struct CastawayServer {
    listener: TcpListener,
    router: Router,
}

impl CastawayServer {
    /// Validates `config`, clears `streamerConnected` flags a crash left behind, and binds
    /// `config.listen` (port 0 picks a free one).
    pub async fn bind(
        config: CastawayConfig,
        verifier: Arc<dyn TokenVerifier>,
        store: Arc<dyn LivestreamStore>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let reset = store.reset_streamers().await?;
        if reset > 0 {
            tracing::info!(reset, "cleared streamerConnected left by an earlier run");
        }
        // Polling carries binary base64-encoded (4/3 larger) and may batch packets: room for
        // one chunk at the limit and the small messages around it.
        let max_payload = (config.max_chunk_bytes as u64) * 2 + (64 << 10);
        // A binary event is two engine packets; the queue holds the configured chunks and
        // the control messages around them.
        let buffer = config.listener_queue_chunks * 2 + 16;
        let (service, io) = SocketIo::builder()
            .max_payload(max_payload)
            .max_buffer_size(buffer)
            .build_svc();
        let listener = TcpListener::bind(config.listen).await?;
        let shared = Shared::new(config, verifier.clone(), store.clone());
        shared.attach(&io);
        // Socket.IO at its default path, whatever routes are merged beside.
        let router = api::routes(verifier, store)
            .route_service("/socket.io/", service.clone())
            .route_service("/socket.io", service);
        Ok(Self { listener, router })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, with `extra` routes (health, metrics …) beside.
    pub async fn run(
        self,
        extra: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let router = self.router.merge(extra);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
