//! How a service reaches the hub: over the network (Socket.IO), or in-process when services
//! share one binary. Both deliver the same `api-message`s with the same routing.

use crate::{
    message::ApiMessage,
    routing::{Route, route},
};
use async_trait::async_trait;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A connection to the hub as one service: what arrives for it, and a way to send.
#[derive(Debug)]
pub struct Link {
    /// Sends an `api-message` to the hub.
    pub send: mpsc::Sender<ApiMessage>,
    /// Messages for this service (relayed to it, or replies to it); ends when the link is lost.
    pub receive: mpsc::Receiver<ApiMessage>,
}

/// A link could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot reach the hub: {0}")]
pub struct TransportError(pub String);

/// How a service reaches the hub.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Opens a link as the service `label`.
    async fn connect(&self, label: &str) -> Result<Link, TransportError>;
}

/// Messages a link holds for a slow side before it is closed.
const LINK_QUEUE: usize = 1024;

/// The hub over the network: Socket.IO v4 over WebSocket (`http://` or `https://`, the
/// latter trusting the system's roots, or the CA given to [`with_ca_file`]), as the hub's
/// JavaScript clients speak it (the services send and receive JSON events only, so binary
/// packets are not needed).
///
/// [`with_ca_file`]: SocketIoTransport::with_ca_file
#[derive(Clone)]
pub struct SocketIoTransport {
    url: String,
    token: Option<String>,
    connect_timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for SocketIoTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoTransport")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("custom_ca", &self.tls.is_some())
            .finish()
    }
}

impl SocketIoTransport {
    /// The hub at `url` (`http://host:4000`), presenting `token` when the hub wants one.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            url: url.into(),
            token,
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// For an `https://` hub: trusts the CA certificates in the PEM file at `path` (a private
    /// CA, or the hub's own self-signed certificate) instead of the system's roots.
    pub fn with_ca_file(mut self, path: &std::path::Path) -> Result<Self, TransportError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let failed = |e: &dyn std::fmt::Display| TransportError(format!("{}: {e}", path.display()));
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(path).map_err(|e| failed(&e))? {
            roots
                .add(certificate.map_err(|e| failed(&e))?)
                .map_err(|e| failed(&e))?;
        }
        if roots.is_empty() {
            return Err(failed(&"no certificate in the file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    fn websocket_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        let base = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.to_owned());
        format!("{base}/socket.io/?EIO=4&transport=websocket")
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[async_trait]
impl Transport for SocketIoTransport {
    async fn connect(&self, label: &str) -> Result<Link, TransportError> {
        let failed = |e: &dyn std::fmt::Display| TransportError(format!("{}: {e}", self.url));
        let handshake = async {
            // wss:// with the system's roots builds its TLS client from the process's default
            // provider, which rustls cannot pick alone when a build links two: ring, the
            // workspace's one TLS stack, unless the embedder installed another.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
            let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                self.websocket_url(),
                None,
                true,
                connector,
            )
            .await
            .map_err(|e| failed(&e))?;
            // Engine.IO's open packet, then Socket.IO's connect to the main namespace.
            let open = next_text(&mut ws).await.map_err(|e| failed(&e))?;
            let timing = engine_timing(&open).ok_or_else(|| failed(&"no Engine.IO open packet"))?;
            let auth = serde_json::json!({ "service": label, "token": self.token });
            ws.send(Message::text(format!("40{auth}")))
                .await
                .map_err(|e| failed(&e))?;
            loop {
                let packet = next_text(&mut ws).await.map_err(|e| failed(&e))?;
                if packet == "2" {
                    ws.send(Message::text("3")).await.map_err(|e| failed(&e))?;
                } else if packet.starts_with("40") {
                    return Ok((ws, timing));
                } else if let Some(error) = packet.strip_prefix("44") {
                    let message = serde_json::from_str::<Value>(error)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| error.to_owned());
                    return Err(TransportError(format!("refused by the hub: {message}")));
                }
            }
        };
        let (ws, timing) = tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| failed(&"no answer in time"))??;
        let (send, outgoing) = mpsc::channel(LINK_QUEUE);
        let (incoming, receive) = mpsc::channel(LINK_QUEUE);
        tokio::spawn(pump(ws, label.to_owned(), timing, outgoing, incoming));
        Ok(Link { send, receive })
    }
}

async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
        }
    }
}

/// How long the server may stay silent: its ping interval plus its ping timeout.
fn engine_timing(open: &str) -> Option<Duration> {
    let handshake: Value = serde_json::from_str(open.strip_prefix('0')?).ok()?;
    let interval = handshake["pingInterval"].as_u64()?;
    let timeout = handshake["pingTimeout"].as_u64()?;
    Some(Duration::from_millis(interval + timeout))
}

/// Moves messages between the WebSocket and the link until either side ends.
async fn pump(
    mut ws: Ws,
    label: String,
    silence: Duration,
    mut outgoing: mpsc::Receiver<ApiMessage>,
    incoming: mpsc::Sender<ApiMessage>,
) {
    loop {
        tokio::select! {
            packet = tokio::time::timeout(silence, next_text(&mut ws)) => {
                let Ok(Ok(packet)) = packet else {
                    tracing::warn!(service = label, "hub link lost");
                    return;
                };
                if packet == "2" {
                    if ws.send(Message::text("3")).await.is_err() {
                        return;
                    }
                } else if packet == "41" || packet == "1" {
                    tracing::warn!(service = label, "disconnected by the hub");
                    return;
                } else if let Some(event) = packet.strip_prefix("42") {
                    match event_of(event) {
                        Some((name, message)) if name == label => {
                            if incoming.send(message).await.is_err() {
                                return;
                            }
                        }
                        Some((name, _)) => tracing::debug!(service = label, event = name, "ignored"),
                        None => tracing::warn!(service = label, packet, "unreadable event from the hub"),
                    }
                }
            }
            out = outgoing.recv() => {
                let Some(message) = out else {
                    let _ = ws.send(Message::text("41")).await;
                    return;
                };
                let Ok(event) = serde_json::to_string(&("api-message", &message)) else {
                    continue;
                };
                if ws.send(Message::text(format!("42{event}"))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A Socket.IO event of the main namespace: `["name", message]`.
fn event_of(event: &str) -> Option<(String, ApiMessage)> {
    let (name, message): (String, Value) = serde_json::from_str(event).ok()?;
    Some((name, serde_json::from_value(message).ok()?))
}

/// The hub in-process, for services sharing one binary: the same routing as the Socket.IO hub
/// (to the target's links only; questions to nobody answered with an error; `status` of
/// `api`), without a network in between.
#[derive(Debug, Clone, Default)]
pub struct LocalHub {
    services: Arc<Mutex<HashMap<String, Vec<mpsc::Sender<ApiMessage>>>>>,
}

impl LocalHub {
    /// A hub with no service yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Vec<mpsc::Sender<ApiMessage>>>) -> T,
    ) -> T {
        f(&mut self.services.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Routes one message from `from` (its links' replies go to the sender's own link).
    fn relay(&self, from: &str, own: &mpsc::Sender<ApiMessage>, message: ApiMessage) {
        let targets = self.with(|services| {
            let links = services.entry(message.target.clone()).or_default();
            links.retain(|link| !link.is_closed());
            links.clone()
        });
        match route(&message, !targets.is_empty()) {
            Route::Drop => {}
            Route::Answer(reply) => {
                if own.try_send(*reply).is_err() {
                    tracing::warn!(service = from, "reply dropped: the service is not reading");
                }
            }
            Route::Deliver => {
                for link in targets {
                    if link.try_send(message.clone()).is_err() {
                        tracing::warn!(
                            target = message.target,
                            "message dropped: the service is not reading"
                        );
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Transport for LocalHub {
    async fn connect(&self, label: &str) -> Result<Link, TransportError> {
        let (incoming, receive) = mpsc::channel(LINK_QUEUE);
        self.with(|services| {
            services
                .entry(label.to_owned())
                .or_default()
                .push(incoming.clone())
        });
        let (send, mut outgoing) = mpsc::channel::<ApiMessage>(LINK_QUEUE);
        let hub = self.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                hub.relay(&label, &incoming, message);
            }
        });
        Ok(Link { send, receive })
    }
}

#[cfg(test)]
mod packets {
    use super::*;

    #[test]
    fn the_open_packet_gives_the_silence_allowed() {
        let open = r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(engine_timing(open), Some(Duration::from_secs(45)));
        assert_eq!(engine_timing("0{}"), None);
        assert_eq!(engine_timing("40"), None);
    }

    #[test]
    fn events_are_read_and_urls_made() {
        let event =
            r#"["web-api",{"target":"web-api","ack":"x","type":1,"package":{"prompt":"status"}}]"#;
        let (name, message) = event_of(event).expect("an event");
        assert_eq!(name, "web-api");
        assert!(message.package.is_status());
        assert_eq!(event_of(r#"["web-api"]"#), None);
        assert_eq!(event_of("nonsense"), None);
        let transport = SocketIoTransport::new("http://127.0.0.1:4000/", None);
        assert_eq!(
            transport.websocket_url(),
            "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket"
        );
    }
}
