//! One connection's task: the WebSocket handshake, then the peer's frames into the registry
//! and its queue onto the socket, until either side closes.

use super::server::{App, Frame, HANDSHAKE_TIMEOUT, PEER_QUEUE};
use futures::{SinkExt as _, StreamExt as _};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::{
    WebSocketStream, accept_async_with_config,
    tungstenite::{
        Message,
        error::{CapacityError, Error as WsError},
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

/// Frames written to a socket at once before flushing.
const WRITE_BATCH: usize = 32;
/// A peer that does not take a batch of frames within this time is disconnected: a stalled
/// reader must not hold its task (and its queue) forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one accepted TCP connection to its end.
pub(crate) async fn serve(app: Arc<App>, stream: TcpStream, peer: SocketAddr) {
    let limit = app.config.max_message_bytes;
    // Frames above the signaling limit still arrive, so the peer is told with an ERROR; only
    // far larger ones end the connection (1009).
    let frame_limit = limit.saturating_mul(2).max(1 << 20);
    let config = WebSocketConfig::default()
        .read_buffer_size(16 << 10)
        .max_message_size(Some(frame_limit))
        .max_frame_size(Some(frame_limit));
    let socket = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        accept_async_with_config(stream, Some(config)),
    )
    .await
    {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "signaling handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "signaling handshake timed out");
            return;
        }
    };
    let (queue, frames) = mpsc::channel(PEER_QUEUE);
    let Some(conn) = app.open(queue) else {
        let mut socket = socket;
        let _ = socket
            .close(Some(close_frame(CloseCode::Away, "server shutting down")))
            .await;
        return;
    };
    tracing::debug!(%peer, %conn, "signaling connection opened");
    pump(&app, conn, socket, frames).await;
    app.closed(conn);
    tracing::debug!(%peer, %conn, "signaling connection closed");
}

async fn pump(
    app: &App,
    conn: super::ConnectionId,
    socket: WebSocketStream<TcpStream>,
    mut frames: mpsc::Receiver<Frame>,
) {
    let (mut sink, mut stream) = socket.split();
    let close = loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => app.received(conn, Ok(text.as_str())),
                Some(Ok(Message::Binary(bytes))) => app.received(conn, Err(bytes.as_ref())),
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {} // ping and pong: tungstenite answers pings itself
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    tracing::debug!(%conn, size, max_size, "signaling frame too large");
                    break Some(close_frame(CloseCode::Size, "message too large"));
                }
                Some(Err(error)) => {
                    tracing::debug!(%conn, %error, "signaling socket failed");
                    break Some(close_frame(CloseCode::Protocol, "unreadable frame"));
                }
            },
            frame = frames.recv() => {
                let written = tokio::time::timeout(WRITE_TIMEOUT, write(&mut sink, frame, &mut frames)).await;
                match written {
                    Ok(Written::More) => {}
                    Ok(Written::Close(frame)) => break Some(frame),
                    Ok(Written::Failed) => return,
                    Err(_) => {
                        metrics::counter!("openspace_signaling_slow_peers_total").increment(1);
                        tracing::info!(%conn, "signaling peer stopped reading: disconnected");
                        return;
                    }
                }
            }
        }
    };
    if let Some(frame) = close {
        let closing = async {
            let _ = sink.send(Message::Close(Some(frame))).await;
            let _ = sink.close().await;
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, closing).await;
    }
}

enum Written {
    More,
    Close(CloseFrame),
    Failed,
}

type Sink = futures::stream::SplitSink<WebSocketStream<TcpStream>, Message>;

/// Writes `first` and what else is queued (up to [`WRITE_BATCH`]), then flushes.
async fn write(
    sink: &mut Sink,
    first: Option<Frame>,
    frames: &mut mpsc::Receiver<Frame>,
) -> Written {
    let Some(first) = first else {
        // Every sender is gone while the connection was open: the server dropped it for
        // falling behind (or is shutting down, which queues a close frame first).
        return Written::Close(close_frame(
            CloseCode::Policy,
            "too slow: messages were waiting",
        ));
    };
    let mut next = Some(first);
    let mut written = 0;
    let mut close = None;
    while let Some(frame) = next.take() {
        match frame {
            Frame::Text(text) => {
                if sink.feed(Message::Text(text)).await.is_err() {
                    return Written::Failed;
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
        return Written::Failed;
    }
    close.map_or(Written::More, Written::Close)
}

fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
