//! A streaming server's or an encoder's control link to the coordinator: a WebSocket with the
//! role's JWT, heartbeats both ways, and reconnection with backoff.

use crate::{
    Secret,
    proto::{ControlMessage, LinkRole, MAX_MESSAGE_BYTES},
};
use futures::{SinkExt as _, StreamExt as _};
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_tungstenite::{
    Connector,
    tungstenite::{
        Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
    },
};

/// How a peer reaches its coordinator.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UplinkConfig {
    /// The coordinator's base URL, `ws://host:port` or `wss://host:port`; the control path is
    /// added.
    pub coordinator_url: String,
    /// For `wss://`: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// `CONTROL_SECRET`, which signs the link's token.
    pub secret: Secret,
    /// Extra upgrade headers: a streaming server's `x-external-ip`, `x-custom-port`,
    /// `x-ssl-use`.
    pub headers: Vec<(String, String)>,
    /// How often `HEARTBEAT` is sent. Default 20 s.
    pub heartbeat_interval: Duration,
    /// A coordinator silent this long is given up on, and the link reopened. Default 60 s.
    pub link_timeout: Duration,
    /// The first wait before reconnecting; it doubles up to `reconnect_max`. Default 0.5 s.
    pub reconnect_min: Duration,
    /// The longest wait before reconnecting. Default 30 s.
    pub reconnect_max: Duration,
}

impl UplinkConfig {
    /// The defaults, for the coordinator at `coordinator_url` with `secret`.
    pub fn new(coordinator_url: impl Into<String>, secret: Secret) -> Self {
        Self {
            coordinator_url: coordinator_url.into(),
            ca_file: None,
            secret,
            headers: Vec::new(),
            heartbeat_interval: Duration::from_secs(20),
            link_timeout: Duration::from_secs(60),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// What happens on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UplinkEvent {
    /// The link is (re)opened: say who you are (an encoder sends `REGISTER`).
    Connected,
    /// The link is lost; it will be reopened.
    Disconnected(String),
    /// A message from the coordinator (heartbeats are not passed on).
    Message(ControlMessage),
}

/// Sends on the link; the link itself runs in its own task.
#[derive(Debug, Clone)]
pub struct Uplink {
    outbound: mpsc::Sender<ControlMessage>,
    connected: watch::Receiver<bool>,
}

/// The link is down (or its queue full): the message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the coordinator link is down")]
pub struct UplinkDown;

impl Uplink {
    /// Starts the link task for `role`; it runs until `shutdown` turns true.
    pub fn spawn(
        config: UplinkConfig,
        role: LinkRole,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, mpsc::Receiver<UplinkEvent>) {
        // wss:// without a CA file uses the default provider with the system's roots.
        crate::server::install_crypto_provider();
        let (outbound, queue) = mpsc::channel(256);
        let (events, received) = mpsc::channel(256);
        let (connected_tx, connected) = watch::channel(false);
        let task = Task {
            config,
            role,
            queue,
            events,
            connected: connected_tx,
            shutdown,
        };
        tokio::spawn(task.run());
        (
            Self {
                outbound,
                connected,
            },
            received,
        )
    }

    /// Queues `message` on the open link.
    pub fn send(&self, message: ControlMessage) -> Result<(), UplinkDown> {
        if !*self.connected.borrow() {
            return Err(UplinkDown);
        }
        self.outbound.try_send(message).map_err(|_| UplinkDown)
    }

    /// Whether the link is open now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Watches whether the link is open.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }
}

/// A token for `role` signed with `secret` (HS256, `sub` and `iat`, as the original peers do
/// plus the issue time).
pub fn control_token(
    secret: &Secret,
    role: LinkRole,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = serde_json::json!({
        "sub": role.subject(),
        "iat": jsonwebtoken::get_current_timestamp(),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes()),
    )
}

/// A TLS client trusting the CA certificates in `path`.
fn client_tls(path: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in
        CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?
    {
        let certificate = certificate.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(certificate)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

struct Task {
    config: UplinkConfig,
    role: LinkRole,
    queue: mpsc::Receiver<ControlMessage>,
    events: mpsc::Sender<UplinkEvent>,
    connected: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
}

fn segment(role: LinkRole) -> &'static str {
    match role {
        LinkRole::RtmpServer => "rtmp",
        LinkRole::WsServer => "wss",
        LinkRole::Encoder => "hls",
    }
}

impl Task {
    async fn run(mut self) {
        let mut delay = self.config.reconnect_min;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            match self.open().await {
                Ok(socket) => {
                    delay = self.config.reconnect_min;
                    tracing::info!(role = ?self.role, "coordinator link open");
                    // Whatever was queued for an earlier link is stale.
                    while self.queue.try_recv().is_ok() {}
                    self.connected.send_replace(true);
                    if self.events.send(UplinkEvent::Connected).await.is_err() {
                        return;
                    }
                    let reason = self.serve(socket).await;
                    self.connected.send_replace(false);
                    tracing::warn!(role = ?self.role, %reason, "coordinator link lost");
                    if self
                        .events
                        .send(UplinkEvent::Disconnected(reason))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(role = ?self.role, %error, retry_in = ?delay, "cannot reach the coordinator");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = self.shutdown.changed() => return,
            }
            delay = (delay * 2).min(self.config.reconnect_max);
        }
    }

    async fn open(
        &self,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        String,
    > {
        let base = self.config.coordinator_url.trim_end_matches('/');
        let url = format!("{base}/ws/control/{}", segment(self.role));
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{url}: {e}"))?;
        let token = control_token(&self.config.secret, self.role).map_err(|e| e.to_string())?;
        let headers = request.headers_mut();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|e| e.to_string());
        headers.insert("x-control-auth-token", value(&token)?);
        for (name, v) in &self.config.headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| e.to_string())?;
            headers.insert(name, value(v)?);
        }
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE_BYTES);
        config.max_frame_size = Some(MAX_MESSAGE_BYTES);
        let connector = match &self.config.ca_file {
            Some(path) => Some(Connector::Rustls(Arc::new(client_tls(path)?))),
            None => None,
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            connector,
        );
        let (socket, _) = tokio::time::timeout(self.config.link_timeout, connect)
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(socket)
    }

    async fn serve<S>(&mut self, mut socket: tokio_tungstenite::WebSocketStream<S>) -> String
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            let silence = last_heard + self.config.link_timeout;
            tokio::select! {
                _ = self.shutdown.changed() => {
                    let _ = socket.close(None).await;
                    return "shutting down".into();
                }
                () = tokio::time::sleep_until(silence) => {
                    return format!("the coordinator was silent for {:?}", self.config.link_timeout);
                }
                _ = heartbeat.tick() => {
                    if let Err(error) = socket.send(Message::text("HEARTBEAT")).await {
                        return error.to_string();
                    }
                }
                out = self.queue.recv() => {
                    let Some(message) = out else { return "closed".into() };
                    if let Err(error) = socket.send(Message::text(message.to_text())).await {
                        return error.to_string();
                    }
                }
                frame = socket.next() => {
                    last_heard = Instant::now();
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                        Some(Ok(Message::Close(frame))) => {
                            return format!("closed by the coordinator: {frame:?}");
                        }
                        None => return "closed by the coordinator".into(),
                        Some(Err(error)) => return error.to_string(),
                        Some(Ok(_)) => continue,
                    };
                    match ControlMessage::parse(&text) {
                        Ok(message) if message.method() == "HEARTBEAT" => {}
                        Ok(message) => {
                            if self.events.send(UplinkEvent::Message(message)).await.is_err() {
                                return "nobody listens to the link".into();
                            }
                        }
                        Err(error) => tracing::warn!(%error, "malformed message from the coordinator"),
                    }
                }
            }
        }
    }
}
