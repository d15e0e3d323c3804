//! One pull's RTMP client without I/O or clock: the server's bytes go in
//! ([`PullSession::handle_input`], [`PullSession::handle_eof`]); bytes for the server and pulled
//! items come out ([`PullSession::poll_transmit`], [`PullSession::poll_pulled`]).
//!
//! Every byte from the server passes the framing guard before rml_rtmp parses it, and every
//! rml_rtmp call runs under `catch_unwind`: rml_rtmp panics on some malformed input.

use super::{PullError, Pulled, error::from_server, guard::ChunkGuard, url::PullUrl};
use crate::media::{MediaFrame, MediaKind};
use rml_rtmp::{
    handshake::{Handshake, HandshakeProcessResult, PeerType},
    rml_amf0::Amf0Value,
    sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult},
};
use std::{
    collections::VecDeque,
    panic::{AssertUnwindSafe, catch_unwind},
};

/// How far a pull has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// The RTMP handshake (C0/C1 sent).
    Handshaking,
    /// `connect` to the application sent.
    Connecting,
    /// `createStream` and `play` sent; waiting for `NetStream.Play.Start`.
    Requesting,
    /// Playback started.
    Playing,
    /// The stream ended (the server said so, or closed the connection while playing).
    Ended,
    /// An error ended the pull.
    Failed,
}

impl Stage {
    /// What the pull is doing at this stage, for error messages.
    pub(super) fn doing(self) -> &'static str {
        match self {
            Stage::Handshaking => "handshaking",
            Stage::Connecting => "connecting to the application",
            Stage::Requesting => "waiting for playback to start",
            Stage::Playing => "playing",
            Stage::Ended => "ending",
            Stage::Failed => "failing",
        }
    }
}

/// What an `onStatus` code means to a player.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    /// The stream is over: our server's `finish_playing` (`Play.Complete`), or an unpublish.
    End,
    /// The server refuses or aborts playback.
    Failure,
    /// Informational (`Play.Reset`, `Play.PublishNotify`, `Data.Start`, …).
    Other,
}

fn status(code: &str) -> Status {
    const END: [&str; 3] = [
        "NetStream.Play.Complete",
        "NetStream.Play.Stop",
        "NetStream.Play.UnpublishNotify",
    ];
    const FAILURE: [&str; 6] = [
        "Failed",
        "NotFound",
        "Rejected",
        "BadName",
        "Unauthorized",
        "Forbidden",
    ];
    if END.contains(&code) {
        Status::End
    } else if FAILURE.iter().any(|word| code.contains(word)) {
        Status::Failure
    } else {
        Status::Other
    }
}

/// Runs an rml_rtmp call on the server's input, turning a panic inside it into an error.
fn contained<T>(call: impl FnOnce() -> T) -> Result<T, PullError> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|_| {
        metrics::counter!("media_ingest_pull_parser_panics_total").increment(1);
        PullError::ParserPanic
    })
}

/// The client side of one RTMP connection that plays one stream.
pub(super) struct PullSession {
    app: String,
    key: String,
    tc_url: String,
    max_message: usize,
    stage: Stage,
    handshake: Handshake,
    /// Set once the handshake is complete.
    client: Option<(ClientSession, ChunkGuard)>,
    transmit: Vec<u8>,
    pulled: VecDeque<Pulled>,
}

impl PullSession {
    /// A session that will play `url`, refusing messages from the server over `max_message`
    /// bytes. The handshake's first bytes are ready in [`PullSession::poll_transmit`].
    pub(super) fn new(url: &PullUrl, max_message: usize) -> Result<Self, PullError> {
        let mut handshake = Handshake::new(PeerType::Client);
        let c0_c1 = contained(|| handshake.generate_outbound_p0_and_p1())?
            .map_err(|error| PullError::Protocol(format!("handshake: {error}")))?;
        Ok(Self {
            app: url.app.clone(),
            key: url.key.clone(),
            tc_url: url.tc_url(),
            max_message,
            stage: Stage::Handshaking,
            handshake,
            client: None,
            transmit: c0_c1,
            pulled: VecDeque::new(),
        })
    }

    pub(super) fn stage(&self) -> Stage {
        self.stage
    }

    /// Bytes to send to the server, in order.
    pub(super) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// The next metadata or frame received.
    pub(super) fn poll_pulled(&mut self) -> Option<Pulled> {
        self.pulled.pop_front()
    }

    /// Ends the pull after an error outside the session (a timeout, a failed read).
    pub(super) fn fail(&mut self) {
        self.stage = Stage::Failed;
    }

    /// Takes the next bytes from the server. After an error the session is failed for good.
    pub(super) fn handle_input(&mut self, bytes: &[u8]) -> Result<(), PullError> {
        let handled = match self.stage {
            Stage::Handshaking => self.handshake_input(bytes),
            Stage::Connecting | Stage::Requesting | Stage::Playing => self.session_input(bytes),
            // Whatever follows the end of the stream is of no interest.
            Stage::Ended => Ok(()),
            Stage::Failed => Err(PullError::Failed),
        };
        if handled.is_err() {
            self.stage = Stage::Failed;
        }
        handled
    }

    /// The server closed the connection: the end of the stream once playing, else an error.
    pub(super) fn handle_eof(&mut self) -> Result<(), PullError> {
        match self.stage {
            Stage::Playing | Stage::Ended => {
                self.stage = Stage::Ended;
                Ok(())
            }
            Stage::Failed => Err(PullError::Failed),
            stage => {
                self.stage = Stage::Failed;
                Err(PullError::Closed(stage.doing()))
            }
        }
    }

    fn handshake_input(&mut self, bytes: &[u8]) -> Result<(), PullError> {
        let handshake = &mut self.handshake;
        let step = contained(|| handshake.process_bytes(bytes))?
            .map_err(|error| PullError::Protocol(format!("handshake: {error}")))?;
        match step {
            HandshakeProcessResult::InProgress { response_bytes } => {
                self.transmit.extend_from_slice(&response_bytes);
                Ok(())
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                self.transmit.extend_from_slice(&response_bytes);
                self.start_session()?;
                if remaining_bytes.is_empty() {
                    Ok(())
                } else {
                    self.session_input(&remaining_bytes)
                }
            }
        }
    }

    /// The handshake is done: ask to connect to the application.
    fn start_session(&mut self) -> Result<(), PullError> {
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(self.tc_url.clone());
        let (mut session, initial) =
            contained(|| ClientSession::new(config))?.map_err(|error| self.protocol(error))?;
        let app = self.app.clone();
        let connect =
            contained(|| session.request_connection(app))?.map_err(|error| self.protocol(error))?;
        self.client = Some((session, ChunkGuard::new(self.max_message)));
        self.stage = Stage::Connecting;
        self.handle_results(initial)?;
        self.handle_results(vec![connect])
    }

    fn session_input(&mut self, bytes: &[u8]) -> Result<(), PullError> {
        let Some((session, guard)) = self.client.as_mut() else {
            return Err(PullError::Protocol("no session after the handshake".into()));
        };
        guard
            .check(bytes)
            .map_err(|error| PullError::Protocol(format!("malformed RTMP framing: {error}")))?;
        let results =
            contained(|| session.handle_input(bytes))?.map_err(|error| self.protocol(error))?;
        self.handle_results(results)
    }

    fn handle_results(&mut self, results: Vec<ClientSessionResult>) -> Result<(), PullError> {
        // Packets go out in the order rml_rtmp made them (its header compression depends on
        // it); packets that events cause are made later, so they follow.
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.transmit.extend_from_slice(&packet.bytes)
                }
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        for event in events {
            if self.stage == Stage::Ended {
                break;
            }
            self.handle_event(event)?;
        }
        Ok(())
    }

    fn handle_event(&mut self, event: ClientSessionEvent) -> Result<(), PullError> {
        match event {
            ClientSessionEvent::ConnectionRequestAccepted if self.stage == Stage::Connecting => {
                let Some((session, _)) = self.client.as_mut() else {
                    return Err(PullError::Protocol("no session after the handshake".into()));
                };
                let key = self.key.clone();
                let play = contained(|| session.request_playback(key))?
                    .map_err(|error| self.protocol(error))?;
                self.stage = Stage::Requesting;
                self.handle_results(vec![play])
            }
            ClientSessionEvent::ConnectionRequestRejected { description } => {
                Err(PullError::ConnectRefused {
                    app: self.app.clone(),
                    description: from_server(&description, &self.key),
                })
            }
            ClientSessionEvent::PlaybackRequestAccepted => {
                self.stage = Stage::Playing;
                Ok(())
            }
            ClientSessionEvent::StreamMetadataReceived { metadata } => {
                self.pulled.push_back(Pulled::Metadata(metadata));
                Ok(())
            }
            ClientSessionEvent::VideoDataReceived { timestamp, data } => {
                self.pulled.push_back(Pulled::Frame(MediaFrame {
                    kind: MediaKind::Video,
                    timestamp: timestamp.value,
                    data,
                }));
                Ok(())
            }
            ClientSessionEvent::AudioDataReceived { timestamp, data } => {
                self.pulled.push_back(Pulled::Frame(MediaFrame {
                    kind: MediaKind::Audio,
                    timestamp: timestamp.value,
                    data,
                }));
                Ok(())
            }
            ClientSessionEvent::UnhandleableOnStatusCode { code } => match status(&code) {
                Status::End if self.stage == Stage::Playing => {
                    self.stage = Stage::Ended;
                    Ok(())
                }
                Status::End | Status::Failure => Err(self.failure(&code, "")),
                Status::Other => Ok(()),
            },
            // rml_rtmp surfaces an `_error` to `play` (transaction 0, which it never uses) as
            // a result of an unknown transaction; its status object says what went wrong.
            ClientSessionEvent::UnknownTransactionResultReceived {
                additional_values, ..
            } => match status_object(&additional_values) {
                Some((level, code, description))
                    if level.contains("error") || status(code) == Status::Failure =>
                {
                    Err(self.failure(code, description))
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// The error for a failure status at this stage.
    fn failure(&self, code: &str, description: &str) -> PullError {
        let code = from_server(code, &self.key);
        let description = from_server(description, &self.key);
        match self.stage {
            Stage::Playing | Stage::Ended => PullError::PlaybackFailed { code },
            Stage::Handshaking | Stage::Connecting => PullError::ConnectRefused {
                app: self.app.clone(),
                description: format!("{code} {description}").trim_end().to_owned(),
            },
            Stage::Requesting | Stage::Failed => PullError::PlaybackRefused { code, description },
        }
    }

    fn protocol(&self, error: impl std::fmt::Display) -> PullError {
        PullError::Protocol(from_server(&error.to_string(), &self.key))
    }
}

/// The `level`, `code` and `description` of a status object (the first value of a command's
/// arguments), when it has a code.
fn status_object(values: &[Amf0Value]) -> Option<(String, &str, &str)> {
    let Some(Amf0Value::Object(properties)) = values.first() else {
        return None;
    };
    let text = |name: &str| match properties.get(name) {
        Some(Amf0Value::Utf8String(text)) => Some(text.as_str()),
        _ => None,
    };
    let code = text("code")?;
    let level = text("level").unwrap_or_default().to_ascii_lowercase();
    Some((level, code, text("description").unwrap_or_default()))
}

#[cfg(test)]
mod tests_session;
