//! The web service (`web-api`): the site (sign-up, log-in, stream keys, channel pages with the
//! live player and chat, the dashboard, home and explore), its JSON (`algo`, `video`), and the
//! answers other services ask for over the hub. Handlers are grouped as the seed lists them.
//!
//! | Group | Routes |
//! |---|---|
//! | `auth` | `GET /signup`, `GET /login`, `POST /auth/signup`, `POST /auth/login`, `POST /auth/logout`, `POST /auth/nsk` → `{streamKey, message: "Ok"}` (owner only) |
//! | `channel` | `GET /channel/<username>` (player, title, description, tags, viewers, chat), `GET /channel/<username>/stats[?until=ONLINE&wait_seconds=N]` (JSON; with `until`, answers once the channel is in that state, or after `wait_seconds`, at most 30) |
//! | `dashboard` | `GET /dashboard`, `POST /dashboard` (title, description, tags, directory; the key is shown to its owner only) |
//! | `home` | `GET /?directory=&tag=`: live channels first |
//! | `algo` | `GET /algo/featured`, `GET /algo/recommended` (JSON; never a key) |
//! | `video` | `GET /video/<username>/master.m3u8` (302 to the live stream's master playlist), `GET /video/<username>/vods` (JSON) |
//!
//! Hub prompts (label [`WEB_LABEL`]): questions `checkKeyExists {streamKey}` →
//! `{exists, username}`, `streamStatus {username}` → `{name, code}`, `streamStats {username}`
//! → the seed's JSON, `status`; messages `setOnline {username, streamId, state}`,
//! `incrementViewers {username}`, `setViewerCount {username, count, seq}` (a count with a
//! `seq` not above the last one is stale and dropped), `addVod {username, streamId,
//! startedAtMs, durationMs, segments}`.
//!
//! **Log-in throttling:** after 5 wrong passwords for one username within 15 minutes, log-ins
//! to it are refused (429) for the rest of those 15 minutes.
//!
//! **Stream keys** appear only in the dashboard page and the `/auth/nsk` answer, both to their
//! owner: playback URLs name the username and the stream id.

mod channel;
mod config;
mod hub;
mod pages;
mod password;
mod routes;
mod session;
pub mod store;
mod throttle;

pub use config::WebConfig;
pub use hub::WEB_LABEL;

use crate::{Error, client::ServiceClient, transport::Transport};
use session::Sessions;
use std::{future::Future, net::SocketAddr, sync::Arc};
use store::WebStore;
use tokio::net::TcpListener;

/// A bound web service, ready to [`run`](WebService::run).
pub struct WebService {
    listener: TcpListener,
    router: axum::Router,
    hub: Option<ServiceClient>,
}

/// What every handler shares.
pub(crate) struct Web {
    pub(crate) config: WebConfig,
    pub(crate) store: Arc<dyn WebStore>,
    pub(crate) sessions: Sessions,
    /// Wrong passwords per username, to refuse guessing.
    pub(crate) throttle: throttle::Throttle,
    /// The link to the hub, once started (for the chat's member lists).
    pub(crate) hub: std::sync::OnceLock<ServiceClient>,
    /// Bumped whenever a channel's state or count changes, for those waiting on one.
    pub(crate) changes: tokio::sync::watch::Sender<u64>,
}

impl WebService {
    /// Binds `config.listen`. With `hub`, joins the hub as [`WEB_LABEL`] and answers the other
    /// services; without, the site runs alone (no stream goes live).
    pub async fn bind(
        config: WebConfig,
        store: Arc<dyn WebStore>,
        hub: Option<Arc<dyn Transport>>,
    ) -> Result<Self, Error> {
        config.validate()?;
        if config.chat_token_secret.is_none() {
            tracing::warn!(
                "no chat token secret: logged-in users' names will not be proven to the chat"
            );
        }
        let web = Arc::new(Web {
            sessions: Sessions::new(config.session_ttl, config.max_sessions),
            throttle: throttle::Throttle::default(),
            config,
            store,
            hub: std::sync::OnceLock::new(),
            changes: tokio::sync::watch::channel(0).0,
        });
        let hub = hub.map(|transport| {
            let client = hub::service(&web).start(transport);
            let _ = web.hub.set(client.clone());
            client
        });
        let listener = TcpListener::bind(web.config.listen).await?;
        Ok(Self {
            listener,
            router: routes::router(web),
            hub,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The link to the hub, if any: for readiness checks.
    pub fn hub(&self) -> Option<&ServiceClient> {
        self.hub.as_ref()
    }

    /// Serves until `shutdown` completes, with `extra` routes (health, metrics, the ingest's
    /// media …) beside.
    pub async fn run(
        self,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(
            crate::net::no_delay(self.listener),
            self.router.merge(extra),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}

/// Whether `name` may be a username: 3 to 32 characters of `[A-Za-z0-9_-]`.
pub(crate) fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
