//! The coordinator as a server: control links over WebSocket, the key-verification and
//! event-callback webhooks, and the HTTP commands API, around the sans-IO [`Scheduler`].

mod auth;
mod callbacks;
mod core;
mod http;
mod link;
mod tls;

use crate::{
    CoordinatorConfig, Error,
    proto::{Scheduler, SchedulerConfig},
    store::Store,
};
use axum::{
    Router,
    routing::{get, post},
    serve::ListenerExt as _,
};
use media_ingest::{KeyVerifier, WebhookVerifier, danger::AcceptAnyKey};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Once},
};
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc, watch},
};

pub use callbacks::MAX_RETRY_DELAY;
pub(crate) use callbacks::now_ms;

/// Commands waiting for the core (link messages, verdicts, API calls).
const CORE_QUEUE: usize = 4096;

/// What the HTTP handlers share.
pub(crate) struct App {
    config: CoordinatorConfig,
    commands: mpsc::Sender<core::Command>,
}

/// A bound coordinator, ready to [`run`](Coordinator::run).
pub struct Coordinator {
    listener: TcpListener,
    tls: Option<(TcpListener, Arc<tls::Certificates>)>,
    app: Arc<App>,
    core: core::Core,
    queue: mpsc::Receiver<core::Command>,
    store: Arc<dyn Store>,
}

/// reqwest is built without a default rustls provider (one TLS stack in the workspace: ring).
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Coordinator {
    /// Validates `config` and binds `BIND_ADDRESS:HTTP_PORT` (port 0 picks a free one). Keys are
    /// verified by `KEY_VERIFICATION_URL` (or, unset, all accepted, with a warning); callbacks
    /// and active streams are kept in `store`.
    pub async fn bind(config: CoordinatorConfig, store: Arc<dyn Store>) -> Result<Self, Error> {
        config.validate()?;
        let verifier: Arc<dyn KeyVerifier> = match &config.key_verification {
            Some(hook) => Arc::new(
                WebhookVerifier::new(
                    hook.url.clone(),
                    hook.auth.header_value(),
                    config.key_verification_timeout,
                )
                .map_err(|e| Error::Http(e.to_string()))?,
            ),
            None => {
                tracing::warn!(
                    "KEY_VERIFICATION_URL is not set: EVERY stream key is accepted. \
                     Set it to your application's key-verification endpoint."
                );
                Arc::new(AcceptAnyKey)
            }
        };
        Self::bind_with_verifier(config, store, verifier).await
    }

    /// As [`Coordinator::bind`], with keys checked by `verifier` instead of the webhook (for
    /// embedders that verify in-process).
    pub async fn bind_with_verifier(
        config: CoordinatorConfig,
        store: Arc<dyn Store>,
        verifier: Arc<dyn KeyVerifier>,
    ) -> Result<Self, Error> {
        config.validate()?;
        if config
            .control_secret
            .as_ref()
            .is_none_or(|s| s.expose().is_empty())
        {
            tracing::warn!(
                "CONTROL_SECRET is not set: every control link will be refused. Set it to the \
                 secret your streaming servers and encoders sign their tokens with."
            );
        }
        if config.commands_auth.is_none() {
            tracing::info!(
                "COMMANDS_API_AUTH is not set: the commands API answers 401 to everyone. Set it \
                 to Basic or Bearer (with its credentials) to use it."
            );
        }
        if config.event_callback.is_none() {
            tracing::info!("EVENT_CALLBACK_URL is not set: no event callbacks will be sent");
        }
        let address = SocketAddr::new(config.bind_address, config.http_port);
        let listener = TcpListener::bind(address).await?;
        let tls = match &config.tls {
            Some(settings) => {
                let certificates = Arc::new(tls::Certificates::load(settings)?);
                let address = SocketAddr::new(config.bind_address, settings.port);
                Some((TcpListener::bind(address).await?, certificates))
            }
            None => None,
        };
        let (commands, queue) = mpsc::channel(CORE_QUEUE);
        let scheduler = Scheduler::new(SchedulerConfig {
            heartbeat_interval: config.heartbeat_interval,
            link_timeout: config.link_timeout,
            id_max_length: config.id_max_length,
        });
        let durable = config.event_callback.as_ref().map(|_| core::Durable {
            store: store.clone(),
            wake: Arc::new(Notify::new()),
        });
        let core = core::Core {
            scheduler,
            links: HashMap::new(),
            verifier,
            verify_timeout: config.key_verification_timeout,
            durable,
            commands: commands.clone(),
        };
        Ok(Self {
            listener,
            tls,
            app: Arc::new(App { config, commands }),
            core,
            queue,
            store,
        })
    }

    /// The address the HTTP API and control links listen on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address HTTPS and `wss://` control links listen on, with TLS configured.
    pub fn tls_local_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.tls.as_ref().map(|(listener, _)| listener.local_addr())
    }

    /// Serves until `shutdown` completes; `extra` routes (health, metrics …) are served beside
    /// the coordinator's.
    pub async fn run(
        self,
        extra: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Self {
            listener,
            tls,
            app,
            core,
            queue,
            store,
        } = self;
        let (stop, stopping) = watch::channel(false);

        let mut tasks = tokio::task::JoinSet::new();
        if let (Some(hook), Some(durable)) = (&app.config.event_callback, &core.durable) {
            // Streams that were active when the coordinator last stopped are over now: their
            // publishers' links went with it.
            let replayed = store.close_remembered_streams(callbacks::now_ms()).await?;
            if replayed > 0 {
                tracing::info!(
                    replayed,
                    "stream-closed queued for streams active before a restart"
                );
            }
            let sender = callbacks::Sender::new(hook).map_err(|e| Error::Http(e.to_string()))?;
            tasks.spawn(callbacks::deliver(
                store.clone(),
                sender,
                app.config.callback_retry_interval,
                durable.wake.clone(),
                stopping.clone(),
            ));
        }
        tasks.spawn(core.run(queue, stopping.clone()));

        let commands = Router::new()
            .route("/commands/capacity", get(http::capacity))
            .route("/commands/report", get(http::report))
            .route("/commands/close", post(http::close))
            .route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                http::require_auth,
            ));
        let mut router = Router::new()
            .route("/ws/control/{role}", get(link::upgrade))
            .merge(commands)
            .with_state(app.clone())
            .merge(extra);
        if app.config.log_requests {
            router = router.layer(axum::middleware::from_fn(http::log_request));
        }
        if let Some((tls_listener, certificates)) = tls {
            if let Some(every) = app.config.tls.as_ref().and_then(|t| t.reload_check) {
                tasks.spawn(reload_certificates(
                    certificates.clone(),
                    every,
                    stopping.clone(),
                ));
            }
            // `tap_io` only to get axum's ConnectInfo<SocketAddr> for a listener of ours.
            let listener = tls::TlsListener::new(tls_listener, certificates)?.tap_io(|_| {});
            let service = router
                .clone()
                .into_make_service_with_connect_info::<SocketAddr>();
            let mut stopping_tls = stopping.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, service)
                    .with_graceful_shutdown(async move {
                        let _ = stopping_tls.changed().await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the TLS listener failed");
                }
            });
        }
        let mut stopping_http = stopping.clone();
        // Control links are request/response on small messages: Nagle's algorithm and delayed
        // ACKs would add ~40 ms to every round trip.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
            let _ = stopping_http.changed().await;
        })
        .await;
        // The core and the outbox stop on the same signal; wait for them to finish their step.
        while tasks.join_next().await.is_some() {}
        served.map_err(Error::Io)
    }
}

/// Checks the certificate files every `every`; a renewed certificate is used for the next
/// handshakes, a broken one is reported and the old one kept.
async fn reload_certificates(
    certificates: Arc<tls::Certificates>,
    every: std::time::Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => match certificates.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate reloaded"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "TLS certificate not reloaded; the old one stays"),
            },
            _ = stopping.changed() => return,
        }
    }
}
