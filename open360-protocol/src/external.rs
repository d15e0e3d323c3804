//! The external HTTP API for third-party applications (the original's port 8080), answering
//! from the other services through the hub as `web-external-api`. Every answer is JSON.
//!
//! - `GET /` → `{status: {api, ingest, web, chat}}`: each `alive` (answered), `dead` (no socket
//!   connected, or the hub unreachable) or `zombie` (connected, but no answer within the
//!   timeout, or an error). The four are asked at once; the call returns as soon as all have
//!   answered, and never later than the timeout.
//! - `GET /getStreamStatus?username=` → `{streamStatus, code}` (`ONLINE` 0, `OFFLINE` 1,
//!   `LURKING` 2, `UNKNOWN` 3), from `web-api`'s `streamStatus` reply `{name, code}`.
//! - `GET /getStreamStats?username=` → `web-api`'s `streamStats` reply, as the seed shows it.
//! - An unknown user is 404 with `{streamStatus: "UNKNOWN", code: 3, error}`; a missing
//!   `username` 400; the web service absent or failing 503, each with `{error}`.

use crate::{
    Error, ExternalApiConfig,
    client::{AskError, ServiceClient},
    routing::HUB_LABEL,
};
use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// The label the external API joins the hub under.
pub const EXTERNAL_API_LABEL: &str = "web-external-api";

/// The code of an unknown user's stream status.
const UNKNOWN: u64 = 3;

/// A bound external API, ready to [`run`](ExternalApi::run).
pub struct ExternalApi {
    listener: TcpListener,
    router: Router,
}

struct Shared {
    client: ServiceClient,
    status_timeout: Duration,
}

impl ExternalApi {
    /// Binds `config.listen`; `client` is this service's link to the hub (label
    /// [`EXTERNAL_API_LABEL`]).
    pub async fn bind(config: ExternalApiConfig, client: ServiceClient) -> Result<Self, Error> {
        config.validate()?;
        let shared = Arc::new(Shared {
            client,
            status_timeout: config.status_timeout,
        });
        let router = Router::new()
            .route("/", get(statuses))
            .route("/getStreamStatus", get(stream_status))
            .route("/getStreamStats", get(stream_stats))
            .with_state(shared);
        let listener = TcpListener::bind(config.listen).await?;
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
        axum::serve(
            crate::net::no_delay(self.listener),
            self.router.merge(extra),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}

/// `alive`, `dead` or `zombie` for one service's status answer.
fn verdict(answer: &Result<crate::ApiMessage, AskError>) -> &'static str {
    match answer {
        Ok(reply) if reply.package.extra.get("status") == Some(&json!("alive")) => "alive",
        Ok(reply) if reply.package.data == json!("alive") => "alive",
        Err(AskError::Absent(_) | AskError::NotConnected) => "dead",
        Ok(_) | Err(_) => "zombie",
    }
}

async fn statuses(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let ask = |target: &'static str| {
        let shared = shared.clone();
        async move {
            let answer = shared
                .client
                .ask_within(target, "status", Value::Null, shared.status_timeout)
                .await;
            verdict(&answer)
        }
    };
    let (api, ingest, web, chat) = tokio::join!(
        ask(HUB_LABEL),
        ask("ingest-api"),
        ask("web-api"),
        ask("chat-api")
    );
    Json(json!({ "status": { "api": api, "ingest": ingest, "web": web, "chat": chat } }))
}

#[derive(Debug, serde::Deserialize)]
struct User {
    username: Option<String>,
}

fn failure(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

fn unknown(username: &str) -> Response {
    let body = json!({
        "streamStatus": "UNKNOWN",
        "code": UNKNOWN,
        "error": format!("no user {username}")
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Asks `web-api` `prompt` about the query's user: the reply's data, or the response to send.
async fn ask_web(shared: &Shared, prompt: &str, user: User) -> Result<(String, Value), Response> {
    let username = user
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "username is required"))?;
    match shared
        .client
        .ask("web-api", prompt, json!({ "username": username }))
        .await
    {
        Ok(reply) => Ok((username, reply.package.data)),
        Err(AskError::Refused(error)) if error.starts_with("no user") => Err(unknown(&username)),
        Err(error) => Err(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the web service cannot answer: {error}"),
        )),
    }
}

async fn stream_status(State(shared): State<Arc<Shared>>, Query(user): Query<User>) -> Response {
    match ask_web(&shared, "streamStatus", user).await {
        Ok((username, data)) if data["code"].as_u64() == Some(UNKNOWN) => unknown(&username),
        Ok((_, data)) => {
            Json(json!({ "streamStatus": data["name"], "code": data["code"] })).into_response()
        }
        Err(response) => response,
    }
}

async fn stream_stats(State(shared): State<Arc<Shared>>, Query(user): Query<User>) -> Response {
    match ask_web(&shared, "streamStats", user).await {
        Ok((username, data)) if data["channelStatus"]["code"].as_u64() == Some(UNKNOWN) => {
            unknown(&username)
        }
        Ok((_, data)) => Json(data).into_response(),
        Err(response) => response,
    }
}
