//! The pull session against rml_rtmp's own server session, in memory.

use super::*;
use bytes::Bytes;
use rml_rtmp::{
    sessions::{
        ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata,
    },
    time::RtmpTimestamp,
};

const KEY: &str = "s3cret-key";

/// rml_rtmp's own server, in memory, answering as media-ingest's does.
struct Server {
    handshake: Handshake,
    session: Option<ServerSession>,
    out: Vec<u8>,
    /// Refuse `play` with this code, or accept it.
    refuse_play: Option<&'static str>,
    playing: Option<u32>,
    played_key: Option<String>,
}

impl Server {
    fn new(refuse_play: Option<&'static str>) -> Self {
        Self {
            handshake: Handshake::new(PeerType::Server),
            session: None,
            out: Vec::new(),
            refuse_play,
            playing: None,
            played_key: None,
        }
    }

    fn session(&mut self) -> &mut ServerSession {
        self.session.as_mut().expect("handshake done")
    }

    fn input(&mut self, bytes: &[u8]) {
        if self.session.is_none() {
            match self.handshake.process_bytes(bytes).expect("handshake") {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.out.extend(response_bytes)
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.out.extend(response_bytes);
                    let (session, initial) =
                        ServerSession::new(ServerSessionConfig::new()).expect("session");
                    self.session = Some(session);
                    self.results(initial);
                    self.input(&remaining_bytes);
                }
            }
            return;
        }
        let results = self.session().handle_input(bytes).expect("valid input");
        self.results(results);
    }

    fn results(&mut self, results: Vec<ServerSessionResult>) {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.out.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => self.event(event),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }

    fn event(&mut self, event: ServerSessionEvent) {
        let results = match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                self.session().accept_request(request_id)
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                stream_key,
                stream_id,
                ..
            } => {
                self.played_key = Some(stream_key);
                match self.refuse_play {
                    // Like rml_rtmp's own descriptions, this one names the key.
                    Some(code) => self.session().reject_request(
                        request_id,
                        code,
                        &format!("nothing plays on {KEY}"),
                    ),
                    None => {
                        self.playing = Some(stream_id);
                        self.session().accept_request(request_id)
                    }
                }
            }
            _ => return,
        };
        self.results(results.expect("answered"));
    }

    fn send(&mut self, packet: rml_rtmp::chunk_io::Packet) {
        self.out.extend_from_slice(&packet.bytes);
    }
}

fn client() -> PullSession {
    let url = PullUrl::parse(&format!("rtmp://127.0.0.1/live/{KEY}")).expect("valid");
    PullSession::new(&url, 4 << 20).expect("session")
}

/// Moves bytes both ways until neither side has anything to say.
fn pump(client: &mut PullSession, server: &mut Server) -> Result<(), PullError> {
    loop {
        let mut moved = false;
        if let Some(bytes) = client.poll_transmit() {
            server.input(&bytes);
            moved = true;
        }
        let out = std::mem::take(&mut server.out);
        if !out.is_empty() {
            client.handle_input(&out)?;
            moved = true;
        }
        if !moved {
            return Ok(());
        }
    }
}

fn drain(client: &mut PullSession) -> Vec<Pulled> {
    std::iter::from_fn(|| client.poll_pulled()).collect()
}

fn frame(kind: MediaKind, timestamp: u32, data: &'static [u8]) -> Pulled {
    Pulled::Frame(MediaFrame {
        kind,
        timestamp,
        data: Bytes::from_static(data),
    })
}

#[test]
fn plays_until_the_server_finishes_playing() {
    let (mut client, mut server) = (client(), Server::new(None));
    pump(&mut client, &mut server).expect("no error");
    assert_eq!(client.stage(), Stage::Playing);
    assert_eq!(server.played_key.as_deref(), Some(KEY));

    let stream_id = server.playing.expect("playing");
    let mut metadata = StreamMetadata::new();
    metadata.video_width = Some(640);
    let packet = server.session().send_metadata(stream_id, &metadata);
    server.send(packet.expect("metadata"));
    let video = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]);
    let packet = server
        .session()
        .send_video_data(stream_id, video, RtmpTimestamp::new(0), false);
    server.send(packet.expect("video"));
    let audio = Bytes::from_static(&[0xaf, 1, 9]);
    let packet = server
        .session()
        .send_audio_data(stream_id, audio, RtmpTimestamp::new(23), false);
    server.send(packet.expect("audio"));
    pump(&mut client, &mut server).expect("no error");
    assert_eq!(
        drain(&mut client),
        [
            Pulled::Metadata(metadata),
            frame(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1]),
            frame(MediaKind::Audio, 23, &[0xaf, 1, 9]),
        ]
    );

    // What media-ingest's server sends when the publisher leaves: `Play.Complete`.
    let packet = server.session().finish_playing(stream_id);
    server.send(packet.expect("finished"));
    let audio = Bytes::from_static(&[0xaf, 1, 7]);
    let packet = server
        .session()
        .send_audio_data(stream_id, audio, RtmpTimestamp::new(46), false);
    server.send(packet.expect("audio"));
    pump(&mut client, &mut server).expect("no error");
    assert_eq!(client.stage(), Stage::Ended);
    assert_eq!(drain(&mut client), [], "nothing after the end");
    assert!(client.handle_eof().is_ok());
}

#[test]
fn a_refused_play_is_an_error_without_the_key() {
    let (mut client, mut server) = (client(), Server::new(Some("NetStream.Play.StreamNotFound")));
    let error = pump(&mut client, &mut server).expect_err("refused");
    assert!(
        matches!(&error, PullError::PlaybackRefused { code, .. } if code == "NetStream.Play.StreamNotFound"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("nothing plays on [key]"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    assert_eq!(client.stage(), Stage::Failed);
    assert!(matches!(client.handle_input(&[0]), Err(PullError::Failed)));
}

#[test]
fn closing_before_playback_is_an_error_and_after_it_the_end() {
    let (mut client, mut server) = (client(), Server::new(None));
    let _ = client.poll_transmit();
    assert!(matches!(
        client.handle_eof(),
        Err(PullError::Closed("handshaking"))
    ));

    let mut client = self::client();
    pump(&mut client, &mut server).expect("no error");
    assert!(client.handle_eof().is_ok());
    assert_eq!(client.stage(), Stage::Ended);
}

#[test]
fn status_codes_end_fail_or_inform() {
    assert_eq!(status("NetStream.Play.Complete"), Status::End);
    assert_eq!(status("NetStream.Play.Stop"), Status::End);
    assert_eq!(status("NetStream.Play.UnpublishNotify"), Status::End);
    assert_eq!(status("NetStream.Play.StreamNotFound"), Status::Failure);
    assert_eq!(status("NetStream.Play.Failed"), Status::Failure);
    assert_eq!(status("NetConnection.Connect.Rejected"), Status::Failure);
    assert_eq!(status("NetStream.Play.Reset"), Status::Other);
    assert_eq!(status("NetStream.Play.PublishNotify"), Status::Other);
}

#[test]
fn framing_that_rml_rtmp_cannot_parse_is_refused_before_it_does() {
    let (mut client, mut server) = (client(), Server::new(None));
    pump(&mut client, &mut server).expect("no error");
    // A video message of 5,000 bytes on chunk stream 6 (chunk size 4,096, as the server
    // announced), interrupted by chunk stream 4: rml_rtmp would underflow into a
    // `capacity overflow` panic.
    let mut bytes = vec![6, 0, 0, 0, 0, 0x13, 0x88, 9, 1, 0, 0, 0];
    bytes.extend_from_slice(&[0; 4096]);
    bytes.extend_from_slice(&[4, 0, 0, 0, 0, 0, 10, 8, 1, 0, 0, 0]);
    let error = client.handle_input(&bytes).expect_err("refused");
    assert!(
        error.to_string().contains("malformed RTMP framing"),
        "{error}"
    );
    assert_eq!(client.stage(), Stage::Failed);
}

#[test]
fn random_bytes_from_a_playing_server_never_escape_as_a_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let (mut client, mut server) = (client(), Server::new(None));
        pump(&mut client, &mut server).expect("no error");
        let garbage: Vec<u8> = (0..2048).map(|_| next() as u8).collect();
        for piece in garbage.chunks(1 + (next() % 512) as usize) {
            if client.handle_input(piece).is_err() {
                assert_eq!(client.stage(), Stage::Failed);
                break;
            }
        }
    }
}

#[test]
fn garbage_instead_of_a_handshake_is_an_error() {
    let mut client = client();
    let error = client.handle_input(&[0x55; 4000]).expect_err("garbage");
    assert!(matches!(error, PullError::Protocol(_)), "{error:?}");
}
