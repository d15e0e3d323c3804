//! One control link: the WebSocket upgrade (through hyper, so axum stays without `ws`), then a
//! task that feeds the link's text messages to the core and writes what the core sends.

use super::{
    App,
    auth::{CONTROL_TOKEN_HEADER, control_token_valid},
    core::{Command, LINK_QUEUE, LinkOut},
};
use crate::proto::{LinkRole, MAX_MESSAGE_BYTES, ServerAddress};
use axum::{
    body::Body,
    extract::{ConnectInfo, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};

/// `GET /ws/control/{rtmp|wss|hls}`.
pub(crate) async fn upgrade(
    State(app): State<Arc<App>>,
    Path(segment): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let Some(role) = LinkRole::from_path(&segment) else {
        return (StatusCode::NOT_FOUND, "no such control link\n").into_response();
    };
    let headers = request.headers();
    let token = headers
        .get(CONTROL_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !control_token_valid(app.config.control_secret.as_ref(), role, token) {
        tracing::warn!(%peer, ?role, "control link refused: bad or missing token");
        metrics::counter!("coordinator_links_refused_total").increment(1);
        return (StatusCode::FORBIDDEN, "invalid control token\n").into_response();
    }
    let Some(accept) = websocket_accept(headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)\n",
        )
            .into_response();
    };
    let address = (role != LinkRole::Encoder).then(|| server_address(role, headers, peer));
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut config = WebSocketConfig::default();
                config.max_message_size = Some(MAX_MESSAGE_BYTES);
                config.max_frame_size = Some(MAX_MESSAGE_BYTES);
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run(app, role, address, peer, socket).await;
            }
            Err(error) => tracing::debug!(%peer, %error, "control link upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The `Sec-WebSocket-Accept` for a well-formed upgrade request.
fn websocket_accept(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

/// Where encoders reach a streaming server: `x-external-ip` (else the link's own address),
/// `x-custom-port` (else 1935 for RTMP, 443 or 80 for WebSocket), `x-ssl-use`.
pub(crate) fn server_address(
    role: LinkRole,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> ServerAddress {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let ssl = text("x-ssl-use").is_some_and(|v| {
        v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes") || v == "1"
    });
    let default_port = match (role, ssl) {
        (LinkRole::RtmpServer, _) => 1935,
        (_, true) => 443,
        (_, false) => 80,
    };
    let port = text("x-custom-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default_port);
    let ip = match text("x-external-ip") {
        Some(ip) => ip.to_owned(),
        None => match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
            v4 => v4.to_string(),
        },
    };
    ServerAddress { ip, port, ssl }
}

async fn run<S>(
    app: Arc<App>,
    role: LinkRole,
    address: Option<ServerAddress>,
    peer: SocketAddr,
    mut socket: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (outbound, mut writes) = mpsc::channel(LINK_QUEUE);
    let (reply, opened) = oneshot::channel();
    let open = Command::Opened {
        role,
        address,
        outbound,
        reply,
    };
    if app.commands.send(open).await.is_err() {
        return;
    }
    let Ok(link) = opened.await else {
        return;
    };
    tracing::info!(link, %peer, ?role, "control link opened");
    let reason = loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str().to_owned();
                    if app.commands.send(super::core::Command::Message(link, text)).await.is_err() {
                        break "coordinator stopped".to_owned();
                    }
                }
                Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                    // Some peers send text in binary frames: read it the same way.
                    Ok(text) => {
                        if app.commands.send(Command::Message(link, text)).await.is_err() {
                            break "coordinator stopped".to_owned();
                        }
                    }
                    Err(_) => break "a binary frame that is not text".to_owned(),
                },
                Some(Ok(Message::Close(_))) | None => break "closed by the peer".to_owned(),
                Some(Ok(_)) => {} // ping/pong: answered by tungstenite
                Some(Err(error)) => break error.to_string(),
            },
            out = writes.recv() => match out {
                Some(LinkOut::Text(text)) => {
                    if let Err(error) = socket.send(Message::text(text)).await {
                        break error.to_string();
                    }
                }
                Some(LinkOut::Close(reason)) => {
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: reason.chars().take(120).collect::<String>().into(),
                    };
                    let _ = socket.close(Some(frame)).await;
                    break reason;
                }
                None => {
                    let _ = socket.close(None).await;
                    break "closed by the coordinator".to_owned();
                }
            },
        }
    };
    tracing::info!(link, %peer, %reason, "control link closed");
    let _ = app.commands.send(Command::Closed(link)).await;
}
