//! media-ingest's RTMP server against the real ffmpeg, and against hostile bytes over TCP.

use async_trait::async_trait;
use harness::{Ffmpeg, TestSignal, peer};
use media_ingest::{IngestEvent, KeyVerifier, PublishRequest, VerifiedKey, VerifyError};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::broadcast,
};

mod ingest_support;

use ingest_support::{KEY, Published, config, expect_event, good_keys, lifecycle, publish, start};

#[tokio::test]
async fn ffmpeg_publishes_a_player_gets_the_stream_and_the_lifecycle_is_the_seeds() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let mut publisher_events = server.handle.events();
    let publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(8)))
        .expect("publishing");
    let accepted = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;
    assert_eq!(server.handle.live_streams().len(), 1);

    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("played.flv");
    ffmpeg
        .record(&url, Duration::from_secs(3), &received)
        .await
        .expect("played");
    let probe = ffmpeg
        .probe(&received.display().to_string())
        .await
        .expect("probed");
    assert_eq!(
        probe
            .video()
            .map(|v| (v.codec_name.as_str(), v.width, v.height)),
        Some(("h264", Some(640), Some(360)))
    );
    assert_eq!(probe.audio().map(|a| a.codec_name.as_str()), Some("aac"));
    let played = probe.duration.expect("a duration").as_secs_f64();
    assert!((2.5..=3.5).contains(&played), "played {played} s");

    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let session = accepted.session();
    assert_eq!(
        lifecycle(&mut publisher_events, session).await,
        [
            "preConnect",
            "postConnect",
            "prePublish",
            "postPublish",
            "donePublish",
            "doneConnect"
        ]
    );
    assert!(
        server.handle.live_streams().is_empty(),
        "the stream ended with its publisher"
    );
}

#[tokio::test]
async fn a_player_session_has_the_seeds_lifecycle() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(5)))
        .expect("publishing");
    expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;

    let mut player_events = server.handle.events();
    let args = ["-i", &url, "-t", "1", "-c", "copy", "-f", "null", "-"];
    ffmpeg
        .start(args.map(String::from).to_vec())
        .expect("player")
        .finish(Duration::from_secs(60))
        .await
        .expect("played");
    let post_play = expect_event(&mut player_events, |e| {
        matches!(e, IngestEvent::PrePlay { .. })
    })
    .await;
    let mut names = vec![post_play.name()];
    names.extend(lifecycle(&mut player_events, post_play.session()).await);
    assert_eq!(names, ["prePlay", "postPlay", "donePlay", "doneConnect"]);
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
}

#[tokio::test]
async fn an_unknown_key_is_refused_before_any_media_is_accepted() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let url = format!("rtmp://{}/live/not-the-key", server.addr);
    let mut publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(5)))
        .expect("started");
    let status = publisher
        .wait(Duration::from_secs(30))
        .await
        .expect("ffmpeg ended");
    assert!(!status.success(), "ffmpeg published with a wrong key");
    let refused = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PublishRefused { .. })
    })
    .await;
    let IngestEvent::PublishRefused { reason, .. } = refused else {
        unreachable!()
    };
    assert!(
        reason.contains("refused") && !reason.contains("not-the-key"),
        "{reason}"
    );
    assert!(server.handle.live_streams().is_empty());
}

/// A verifier that never answers.
struct Silent;

#[async_trait]
impl KeyVerifier for Silent {
    async fn verify(&self, _: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_verifier_that_does_not_answer_in_time_denies() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(
        config(|c| c.verify_timeout = Duration::from_millis(300)),
        Arc::new(Silent),
    )
    .await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let mut publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(5)))
        .expect("started");
    let refused = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PublishRefused { .. })
    })
    .await;
    let IngestEvent::PublishRefused { reason, .. } = refused else {
        unreachable!()
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(
        !publisher
            .wait(Duration::from_secs(30))
            .await
            .expect("ended")
            .success()
    );
}

#[tokio::test]
async fn a_second_publisher_of_the_same_stream_is_refused_and_the_first_goes_on() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let first = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(5)))
        .expect("publishing");
    let accepted = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;

    let mut second = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(5)))
        .expect("started");
    let refused = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PublishRefused { .. })
    })
    .await;
    let IngestEvent::PublishRefused { reason, .. } = refused else {
        unreachable!()
    };
    assert!(reason.contains("already being published"), "{reason}");
    assert!(
        !second
            .wait(Duration::from_secs(30))
            .await
            .expect("ended")
            .success()
    );

    assert_eq!(
        server.handle.live_streams().len(),
        1,
        "the first publisher lost its stream"
    );
    first
        .finish(Duration::from_secs(60))
        .await
        .expect("the first publisher finished normally");
    let done = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::DonePublish { .. })
    })
    .await;
    assert_eq!(done.session(), accepted.session());
}

// --- Hostile input over real TCP -------------------------------------------------------------

/// Connects and completes the client side of the RTMP handshake with rml_rtmp.
async fn handshaken(addr: SocketAddr) -> TcpStream {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    let mut stream = TcpStream::connect(addr).await.expect("connected");
    let mut handshake = Handshake::new(PeerType::Client);
    stream
        .write_all(&handshake.generate_outbound_p0_and_p1().expect("c0c1"))
        .await
        .expect("sent");
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "the server closed during the handshake");
        match handshake
            .process_bytes(&buffer[..read])
            .expect("valid handshake")
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await.expect("sent")
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                stream.write_all(&response_bytes).await.expect("sent");
                return stream;
            }
        }
    }
}

/// Reads until the server closes the connection.
async fn closed_by_server(mut stream: TcpStream) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the server kept a hostile connection open");
}

async fn connection_error(events: &mut broadcast::Receiver<IngestEvent>) -> String {
    match expect_event(events, |e| {
        matches!(e, IngestEvent::DoneConnect { error: Some(_), .. })
    })
    .await
    {
        IngestEvent::DoneConnect {
            error: Some(error), ..
        } => error,
        _ => unreachable!(),
    }
}

/// A full-header chunk on chunk stream `csid` announcing a message of `length` bytes.
fn header(csid: u8, type_id: u8, length: u32) -> Vec<u8> {
    let mut chunk = vec![csid, 0, 0, 0];
    chunk.extend_from_slice(&length.to_be_bytes()[1..]);
    chunk.extend_from_slice(&[type_id, 1, 0, 0, 0]);
    chunk
}

#[tokio::test]
async fn hostile_framing_ends_only_that_connection_and_says_why() {
    let mut server = start(config(|c| c.max_message_bytes = 1 << 20), good_keys()).await;

    let mut oversized = header(6, 9, 0x00ff_ffff);
    oversized.extend_from_slice(&[0; 64]);
    let mut huge_chunks = header(2, 1, 4);
    huge_chunks.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    // What crashed rml_rtmp: a second message header while the first message is incomplete.
    let mut interleaved = header(6, 9, 300);
    interleaved.extend_from_slice(&[0; 128]);
    interleaved.extend(header(4, 8, 10));
    interleaved.extend_from_slice(&[0; 10]);

    for (bytes, expected) in [
        (oversized, "exceeds the limit"),
        (huge_chunks, "chunk size 2147483647 is outside"),
        (interleaved, "interrupted the incomplete message"),
    ] {
        let mut stream = handshaken(server.addr).await;
        stream.write_all(&bytes).await.expect("sent");
        closed_by_server(stream).await;
        let error = connection_error(&mut server.events).await;
        assert!(
            error.contains(expected),
            "expected {expected:?}, got {error:?}"
        );
    }
}

#[tokio::test]
async fn garbage_and_stalled_handshakes_are_closed_and_the_server_keeps_serving() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(
        config(|c| c.handshake_timeout = Duration::from_millis(500)),
        good_keys(),
    )
    .await;

    // Not RTMP at all: a version byte rml_rtmp refuses.
    let mut garbage = TcpStream::connect(server.addr).await.expect("connected");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sent");
    let mut deterministic_noise = vec![0x03u8];
    deterministic_noise.extend((0u32..20_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let mut noise = TcpStream::connect(server.addr).await.expect("connected");
    noise.write_all(&deterministic_noise).await.expect("sent");
    // A handshake that starts and stalls (slowloris).
    let mut stalled = TcpStream::connect(server.addr).await.expect("connected");
    stalled.write_all(&[3, 0, 0, 0]).await.expect("sent");

    for stream in [garbage, noise, stalled] {
        closed_by_server(stream).await;
    }
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(connection_error(&mut server.events).await);
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("handshake not completed within 500ms")),
        "{errors:?}"
    );

    // The server still serves a real publisher.
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(2)))
        .expect("publishing");
    expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
}

/// Inputs the fuzzer found that made rml_rtmp panic: each must end its own connection only.
#[tokio::test]
async fn inputs_that_make_rml_rtmp_panic_end_only_their_connection() {
    let regressions = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/rtmp_connection");
    let mut server = start(config(|_| {}), good_keys()).await;
    let mut seen = 0;
    for entry in std::fs::read_dir(&regressions).expect("the regression inputs") {
        let input = std::fs::read(entry.expect("an entry").path()).expect("readable");
        let mut stream = TcpStream::connect(server.addr).await.expect("connected");
        // Write and read at once: the server answers as it goes.
        let (mut reader, mut writer) = stream.split();
        let write = async {
            writer.write_all(&input).await.expect("sent");
        };
        let read = async {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink).await;
        };
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
            .await
            .expect("closed in time");
        let error = connection_error(&mut server.events).await;
        assert!(error.contains("the RTMP parser panicked"), "{error}");
        seen += 1;
    }
    assert!(seen >= 1);
    // The server still accepts and completes handshakes.
    drop(handshaken(server.addr).await);
}

/// Plays `key` with rml_rtmp's client over `stream` (already handshaken) and returns once the
/// server has accepted; the caller then never reads again.
async fn play_then_stall(stream: &mut TcpStream, key: &str) {
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    };
    let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).expect("a session");
    let mut outgoing = initial;
    outgoing.push(session.request_connection("live".into()).expect("connect"));
    let mut requested_play = false;
    let mut buffer = vec![0u8; 16 << 10];
    loop {
        let mut accepted = false;
        for result in outgoing.drain(..) {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    stream.write_all(&packet.bytes).await.expect("sent")
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) => {
                    requested_play = true
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PlaybackRequestAccepted) => {
                    accepted = true
                }
                _ => {}
            }
        }
        if accepted {
            return;
        }
        if requested_play {
            requested_play = false;
            outgoing.push(session.request_playback(key.into()).expect("play"));
            continue;
        }
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "closed before playing");
        outgoing = session.handle_input(&buffer[..read]).expect("valid");
    }
}

#[tokio::test]
async fn a_player_that_stops_reading_never_stalls_the_publisher_or_other_players() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    // A small ring, so the stalled player falls behind quickly.
    let mut server = start(config(|c| c.stream_ring_frames = 16), good_keys()).await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(6)))
        .expect("publishing");
    expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;

    let mut stalled = handshaken(server.addr).await;
    play_then_stall(&mut stalled, KEY).await;

    // A normal player, at the same time, gets 4 s of the stream in full.
    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("played.flv");
    ffmpeg
        .record(&url, Duration::from_secs(4), &received)
        .await
        .expect("played");
    let probe = ffmpeg
        .probe(&received.display().to_string())
        .await
        .expect("probed");
    let played = probe.duration.expect("a duration").as_secs_f64();
    assert!(
        (3.5..=4.5).contains(&played),
        "the other player got {played} s"
    );

    // The publisher was never slowed: -re publishing ends on time and successfully.
    publisher
        .finish(Duration::from_secs(30))
        .await
        .expect("published without a stall");
    drop(stalled);
}

/// `payload` as one message of `type_id` on chunk stream 3, in 128-byte chunks (the initial
/// chunk size).
fn chunked(type_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header(3, type_id, u32::try_from(payload.len()).expect("small"));
    for (i, piece) in payload.chunks(128).enumerate() {
        if i > 0 {
            bytes.push(0xc3);
        }
        bytes.extend_from_slice(piece);
    }
    bytes
}

#[tokio::test]
async fn a_deeply_nested_command_is_refused_instead_of_overflowing_the_stack() {
    let mut server = start(config(|_| {}), good_keys()).await;
    // "connect" with an object nested 10,000 deep: 40 KB, before any key is asked for.
    let mut command = vec![2, 0, 7];
    command.extend_from_slice(b"connect");
    command.push(3);
    for _ in 0..10_000 {
        command.extend_from_slice(&[0, 1, b'a', 3]);
    }
    let mut stream = handshaken(server.addr).await;
    stream
        .write_all(&chunked(20, &command))
        .await
        .expect("sent");
    closed_by_server(stream).await;
    let error = connection_error(&mut server.events).await;
    assert!(error.contains("nests deeper than 32"), "{error}");
    // The process is alive and serving.
    drop(handshaken(server.addr).await);
}

#[tokio::test]
async fn ending_a_stream_disconnects_its_publisher_and_frees_the_name() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let Published {
        mut publisher,
        stream,
        session,
    } = publish(&ffmpeg, &mut server, 60).await;

    assert!(server.handle.end_stream(&stream));
    let done = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::DonePublish { .. })
    })
    .await;
    assert_eq!(done.session(), session);
    // ffmpeg sees its connection end long before its minute of signal is over.
    let status = publisher
        .wait(Duration::from_secs(20))
        .await
        .expect("ffmpeg ended");
    assert!(!status.success(), "ffmpeg was cut off: {status}");
    assert!(server.handle.live_streams().is_empty());
    assert!(
        !server.handle.end_stream(&stream),
        "nobody publishes it now"
    );
}
