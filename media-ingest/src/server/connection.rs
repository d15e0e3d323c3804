//! One RTMP connection: handshake, then the session loop of a publisher or a player.

use super::{
    Context,
    chunks::{OUTBOUND_CHUNK_SIZE, SHARED_STREAM_ID, chunk},
    guard::{ChunkGuard, FramingError},
    handshake::handshake,
};
use crate::{
    events::{IngestEvent, SessionId},
    media::{MediaFrame, MediaKind},
    streams::{PublisherSlot, SharedFrame, StreamName, Subscription},
    verify::{PublishRequest, VerifyError},
};
use rml_rtmp::{
    chunk_io::Packet,
    sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult},
};
use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{Notify, watch},
    time::timeout,
};

const READ_BUFFER: usize = 16 << 10;
/// A peer that accepts no bytes for this long is dropped (a stalled player never blocks others,
/// but its task and socket should not linger).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection ended other than by a clean close.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectionError {
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("nothing received for {0:?}")]
    Idle(Duration),
    #[error("malformed RTMP framing: {0}")]
    Framing(#[from] FramingError),
    #[error("RTMP session error: {0}")]
    Session(String),
    #[error("the RTMP parser panicked on this connection's input")]
    ParserPanic,
    #[error("a write did not complete within {0:?}")]
    WriteTimeout(Duration),
    #[error("publish refused: {0}")]
    PublishRefused(String),
    #[error("play refused: {0}")]
    PlayRefused(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn session_error(error: impl std::fmt::Debug) -> ConnectionError {
    ConnectionError::Session(format!("{error:?}"))
}

/// Runs `parse` on untrusted input, turning a panic inside rml_rtmp into an error that ends
/// this connection only.
pub(super) fn contained<T>(parse: impl FnOnce() -> T) -> Result<T, ConnectionError> {
    catch_unwind(AssertUnwindSafe(parse)).map_err(|_| {
        metrics::counter!("media_ingest_parser_panics_total").increment(1);
        ConnectionError::ParserPanic
    })
}

enum Role {
    Idle,
    Publishing {
        slot: PublisherSlot,
        name: StreamName,
    },
    Playing {
        subscription: Subscription,
        name: StreamName,
        stream_id: u32,
    },
}

/// Serves one connection until it closes, fails, or the server shuts down.
pub(crate) async fn serve<S>(
    mut io: S,
    client: SocketAddr,
    id: SessionId,
    context: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    context.emit(IngestEvent::PreConnect {
        session: id,
        client,
    });
    let handshake_timeout = context.config.handshake_timeout;
    let outcome = match timeout(handshake_timeout, handshake(&mut io)).await {
        Err(_) => Err(ConnectionError::HandshakeTimeout(handshake_timeout)),
        Ok(Err(error)) => Err(error),
        Ok(Ok(leftover)) => match ServerSession::new(session_config()) {
            Err(error) => Err(session_error(error)),
            Ok((session, initial)) => {
                let guard = ChunkGuard::new(context.config.max_message_bytes);
                let mut connection = Connection {
                    io,
                    session,
                    guard,
                    role: Role::Idle,
                    context: Arc::clone(&context),
                    id,
                    client,
                };
                let outcome = connection.run(initial, leftover, shutdown).await;
                connection.end_role();
                outcome
            }
        },
    };
    let error = outcome.err().map(|error| error.to_string());
    match &error {
        None => tracing::debug!(session = id, %client, "connection closed"),
        Some(error) => tracing::info!(session = id, %client, %error, "connection ended"),
    }
    context.emit(IngestEvent::DoneConnect { session: id, error });
}

/// rml_rtmp's defaults, with the chunk size our shared media chunks are made for.
fn session_config() -> ServerSessionConfig {
    let mut config = ServerSessionConfig::new();
    config.chunk_size = OUTBOUND_CHUNK_SIZE as u32;
    config
}

struct Connection<S> {
    io: S,
    session: ServerSession,
    guard: ChunkGuard,
    role: Role,
    context: Arc<Context>,
    id: SessionId,
    client: SocketAddr,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    async fn run(
        &mut self,
        initial: Vec<ServerSessionResult>,
        leftover: Vec<u8>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConnectionError> {
        self.handle_results(initial).await?;
        if !leftover.is_empty() {
            self.input(&leftover).await?;
        }
        let idle = self.context.config.idle_timeout;
        let mut buffer = vec![0u8; READ_BUFFER];
        loop {
            // Players legitimately send next to nothing; everyone else must keep talking.
            let playing = matches!(self.role, Role::Playing { .. });
            let end = match &self.role {
                Role::Publishing { slot, .. } => Some(slot.end_signal()),
                _ => None,
            };
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                () = ended(end.as_deref()) => {
                    tracing::info!(session = self.id, client = %self.client, "stream ended by request; disconnecting its publisher");
                    return Ok(());
                }
                read = read_within(&mut self.io, &mut buffer, (!playing).then_some(idle)) => {
                    let read = read?;
                    if read == 0 {
                        return Ok(());
                    }
                    self.input(&buffer[..read]).await?;
                }
                frame = next_frame(&mut self.role) => match frame {
                    Some(frame) => self.send_frame(frame).await?,
                    None => self.stream_ended().await?,
                },
            }
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.guard.check(bytes)?;
        let session = &mut self.session;
        let results = contained(|| session.handle_input(bytes))?.map_err(session_error)?;
        self.handle_results(results).await
    }

    async fn handle_results(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> Result<(), ConnectionError> {
        let mut queue = VecDeque::from(results);
        while let Some(result) = queue.pop_front() {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.write(&packet).await?,
                ServerSessionResult::RaisedEvent(event) => {
                    queue.extend(self.handle_event(event).await?)
                }
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    async fn handle_event(
        &mut self,
        event: ServerSessionEvent,
    ) -> Result<Vec<ServerSessionResult>, ConnectionError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let results = self
                    .session
                    .accept_request(request_id)
                    .map_err(session_error)?;
                self.context.emit(IngestEvent::PostConnect {
                    session: self.id,
                    app: app_name,
                });
                Ok(results)
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                self.publish(
                    request_id,
                    StreamName {
                        app: app_name,
                        key: stream_key,
                    },
                )
                .await
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.end_role();
                Ok(Vec::new())
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Role::Publishing { slot, .. } = &self.role {
                    slot.set_metadata(metadata);
                }
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.media(MediaFrame {
                    kind: MediaKind::Audio,
                    timestamp: timestamp.value,
                    data,
                });
                Ok(Vec::new())
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.media(MediaFrame {
                    kind: MediaKind::Video,
                    timestamp: timestamp.value,
                    data,
                });
                Ok(Vec::new())
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                app_name,
                stream_key,
                stream_id,
                ..
            } => {
                self.play(
                    request_id,
                    StreamName {
                        app: app_name,
                        key: stream_key,
                    },
                    stream_id,
                )
                .await
            }
            ServerSessionEvent::PlayStreamFinished { .. } => {
                self.end_role();
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn publish(
        &mut self,
        request_id: u32,
        name: StreamName,
    ) -> Result<Vec<ServerSessionResult>, ConnectionError> {
        if !matches!(self.role, Role::Idle) {
            return self
                .refuse_publish(
                    request_id,
                    name,
                    "NetStream.Publish.BadConnection",
                    "one stream per connection",
                )
                .await;
        }
        self.context.emit(IngestEvent::PrePublish {
            session: self.id,
            stream: name.clone(),
        });
        // Claim the name before verifying, so that a second publisher is refused at once.
        let Some(slot) = self.context.streams.claim(&name) else {
            return self
                .refuse_publish(
                    request_id,
                    name,
                    "NetStream.Publish.BadName",
                    "the stream is already being published",
                )
                .await;
        };
        let request = PublishRequest {
            app: name.app.clone(),
            key: name.key.clone(),
            client: self.client,
        };
        let deadline = self.context.config.verify_timeout;
        let verdict = match timeout(deadline, self.context.verifier.verify(&request)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(VerifyError::TimedOut(deadline)),
        };
        match verdict {
            Ok(proof) => {
                let results = self
                    .session
                    .accept_request(request_id)
                    .map_err(session_error)?;
                slot.verified(proof.options().clone());
                tracing::info!(session = self.id, app = %name.app, client = %self.client, "publisher accepted");
                metrics::counter!("media_ingest_publishers_accepted_total").increment(1);
                let options = proof.options().clone();
                self.context.emit(IngestEvent::PostPublish {
                    session: self.id,
                    stream: name.clone(),
                    options,
                });
                self.role = Role::Publishing { slot, name };
                Ok(results)
            }
            Err(refusal) => {
                drop(slot);
                self.refuse_publish(
                    request_id,
                    name,
                    "NetStream.Publish.Unauthorized",
                    &refusal.to_string(),
                )
                .await
            }
        }
    }

    async fn refuse_publish(
        &mut self,
        request_id: u32,
        name: StreamName,
        code: &str,
        reason: &str,
    ) -> Result<Vec<ServerSessionResult>, ConnectionError> {
        metrics::counter!("media_ingest_publishers_refused_total").increment(1);
        let results = self
            .session
            .reject_request(request_id, code, reason)
            .map_err(session_error)?;
        self.write_packets(results).await?;
        self.context.emit(IngestEvent::PublishRefused {
            session: self.id,
            stream: name,
            reason: reason.to_owned(),
        });
        Err(ConnectionError::PublishRefused(reason.to_owned()))
    }

    async fn play(
        &mut self,
        request_id: u32,
        name: StreamName,
        stream_id: u32,
    ) -> Result<Vec<ServerSessionResult>, ConnectionError> {
        self.context.emit(IngestEvent::PrePlay {
            session: self.id,
            stream: name.clone(),
        });
        let subscription = match (&self.role, self.context.streams.subscribe(&name)) {
            (Role::Idle, Some(subscription)) => subscription,
            (Role::Idle, None) => {
                return self
                    .refuse_play(
                        request_id,
                        "NetStream.Play.StreamNotFound",
                        "no such live stream",
                    )
                    .await;
            }
            _ => {
                return self
                    .refuse_play(
                        request_id,
                        "NetStream.Play.Failed",
                        "one stream per connection",
                    )
                    .await;
            }
        };
        let results = self
            .session
            .accept_request(request_id)
            .map_err(session_error)?;
        self.write_packets(results).await?;
        if let Some(metadata) = subscription.metadata() {
            let packet = self
                .session
                .send_metadata(stream_id, &metadata)
                .map_err(session_error)?;
            self.write(&packet).await?;
        }
        self.context.emit(IngestEvent::PostPlay {
            session: self.id,
            stream: name.clone(),
        });
        self.role = Role::Playing {
            subscription,
            name,
            stream_id,
        };
        Ok(Vec::new())
    }

    async fn refuse_play(
        &mut self,
        request_id: u32,
        code: &str,
        reason: &str,
    ) -> Result<Vec<ServerSessionResult>, ConnectionError> {
        let results = self
            .session
            .reject_request(request_id, code, reason)
            .map_err(session_error)?;
        self.write_packets(results).await?;
        Err(ConnectionError::PlayRefused(reason.to_owned()))
    }

    fn media(&self, frame: MediaFrame) {
        // An empty audio or video message carries nothing to play; relaying it would only let a
        // publisher fill the frame ring with one-byte chunks.
        if frame.data.is_empty() {
            return;
        }
        if let Role::Publishing { slot, .. } = &self.role {
            slot.push(frame);
        }
    }

    async fn send_frame(&mut self, shared: Arc<SharedFrame>) -> Result<(), ConnectionError> {
        let Role::Playing {
            stream_id,
            ref mut subscription,
            ..
        } = self.role
        else {
            return Ok(());
        };
        // A player that started before the publisher's metadata (or when it changes) gets it
        // before the next frame.
        if let Some(metadata) = subscription.changed_metadata() {
            let packet = self
                .session
                .send_metadata(stream_id, &metadata)
                .map_err(session_error)?;
            self.write(&packet).await?;
        }
        // The chunks of the common case are made once and shared by every player.
        let bytes = if stream_id == SHARED_STREAM_ID {
            shared.rtmp_chunks()
        } else {
            chunk(&shared.frame, stream_id, OUTBOUND_CHUNK_SIZE)
        };
        timeout(WRITE_TIMEOUT, self.io.write_all(&bytes))
            .await
            .map_err(|_| ConnectionError::WriteTimeout(WRITE_TIMEOUT))?
            .map_err(ConnectionError::Io)
    }

    /// The played stream's publisher left: tell the player, as a server does on unpublish.
    async fn stream_ended(&mut self) -> Result<(), ConnectionError> {
        if let Role::Playing { stream_id, .. } = self.role {
            let packet = self
                .session
                .finish_playing(stream_id)
                .map_err(session_error)?;
            self.end_role();
            self.write(&packet).await?;
        }
        Ok(())
    }

    fn end_role(&mut self) {
        let event = match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Idle => return,
            Role::Publishing { slot, name } => {
                drop(slot);
                IngestEvent::DonePublish {
                    session: self.id,
                    stream: name,
                }
            }
            Role::Playing { name, .. } => IngestEvent::DonePlay {
                session: self.id,
                stream: name,
            },
        };
        self.context.emit(event);
    }

    /// Writes the packets of an accept or reject (which raise no events).
    async fn write_packets(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> Result<(), ConnectionError> {
        for result in results {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.write(&packet).await?;
            }
        }
        Ok(())
    }

    async fn write(&mut self, packet: &Packet) -> Result<(), ConnectionError> {
        timeout(WRITE_TIMEOUT, self.io.write_all(&packet.bytes))
            .await
            .map_err(|_| ConnectionError::WriteTimeout(WRITE_TIMEOUT))?
            .map_err(ConnectionError::Io)
    }
}

async fn read_within<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut [u8],
    idle: Option<Duration>,
) -> Result<usize, ConnectionError> {
    match idle {
        None => Ok(io.read(buffer).await?),
        Some(idle) => timeout(idle, io.read(buffer))
            .await
            .map_err(|_| ConnectionError::Idle(idle))?
            .map_err(ConnectionError::Io),
    }
}

/// Resolves when a publisher is asked to leave; never without one.
async fn ended(end: Option<&Notify>) {
    match end {
        Some(end) => end.notified().await,
        None => std::future::pending().await,
    }
}

/// The next frame for a player; never resolves for other roles.
async fn next_frame(role: &mut Role) -> Option<Arc<SharedFrame>> {
    match role {
        Role::Playing { subscription, .. } => subscription.next_shared().await,
        _ => std::future::pending().await,
    }
}
