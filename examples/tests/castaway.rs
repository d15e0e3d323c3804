//! The Castaway relay against the official JavaScript socket.io-client 4.8, with the seed's
//! snippets' options (`extraHeaders`), real AAC audio made by ffmpeg, and every error string.

mod castaway_support;

use castaway_support::{audio, credentials, ended, refused, relay, text};
use harness::{Ffmpeg, Node, TestSignal, http, peer};
use serde_json::{Value, json};
use std::time::Duration;

/// A real AAC file, in chunks of `size` bytes.
async fn aac_chunks(ffmpeg: &Ffmpeg, size: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audio.aac");
    let mut signal = TestSignal::lasting(Duration::from_secs(4));
    signal.video = false;
    ffmpeg.generate(&signal, &path).await.expect("generated");
    let bytes = std::fs::read(&path).expect("read");
    bytes.chunks(size).map(<[u8]>::to_vec).collect()
}

#[tokio::test]
async fn one_streamer_reaches_every_listener_in_order_until_it_leaves() {
    let (Some(node), Some(ffmpeg)) = (peer(Node::locate()), peer(Ffmpeg::locate())) else {
        return;
    };
    let relay = relay(|_| {}).await;
    let livestream = relay.livestream().await;
    let id = livestream.id.as_str();

    // Not started yet: listeners are turned away.
    let early = relay.client(&node, "/listener", credentials("fan-token", id));
    assert_eq!(
        refused(early).await,
        format!("Livestream {id} has not started.")
    );

    let mut streamer = relay.client(&node, "/streamer", credentials("artist-token", id));
    streamer.connected().await.expect("connected");
    assert_eq!(
        text(&mut streamer, "success").await,
        format!("User artist-1 connected as streamer to livestream {id}.")
    );
    let stored = relay.store.get(id).await.expect("read").expect("there");
    assert!(stored.streamer_connected);

    // As the seed's snippet does (extraHeaders), as a browser must (auth), and over HTTP
    // long-polling, where binary travels base64-encoded.
    let ways = [
        json!({ "extraHeaders": credentials("fan-token", id) }),
        json!({ "auth": { "idToken": "fan-token", "livestreamId": id } }),
        json!({ "extraHeaders": credentials("fan-token", id), "transports": ["polling"] }),
    ];
    let mut listeners = Vec::new();
    for options in ways {
        let mut listener = relay.client_with(&node, "/listener", options);
        listener.connected().await.expect("connected");
        assert_eq!(
            text(&mut listener, "success").await,
            format!("User fan-1 connected as listener to livestream {id}.")
        );
        listeners.push(listener);
    }

    let chunks = aac_chunks(&ffmpeg, 16 << 10).await;
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    for chunk in &chunks {
        streamer
            .emit("upload", vec![harness::binary(chunk)])
            .await
            .expect("uploaded");
    }
    for _ in &chunks {
        assert_eq!(
            text(&mut streamer, "success").await,
            "Packet received from user artist-1"
        );
    }
    for listener in &mut listeners {
        for (n, chunk) in chunks.iter().enumerate() {
            assert!(audio(listener).await == *chunk, "chunk {n} differs");
        }
    }

    // A late joiner starts with the latest chunk at once.
    let mut late = relay.client(&node, "/listener", credentials("fan-2-token", id));
    late.connected().await.expect("connected");
    text(&mut late, "success").await;
    let received = audio(&mut late).await;
    assert!(Some(&received) == chunks.last(), "not the latest chunk");
    listeners.push(late);

    // The streamer leaves: every listener is told and disconnected.
    streamer.close().await.expect("closed");
    for listener in &mut listeners {
        ended(listener, id).await;
    }
    let stored = relay.store.get(id).await.expect("read").expect("there");
    assert!(!stored.streamer_connected);
}

#[tokio::test]
async fn every_refusal_is_an_error_event_with_the_originals_words() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let relay = relay(|_| {}).await;
    let id = relay.livestream().await.id;
    let cases = [
        (
            "/streamer",
            json!({ "livestream-id": id }),
            "Id token not provided.".to_owned(),
        ),
        (
            "/streamer",
            json!({ "id-token": "artist-token" }),
            "Livestream id not provided.".to_owned(),
        ),
        (
            "/streamer",
            credentials("forged", &id),
            "Invalid id token.".to_owned(),
        ),
        (
            "/streamer",
            credentials("artist-token", "nope"),
            "Livestream nope does not exist.".to_owned(),
        ),
        (
            "/streamer",
            credentials("fan-token", &id),
            "User is not authorized to livestream in this room.".to_owned(),
        ),
        (
            "/listener",
            credentials("fan-token", "nope"),
            "Livestream nope does not exist.".to_owned(),
        ),
        (
            "/listener",
            credentials("forged", &id),
            "Invalid id token.".to_owned(),
        ),
    ];
    for (namespace, headers, expected) in cases {
        let client = relay.client(&node, namespace, headers.clone());
        assert_eq!(refused(client).await, expected, "{namespace} {headers}");
    }

    // One streamer per livestream: the second is refused, the first goes on.
    let mut first = relay.client(&node, "/streamer", credentials("artist-token", &id));
    first.connected().await.expect("connected");
    text(&mut first, "success").await;
    let second = relay.client(&node, "/streamer", credentials("artist-token", &id));
    assert_eq!(
        refused(second).await,
        format!("Livestream {id} already has a streamer.")
    );
    first
        .emit("upload", vec![harness::binary(b"still here")])
        .await
        .expect("uploaded");
    assert_eq!(
        text(&mut first, "success").await,
        "Packet received from user artist-1"
    );
    // Text is not audio: refused, not relayed.
    first
        .emit("upload", vec![json!("not binary")])
        .await
        .expect("sent");
    assert_eq!(
        text(&mut first, "error").await,
        "Upload must be binary audio data."
    );
}

#[tokio::test]
async fn uploads_sent_before_admission_completes_are_kept_in_order() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let relay = relay(|c| c.history_chunks = 3).await;
    let id = relay.livestream().await.id;
    let mut streamer = relay.client(&node, "/streamer", credentials("artist-token", &id));
    // Emitted at once, while the client is still connecting: socket.io-client buffers them
    // until the server has admitted it.
    for n in 0..3u8 {
        streamer
            .emit("upload", vec![harness::binary(&[n; 4])])
            .await
            .expect("emitted");
    }
    streamer.connected().await.expect("connected");
    assert_eq!(
        text(&mut streamer, "success").await,
        format!("User artist-1 connected as streamer to livestream {id}."),
        "the greeting comes first, even with uploads waiting"
    );
    for _ in 0..3 {
        assert_eq!(
            text(&mut streamer, "success").await,
            "Packet received from user artist-1"
        );
    }
    // The three are the history a listener starts with, in order.
    let mut listener = relay.client(&node, "/listener", credentials("fan-token", &id));
    listener.connected().await.expect("connected");
    text(&mut listener, "success").await;
    for n in 0..3u8 {
        assert_eq!(audio(&mut listener).await, vec![n; 4]);
    }
}

#[tokio::test]
async fn the_http_api_creates_and_reads_livestreams_for_token_holders() {
    let relay = relay(|_| {}).await;
    let client = http::client();
    let base = format!("http://{}/api/livestreams", relay.addr);
    let body = json!({"title": "Set", "description": "d", "artistName": "Ada"});
    let anonymous = client
        .post(&base)
        .json(&body)
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), 401);
    let forged = client
        .post(&base)
        .bearer_auth("forged")
        .json(&body)
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 401);
    let created: Value = client
        .post(&base)
        .header("idToken", "artist-token")
        .json(&body)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        created["artistId"], "artist-1",
        "the artist is the token's user"
    );
    assert_eq!(created["livestreamId"], created["id"]);
    assert_eq!(created["streamerConnected"], false);
    let id = created["id"].as_str().expect("an id");
    let one: Value = http::get_json(&format!("{base}/{id}")).await.expect("JSON");
    assert_eq!(one["title"], "Set");
    let missing = client
        .get(format!("{base}/nope"))
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
    let all: Value = http::get_json(&base).await.expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_listener_that_stops_reading_is_dropped_and_the_others_go_on() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let relay = relay(|c| {
        c.listener_queue_chunks = 4;
        c.uploads_per_second = 1000;
        c.upload_burst = 1000;
    })
    .await;
    let id = relay.livestream().await.id;
    let mut streamer = relay.client(&node, "/streamer", credentials("artist-token", &id));
    streamer.connected().await.expect("connected");
    text(&mut streamer, "success").await;
    let mut fast = relay.client(&node, "/listener", credentials("fan-token", &id));
    fast.connected().await.expect("connected");
    text(&mut fast, "success").await;
    let mut slow = relay.client(&node, "/listener", credentials("fan-2-token", &id));
    slow.connected().await.expect("connected");
    text(&mut slow, "success").await;

    // The slow listener's process stops: once the kernel's buffers and its queue of four
    // chunks are full, it is dropped. The fast one gets every chunk as it comes.
    let pid = slow.script().pid().expect("running");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stopped");
    let chunk = vec![7u8; 512 << 10];
    const CHUNKS: usize = 80;
    for n in 0..CHUNKS {
        let mut numbered = chunk.clone();
        numbered[..8].copy_from_slice(&(n as u64).to_be_bytes());
        streamer
            .emit("upload", vec![harness::binary(&numbered)])
            .await
            .expect("uploaded");
        assert!(audio(&mut fast).await == numbered, "chunk {n} differs");
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("continued");
    // It drains what was on its way, then hears why it was dropped.
    let mut received = 0;
    let script = slow.script();
    let reason = loop {
        let event = script
            .recv(Duration::from_secs(30))
            .await
            .expect("read")
            .expect("an event before the end");
        match (event["type"].as_str(), event["event"].as_str()) {
            (Some("event"), Some("audio")) => received += 1,
            (Some("event"), Some("error")) => break event["args"][0].clone(),
            _ => {}
        }
    };
    assert_eq!(reason, "Too slow: too many chunks were waiting for you.");
    assert!(
        received < CHUNKS,
        "dropped before the end: {received} chunks"
    );
    assert_eq!(
        slow.expect_disconnect().await.expect("disconnected"),
        "io server disconnect"
    );
}

#[tokio::test]
async fn each_limit_is_an_error_and_nothing_else_is_lost() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let relay = relay(|c| {
        c.max_chunk_bytes = 1 << 10;
        c.uploads_per_second = 1;
        c.upload_burst = 2;
        c.max_listeners_per_livestream = 1;
    })
    .await;
    let id = relay.livestream().await.id;
    let mut streamer = relay
        .admitted(&node, "/streamer", "artist-token", &id)
        .await;
    let mut listener = relay.admitted(&node, "/listener", "fan-token", &id).await;
    let second = relay.client(&node, "/listener", credentials("fan-2-token", &id));
    assert_eq!(refused(second).await, format!("Livestream {id} is full."));

    // Sent back to back: one within the limit, one over the size limit (refused, and it does
    // not count against the rate), one within, one over the burst of two.
    let uploads: [&[u8]; 4] = [&[1; 1024], &[2; 1025], &[3; 10], &[4; 10]];
    for chunk in uploads {
        streamer
            .emit("upload", vec![harness::binary(chunk)])
            .await
            .expect("uploaded");
    }
    let received = "Packet received from user artist-1".to_owned();
    let expected = [
        ("success", received.clone()),
        (
            "error",
            "Chunk of 1025 bytes is over the limit of 1024 bytes.".to_owned(),
        ),
        ("success", received),
        (
            "error",
            "Uploading too fast: at most 1 chunks per second.".to_owned(),
        ),
    ];
    for (event, text_expected) in expected {
        let (name, args) = streamer.next_event().await.expect("an answer");
        assert_eq!(
            (name.as_str(), args[0].as_str()),
            (event, Some(text_expected.as_str()))
        );
    }
    // The listener got exactly the two accepted chunks.
    assert_eq!(audio(&mut listener).await, vec![1; 1024]);
    assert_eq!(audio(&mut listener).await, vec![3; 10]);
}
