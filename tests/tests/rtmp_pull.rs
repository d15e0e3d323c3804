//! media-ingest's RTMP pull client: against our server with a real ffmpeg publisher, and against
//! servers that refuse, send garbage, close or fall silent.

use futures::future::join_all;
use harness::{Ffmpeg, peer};
use media_ingest::{
    Error, IngestEvent, MediaFrame, MediaKind, PullConfig, PullError, Pulled, RtmpPull,
};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use rml_rtmp::{
    handshake::{Handshake, HandshakeProcessResult, PeerType},
    sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult},
};
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

mod ingest_support;

use ingest_support::{KEY, Published, config, expect_event, good_keys, publish, start};

/// Far beyond what any step should take: reaching it means the pull hangs.
const HANG: Duration = Duration::from_secs(60);

fn pull_config(edit: impl FnOnce(&mut PullConfig)) -> PullConfig {
    let mut config = PullConfig::default();
    edit(&mut config);
    config
}

/// The pull error that `connect` failed with.
fn pull_error(connected: Result<RtmpPull, Error>) -> PullError {
    match connected {
        Err(Error::Pull(error)) => error,
        Err(other) => panic!("not a pull error: {other}"),
        Ok(pull) => panic!("playing from {pull:?}"),
    }
}

async fn connect_in_time(url: &str, config: &PullConfig) -> Result<RtmpPull, Error> {
    timeout(HANG, RtmpPull::connect(url, config))
        .await
        .expect("connect did not hang")
}

#[tokio::test]
async fn rtmp_pull_plays_an_ffmpeg_stream_from_its_headers_to_its_end() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let mut events = server.handle.events();
    let Published {
        publisher,
        stream,
        session,
    } = publish(&ffmpeg, &mut server, 4).await;

    // Our server sends a player the metadata once, when playback starts: join once it has the
    // metadata and both sequence headers (ffmpeg sends them first), as a pull of a running
    // stream does.
    let mut watcher = server.handle.subscribe(&stream).expect("live");
    let headers = async {
        let (mut video, mut audio) = (false, false);
        while !(video && audio) {
            let frame = watcher.next().await.expect("the stream goes on");
            video |= frame.kind == MediaKind::Video && frame.is_sequence_header();
            audio |= frame.kind == MediaKind::Audio && frame.is_sequence_header();
        }
    };
    timeout(HANG, headers).await.expect("both sequence headers");
    drop(watcher);

    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let mut pull = connect_in_time(&url, &PullConfig::default())
        .await
        .expect("playing");
    let mut pulled = Vec::new();
    let until_the_end = async {
        while let Some(item) = pull.next().await? {
            pulled.push(item);
        }
        Ok::<_, Error>(())
    };
    timeout(HANG, until_the_end)
        .await
        .expect("the pull ended")
        .expect("the pull ended cleanly");
    // It ended because the publisher left.
    expect_event(&mut events, |e| {
        matches!(e, IngestEvent::DonePublish { .. }) && e.session() == session
    })
    .await;
    publisher.finish(HANG).await.expect("published");
    assert!(matches!(pull.next().await, Ok(None)), "the end is final");

    let Some(Pulled::Metadata(metadata)) = pulled.first() else {
        panic!("metadata first, got {:?}", pulled.first());
    };
    assert_eq!(
        (metadata.video_width, metadata.video_height),
        (Some(640), Some(360))
    );
    let frames: Vec<&MediaFrame> = pulled
        .iter()
        .filter_map(|pulled| match pulled {
            Pulled::Frame(frame) => Some(frame),
            _ => None,
        })
        .collect();
    let first_two: Vec<_> = frames
        .iter()
        .take(2)
        .map(|frame| (frame.kind, frame.is_sequence_header()))
        .collect();
    assert!(
        first_two.contains(&(MediaKind::Video, true))
            && first_two.contains(&(MediaKind::Audio, true)),
        "AVC and AAC sequence headers first, got {first_two:?}"
    );
    assert!(
        !frames[2..].iter().any(|frame| frame.is_sequence_header()),
        "the headers come once"
    );
    let first_picture = frames
        .iter()
        .find(|frame| frame.kind == MediaKind::Video && !frame.is_sequence_header())
        .expect("video frames");
    assert!(first_picture.is_keyframe(), "video starts at a keyframe");
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let timestamps: Vec<u32> = frames
            .iter()
            .filter(|frame| frame.kind == kind)
            .map(|frame| frame.timestamp)
            .collect();
        assert!(
            timestamps.windows(2).all(|pair| pair[0] <= pair[1]),
            "{kind:?} timestamps go back: {timestamps:?}"
        );
        // At least a second of the four: the pull followed the live stream, not just the cache.
        assert!(
            timestamps.len() > 25,
            "{kind:?}: {} frames",
            timestamps.len()
        );
        let span = timestamps.last().copied().unwrap_or(0) - timestamps[1];
        assert!(span >= 1000, "{kind:?} spans {span} ms");
    }
}

#[tokio::test]
async fn pulling_a_stream_nobody_publishes_is_refused_at_once() {
    let server = start(config(|_| {}), good_keys()).await;
    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    // The refusal, not this timeout, must end the attempt.
    let config = pull_config(|c| c.connect_timeout = Duration::from_secs(3000));
    let error = pull_error(connect_in_time(&url, &config).await);
    assert!(
        matches!(&error, PullError::PlaybackRefused { code, .. } if code == "NetStream.Play.StreamNotFound"),
        "{error:?}"
    );
    let message = Error::from(error).to_string();
    assert!(
        message.contains("refused playback") && !message.contains(KEY),
        "{message}"
    );
}

#[tokio::test]
async fn bad_urls_and_settings_fail_before_connecting() {
    for url in [
        "rtmp://127.0.0.1:1935/live",
        "rtmp://127.0.0.1:1935/live/",
        "rtmp://127.0.0.1:1935/s3cret",
        "http://127.0.0.1:1935/live/s3cret",
        "rtmps://127.0.0.1:1935/live/s3cret",
        "127.0.0.1:1935/live/s3cret",
        "rtmp://127.0.0.1:99999/live/s3cret",
    ] {
        let error = pull_error(connect_in_time(url, &PullConfig::default()).await);
        assert!(matches!(error, PullError::BadUrl(_)), "{url}: {error:?}");
        let message = error.to_string();
        assert!(!message.contains("s3cret"), "{url}: {message}");
    }
    let url = "rtmp://127.0.0.1:1935/live/s3cret";
    for config in [
        pull_config(|c| c.idle_timeout = Duration::ZERO),
        pull_config(|c| c.connect_timeout = Duration::ZERO),
        pull_config(|c| c.max_message_bytes = 1000),
    ] {
        let refused = connect_in_time(url, &config).await;
        assert!(matches!(refused, Err(Error::Config(_))), "{config:?}");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let url = format!("rtmp://{addr}/live/s3cret");
    let error = pull_error(connect_in_time(&url, &PullConfig::default()).await);
    assert!(matches!(error, PullError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&addr.to_string()) && !message.contains("s3cret"),
        "{message}"
    );
}

/// Answers every connection with `garbage`, then reads without a word until the client leaves.
async fn garbage_server(garbage: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let garbage = garbage.clone();
            tokio::spawn(async move {
                let _ = stream.write_all(&garbage).await;
                let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_server_that_sends_garbage_ends_the_pull_with_an_error() {
    // Random bytes; and random bytes after the version byte 3, which rml_rtmp's client
    // handshake completes on (it does not check the server's signature), so the rest reaches
    // the framing guard and the RTMP parser.
    let mut garbage = Vec::new();
    for seed in 0..16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bytes = vec![0u8; 64 << 10];
        rng.fill_bytes(&mut bytes);
        if seed % 2 == 1 {
            bytes[0] = 3;
        }
        garbage.push(bytes);
    }
    let config = pull_config(|c| c.connect_timeout = Duration::from_secs(5));
    let attempts = garbage.into_iter().map(|bytes| {
        let config = config.clone();
        async move {
            let addr = garbage_server(bytes).await;
            let url = format!("rtmp://{addr}/live/s3cret");
            pull_error(connect_in_time(&url, &config).await)
        }
    });
    for error in join_all(attempts).await {
        let message = error.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        eprintln!("garbage ended the pull: {message}");
    }
}

/// What a scripted server does once it has accepted playback.
#[derive(Clone, Copy)]
enum AfterPlay {
    /// Closes its side of the connection.
    Close,
    /// Keeps the connection open and sends nothing more.
    FallSilent,
}

/// A server made of rml_rtmp's own session, for one connection: it accepts `connect` and `play`,
/// then does `after`.
async fn scripted_server(after: AfterPlay) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("a client");
        let mut input = server_handshake(&mut stream).await;
        let (mut session, initial) = ServerSession::new(ServerSessionConfig::new()).expect("new");
        let mut pending = initial;
        let mut buffer = vec![0u8; 16 << 10];
        loop {
            pending.extend(session.handle_input(&input).expect("valid input"));
            let mut playing = false;
            while !pending.is_empty() {
                for result in std::mem::take(&mut pending) {
                    match result {
                        ServerSessionResult::OutboundResponse(packet) => {
                            stream.write_all(&packet.bytes).await.expect("sent")
                        }
                        ServerSessionResult::RaisedEvent(
                            ServerSessionEvent::ConnectionRequested { request_id, .. },
                        ) => pending.extend(session.accept_request(request_id).expect("accepted")),
                        ServerSessionResult::RaisedEvent(
                            ServerSessionEvent::PlayStreamRequested { request_id, .. },
                        ) => {
                            pending.extend(session.accept_request(request_id).expect("accepted"));
                            playing = true;
                        }
                        _ => {}
                    }
                }
            }
            if playing {
                break;
            }
            let read = stream.read(&mut buffer).await.expect("read");
            if read == 0 {
                return;
            }
            input = buffer[..read].to_vec();
        }
        if let AfterPlay::Close = after {
            stream.shutdown().await.expect("closed");
        }
        // Read until the client leaves, so that closing never resets unread bytes.
        let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
    });
    addr
}

/// The server side of the handshake; returns the bytes that followed it.
async fn server_handshake(stream: &mut TcpStream) -> Vec<u8> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "the client closed during the handshake");
        match handshake.process_bytes(&buffer[..read]).expect("valid") {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await.expect("sent")
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream.write_all(&response_bytes).await.expect("sent");
                return remaining_bytes;
            }
        }
    }
}

#[tokio::test]
async fn a_server_that_closes_after_playback_started_ends_the_stream() {
    let addr = scripted_server(AfterPlay::Close).await;
    let url = format!("rtmp://{addr}/app/s3cret");
    let mut pull = connect_in_time(&url, &PullConfig::default())
        .await
        .expect("playing");
    let next = timeout(HANG, pull.next()).await.expect("no hang");
    assert!(matches!(next, Ok(None)), "{next:?}");
}

#[tokio::test]
async fn a_server_that_falls_silent_ends_the_pull_after_the_idle_timeout() {
    let addr = scripted_server(AfterPlay::FallSilent).await;
    let url = format!("rtmp://{addr}/app/s3cret");
    let config = pull_config(|c| c.idle_timeout = Duration::from_millis(300));
    let mut pull = connect_in_time(&url, &config).await.expect("playing");
    let next = timeout(HANG, pull.next()).await.expect("no hang");
    assert!(
        matches!(&next, Err(Error::Pull(PullError::Idle(after))) if *after == Duration::from_millis(300)),
        "{next:?}"
    );
    let again = pull.next().await;
    assert!(
        matches!(again, Err(Error::Pull(PullError::Failed))),
        "{again:?}"
    );
}
