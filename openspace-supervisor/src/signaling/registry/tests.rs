//! The registry on simulated time: the original's flow, and every refusal.

use super::*;
use serde_json::{Value, json};

const SECRET: &[u8] = b"a test secret, long enough";
const UNIX_NOW: u64 = 1_750_000_000;
const TTL: Duration = Duration::from_secs(60);

struct Sim {
    registry: PeerRegistry,
    now: Instant,
}

impl Sim {
    fn new() -> Self {
        let config = SignalingConfig {
            pending_session_ttl: TTL,
            max_message_bytes: 4096,
            ..SignalingConfig::default()
        };
        Self {
            registry: PeerRegistry::new(SECRET, &config),
            now: Instant::now(),
        }
    }

    fn open(&mut self) -> ConnectionId {
        self.registry.handle_open(self.now)
    }

    fn text(&mut self, from: ConnectionId, text: &str) -> Result<Handled, RequestError> {
        self.registry.handle_text(from, text, self.now, UNIX_NOW)
    }

    fn send(&mut self, from: ConnectionId, message: Value) -> Result<Handled, RequestError> {
        self.text(from, &message.to_string())
    }

    fn register(&mut self, from: ConnectionId, peer: u32) -> Result<Handled, RequestError> {
        let token = token::issue(SECRET, peer, UNIX_NOW + 60);
        self.send(
            from,
            json!({ "type": "REGISTER", "caller_id": peer, "token": token }),
        )
    }

    /// A registered connection, its `REGISTER` reply consumed.
    fn peer(&mut self, peer: u32) -> ConnectionId {
        let conn = self.open();
        assert_eq!(
            self.register(conn, peer),
            Ok(Handled::Registered { replaced: false })
        );
        assert_eq!(self.outputs(), [send(conn, "REGISTER")]);
        conn
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.registry.poll_output()).collect()
    }

    /// The one output, an ERROR to `to`; its content.
    fn error_to(&mut self, to: ConnectionId) -> String {
        let outputs = self.outputs();
        let [Output::Send { to: got, text }] = outputs.as_slice() else {
            panic!("one ERROR expected, got {outputs:?}");
        };
        assert_eq!(*got, to);
        let reply: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(reply["type"], "ERROR", "{reply}");
        assert_eq!(reply.as_object().map(|o| o.len()), Some(2), "{reply}");
        reply["content"].as_str().expect("a string").to_owned()
    }

    fn advance(&mut self, by: Duration) -> Expired {
        self.now += by;
        self.registry.handle_timeout(self.now)
    }
}

fn send(to: ConnectionId, text: &str) -> Output {
    Output::Send {
        to,
        text: text.to_owned(),
    }
}

fn json_of(output: &Output) -> Value {
    let Output::Send { text, .. } = output else {
        panic!("a Send expected, got {output:?}");
    };
    serde_json::from_str(text).expect("JSON")
}

#[test]
fn an_instance_and_its_browser_pair_and_exchange_sdp_and_ice_verbatim() {
    let mut sim = Sim::new();
    let instance = sim.peer(0);
    let browser = sim.peer(100);
    assert_eq!(
        sim.send(
            browser,
            json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
        ),
        Ok(Handled::SessionOpened)
    );
    let outputs = sim.outputs();
    assert_eq!(outputs[0], send(browser, "SESSION_OK"));
    assert_eq!(
        (outputs.len(), json_of(&outputs[1])),
        (
            2,
            json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
        )
    );
    assert!(matches!(outputs[1], Output::Send { to, .. } if to == instance));
    assert_eq!(sim.registry.partner_of(0), Some(100));

    // Spacing, key order, unknown fields and number spelling all survive.
    let offer = r#"{ "content":{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"},"type":"SDP","caller_id":0 ,"extra":1.50}"#;
    assert_eq!(sim.text(instance, offer), Ok(Handled::Relayed));
    assert_eq!(sim.outputs(), [send(browser, offer)]);
    let answer = r#"{"type":"SDP","caller_id":"100","content":{"type":"answer","sdp":"v=0"}}"#;
    assert_eq!(sim.text(browser, answer), Ok(Handled::Relayed));
    assert_eq!(sim.outputs(), [send(instance, answer)]);
    for (from, to) in [(browser, instance), (instance, browser)] {
        let ice = r#"{"type":"ICE","content":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        assert_eq!(sim.text(from, ice), Ok(Handled::Relayed));
        assert_eq!(sim.outputs(), [send(to, ice)]);
    }
    assert_eq!(
        sim.registry.stats(),
        Stats {
            connections: 2,
            peers: 2,
            sessions: 1,
            pending: 0
        }
    );
}

#[test]
fn register_needs_a_valid_token_for_that_very_id() {
    let mut sim = Sim::new();
    let conn = sim.open();
    let attempts = [
        (
            token::issue(SECRET, 1, UNIX_NOW + 60),
            "REGISTER refused: the token is for peer 1, not 0",
        ),
        (
            token::issue(SECRET, 0, UNIX_NOW),
            "REGISTER refused: the token expired",
        ),
        (
            token::issue(b"not the server's secret", 0, UNIX_NOW + 60),
            "REGISTER refused: the token is invalid",
        ),
        (
            "0.9999999999.AAAA".to_owned(),
            "REGISTER refused: the token is malformed",
        ),
    ];
    for (token, why) in attempts {
        let refused = sim.send(
            conn,
            json!({ "type": "REGISTER", "caller_id": 0, "token": token }),
        );
        assert!(
            matches!(refused, Err(RequestError::Refused(_))),
            "{refused:?}"
        );
        assert_eq!(sim.error_to(conn), why);
        assert_eq!(sim.registry.peer_of(conn), None);
    }
    // Still unregistered: nothing else is allowed …
    let refused = sim.send(
        conn,
        json!({ "type": "SESSION", "caller_id": 0, "content": 100 }),
    );
    assert_eq!(refused, Err(RequestError::NotRegistered));
    assert_eq!(sim.error_to(conn), "not registered: send REGISTER first");
    // … and the connection stays usable.
    assert_eq!(
        sim.register(conn, 0),
        Ok(Handled::Registered { replaced: false })
    );
    assert_eq!(sim.outputs(), [send(conn, "REGISTER")]);
    assert_eq!(sim.registry.peer_of(conn), Some(0));
}

#[test]
fn one_connection_holds_one_id() {
    let mut sim = Sim::new();
    let conn = sim.peer(3);
    assert_eq!(
        sim.register(conn, 3),
        Ok(Handled::Registered { replaced: false })
    );
    assert_eq!(sim.outputs(), [send(conn, "REGISTER")]);
    assert_eq!(
        sim.register(conn, 4),
        Err(RequestError::AlreadyRegistered(3))
    );
    assert_eq!(
        sim.error_to(conn),
        "already registered as peer 3 on this connection"
    );
    assert_eq!(sim.registry.stats().peers, 1);
}

#[test]
fn a_newer_connection_of_an_id_replaces_the_older_and_ends_its_session() {
    let mut sim = Sim::new();
    let old = sim.peer(0);
    let browser = sim.peer(100);
    sim.send(browser, json!({ "type": "SESSION", "content": 0 }))
        .expect("opened");
    sim.outputs();
    let new = sim.open();
    assert_eq!(
        sim.register(new, 0),
        Ok(Handled::Registered { replaced: true })
    );
    let outputs = sim.outputs();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert!(matches!(outputs[0], Output::Send { to, .. } if to == browser));
    assert_eq!(
        json_of(&outputs[0]),
        json!({ "type": "SESSION_END", "caller_id": 0, "content": "reconnected" })
    );
    assert_eq!(
        outputs[1],
        Output::Close {
            to: old,
            reason: CloseReason::Replaced
        }
    );
    assert_eq!(outputs[2], send(new, "REGISTER"));
    assert_eq!(sim.registry.peer_of(old), None);
    assert_eq!(sim.registry.partner_of(100), None);
    // The old connection is forgotten: what it still sends is ignored.
    assert_eq!(
        sim.text(old, r#"{"type":"SDP","content":"x"}"#),
        Ok(Handled::Ignored)
    );
    sim.registry.handle_close(old);
    assert_eq!(sim.outputs(), []);
    assert_eq!(sim.registry.stats().peers, 2);
}

#[test]
fn a_session_to_a_peer_not_yet_registered_waits_for_it() {
    let mut sim = Sim::new();
    let browser = sim.peer(100);
    assert_eq!(
        sim.send(
            browser,
            json!({ "type": "SESSION", "caller_id": 100, "content": "0" })
        ),
        Ok(Handled::SessionPending)
    );
    assert_eq!(sim.outputs(), []);
    assert_eq!(sim.registry.stats().pending, 1);
    assert_eq!(sim.registry.poll_timeout(), Some(sim.now + TTL));
    // SDP before the session is open is refused.
    assert_eq!(
        sim.send(browser, json!({ "type": "SDP", "content": "early" })),
        Err(RequestError::NoSession)
    );
    assert_eq!(
        sim.error_to(browser),
        "no session: send SESSION first, and wait for SESSION_OK"
    );

    assert_eq!(
        sim.advance(TTL - Duration::from_millis(1)),
        Expired::default()
    );
    let instance = sim.open();
    sim.register(instance, 0).expect("registered");
    let outputs = sim.outputs();
    assert_eq!(
        outputs[..2],
        [send(instance, "REGISTER"), send(browser, "SESSION_OK")]
    );
    assert_eq!(
        json_of(&outputs[2]),
        json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
    );
    assert_eq!(sim.registry.stats().pending, 0);
    // The pending timer is gone with it; only the registration timers are left (none: both
    // registered).
    assert_eq!(sim.registry.poll_timeout(), None);
    assert_eq!(sim.advance(TTL), Expired::default());
    assert_eq!(sim.registry.partner_of(0), Some(100));
}

#[test]
fn a_pending_session_expires_into_an_error_for_the_caller() {
    let mut sim = Sim::new();
    let browser = sim.peer(101);
    sim.send(browser, json!({ "type": "SESSION", "content": 1 }))
        .expect("pending");
    assert_eq!(
        sim.advance(TTL),
        Expired {
            sessions: 1,
            connections: 0
        }
    );
    assert_eq!(
        sim.error_to(browser),
        "SESSION expired: peer 1 did not register within 60s"
    );
    // Registering later opens nothing; a new SESSION does.
    let instance = sim.peer(1);
    assert_eq!(sim.registry.partner_of(1), None);
    assert_eq!(
        sim.send(browser, json!({ "type": "SESSION", "content": 1 })),
        Ok(Handled::SessionOpened)
    );
    let outputs = sim.outputs();
    assert_eq!(outputs[0], send(browser, "SESSION_OK"));
    assert!(matches!(outputs[1], Output::Send { to, .. } if to == instance));
}

#[test]
fn a_third_peer_cannot_join_hijack_or_spoof_a_session() {
    let mut sim = Sim::new();
    let instance = sim.peer(0);
    let browser = sim.peer(100);
    let intruder = sim.peer(7);
    sim.send(browser, json!({ "type": "SESSION", "content": 0 }))
        .expect("opened");
    sim.outputs();

    let offer =
        json!({ "type": "SDP", "caller_id": 7, "content": { "type": "offer", "sdp": "evil" } });
    assert_eq!(sim.send(intruder, offer), Err(RequestError::NoSession));
    sim.error_to(intruder);
    for target in [0, 100] {
        assert_eq!(
            sim.send(intruder, json!({ "type": "SESSION", "content": target })),
            Err(RequestError::Busy(target))
        );
        assert_eq!(
            sim.error_to(intruder),
            format!("peer {target} is busy with another session")
        );
    }
    // Claiming to be the browser changes nothing: caller_id must be the connection's own.
    let spoof = json!({ "type": "ICE", "caller_id": 100, "content": "candidate" });
    assert_eq!(
        sim.send(intruder, spoof),
        Err(RequestError::WrongCallerId {
            claimed: 100,
            peer: 7
        })
    );
    assert_eq!(
        sim.error_to(intruder),
        "caller_id 100 is not this connection's peer id 7"
    );
    // A registered peer of the session cannot be talked into a second one either.
    assert_eq!(
        sim.send(browser, json!({ "type": "SESSION", "content": 7 })),
        Err(RequestError::AlreadyInSession(0))
    );
    sim.error_to(browser);
    // Asking again for the current partner is answered again, without a second notice.
    assert_eq!(
        sim.send(instance, json!({ "type": "SESSION", "content": 100 })),
        Ok(Handled::SessionOpened)
    );
    assert_eq!(sim.outputs(), [send(instance, "SESSION_OK")]);
    assert_eq!(sim.registry.partner_of(0), Some(100));
}

#[test]
fn a_peer_awaited_by_one_caller_is_busy_for_others() {
    let mut sim = Sim::new();
    let first = sim.peer(100);
    let second = sim.peer(101);
    sim.send(first, json!({ "type": "SESSION", "content": 0 }))
        .expect("pending");
    assert_eq!(
        sim.send(second, json!({ "type": "SESSION", "content": 0 })),
        Err(RequestError::Busy(0))
    );
    sim.error_to(second);
    // The first caller changes its mind: its earlier request is dropped.
    assert_eq!(
        sim.send(first, json!({ "type": "SESSION", "content": 2 })),
        Ok(Handled::SessionPending)
    );
    assert_eq!(
        sim.send(second, json!({ "type": "SESSION", "content": 0 })),
        Ok(Handled::SessionPending)
    );
    assert_eq!(sim.registry.stats().pending, 2);
    // A caller that disconnects takes its request with it.
    sim.registry.handle_close(first);
    assert_eq!(sim.registry.stats().pending, 1);
    assert_eq!(sim.advance(TTL).sessions, 1);
    sim.error_to(second);
}

#[test]
fn a_disconnect_ends_the_session_for_the_partner() {
    let mut sim = Sim::new();
    let instance = sim.peer(0);
    let browser = sim.peer(100);
    sim.send(browser, json!({ "type": "SESSION", "content": 0 }))
        .expect("opened");
    sim.outputs();
    sim.registry.handle_close(browser);
    let outputs = sim.outputs();
    assert_eq!(outputs.len(), 1);
    assert!(matches!(outputs[0], Output::Send { to, .. } if to == instance));
    assert_eq!(
        json_of(&outputs[0]),
        json!({ "type": "SESSION_END", "caller_id": 100, "content": "disconnected" })
    );
    assert_eq!(
        sim.send(instance, json!({ "type": "ICE", "content": "late" })),
        Err(RequestError::NoSession)
    );
    sim.error_to(instance);
    // The id is free again.
    sim.peer(100);
}

#[test]
fn bad_input_gets_an_error_and_the_connection_keeps_working() {
    let mut sim = Sim::new();
    let conn = sim.open();
    let cases: [(&str, &str); 5] = [
        ("{not json", "malformed JSON: "),
        ("[1,2]", "malformed message: expected a JSON object"),
        (
            r#"{"type":"HELLO","caller_id":0}"#,
            "unknown message type: HELLO",
        ),
        (
            r#"{"type":"SDP","content":"x"}"#,
            "not registered: send REGISTER first",
        ),
        (
            r#"{"type":"REGISTER","caller_id":-1,"token":"t"}"#,
            "malformed message: caller_id must be a peer id",
        ),
    ];
    for (text, starts) in cases {
        let result = sim.text(conn, text);
        assert!(result.is_err(), "{text}");
        let why = sim.error_to(conn);
        assert!(why.starts_with(starts), "{text}: {why}");
    }
    let big = format!(r#"{{"type":"SDP","content":"{}"}}"#, "a".repeat(5000));
    let result = sim.text(conn, &big);
    assert!(matches!(
        result,
        Err(RequestError::Message(MessageError::TooLarge {
            limit: 4096,
            ..
        }))
    ));
    assert_eq!(
        sim.error_to(conn),
        format!("message too large: {} bytes, the limit is 4096", big.len())
    );
    let binary = sim
        .registry
        .handle_binary(conn, &[0xff, 0xfe, b'{'], sim.now, UNIX_NOW);
    assert_eq!(binary.map_err(|e| e.label()), Err("malformed_json"));
    assert!(
        sim.error_to(conn)
            .starts_with("malformed JSON: a binary frame")
    );
    // JSON in a binary frame is read like text.
    let token = token::issue(SECRET, 0, UNIX_NOW + 60);
    let register = json!({ "type": "REGISTER", "caller_id": 0, "token": token }).to_string();
    assert_eq!(
        sim.registry
            .handle_binary(conn, register.as_bytes(), sim.now, UNIX_NOW),
        Ok(Handled::Registered { replaced: false })
    );
    assert_eq!(sim.outputs(), [send(conn, "REGISTER")]);
}

#[test]
fn a_session_with_oneself_is_refused() {
    let mut sim = Sim::new();
    let conn = sim.peer(0);
    assert_eq!(
        sim.send(conn, json!({ "type": "SESSION", "content": 0 })),
        Err(RequestError::SelfSession)
    );
    sim.error_to(conn);
}

#[test]
fn connections_that_never_register_are_closed() {
    let mut sim = Sim::new();
    let idle = sim.open();
    let registered = sim.open();
    assert_eq!(sim.registry.poll_timeout(), Some(sim.now + REGISTER_WITHIN));
    sim.advance(Duration::from_secs(10));
    sim.register(registered, 5).expect("registered");
    sim.outputs();
    let late = sim.open();
    assert_eq!(sim.advance(Duration::from_secs(20)).connections, 1);
    let outputs = sim.outputs();
    assert_eq!(outputs.len(), 2);
    assert_eq!(json_of(&outputs[0])["content"], "no REGISTER within 30s");
    assert_eq!(
        outputs[1],
        Output::Close {
            to: idle,
            reason: CloseReason::NoRegister
        }
    );
    assert_eq!(sim.registry.stats().connections, 2);
    assert_eq!(sim.advance(Duration::from_secs(10)).connections, 1);
    assert!(matches!(sim.outputs()[1], Output::Close { to, .. } if to == late));
    assert_eq!(sim.registry.poll_timeout(), None);
    assert_eq!(sim.registry.stats().connections, 1);
}

#[test]
fn instance_and_browser_pairing_keeps_browsers_to_their_own_instance() {
    let pairing = Pairing::InstanceAndBrowser {
        browser_offset: 100,
    };
    assert!(pairing.allows(0, 100) && pairing.allows(100, 0) && pairing.allows(2, 102));
    assert!(!pairing.allows(0, 101) && !pairing.allows(100, 101) && !pairing.allows(1, 2));
    assert!(
        !pairing.allows(100, 200),
        "100 is a browser, not an instance"
    );
    assert!(Pairing::Any.allows(5, 6));

    let mut sim = Sim::new();
    sim.registry.set_pairing(pairing);
    sim.peer(0);
    let other_browser = sim.peer(101);
    assert_eq!(
        sim.send(other_browser, json!({ "type": "SESSION", "content": 0 })),
        Err(RequestError::NotPaired {
            peer: 101,
            partner: 0
        })
    );
    assert_eq!(
        sim.error_to(other_browser),
        "peer 101 may not open a session with peer 0"
    );
    assert_eq!(
        sim.send(other_browser, json!({ "type": "SESSION", "content": 1 })),
        Ok(Handled::SessionPending)
    );
}
