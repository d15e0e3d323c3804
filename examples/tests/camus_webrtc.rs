//! Two `webrtc` peers, Bill and Ted, that meet only through Camus: Bill offers once the room
//! shows a second client, Ted answers, ICE candidates trickle both ways over the room's
//! WebSocket (addressed to the other's id), and a data channel carries a line each way.
//! Host candidates on 127.0.0.1 only: no STUN, no network.

mod camus_support;

use camus_support::{Camus, camus};
use futures::{SinkExt, StreamExt};
use rtc::ice::mdns::MulticastDnsMode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCIceConnectionState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The whole scenario, from the first HTTP request to the last message.
const DEADLINE: Duration = Duration::from_secs(30);

/// The kinds of message that go from peer to peer.
const SIGNALING: [&str; 3] = ["offer", "answer", "icecandidate"];

/// What a peer connection reports, passed on from its driver without blocking it.
struct Events {
    candidates: mpsc::UnboundedSender<Result<RTCIceCandidateInit, String>>,
    channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
    /// Connection and ICE state changes, shown if the deadline passes.
    log: Arc<Mutex<Vec<String>>>,
}

impl Events {
    fn note(&self, line: String) {
        self.log.lock().expect("log lock").push(line);
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        // The receiver is gone once the test is over.
        let _ = self
            .candidates
            .send(event.candidate.to_json().map_err(|e| e.to_string()));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.channels.send(channel);
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.note(format!("ice {state}"));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.note(format!("connection {state}"));
    }
}

/// One side: its peer connection and what its driver hands on.
struct Peer {
    name: &'static str,
    connection: Arc<dyn PeerConnection>,
    /// Where data channels go: the remote one from the driver, and the one Bill's signaling
    /// creates.
    channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
    log: Arc<Mutex<Vec<String>>>,
}

/// What a peer's driver hands on: local candidates for its signaling, data channels (Bill's
/// own, Ted's from the driver) for the test.
struct Handed {
    candidates: mpsc::UnboundedReceiver<Result<RTCIceCandidateInit, String>>,
    channels: mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
}

impl Peer {
    /// A peer connection with a single UDP socket on 127.0.0.1, so its only candidate is a
    /// loopback host candidate, and without mDNS: its default mode (query only) still binds
    /// 224.0.0.251:5353 and joins the group, which fails (`ENODEV`) where only loopback is up.
    async fn new(name: &'static str) -> (Self, Handed) {
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (channels_tx, channels) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let events = Events {
            candidates: candidates_tx,
            channels: channels_tx.clone(),
            log: Arc::clone(&log),
        };
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        // `with_handler` is not optional: `build()` fails without one.
        let connection = PeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_handler(Arc::new(events))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("a peer connection on loopback");
        let peer = Self {
            name,
            connection: Arc::new(connection),
            channels: channels_tx,
            log,
        };
        (
            peer,
            Handed {
                candidates,
                channels,
            },
        )
    }

    fn log(&self) -> String {
        self.log.lock().expect("log lock").join(", ")
    }
}

/// Who starts the negotiation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Offerer,
    Answerer,
}

/// Enters the room over HTTP, opens its WebSocket with the cookie, and reads the greeting:
/// returns the socket and the client id it names.
async fn join(camus: &Camus, slug: &str) -> (Socket, String) {
    let cookie = camus.cookie(slug).await;
    let url = format!("{}/room/{slug}/ws", camus.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("a WebSocket request");
    request.headers_mut().insert(
        "cookie",
        HeaderValue::from_str(&cookie).expect("a cookie is a header value"),
    );
    let (mut socket, _) = connect_async(request).await.expect("the socket opened");
    let greeting = next_message(&mut socket)
        .await
        .expect("a greeting before anything else");
    assert_eq!(greeting["type"], "greeting", "{greeting}");
    let id = greeting["receiver"].as_str().expect("an id").to_owned();
    (socket, id)
}

/// The next text frame as JSON; `None` once the socket is closed.
async fn next_message(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => {
                return Some(serde_json::from_str(&text).expect("the server sends JSON"));
            }
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(error) => panic!("the socket failed: {error}"),
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent to the server");
}

/// One side's signaling: what it knows of the negotiation so far.
struct Signaling<'a> {
    peer: &'a Peer,
    role: Role,
    me: &'a str,
    socket: &'a mut Socket,
    /// Every `offer`, `answer` and `icecandidate` received.
    heard: &'a mut Vec<Value>,
    /// The other client's id, from `room-info`.
    other: Option<String>,
    offered: bool,
    remote_description_set: bool,
    /// Remote candidates that came before the remote description.
    early_remote: Vec<RTCIceCandidateInit>,
    /// Local candidates gathered before the other client was known.
    early_local: Vec<RTCIceCandidateInit>,
}

/// Bridges `peer`'s connection and its socket until the socket closes, which it should not
/// while the test runs: signaling ends only by panicking.
async fn signal(
    peer: &Peer,
    candidates: &mut mpsc::UnboundedReceiver<Result<RTCIceCandidateInit, String>>,
    role: Role,
    me: &str,
    socket: &mut Socket,
    heard: &mut Vec<Value>,
) {
    let name = peer.name;
    let mut signaling = Signaling {
        peer,
        role,
        me,
        socket,
        heard,
        other: None,
        offered: false,
        remote_description_set: false,
        early_remote: Vec::new(),
        early_local: Vec::new(),
    };
    loop {
        tokio::select! {
            local = candidates.recv() => {
                let candidate = local
                    .expect("the connection outlives its signaling")
                    .expect("a gathered candidate serialises");
                signaling.local_candidate(candidate).await;
            }
            message = next_message(signaling.socket) => {
                let message = message.unwrap_or_else(|| panic!("{name}'s socket closed"));
                signaling.handle(message).await;
            }
        }
    }
}

impl Signaling<'_> {
    async fn local_candidate(&mut self, candidate: RTCIceCandidateInit) {
        match &self.other {
            Some(to) => send_candidate(self.socket, to, &candidate).await,
            None => self.early_local.push(candidate),
        }
    }

    async fn handle(&mut self, message: Value) {
        let name = self.peer.name;
        let connection = &self.peer.connection;
        let kind = message["type"].as_str().unwrap_or_default().to_owned();
        if SIGNALING.contains(&kind.as_str()) {
            self.heard.push(message.clone());
        }
        match kind.as_str() {
            "room-info" => {
                let clients = message["data"]["clients"]
                    .as_array()
                    .expect("a client list");
                let Some(found) = clients
                    .iter()
                    .filter_map(|client| client["id"].as_str())
                    .find(|id| *id != self.me)
                else {
                    return;
                };
                if self.other.is_none() {
                    self.other = Some(found.to_owned());
                    for candidate in std::mem::take(&mut self.early_local) {
                        send_candidate(self.socket, found, &candidate).await;
                    }
                }
                if self.role == Role::Offerer && !self.offered {
                    self.offered = true;
                    let channel = connection
                        .create_data_channel("chat", None)
                        .await
                        .expect("a data channel");
                    let _ = self.peer.channels.send(channel);
                    let offer = connection.create_offer(None).await.expect("an offer");
                    connection
                        .set_local_description(offer.clone())
                        .await
                        .expect("the offer applied locally");
                    let data = serde_json::to_value(&offer).expect("SDP as JSON");
                    let offer = json!({ "receiver": found, "type": "offer", "data": data });
                    send(self.socket, offer).await;
                }
            }
            "offer" => {
                assert!(
                    self.role == Role::Answerer,
                    "{name} got an offer: {message}"
                );
                let to = self.other.clone().expect("room-info came before the offer");
                let offer: RTCSessionDescription =
                    serde_json::from_value(message["data"].clone()).expect("an SDP offer");
                connection
                    .set_remote_description(offer)
                    .await
                    .expect("the offer applied");
                self.remote_description_applied().await;
                let answer = connection.create_answer(None).await.expect("an answer");
                connection
                    .set_local_description(answer.clone())
                    .await
                    .expect("the answer applied locally");
                let data = serde_json::to_value(&answer).expect("SDP as JSON");
                let answer = json!({ "receiver": to, "type": "answer", "data": data });
                send(self.socket, answer).await;
            }
            "answer" => {
                assert!(
                    self.role == Role::Offerer,
                    "{name} got an answer: {message}"
                );
                let answer: RTCSessionDescription =
                    serde_json::from_value(message["data"].clone()).expect("an SDP answer");
                connection
                    .set_remote_description(answer)
                    .await
                    .expect("the answer applied");
                self.remote_description_applied().await;
            }
            "icecandidate" => {
                let candidate: RTCIceCandidateInit =
                    serde_json::from_value(message["data"].clone()).expect("a candidate");
                if self.remote_description_set {
                    connection
                        .add_ice_candidate(candidate)
                        .await
                        .expect("a remote candidate");
                } else {
                    self.early_remote.push(candidate);
                }
            }
            "ping" => {
                let data = message["data"].clone();
                let pong = json!({ "receiver": "ground control", "type": "pong", "data": data });
                send(self.socket, pong).await;
            }
            "error" => panic!("the server refused one of {name}'s messages: {message}"),
            _ => {}
        }
    }

    /// Adds the candidates that came too early.
    async fn remote_description_applied(&mut self) {
        self.remote_description_set = true;
        for candidate in std::mem::take(&mut self.early_remote) {
            self.peer
                .connection
                .add_ice_candidate(candidate)
                .await
                .expect("a remote candidate");
        }
    }
}

async fn send_candidate(socket: &mut Socket, to: &str, candidate: &RTCIceCandidateInit) {
    let data = serde_json::to_value(candidate).expect("a candidate as JSON");
    send(
        socket,
        json!({ "receiver": to, "type": "icecandidate", "data": data }),
    )
    .await;
}

/// Waits for the channel to open.
async fn opened(channel: &dyn DataChannel, who: &str) {
    loop {
        match channel.poll().await {
            Some(DataChannelEvent::OnOpen) => return,
            Some(DataChannelEvent::OnMessage(message)) => {
                panic!("{who}'s channel had a message before it opened: {message:?}")
            }
            Some(DataChannelEvent::OnClose) | None => panic!("{who}'s channel closed unopened"),
            Some(_) => {}
        }
    }
}

/// The next text message on the channel.
async fn next_text(channel: &dyn DataChannel, who: &str) -> String {
    loop {
        match channel.poll().await {
            Some(DataChannelEvent::OnMessage(message)) => {
                assert!(message.is_string, "{who} got a binary message");
                return String::from_utf8(message.data.to_vec()).expect("UTF-8 text");
            }
            Some(DataChannelEvent::OnClose) | None => panic!("{who}'s channel closed"),
            Some(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webrtc_peers_negotiate_through_camus_and_talk_over_a_data_channel() {
    let camus = camus(|_| {}).await;
    let room = camus.create(&[("room_name", "Excellent Adventure")]).await;
    let (bill, bill_handed) = Peer::new("Bill").await;
    let (ted, ted_handed) = Peer::new("Ted").await;
    let Handed {
        candidates: mut bill_candidates,
        channels: mut bill_channels,
    } = bill_handed;
    let Handed {
        candidates: mut ted_candidates,
        channels: mut ted_channels,
    } = ted_handed;
    let mut bill_heard = Vec::new();
    let mut ted_heard = Vec::new();
    let mut ids = None;

    let scenario = async {
        // Bill first: his own room-info (him alone) is waiting, then the one with Ted.
        let (mut bill_socket, bill_id) = join(&camus, &room).await;
        let (mut ted_socket, ted_id) = join(&camus, &room).await;
        assert_ne!(bill_id, ted_id);
        ids = Some((bill_id.clone(), ted_id.clone()));
        let bill_signals = signal(
            &bill,
            &mut bill_candidates,
            Role::Offerer,
            &bill_id,
            &mut bill_socket,
            &mut bill_heard,
        );
        let ted_signals = signal(
            &ted,
            &mut ted_candidates,
            Role::Answerer,
            &ted_id,
            &mut ted_socket,
            &mut ted_heard,
        );
        let conversation = async {
            let bill_channel = bill_channels.recv().await.expect("Bill's channel");
            let ted_channel = ted_channels.recv().await.expect("Ted's channel");
            assert_eq!(ted_channel.label().await.expect("a label"), "chat");
            opened(&*bill_channel, "Bill").await;
            opened(&*ted_channel, "Ted").await;
            bill_channel
                .send_text("hello from Bill")
                .await
                .expect("Bill sent");
            assert_eq!(next_text(&*ted_channel, "Ted").await, "hello from Bill");
            ted_channel
                .send_text("Be excellent to each other")
                .await
                .expect("Ted sent");
            assert_eq!(
                next_text(&*bill_channel, "Bill").await,
                "Be excellent to each other"
            );
        };
        tokio::select! {
            () = bill_signals => unreachable!("signaling ends only by panicking"),
            () = ted_signals => unreachable!("signaling ends only by panicking"),
            () = conversation => {}
        }
    };
    if tokio::time::timeout(DEADLINE, scenario).await.is_err() {
        panic!(
            "no conversation within {DEADLINE:?}; Bill [{}] heard {bill_heard:?}; \
             Ted [{}] heard {ted_heard:?}",
            bill.log(),
            ted.log()
        );
    }

    // The server put the sender's id on everything relayed, and relayed only to the other.
    let (bill_id, ted_id) = ids.expect("both joined");
    for (who, heard, kinds, from) in [
        ("Bill", &bill_heard, ["answer", "icecandidate"], &ted_id),
        ("Ted", &ted_heard, ["offer", "icecandidate"], &bill_id),
    ] {
        for kind in kinds {
            assert!(
                heard.iter().any(|message| message["type"] == kind),
                "{who} got no {kind}: {heard:?}"
            );
        }
        for message in heard {
            assert_eq!(
                message["sender"].as_str(),
                Some(from.as_str()),
                "{who} heard {message}"
            );
        }
    }
    bill.connection.close().await.expect("Bill closed");
    ted.connection.close().await.expect("Ted closed");
}
