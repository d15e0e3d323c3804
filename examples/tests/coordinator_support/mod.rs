//! The pieces around a coordinator process in the tests: the application's webhooks (a key
//! verification endpoint and an event-callback receiver that record every request), control
//! links speaking the original's text protocol, and the commands API.

#![allow(dead_code, unreachable_pub)] // a support module: each test file uses a different part

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
};
use coordinator_core::proto::ControlMessage;
use futures::{SinkExt as _, StreamExt as _};
use harness::{LocalServer, ServerProcess, http};
use jsonwebtoken::{EncodingKey, Header};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU16, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpStream, process::Command, sync::mpsc};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest},
};

pub const SECRET: &str = "test-control-secret";
pub const COMMANDS_TOKEN: &str = "test-commands-token";
/// How long any one expected event may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// An HS256 control token with `sub`.
pub fn token(secret: &str, sub: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({ "sub": sub }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encoded")
}

/// One request the application received: its headers, lower-case names.
pub type Headers = BTreeMap<String, String>;

fn headers_of(map: &HeaderMap) -> Headers {
    map.iter()
        .map(|(k, v)| {
            let value = v.to_str().expect("text header").to_owned();
            (k.as_str().to_owned(), value)
        })
        .collect()
}

struct AppState {
    verify_status: AtomicU16,
    verify_answer: Mutex<Vec<(String, String)>>,
    callbacks_up: AtomicBool,
    verifications: mpsc::UnboundedSender<Headers>,
    delivered: mpsc::UnboundedSender<Headers>,
    refused: mpsc::UnboundedSender<Headers>,
}

/// The application: `POST /verify` (the key-verification webhook) and `POST /events` (the
/// event callback), recording everything.
pub struct Application {
    server: LocalServer,
    state: Arc<AppState>,
    /// Each key-verification request.
    pub verifications: mpsc::UnboundedReceiver<Headers>,
    /// Each callback answered 200.
    pub delivered: mpsc::UnboundedReceiver<Headers>,
    /// Each callback refused while the receiver is "down".
    pub refused: mpsc::UnboundedReceiver<Headers>,
}

async fn verify(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    let _ = state.verifications.send(headers_of(&headers));
    let status =
        StatusCode::from_u16(state.verify_status.load(Ordering::SeqCst)).expect("a status");
    let mut answer = HeaderMap::new();
    for (name, value) in state.verify_answer.lock().expect("lock").iter() {
        answer.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    (status, answer)
}

async fn event(State(state): State<Arc<AppState>>, headers: HeaderMap) -> StatusCode {
    if state.callbacks_up.load(Ordering::SeqCst) {
        let _ = state.delivered.send(headers_of(&headers));
        StatusCode::OK
    } else {
        let _ = state.refused.send(headers_of(&headers));
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Application {
    /// Accepts every key (200, no option headers) and every callback.
    pub async fn start() -> Self {
        let (verifications_tx, verifications) = mpsc::unbounded_channel();
        let (delivered_tx, delivered) = mpsc::unbounded_channel();
        let (refused_tx, refused) = mpsc::unbounded_channel();
        let state = Arc::new(AppState {
            verify_status: AtomicU16::new(200),
            verify_answer: Mutex::new(Vec::new()),
            callbacks_up: AtomicBool::new(true),
            verifications: verifications_tx,
            delivered: delivered_tx,
            refused: refused_tx,
        });
        let router = Router::new()
            .route("/verify", post(verify))
            .route("/events", post(event))
            .with_state(state.clone());
        let server = http::serve(router).await.expect("application started");
        Self {
            server,
            state,
            verifications,
            delivered,
            refused,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Key verification answers `status` with these headers from now on.
    pub fn answer_verifications(&self, status: u16, headers: &[(&str, &str)]) {
        self.state.verify_status.store(status, Ordering::SeqCst);
        *self.state.verify_answer.lock().expect("lock") = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// Callbacks get 503 (`false`) or 200 (`true`) from now on.
    pub fn callbacks_up(&self, up: bool) {
        self.state.callbacks_up.store(up, Ordering::SeqCst);
    }

    pub async fn next_verification(&mut self) -> Headers {
        next(&mut self.verifications, "a key verification").await
    }

    pub async fn next_event(&mut self) -> Headers {
        next(&mut self.delivered, "an event callback").await
    }

    pub async fn next_refused(&mut self) -> Headers {
        next(&mut self.refused, "a refused event callback").await
    }
}

async fn next<T>(receiver: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap_or_else(|_| panic!("waited {PATIENCE:?} in vain for {what}"))
        .unwrap_or_else(|| panic!("{what}: the application stopped"))
}

/// The coordinator binary with the application's webhooks, on 127.0.0.1:0.
pub fn coordinator(app: &Application, database: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coordinator"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info,coordinator_core=debug")
        .env("HTTP_PORT", "0")
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("CONTROL_SECRET", SECRET)
        .env("KEY_VERIFICATION_URL", app.url("/verify"))
        .env("KEY_VERIFICATION_AUTH", "Bearer")
        .env("KEY_VERIFICATION_AUTH_TOKEN", "verify-token")
        .env("EVENT_CALLBACK_URL", app.url("/events"))
        .env("EVENT_CALLBACK_AUTH", "Custom")
        .env("EVENT_CALLBACK_AUTH_CUSTOM", "Key events-key")
        .env("EVENT_CALLBACK_RETRY_SECONDS", "0.05")
        .env("COMMANDS_API_AUTH", "Bearer")
        .env("COMMANDS_API_AUTH_TOKEN", COMMANDS_TOKEN)
        .env(
            "COORDINATOR_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        );
    command
}

pub async fn start(command: Command) -> (ServerProcess, SocketAddr) {
    let process = ServerProcess::spawn(command, &["http"])
        .await
        .expect("coordinator started");
    let addr = process.addr("http").expect("http announced");
    (process, addr)
}

/// A control link as a streaming server or an encoder opens it.
pub struct Link {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Link {
    /// Opens `/ws/control/<segment>` with `token` and extra headers.
    pub async fn open(
        addr: SocketAddr,
        segment: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, tungstenite::Error> {
        let mut request = format!("ws://{addr}/ws/control/{segment}")
            .into_client_request()
            .expect("a request");
        request
            .headers_mut()
            .insert("x-control-auth-token", token.parse().expect("a header"));
        for (name, value) in headers {
            request.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        Ok(Self { socket })
    }

    /// A streaming server's link (RTMP), reachable at 10.9.8.7:1936.
    pub async fn server(addr: SocketAddr) -> Self {
        let headers = [("x-external-ip", "10.9.8.7"), ("x-custom-port", "1936")];
        Self::open(addr, "rtmp", &token(SECRET, "rtmp-control"), &headers)
            .await
            .expect("server link opened")
    }

    /// An encoder's link, registered with `capacity` by the time this returns.
    pub async fn encoder(addr: SocketAddr, capacity: i64) -> Self {
        let mut link = Self::open(addr, "hls", &token(SECRET, "hls-control"), &[])
            .await
            .expect("encoder link opened");
        link.send(&format!("REGISTER\nCapacity: {capacity}")).await;
        link.sync().await;
        link
    }

    /// Returns once the coordinator has handled everything sent on this link so far. REGISTER
    /// has no answer; a message of an unknown method does (an ERROR), and a link's messages
    /// are handled in order.
    pub async fn sync(&mut self) {
        self.send("SYNC").await;
        let error = self.expect("ERROR").await;
        assert_eq!(error.header("Error-Code"), Some("UNKNOWN_METHOD"));
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .expect("sent");
    }

    /// The next message other than `HEARTBEAT`, which must be a `method`.
    pub async fn expect(&mut self, method: &str) -> ControlMessage {
        let message = self.next().await.unwrap_or_else(|| {
            panic!("the link closed while waiting for {method}");
        });
        assert_eq!(message.method(), method, "got {message:?}");
        message
    }

    /// The next message other than `HEARTBEAT`; `None` when the link closes.
    pub async fn next(&mut self) -> Option<ControlMessage> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message within the patience");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message = ControlMessage::parse(text.as_str()).expect("well-formed");
                    if message.method() != "HEARTBEAT" {
                        return Some(message);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Asks to publish `key` on `channel`; the answer.
    pub async fn request(&mut self, request_id: &str, channel: &str, key: &str) -> ControlMessage {
        self.send(&format!(
            "PUBLISH-REQUEST\nRequest-ID: {request_id}\nStream-Channel: {channel}\n\
             Stream-Key: {key}\nUser-IP: ::ffff:192.0.2.7"
        ))
        .await;
        let answer = self.next().await.expect("an answer");
        assert_eq!(answer.header("Request-ID"), Some(request_id), "{answer:?}");
        answer
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Drain until the coordinator's close arrives.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.socket.next()).await {}
    }
}

/// The commands API with the right token.
pub async fn command(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let client = http::client();
    let url = format!("http://{addr}{path}");
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    }
    .bearer_auth(COMMANDS_TOKEN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// The `hls-encoder` binary for the coordinator at `addr`, writing under `root`.
pub fn hls_encoder(addr: SocketAddr, root: &Path, capacity: i64) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hls-encoder"));
    command
        .env("RUST_LOG", "info,coordinator_core=debug,media_ingest=info")
        .env("COORDINATOR_URL", format!("ws://{addr}"))
        .env("CONTROL_SECRET", SECRET)
        .env("ENCODER_ROOT", root)
        .env("ENCODER_CAPACITY", capacity.to_string())
        .env("HLS_SEGMENT_SECONDS", "1")
        .env("OPS_LISTEN", "127.0.0.1:0");
    command
}

/// The `rtmp-server` binary for the coordinator at `addr`, on 127.0.0.1:0.
pub fn rtmp_server(addr: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rtmp-server"));
    command
        .env("RUST_LOG", "info,coordinator_core=debug,media_ingest=info")
        .env("COORDINATOR_URL", format!("ws://{addr}"))
        .env("CONTROL_SECRET", SECRET)
        .env("RTMP_LISTEN", "127.0.0.1:0")
        .env("OPS_LISTEN", "127.0.0.1:0");
    command
}

/// Starts a peer binary and waits (without polling: `/readyz?wait_seconds`) until its
/// coordinator link is up.
pub async fn start_peer(command: Command, listeners: &[&str]) -> ServerProcess {
    let process = ServerProcess::spawn(command, listeners)
        .await
        .expect("peer started");
    let ops = process.addr("ops").expect("ops announced");
    let ready = http::client()
        .get(format!("http://{ops}/readyz?wait_seconds=15"))
        .send()
        .await
        .expect("answered");
    assert_eq!(ready.status(), 200, "not ready:\n{}", process.output());
    process
}
