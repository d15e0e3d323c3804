//! The coordinator binary as a process, with the application's webhooks and control links
//! speaking the original's protocol over real WebSockets.

mod coordinator_support;

use coordinator_core::proto::ControlMessage;
use coordinator_support::{
    Application, COMMANDS_TOKEN, Link, SECRET, command, coordinator, start, token,
};
use harness::http;
use serde_json::json;
use std::{collections::BTreeMap, time::Duration};

const GRACE: Duration = Duration::from_secs(10);

fn field<'a>(message: &'a ControlMessage, name: &str) -> &'a str {
    message
        .header(name)
        .unwrap_or_else(|| panic!("{name} missing from {message:?}"))
}

#[tokio::test]
async fn a_stream_goes_from_request_to_callbacks_and_releases_its_encoder() {
    let mut app = Application::start().await;
    app.answer_verifications(
        200,
        &[
            ("x-record", "true"),
            ("x-previews", "320x180, 5"),
            ("x-resolutions", "1280x720-30~2500,ORIGINAL"),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (process, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;

    let mut encoder = Link::encoder(addr, 1).await;
    let mut server = Link::server(addr).await;
    // The encoder's REGISTER is in before the request: the capacity shows it.
    let (status, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        capacity,
        json!({"load": 0, "capacity": 1, "encoderCount": 1})
    );

    let accept = server.request("r1", "my-channel", "secret_key").await;
    assert_eq!(accept.method(), "PUBLISH-ACCEPT", "{accept:?}");
    let stream_id = field(&accept, "Stream-ID").to_owned();

    let asked = app.next_verification().await;
    assert_eq!(asked["x-streaming-channel"], "my-channel");
    assert_eq!(asked["x-streaming-key"], "secret_key");
    assert_eq!(
        asked["x-user-ip"], "192.0.2.7",
        "IPv4-mapped reported as IPv4"
    );
    assert_eq!(asked["authorization"], "Bearer verify-token");

    let start = encoder.expect("ENCODE-START").await;
    assert_eq!(field(&start, "Stream-ID"), stream_id);
    assert_eq!(field(&start, "Stream-Channel"), "my-channel");
    assert_eq!(field(&start, "Stream-Source-Type"), "RTMP");
    assert_eq!(
        field(&start, "Stream-Source-URI"),
        "rtmp://10.9.8.7:1936/my-channel/secret_key"
    );
    assert_eq!(field(&start, "Record"), "True");
    assert_eq!(field(&start, "Previews"), "320x180,5");
    assert_eq!(field(&start, "Resolutions"), "1280x720-30~2500,ORIGINAL");

    encoder
        .send(&format!(
            "STREAM-AVAILABLE\nStream-Channel: my-channel\nStream-ID: {stream_id}\n\
             Stream-Type: HLS-LIVE\nResolution: 1280x720-30\n\
             Index-file: /hls/my-channel/{stream_id}/1280x720-30/live.m3u8\nStart-Time: 0"
        ))
        .await;
    let available = app.next_event().await;
    assert_eq!(available["x-event-type"], "stream-available");
    assert_eq!(available["x-streaming-channel"], "my-channel");
    assert_eq!(available["x-streaming-id"], stream_id);
    assert_eq!(available["x-stream-type"], "HLS-LIVE");
    assert_eq!(available["x-resolution"], "1280x720-30");
    assert_eq!(
        available["x-index-file"],
        format!("/hls/my-channel/{stream_id}/1280x720-30/live.m3u8")
    );
    assert_eq!(available["authorization"], "Key events-key");
    assert!(!available["x-event-id"].is_empty());

    // The encoder is full: the next publisher is denied without asking the application.
    let denied = server.request("r2", "other-channel", "k2").await;
    assert_eq!(denied.method(), "PUBLISH-DENY");

    let (_, report) = command(addr, "GET", "/commands/report", &[]).await;
    assert_eq!(report["activeStreams"][0]["streamId"], stream_id.as_str());
    assert_eq!(report["activeStreams"][0]["channel"], "my-channel");
    assert_eq!(report["streamingServers"][0]["ip"], "10.9.8.7");
    assert_eq!(report["streamingServers"][0]["port"], 1936);
    assert_eq!(report["streamingServers"][0]["serverType"], "RTMP");
    assert_eq!(report["encoders"][0]["load"], 1);
    assert_eq!(report["encoders"][0]["capacity"], 1);

    // The publisher stops: the encoder is told, reports the stream closed, and is free again.
    server
        .send(&format!(
            "PUBLISH-END\nStream-Channel: my-channel\nStream-ID: {stream_id}"
        ))
        .await;
    let stop = encoder.expect("ENCODE-STOP").await;
    assert_eq!(field(&stop, "Stream-ID"), stream_id);
    encoder
        .send(&format!(
            "STREAM-CLOSED\nStream-Channel: my-channel\nStream-ID: {stream_id}"
        ))
        .await;
    let closed = app.next_event().await;
    assert_eq!(closed["x-event-type"], "stream-closed");
    assert_eq!(closed["x-streaming-id"], stream_id);
    assert_ne!(closed["x-event-id"], available["x-event-id"]);
    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(capacity["load"], 0, "load released");
    let again = server.request("r3", "other-channel", "k3").await;
    assert_eq!(again.method(), "PUBLISH-ACCEPT");

    let status = process.terminate(GRACE).await.expect("stopped");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn refused_keys_deny_and_wrong_credentials_are_refused() {
    let mut app = Application::start().await;
    app.answer_verifications(403, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let (process, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;

    let _encoder = Link::encoder(addr, 0).await;
    let mut server = Link::server(addr).await;
    let denied = server.request("r1", "ch", "wrong-key").await;
    assert_eq!(denied.method(), "PUBLISH-DENY");
    assert_eq!(
        app.next_verification().await["x-streaming-key"],
        "wrong-key"
    );
    // A channel or key outside [A-Za-z0-9_-] is an ERROR, not a question to the application.
    server
        .send("PUBLISH-REQUEST\nRequest-ID: r2\nStream-Channel: ../etc\nStream-Key: k\nUser-IP: 1.2.3.4")
        .await;
    let error = server.expect("ERROR").await;
    assert_eq!(field(&error, "Error-Code"), "INVALID_FIELD");
    // Capacity 0 is unlimited.
    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(capacity["capacity"], -1);

    // Control links: a token for another role, another secret, or none is refused with 403.
    for (segment, token) in [
        ("rtmp", token(SECRET, "hls-control")),
        ("hls", token("not-the-secret", "hls-control")),
        ("wss", String::new()),
    ] {
        match Link::open(addr, segment, &token, &[]).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{segment}");
            }
            Err(other) => panic!("{segment}: expected 403, got {other}"),
            Ok(_) => panic!("{segment}: a link opened with a bad token"),
        }
    }

    // The commands API: 401 without the token or with a wrong one.
    let client = http::client();
    let url = format!("http://{addr}/commands/capacity");
    let none = client.get(&url).send().await.expect("answered");
    assert_eq!(none.status(), 401);
    let wrong = client
        .get(&url)
        .bearer_auth(format!("{COMMANDS_TOKEN}x"))
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong.status(), 401);
    let close = client
        .post(format!("http://{addr}/commands/close"))
        .header("x-streaming-channel", "ch")
        .header("x-streaming-id", "*")
        .send()
        .await
        .expect("answered");
    assert_eq!(close.status(), 401);

    process.terminate(GRACE).await.expect("stopped");
}

#[tokio::test]
async fn the_close_command_kills_and_a_lost_encoder_releases_its_streams() {
    let mut app = Application::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (process, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;

    let mut encoder = Link::encoder(addr, 2).await;
    let mut server = Link::server(addr).await;
    let first = server.request("r1", "ch", "k").await;
    let first_id = field(&first, "Stream-ID").to_owned();
    encoder.expect("ENCODE-START").await;

    let (status, body) = command(
        addr,
        "POST",
        "/commands/close",
        &[("x-streaming-channel", "ch"), ("x-streaming-id", "*")],
    )
    .await;
    assert_eq!((status, body), (200, json!({"closed": 1})));
    let kill = server.expect("STREAM-KILL").await;
    assert_eq!(field(&kill, "Stream-Channel"), "ch");
    assert_eq!(field(&kill, "Stream-ID"), first_id, "the stream's own id");

    // The encoder goes away mid-stream: its load is released, the stream closed and reported.
    let second = server.request("r2", "ch2", "k").await;
    let second_id = field(&second, "Stream-ID").to_owned();
    encoder.close().await;
    let mut closed = BTreeMap::new();
    for _ in 0..2 {
        let event = app.next_event().await;
        assert_eq!(event["x-event-type"], "stream-closed");
        closed.insert(event["x-streaming-id"].clone(), event);
    }
    assert!(closed.contains_key(&first_id) && closed.contains_key(&second_id));
    let mut kills = 0;
    while kills < 2 {
        let kill = server.expect("STREAM-KILL").await;
        assert!([first_id.as_str(), second_id.as_str()].contains(&field(&kill, "Stream-ID")));
        kills += 1;
    }
    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(
        capacity,
        json!({"load": 0, "capacity": 0, "encoderCount": 0})
    );
    // No encoder: denied. A new encoder: accepted again.
    assert_eq!(
        server.request("r3", "ch3", "k").await.method(),
        "PUBLISH-DENY"
    );
    let _encoder = Link::encoder(addr, 1).await;
    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(capacity["encoderCount"], 1);
    assert_eq!(
        server.request("r4", "ch3", "k").await.method(),
        "PUBLISH-ACCEPT"
    );

    process.terminate(GRACE).await.expect("stopped");
}

#[tokio::test]
async fn callbacks_wait_out_a_receiver_that_is_down_and_survive_a_restart() {
    let mut app = Application::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("c.sqlite3");
    let (process, addr) = start(coordinator(&app, &database)).await;

    let mut encoder = Link::encoder(addr, 0).await;
    let mut server = Link::server(addr).await;
    app.callbacks_up(false);
    let mut streams = Vec::new();
    for n in 0..3 {
        let accept = server
            .request(&format!("r{n}"), &format!("ch{n}"), "k")
            .await;
        let stream_id = field(&accept, "Stream-ID").to_owned();
        encoder.expect("ENCODE-START").await;
        encoder
            .send(&format!(
                "STREAM-AVAILABLE\nStream-Channel: ch{n}\nStream-ID: {stream_id}\n\
                 Stream-Type: HLS-LIVE\nResolution: ORIGINAL\nIndex-file: /x/{n}.m3u8\nStart-Time: 0"
            ))
            .await;
        streams.push(stream_id);
    }
    // The receiver is down: the coordinator keeps trying (twice for the first event).
    let first = app.next_refused().await;
    loop {
        let again = app.next_refused().await;
        if again["x-event-id"] == first["x-event-id"] {
            break;
        }
    }
    // The coordinator crashes with its events undelivered and its streams active; the
    // receiver comes back while it is down.
    let pid = process.pid().expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    let status = process.terminate(GRACE).await.expect("reaped");
    assert!(!status.success(), "killed, not stopped: {status}");
    drop((encoder, server));
    app.callbacks_up(true);

    let (process, _addr) = start(coordinator(&app, &database)).await;
    // Every stream gets its stream-available, then (active before the restart) its
    // stream-closed; each event exactly once here, with the same id as when it was refused.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..streams.len() * 2 {
        let event = app.next_event().await;
        let id = event["x-event-id"].clone();
        assert!(
            !seen.values().flatten().any(|e| *e == id),
            "{id} delivered twice"
        );
        seen.entry(event["x-streaming-id"].clone())
            .or_default()
            .push(event["x-event-type"].clone());
        seen.get_mut(&event["x-streaming-id"])
            .expect("present")
            .push(id);
    }
    for stream_id in &streams {
        let kinds: Vec<&String> = seen[stream_id].iter().step_by(2).collect();
        assert_eq!(
            kinds,
            ["stream-available", "stream-closed"],
            "{stream_id}: in order"
        );
    }
    while let Ok(refused) = app.refused.try_recv() {
        let id = &refused["x-event-id"];
        assert!(
            seen.values().flatten().any(|e| e == id),
            "a refused event {id} was never delivered"
        );
    }
    let (status, _) = command(_addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(status, 200);
    process.terminate(GRACE).await.expect("stopped");
}

#[tokio::test]
async fn a_silent_link_is_dropped_with_its_encoder() {
    let app = Application::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = coordinator(&app, &dir.path().join("c.sqlite3"));
    command
        .env("HEARTBEAT_SECONDS", "0.2")
        .env("LINK_TIMEOUT_SECONDS", "1");
    let (process, addr) = start(command).await;
    let mut encoder = Link::encoder(addr, 3).await;
    let (_, capacity) = command_api(addr).await;
    assert_eq!(capacity["encoderCount"], 1);
    // The coordinator's heartbeats come in; this encoder sends none back, and is dropped.
    assert!(encoder.next().await.is_none(), "the link was closed");
    let (_, capacity) = command_api(addr).await;
    assert_eq!(
        capacity,
        json!({"load": 0, "capacity": 0, "encoderCount": 0})
    );
    process.terminate(GRACE).await.expect("stopped");
}

async fn command_api(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    command(addr, "GET", "/commands/capacity", &[]).await
}
