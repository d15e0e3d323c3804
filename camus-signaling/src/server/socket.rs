//! `/room/<slug>/ws`: the WebSocket upgrade (through hyper, so axum stays without `ws`) and
//! the task that carries one client's signaling both ways.

use super::{App, Frame};
use crate::message::Envelope;
use crate::registry::{ClientId, ConnectError, ConnectionId};
use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};
use tokio::sync::mpsc;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};

/// What a socket reads at a time (see `upgrade`).
const READ_BUFFER: usize = 4 << 10;

/// Frames written to a socket at once before flushing.
const WRITE_BATCH: usize = 64;

/// `GET /room/<slug>/ws`: 404 for an unknown room, 403 without this room's cookie (or for a
/// client that is gone), 418 when the room is full, else the upgrade.
pub(crate) async fn upgrade(
    State(app): State<Arc<App>>,
    Path(slug): Path<String>,
    mut request: Request,
) -> Response {
    let refuse = |status: StatusCode, text: &str| (status, format!("{text}\n")).into_response();
    if !app.load_room(&slug).await {
        return refuse(StatusCode::NOT_FOUND, "No such room");
    }
    let Some(id) = app.cookies.client_in(&slug, request.headers()) else {
        metrics::counter!("camus_ws_refused_total", "why" => "no cookie").increment(1);
        return refuse(
            StatusCode::FORBIDDEN,
            "Enter the room first: no client cookie",
        );
    };
    let Some(accept) = websocket_accept(request.headers()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)",
        );
    };
    let (frames_in, frames) = mpsc::channel(app.config.client_queue);
    let connection = match app.connect(&slug, &id, frames_in) {
        Ok(connection) => connection,
        Err(ConnectError::UnknownRoom) => return refuse(StatusCode::NOT_FOUND, "No such room"),
        Err(ConnectError::RoomFull) => {
            return refuse(StatusCode::IM_A_TEAPOT, "Guest limit already reached");
        }
        Err(_) => {
            metrics::counter!("camus_ws_refused_total", "why" => "not a client").increment(1);
            return refuse(StatusCode::FORBIDDEN, "Not a client of this room");
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut config = WebSocketConfig::default();
                // Larger than the signaling limit, so an oversized message gets an `error`
                // reply; beyond this the frame itself is refused and the socket closed.
                let frame_limit = app.config.max_message_bytes.saturating_mul(2).max(1 << 20);
                config.max_message_size = Some(frame_limit);
                config.max_frame_size = Some(frame_limit);
                // tungstenite's default read buffer is 128 KiB, allocated and zero-filled
                // per connection: 8 times the rest of an idle client. Signaling messages are
                // small, and the buffer still grows for a large frame.
                config.read_buffer_size = READ_BUFFER;
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(&app, id, connection, socket, frames).await;
            }
            Err(error) => tracing::debug!(%error, "room socket upgrade failed"),
        }
        app.disconnected(&id, connection);
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
    let lists = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let version_13 = headers.get(header::SEC_WEBSOCKET_VERSION)? == "13";
    if !(version_13 && lists(header::CONNECTION, "upgrade") && lists(header::UPGRADE, "websocket"))
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

/// Reads the client's messages into the registry and writes what it is sent, until either
/// side closes.
async fn serve<S>(
    app: &App,
    id: ClientId,
    connection: ConnectionId,
    socket: WebSocketStream<S>,
    mut frames: mpsc::Receiver<Frame>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let limit = app.config.max_message_bytes;
    let close = loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let parsed = Envelope::parse(text.as_str(), limit);
                    app.received(&id, parsed, Instant::now(), SystemTime::now());
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = Envelope::error(id.as_str(), "Signaling messages are JSON text, not binary");
                    app.send_to(&id, connection, error);
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, client = %id, "room socket failed");
                    break Some(close_frame(CloseCode::Protocol, "unreadable frame"));
                }
            },
            frame = frames.recv() => {
                let mut next = frame;
                let mut written = 0;
                let mut close = None;
                while let Some(frame) = next.take() {
                    match frame {
                        Frame::Text(text) => {
                            if sink.feed(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Frame::Close(code, reason) => {
                            close = Some(close_frame(code, reason));
                            break;
                        }
                    }
                    written += 1;
                    if written < WRITE_BATCH {
                        next = frames.try_recv().ok();
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                if close.is_some() {
                    break close;
                }
                if written == 0 {
                    // The server dropped this socket's queue: it fell too far behind.
                    metrics::counter!("camus_clients_too_slow_total").increment(1);
                    break Some(close_frame(CloseCode::Policy, "too slow: messages were waiting"));
                }
            }
        }
    };
    if let Some(frame) = close {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
