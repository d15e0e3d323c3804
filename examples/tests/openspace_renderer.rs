//! `openspace-test-renderer` streams its moving test picture to a browser over WebRTC,
//! through the OpenSpace signaling server, as a rendering instance does. The browser is a
//! `webrtc` peer here: it registers as peer 100, asks for a session with instance 0, answers
//! the renderer's offer, trickles ICE both ways (host candidates on 127.0.0.1 only), and
//! reads VP8 RTP packets from the remote track. Then it leaves, and the renderer serves on:
//! its API port still acks, and the next browser gets a fresh offer.

use futures::{SinkExt, StreamExt};
use harness::{Ffmpeg, ServerProcess, free_port, peer};
use openspace_supervisor::{SignalingConfig, SignalingServer, token};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "the signaling secret of the renderer tests";
/// From the browser's SESSION to the packets read, and each later step.
const DEADLINE: Duration = Duration::from_secs(30);
/// RTP packets the browser must read (a second of video is at least 25: a packet a frame).
const PACKETS: usize = 25;
/// Frames (RTP timestamps) the browser must see: the picture moves.
const FRAMES: usize = 10;
/// One frame at 25 fps, in the 90 kHz RTP clock.
const FRAME_TICKS: i32 = 90_000 / 25;
const INSTANCE: u32 = 0;
const BROWSER: u32 = 100;
const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;

/// The signaling server on 127.0.0.1:0; stops when dropped.
struct Signaling {
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn signaling() -> Signaling {
    signaling_on(0).await
}

/// The signaling server on 127.0.0.1:`port`.
async fn signaling_on(port: u16) -> Signaling {
    let mut config = SignalingConfig::default();
    config.listen = ([127, 0, 0, 1], port).into();
    let server = SignalingServer::bind(config, SECRET).await.expect("bound");
    let url = format!("ws://{}", server.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Signaling { url, _stop: stop }
}

fn token_for(peer: u32) -> String {
    let expires = token::unix_seconds(SystemTime::now() + Duration::from_secs(600));
    token::issue(SECRET.as_bytes(), peer, expires)
}

/// The renderer as instance 0 at 320×240, its API port announced.
async fn renderer(signaling_url: &str) -> ServerProcess {
    let api_port = free_port().expect("a free port").to_string();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-test-renderer"));
    command
        .args(["--api-port", &api_port, "--webrtc-id", "0"])
        .args([
            "--width",
            &WIDTH.to_string(),
            "--height",
            &HEIGHT.to_string(),
        ])
        .args([
            "--signaling-url",
            signaling_url,
            "--token",
            &token_for(INSTANCE),
        ])
        .env("RUST_LOG", "info");
    ServerProcess::spawn(command, &["api"])
        .await
        .expect("the renderer started")
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent to the signaling server");
}

/// The next text frame; panics if the socket closes.
async fn next_text(socket: &mut Socket) -> String {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(_))) | None => panic!("the signaling server closed"),
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("the signaling socket failed: {error}"),
        }
    }
}

/// A browser's signaling connection, registered as peer 100, its session with instance 0
/// asked for.
async fn browser_socket(url: &str) -> Socket {
    let (mut socket, _) = connect_async(url).await.expect("signaling connected");
    let register = json!({ "type": "REGISTER", "caller_id": BROWSER, "token": token_for(BROWSER) });
    send(&mut socket, register).await;
    assert_eq!(next_text(&mut socket).await, "REGISTER");
    let session = json!({ "type": "SESSION", "caller_id": BROWSER, "content": INSTANCE });
    send(&mut socket, session).await;
    socket
}

/// What the browser's peer connection reports.
struct Events {
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let candidate = event.candidate.to_json().expect("a candidate serialises");
        let _ = self.candidates.send(candidate);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.log
            .lock()
            .expect("log lock")
            .push(format!("connection {state}"));
    }
}

/// The browser's side of the session.
struct Browser {
    connection: Arc<dyn PeerConnection>,
    candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    async fn new() -> Self {
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (tracks_tx, tracks) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut media_engine = MediaEngine::default();
        // As a browser: VP8, VP9, H.264, Opus …; the answer keeps what the offer has.
        media_engine
            .register_default_codecs()
            .expect("default codecs");
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let connection = PeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_media_engine(media_engine)
            .with_handler(Arc::new(Events {
                candidates: candidates_tx,
                tracks: tracks_tx,
                log: Arc::clone(&log),
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("a peer connection on loopback");
        Self {
            connection: Arc::new(connection),
            candidates,
            tracks,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log lock").join(", ")
    }
}

/// What the browser heard from the renderer.
#[derive(Default)]
struct Heard {
    session_ok: bool,
    offer: Option<Value>,
    candidates: Vec<Value>,
    errors: Vec<Value>,
}

/// Plays the browser's signaling until the test is over: answers the offer, adds the
/// renderer's candidates, sends its own. Ends only by panicking.
async fn browse(
    socket: &mut Socket,
    connection: &dyn PeerConnection,
    candidates: &mut mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    heard: &Mutex<Heard>,
) {
    let mut answering = Answering::default();
    loop {
        tokio::select! {
            local = candidates.recv() => {
                let candidate = local.expect("the connection outlives its signaling");
                let content = serde_json::to_value(&candidate).expect("a candidate as JSON");
                let ice = json!({ "type": "ICE", "caller_id": BROWSER, "content": content });
                send(socket, ice).await;
            }
            text = next_text(socket) => {
                answering.handle(&text, socket, connection, heard).await;
            }
        }
    }
}

/// The browser's side of the negotiation so far.
#[derive(Default)]
struct Answering {
    answered: bool,
    /// Remote candidates that came before the offer.
    early_remote: Vec<RTCIceCandidateInit>,
}

impl Answering {
    async fn handle(
        &mut self,
        text: &str,
        socket: &mut Socket,
        connection: &dyn PeerConnection,
        heard: &Mutex<Heard>,
    ) {
        if text == "SESSION_OK" {
            heard.lock().expect("lock").session_ok = true;
            return;
        }
        let message: Value = serde_json::from_str(text).expect("JSON from signaling");
        match message["type"].as_str() {
            Some("SDP") => {
                heard.lock().expect("lock").offer = Some(message.clone());
                let offer: RTCSessionDescription =
                    serde_json::from_value(message["content"].clone()).expect("an SDP offer");
                connection
                    .set_remote_description(offer)
                    .await
                    .expect("the offer applied");
                let answer = connection.create_answer(None).await.expect("an answer");
                connection
                    .set_local_description(answer.clone())
                    .await
                    .expect("the answer applied locally");
                let content = serde_json::to_value(&answer).expect("SDP as JSON");
                let answer = json!({ "type": "SDP", "caller_id": BROWSER, "content": content });
                send(socket, answer).await;
                self.answered = true;
                for candidate in std::mem::take(&mut self.early_remote) {
                    connection
                        .add_ice_candidate(candidate)
                        .await
                        .expect("a remote candidate");
                }
            }
            Some("ICE") => {
                heard.lock().expect("lock").candidates.push(message.clone());
                let candidate: RTCIceCandidateInit =
                    serde_json::from_value(message["content"].clone()).expect("a candidate");
                if self.answered {
                    connection
                        .add_ice_candidate(candidate)
                        .await
                        .expect("a remote candidate");
                } else {
                    self.early_remote.push(candidate);
                }
            }
            _ => heard.lock().expect("lock").errors.push(message),
        }
    }
}

/// What the remote track delivered.
#[derive(Debug, Default)]
struct Received {
    packets: usize,
    payload_types: Vec<u8>,
    /// The RTP timestamp of the first packet.
    first_timestamp: Option<u32>,
    /// Each frame's RTP timestamp, less the first: a multiple of 40 ms (retransmissions after
    /// a loss repeat an earlier one).
    frames: BTreeSet<i32>,
    /// Width and height of the first keyframe.
    keyframe: Option<(u16, u16)>,
}

/// Reads the remote video track until `PACKETS` VP8 packets, `FRAMES` frames and a keyframe
/// came.
async fn watch(
    tracks: &mut mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    received: &Mutex<Received>,
) {
    let track = tracks.recv().await.expect("a remote track");
    loop {
        let event = track.poll().await.expect("the track ended early");
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let mut vp8 = Vp8Packet::default();
        let frame = vp8
            .depacketize(&packet.payload)
            .expect("a VP8 payload descriptor");
        let mut received = received.lock().expect("lock");
        received.packets += 1;
        if !received.payload_types.contains(&packet.header.payload_type) {
            received.payload_types.push(packet.header.payload_type);
        }
        let first = *received
            .first_timestamp
            .get_or_insert(packet.header.timestamp);
        // Wrapping, as RTP timestamps do; signed, as a retransmission may be older than the first.
        let offset = packet.header.timestamp.wrapping_sub(first) as i32;
        received.frames.insert(offset);
        // The first packet of a keyframe: frame tag (P bit clear), start code, dimensions.
        if vp8.s == 1 && vp8.pid == 0 && frame.len() >= 10 && frame[0] & 1 == 0 {
            assert_eq!(frame[3..6], [0x9d, 0x01, 0x2a], "a keyframe start code");
            let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
            let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
            received.keyframe.get_or_insert((width, height));
        }
        if received.packets >= PACKETS
            && received.frames.len() >= FRAMES
            && received.keyframe.is_some()
        {
            return;
        }
    }
}

/// The renderer's API answers `{"topic": …}` with an ack.
async fn api_acks(renderer: &ServerProcess) {
    let api = renderer.addr("api").expect("the API address");
    let (mut socket, _) = connect_async(format!("ws://{api}"))
        .await
        .expect("the API port accepts");
    send(&mut socket, json!({ "topic": "ping" })).await;
    let ack: Value = serde_json::from_str(&next_text(&mut socket).await).expect("JSON");
    assert_eq!(ack, json!({ "topic": "ping", "type": "ack" }));
}

/// A browser that asks for a session with instance 0 gets an offer.
async fn offered(signaling_url: &str, renderer: &ServerProcess) {
    let offer = async {
        let mut socket = browser_socket(signaling_url).await;
        loop {
            let text = next_text(&mut socket).await;
            if text == "SESSION_OK" {
                continue;
            }
            let message: Value = serde_json::from_str(&text).expect("JSON");
            if message["type"] == "SDP" {
                assert_eq!(message["content"]["type"], "offer", "{message}");
                return;
            }
        }
    };
    if tokio::time::timeout(DEADLINE, offer).await.is_err() {
        panic!(
            "no offer for the browser within {DEADLINE:?}; renderer output:\n{}",
            renderer.output()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renderer_streams_vp8_to_a_browser_peer_through_signaling_and_survives_its_leaving() {
    let Some(_ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let signaling = signaling().await;
    let renderer = renderer(&signaling.url).await;
    let mut browser = Browser::new().await;
    let heard = Mutex::new(Heard::default());
    let received = Mutex::new(Received::default());

    // The renderer may still be connecting: the SESSION waits for its REGISTER.
    let mut socket = browser_socket(&signaling.url).await;
    let session = async {
        tokio::select! {
            () = browse(&mut socket, &*browser.connection, &mut browser.candidates, &heard) => {
                unreachable!("signaling ends only by panicking")
            }
            () = watch(&mut browser.tracks, &received) => {}
        }
    };
    if tokio::time::timeout(DEADLINE, session).await.is_err() {
        let heard = heard.lock().expect("lock");
        panic!(
            "no video within {DEADLINE:?}: received {:?}; browser [{}]; offer {:?}; \
             {} candidates; other messages {:?}; renderer output:\n{}",
            received.lock().expect("lock"),
            browser.log(),
            heard.offer,
            heard.candidates.len(),
            heard.errors,
            renderer.output()
        );
    }

    let received = received.into_inner().expect("lock");
    assert!(received.packets >= PACKETS, "{received:?}");
    assert_eq!(received.keyframe, Some((WIDTH, HEIGHT)), "{received:?}");
    // VP8 under the offered payload type, one frame every 40 ms.
    assert_eq!(received.payload_types, [96], "{received:?}");
    assert!(
        received
            .frames
            .iter()
            .all(|offset| offset % FRAME_TICKS == 0),
        "{received:?}"
    );
    let heard = heard.into_inner().expect("lock");
    assert!(heard.session_ok, "the browser got SESSION_OK");
    assert!(heard.errors.is_empty(), "{:?}", heard.errors);
    // The renderer offers, as OpenSpace does: VP8, send-only, its own caller_id.
    let offer = heard.offer.expect("an offer");
    assert_eq!(offer["caller_id"], INSTANCE);
    assert_eq!(offer["content"]["type"], "offer");
    let sdp = offer["content"]["sdp"].as_str().expect("SDP text");
    assert!(sdp.contains("m=video "), "{sdp}");
    assert!(sdp.contains("VP8/90000"), "{sdp}");
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    let mid = sdp
        .lines()
        .find_map(|line| line.strip_prefix("a=mid:"))
        .expect("a mid");
    // Trickled candidates name the m-line as a browser needs: a real mid and its index.
    assert!(
        !heard.candidates.is_empty(),
        "the renderer sent no candidate"
    );
    for candidate in &heard.candidates {
        assert_eq!(candidate["caller_id"], INSTANCE, "{candidate}");
        let content = &candidate["content"];
        assert!(
            content["candidate"]
                .as_str()
                .is_some_and(|c| c.starts_with("candidate:") && c.contains(" typ host")),
            "{candidate}"
        );
        assert_eq!(content["sdpMid"], mid, "{candidate}");
        assert_eq!(content["sdpMLineIndex"], 0, "{candidate}");
    }

    // The browser leaves without a word (a closed tab): the renderer serves on.
    drop(socket);
    tokio::time::timeout(DEADLINE, api_acks(&renderer))
        .await
        .expect("the API still acks");
    browser
        .connection
        .close()
        .await
        .expect("the browser closed");
    // The next browser (a reloaded page) gets a new offer.
    offered(&signaling.url, &renderer).await;
    let status = renderer
        .terminate(Duration::from_secs(10))
        .await
        .expect("the renderer ended on SIGTERM");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_renderer_keeps_trying_until_signaling_is_up() {
    let Some(_ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let port = free_port().expect("a free port");
    let renderer = renderer(&format!("ws://127.0.0.1:{port}")).await;
    // Nothing listens there yet: the renderer serves its API and retries on a timer.
    api_acks(&renderer).await;
    let signaling = signaling_on(port).await;
    offered(&signaling.url, &renderer).await;
    renderer
        .terminate(Duration::from_secs(10))
        .await
        .expect("the renderer ended on SIGTERM");
}
