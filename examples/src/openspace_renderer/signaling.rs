//! The renderer's side of the OpenSpace signaling protocol: it registers as its peer id, waits
//! for a browser's SESSION, offers, and trickles ICE. One session at a time: a new SESSION
//! replaces the current one, SESSION_END (or losing the signaling connection) ends it.
//!
//! ```text
//!  renderer (peer n)                 signaling                 browser (peer 100+n)
//!    ── {REGISTER n, token} ──────────▶
//!    ◀───────────────────── "REGISTER" ──
//!    ◀── {SESSION, caller_id 100+n} ─────   (the browser asked)
//!    ── {SDP, caller_id n, {type: offer, sdp}} ──────────────────────────▶
//!    ── {ICE, caller_id n, {candidate, sdpMid, sdpMLineIndex}} … ────────▶
//!    ◀──────────────────────────────── {SDP, {type: answer, sdp}}, {ICE …} …
//!    ═══ VP8 over SRTP ═══════════════════════════════════════════════════▶
//! ```

use super::session::{Session, SessionConfig, SessionError, SessionEvent};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message as WsMessage,
};
use webrtc::peer_connection::{
    RTCIceCandidateInit, RTCPeerConnectionState, RTCSdpType, RTCSessionDescription,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long connecting to the signaling server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom to register.
#[derive(Debug, Clone)]
pub(crate) struct SignalingConfig {
    /// `ws://…` of the signaling server.
    pub(crate) url: String,
    /// This renderer's peer id.
    pub(crate) peer: u32,
    /// The signaling token for `peer`.
    pub(crate) token: String,
    /// What each session is made with.
    pub(crate) session: SessionConfig,
}

/// Why a signaling connection ended.
#[derive(Debug, thiserror::Error)]
enum SignalingError {
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the server closed the connection")]
    Closed,
}

/// Delays between reconnection attempts: doubling from `first` up to `max`, back to `first`
/// once a connection registers.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// A connection worked: the next failure retries quickly again.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Stays registered with the signaling server for as long as the process runs, reconnecting
/// after `backoff`'s delays.
pub(crate) async fn run(config: SignalingConfig, mut backoff: Backoff) {
    loop {
        let ended = serve(&config, &mut backoff).await;
        let delay = backoff.next_delay();
        match ended {
            Ok(()) => tracing::info!(retry_in = ?delay, "signaling connection closed"),
            Err(error) => {
                let url = &config.url;
                tracing::warn!(%error, url, retry_in = ?delay, "signaling unavailable");
            }
        }
        tokio::time::sleep(delay).await;
    }
}

/// One signaling connection: register, then serve sessions until it closes.
async fn serve(config: &SignalingConfig, backoff: &mut Backoff) -> Result<(), SignalingError> {
    let (mut socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect_async(config.url.as_str()))
        .await
        .map_err(|_| SignalingError::ConnectTimeout(CONNECT_TIMEOUT))??;
    let register = json!({ "type": "REGISTER", "caller_id": config.peer, "token": config.token });
    socket.send(WsMessage::text(register.to_string())).await?;
    let mut signaling = Connection {
        config,
        socket,
        session: None,
    };
    loop {
        tokio::select! {
            frame = signaling.socket.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    if signaling.handle_text(&text).await? {
                        backoff.reset();
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => return Err(SignalingError::Closed),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
            },
            event = next_session_event(&mut signaling.session) => {
                signaling.handle_session_event(event).await?;
            }
        }
    }
}

/// The current session's next event; pending while there is none.
async fn next_session_event(session: &mut Option<Session>) -> SessionEvent {
    match session {
        Some(session) => session.next_event().await,
        None => std::future::pending().await,
    }
}

struct Connection<'a> {
    config: &'a SignalingConfig,
    socket: Socket,
    session: Option<Session>,
}

impl Connection<'_> {
    /// Handles one text frame; `true` when it confirmed the registration.
    async fn handle_text(&mut self, text: &str) -> Result<bool, SignalingError> {
        match text {
            "REGISTER" => {
                tracing::info!(
                    peer = self.config.peer,
                    "registered with the signaling server"
                );
                return Ok(true);
            }
            // Only the peer that asks for a session gets this; the renderer never asks.
            "SESSION_OK" => return Ok(false),
            _ => {}
        }
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            tracing::warn!(text, "the signaling server sent something that is not JSON");
            return Ok(false);
        };
        let caller = caller_id(&message["caller_id"]);
        match message["type"].as_str().unwrap_or_default() {
            "SESSION" => match caller {
                Some(partner) => self.start_session(partner).await?,
                None => tracing::warn!(%message, "a SESSION without a caller_id"),
            },
            "SDP" => self.handle_sdp(caller, &message["content"]).await,
            "ICE" => self.handle_ice(caller, &message["content"]).await,
            "SESSION_END" => {
                if let Some(session) = self.session.take() {
                    let (partner, reason) = (session.partner(), &message["content"]);
                    tracing::info!(partner, %reason, "session ended");
                }
            }
            "ERROR" => {
                let error = &message["content"];
                tracing::warn!(%error, "the signaling server refused a message");
            }
            other => tracing::debug!(kind = other, "ignored a signaling message"),
        }
        Ok(false)
    }

    /// Replaces the current session with a new one with `partner`, and sends its offer.
    async fn start_session(&mut self, partner: u32) -> Result<(), SignalingError> {
        if let Some(old) = self.session.take() {
            tracing::info!(
                old = old.partner(),
                new = partner,
                "a new session replaces the current one"
            );
        }
        let (session, offer) = match Session::offer(&self.config.session, partner).await {
            Ok(started) => started,
            Err(error) => {
                tracing::error!(%error, partner, "cannot start a session");
                return Ok(());
            }
        };
        tracing::info!(partner, "session started, offering");
        self.session = Some(session);
        let content = json!({ "type": "offer", "sdp": offer.sdp });
        self.send(json!({ "type": "SDP", "caller_id": self.config.peer, "content": content }))
            .await
    }

    async fn handle_sdp(&mut self, caller: Option<u32>, content: &Value) {
        let Some(session) = self.current(caller) else {
            return;
        };
        let description = match serde_json::from_value::<RTCSessionDescription>(content.clone()) {
            Ok(description) => description,
            Err(error) => {
                tracing::warn!(%error, "an SDP message without a session description");
                return;
            }
        };
        if description.sdp_type != RTCSdpType::Answer {
            // The renderer always offers; a browser's offer would need renegotiation.
            tracing::warn!(kind = %description.sdp_type, "ignored an SDP that is not an answer");
            return;
        }
        report(
            session.handle_answer(description).await,
            "the answer was refused",
        );
    }

    async fn handle_ice(&mut self, caller: Option<u32>, content: &Value) {
        let Some(session) = self.current(caller) else {
            return;
        };
        match serde_json::from_value::<RTCIceCandidateInit>(content.clone()) {
            // A browser signals the end of its candidates with an empty one.
            Ok(candidate) if candidate.candidate.is_empty() => {}
            Ok(candidate) => report(
                session.handle_remote_candidate(candidate).await,
                "a remote candidate was refused",
            ),
            Err(error) => tracing::warn!(%error, "an ICE message without a candidate"),
        }
    }

    /// The session a message from `caller` is for: the current one, when `caller` is its
    /// partner (or not given).
    fn current(&mut self, caller: Option<u32>) -> Option<&mut Session> {
        match &mut self.session {
            Some(session) if caller.is_none_or(|caller| caller == session.partner()) => {
                Some(session)
            }
            _ => {
                tracing::debug!(?caller, "a message for no current session");
                None
            }
        }
    }

    async fn handle_session_event(&mut self, event: SessionEvent) -> Result<(), SignalingError> {
        match event {
            SessionEvent::Candidate(candidate) => {
                let content = json!({
                    "candidate": candidate.candidate,
                    "sdpMid": candidate.sdp_mid,
                    "sdpMLineIndex": candidate.sdp_mline_index,
                });
                self.send(
                    json!({ "type": "ICE", "caller_id": self.config.peer, "content": content }),
                )
                .await?;
            }
            SessionEvent::State(state) => {
                let partner = self.session.as_ref().map(Session::partner);
                tracing::info!(%state, ?partner, "peer connection");
                if matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    // The browser asks again (a new SESSION) if it still wants the picture.
                    self.session = None;
                }
            }
        }
        Ok(())
    }

    async fn send(&mut self, message: Value) -> Result<(), SignalingError> {
        self.socket
            .send(WsMessage::text(message.to_string()))
            .await
            .map_err(Into::into)
    }
}

fn report(result: Result<(), SessionError>, what: &str) {
    if let Err(error) = result {
        tracing::warn!(%error, "{what}");
    }
}

/// A peer id: a JSON number or a decimal string.
fn caller_id(value: &Value) -> Option<u32> {
    match value {
        Value::Number(number) => number.as_u64().and_then(|id| u32::try_from(id).ok()),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 1000].map(Duration::from_millis).to_vec()
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(250));
    }

    #[test]
    fn caller_ids_are_numbers_or_decimal_strings() {
        assert_eq!(caller_id(&json!(0)), Some(0));
        assert_eq!(caller_id(&json!("100")), Some(100));
        for bad in [
            json!(-1),
            json!(1.5),
            json!("+1"),
            json!(""),
            json!(null),
            json!(4_294_967_296u64),
        ] {
            assert_eq!(caller_id(&bad), None, "{bad}");
        }
    }
}
