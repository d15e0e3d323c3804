//! The session backend (the original's port 5000) and the frontend pages it serves.
//!
//! - `POST /servers/join` places a session: it asks every rendering server that is up for
//!   `SERVER_STATUS`, picks the one with the highest free/total ratio (ties: more free slots,
//!   then the order of configuration), sends it `START`, and follows the instance with
//!   `STATUS` until it runs (our supervisor's waiting `STATUS`; an original supervisor is
//!   polled every `poll_interval`). The reply is `201 {id, token, state}`.
//! - `GET /instances/:id` → the session's state: `{state: starting|running|ended, url?,
//!   reason?}`; `PUT /instances/:id/terminate` sends `STOP`.
//! - `GET /servers` → each server's name, whether it is up, and its last `running`/`total`.
//!   A server that fails `down_after_failures` checks in a row is down and skipped until it
//!   answers again (checked every `poll_interval`).
//! - A session nobody looked at (its page, its events, `GET /instances/:id`) for
//!   `idle_session_timeout` is stopped.
//!
//! The frontend: `/` (request a session), `/session/<token>` (waiting, then the
//! session view) and its events; the browser holds only the opaque, signed, expiring token.

mod client;
mod frontend;

use crate::{BackendConfig, Error, config::RenderingServer};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::watch};

/// How long one command may take to be answered (besides a waiting `STATUS`'s wait).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A session's state, as `GET /instances/:id` and the frontend's events show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum SessionState {
    /// Placed; its instance is starting.
    Starting,
    /// Its instance runs; the browser loads `url`.
    Running {
        /// The Web GUI's address for this session.
        url: String,
    },
    /// Over.
    Ended {
        /// Why.
        reason: String,
    },
}

/// One session: an instance on a rendering server.
pub(crate) struct Session {
    pub(crate) id: String,
    server: usize,
    slot: u32,
    pub(crate) state: watch::Sender<SessionState>,
    last_seen: Mutex<Instant>,
}

impl Session {
    pub(crate) fn touch(&self) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

struct ServerHealth {
    up: bool,
    failures: u32,
    running: u64,
    total: u64,
}

pub(crate) struct App {
    config: BackendConfig,
    health: Mutex<Vec<ServerHealth>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub(crate) tokens: frontend::SessionKey,
}

/// A bound backend, ready to [`run`](Backend::run).
pub struct Backend {
    listener: TcpListener,
    app: Arc<App>,
}

impl Backend {
    /// Validates `config` and binds `config.listen`.
    pub async fn bind(config: BackendConfig) -> Result<Self, Error> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen).await?;
        let secret = match &config.session_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let health = config
            .servers
            .iter()
            .map(|_| ServerHealth {
                up: true,
                failures: 0,
                running: 0,
                total: 0,
            })
            .collect();
        let app = Arc::new(App {
            tokens: frontend::SessionKey::new(&secret, config.session_token_ttl),
            config,
            health: Mutex::new(health),
            sessions: Mutex::new(HashMap::new()),
        });
        Ok(Self { listener, app })
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
        tokio::spawn(housekeeping(Arc::downgrade(&self.app)));
        let api = Router::new()
            .route("/servers", get(servers))
            .route("/servers/join", post(join_route))
            .route("/instances/{id}", get(instance))
            .route("/instances/{id}/terminate", put(terminate_route))
            .with_state(self.app.clone());
        let router = api.merge(frontend::routes(self.app)).merge(extra);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

impl App {
    fn servers(&self) -> &[RenderingServer] {
        &self.config.servers
    }

    pub(crate) fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn health<T>(&self, f: impl FnOnce(&mut Vec<ServerHealth>) -> T) -> T {
        f(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Asks server `index` for `SERVER_STATUS`, recording whether it answered.
    async fn check(&self, index: usize) -> Option<(u64, u64)> {
        let server = &self.servers()[index];
        let reply = client::command(
            &server.command_url,
            server.secret.as_deref(),
            json!({ "command": "SERVER_STATUS" }),
            COMMAND_TIMEOUT,
        )
        .await;
        let counts = reply.ok().and_then(|r| {
            (r["error"] == "none").then(|| (r["running"].as_u64(), r["total"].as_u64()))
        });
        let counts = counts.and_then(|(running, total)| Some((running?, total?)));
        let limit = self.config.down_after_failures;
        self.health(|health| {
            let state = &mut health[index];
            match counts {
                Some((running, total)) => {
                    if !state.up {
                        tracing::info!(server = server.name, "rendering server is back");
                    }
                    *state = ServerHealth {
                        up: true,
                        failures: 0,
                        running,
                        total,
                    };
                }
                None => {
                    state.failures += 1;
                    if state.up && state.failures >= limit {
                        state.up = false;
                        tracing::warn!(server = server.name, "rendering server is down");
                        metrics::counter!("openspace_backend_servers_down_total").increment(1);
                    }
                }
            }
        });
        counts
    }

    /// Places a session (see the module docs).
    pub(crate) async fn join(self: &Arc<Self>) -> Result<Arc<Session>, String> {
        let up: Vec<usize> =
            self.health(|health| (0..health.len()).filter(|i| health[*i].up).collect());
        let checks = up
            .iter()
            .map(|index| async move { (*index, self.check(*index).await) });
        let mut candidates: Vec<(usize, u64, u64)> = futures::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(|(index, counts)| counts.map(|(running, total)| (index, running, total)))
            .filter(|(_, running, total)| running < total)
            .collect();
        // Highest free/total first (compared as cross products), then more free, then order.
        candidates.sort_by(|a, b| {
            let (free_a, free_b) = (a.2 - a.1, b.2 - b.1);
            (free_b * a.2)
                .cmp(&(free_a * b.2))
                .then(free_b.cmp(&free_a))
                .then(a.0.cmp(&b.0))
        });
        for (index, _, _) in candidates {
            let server = &self.servers()[index];
            let reply = client::command(
                &server.command_url,
                server.secret.as_deref(),
                json!({ "command": "START" }),
                COMMAND_TIMEOUT,
            )
            .await;
            let Some(slot) = reply
                .ok()
                .filter(|r| r["error"] == "none")
                .and_then(|r| r["id"].as_u64())
                .and_then(|id| u32::try_from(id).ok())
            else {
                continue;
            };
            let id = format!("{:032x}", rand::random::<u128>());
            let (state, _) = watch::channel(SessionState::Starting);
            let session = Arc::new(Session {
                id: id.clone(),
                server: index,
                slot,
                state,
                last_seen: Mutex::new(Instant::now()),
            });
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, session.clone());
            tracing::info!(server = server.name, slot, "session placed");
            metrics::counter!("openspace_backend_sessions_total").increment(1);
            tokio::spawn(follow(self.clone(), session.clone()));
            return Ok(session);
        }
        Err("no rendering server has a free slot".to_owned())
    }

    /// Sends `STOP` for the session and ends it with `reason`.
    pub(crate) async fn terminate(&self, session: &Session, reason: &str) {
        if matches!(*session.state.borrow(), SessionState::Ended { .. }) {
            return;
        }
        let server = &self.servers()[session.server];
        let stopped = client::command(
            &server.command_url,
            server.secret.as_deref(),
            json!({ "command": "STOP", "id": session.slot }),
            COMMAND_TIMEOUT,
        )
        .await;
        if let Err(error) = stopped {
            tracing::warn!(%error, "STOP not delivered");
        }
        session.state.send_replace(SessionState::Ended {
            reason: reason.to_owned(),
        });
    }
}

/// Follows a starting instance until it runs (or fails).
async fn follow(app: Arc<App>, session: Arc<Session>) {
    let server = &app.servers()[session.server];
    let wait_ms = u64::try_from(app.config.poll_interval.as_millis()).unwrap_or(u64::MAX);
    let mut failures = 0;
    loop {
        if matches!(*session.state.borrow(), SessionState::Ended { .. }) {
            return;
        }
        let request = json!({ "command": "STATUS", "id": session.slot, "until": "RUNNING", "wait_ms": wait_ms });
        let started = Instant::now();
        let reply = client::command(
            &server.command_url,
            server.secret.as_deref(),
            request,
            COMMAND_TIMEOUT,
        )
        .await;
        let status = match reply {
            Ok(reply) if reply["error"] == "none" => {
                reply["status"].as_str().unwrap_or("").to_owned()
            }
            Ok(reply) => {
                session.state.send_replace(SessionState::Ended {
                    reason: format!("supervisor: {}", reply["error"]),
                });
                return;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "STATUS failed");
                if failures >= app.config.down_after_failures {
                    session.state.send_replace(SessionState::Ended {
                        reason: "the rendering server stopped answering".into(),
                    });
                    return;
                }
                String::new()
            }
        };
        match status.as_str() {
            "RUNNING" => {
                let mut url = format!("{}#/streaming?id={}", server.gui_url, session.slot);
                if let Some(secret) = &app.config.signaling_secret {
                    let peer = app.config.browser_peer_offset.saturating_add(session.slot);
                    let expiry = crate::token::unix_seconds(std::time::SystemTime::now())
                        .saturating_add(app.config.session_token_ttl.as_secs());
                    let token = crate::token::issue(secret.as_bytes(), peer, expiry);
                    url.push_str(&format!("&peer={peer}&token={token}"));
                }
                if let Some(signaling) = &server.browser_signaling_url {
                    url.push_str("&signaling=");
                    url.push_str(&query_escape(signaling));
                }
                session.state.send_replace(SessionState::Running { url });
                return;
            }
            "IDLE" | "DEINITIALIZING" => {
                session.state.send_replace(SessionState::Ended {
                    reason: "the instance did not start".into(),
                });
                return;
            }
            _ => {
                // An original supervisor answers at once: poll it every `poll_interval`.
                let elapsed = started.elapsed();
                if elapsed < app.config.poll_interval {
                    tokio::time::sleep(app.config.poll_interval - elapsed).await;
                }
            }
        }
    }
}

/// `text` for a query value: the characters that would end or change it, percent-encoded.
fn query_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' | '=' | '#' | '%' | '+' | ' ' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Checks the servers and stops idle sessions, every `poll_interval`, while the backend runs.
async fn housekeeping(app: std::sync::Weak<App>) {
    let Some(interval) = app.upgrade().map(|app| app.config.poll_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(app) = app.upgrade() else {
            return;
        };
        let down: Vec<usize> = app.health(|h| (0..h.len()).filter(|i| !h[*i].up).collect());
        for index in down {
            app.check(index).await;
        }
        let idle = app.config.idle_session_timeout;
        let sessions: Vec<Arc<Session>> = app
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for session in sessions {
            let seen = *session
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let ended = matches!(*session.state.borrow(), SessionState::Ended { .. });
            if ended && seen.elapsed() >= idle {
                app.sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&session.id);
            } else if !ended && seen.elapsed() >= idle {
                tracing::info!(session = session.id, "idle session stopped");
                app.terminate(&session, "idle").await;
                session.touch();
            }
        }
    }
}

async fn servers(State(app): State<Arc<App>>) -> Json<Value> {
    let list = app.health(|health| {
        app.servers()
            .iter()
            .zip(health.iter())
            .map(|(server, h)| json!({ "name": server.name, "up": h.up, "running": h.running, "total": h.total }))
            .collect::<Vec<_>>()
    });
    Json(Value::from(list))
}

fn view(app: &App, session: &Session) -> Value {
    let mut view = serde_json::to_value(&*session.state.borrow()).unwrap_or_default();
    view["id"] = Value::from(session.id.clone());
    view["token"] = Value::from(app.tokens.issue(&session.id));
    view
}

async fn join_route(State(app): State<Arc<App>>) -> Response {
    match app.join().await {
        Ok(session) => (StatusCode::CREATED, Json(view(&app, &session))).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": error })),
        )
            .into_response(),
    }
}

async fn instance(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.session(&id) {
        Some(session) => {
            session.touch();
            Json(view(&app, &session)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such instance" })),
        )
            .into_response(),
    }
}

async fn terminate_route(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.session(&id) {
        Some(session) => {
            app.terminate(&session, "terminated").await;
            Json(view(&app, &session)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such instance" })),
        )
            .into_response(),
    }
}
