//! Ground control's answers and the relay.

use super::*;
use crate::{IceConfig, TurnConfig};

/// A room with Bill and Ted connected, and Rufus in another room.
fn three() -> (Scene, String, ClientId, ClientId, ClientId) {
    let mut scene = Scene::new();
    let slug = scene.room("Excellent Adventure", None);
    let other = scene.room("Phone Booth", None);
    let (bill, _) = scene.join(&slug, 0);
    let (ted, _) = scene.join(&slug, 0);
    let (rufus, _) = scene.join(&other, 0);
    (scene, slug, bill, ted, rufus)
}

#[test]
fn ping_is_answered_with_pong_echoing_the_data_to_the_sender() {
    let (mut scene, _, bill, _, _) = three();
    let out = scene.send(
        &bill,
        json!({ "receiver": "ground control", "type": "ping", "data": 1615918847680_u64 }),
        1,
    );
    assert_eq!(out, [from_gc(&bill, "pong", json!(1615918847680_u64))]);
    let out = scene.send(
        &bill,
        json!({ "receiver": "ground control", "type": "ping" }),
        1,
    );
    assert_eq!(
        out,
        [to(
            &bill,
            json!({ "sender": "ground control", "receiver": bill.as_str(), "type": "pong" })
        )]
    );
}

#[test]
fn profile_sets_the_name_and_sends_room_info_to_the_room() {
    let (mut scene, slug, bill, ted, _) = three();
    let out = scene.send(
        &ted,
        json!({ "sender": "spoofed", "receiver": "ground control", "type": "profile", "data": { "username": "Ted" } }),
        1,
    );
    assert_eq!(
        out,
        room_info(&[bill, ted], &slug, &[(&bill, "Major Tom"), (&ted, "Ted")])
    );

    // An empty or missing name changes nothing, yet the room still hears of it.
    for data in [
        json!({ "username": "" }),
        json!({}),
        json!("Bill"),
        Value::Null,
    ] {
        let message = json!({ "receiver": "ground control", "type": "profile", "data": data });
        let out = scene.send(&bill, message, 2);
        assert_eq!(
            out,
            room_info(&[bill, ted], &slug, &[(&bill, "Major Tom"), (&ted, "Ted")])
        );
    }

    let long = "é".repeat(MAX_USERNAME_CHARS + 5);
    let message =
        json!({ "receiver": "ground control", "type": "profile", "data": { "username": long } });
    scene.send(&bill, message, 3);
    let info = scene.registry.room_info(&slug);
    assert_eq!(
        info["clients"][0]["username"],
        "é".repeat(MAX_USERNAME_CHARS)
    );
}

#[test]
fn get_room_info_answers_the_sender_alone() {
    let (mut scene, slug, bill, ted, _) = three();
    let out = scene.send(
        &ted,
        json!({ "receiver": "ground control", "type": "get-room-info" }),
        1,
    );
    assert_eq!(
        out,
        [from_gc(
            &ted,
            "room-info",
            json!({ "room_id": slug, "clients": [
                { "id": bill.as_str(), "username": "Major Tom" },
                { "id": ted.as_str(), "username": "Major Tom" },
            ] })
        )]
    );
}

#[test]
fn get_ice_servers_gives_stun_and_turn_credentials_for_the_client() {
    let ice = IceConfig {
        stun_urls: vec!["stun:turn.example.com:3478".to_owned()],
        turn: Some(TurnConfig::new("turn:turn.example.com:3478", "north")),
    };
    let config = CamusConfig {
        ice,
        ..CamusConfig::default()
    };
    let mut scene = Scene::with(config.clone());
    let slug = scene.room("ice", None);
    let (bill, _) = scene.join(&slug, 0);
    let out = scene.send(
        &bill,
        json!({ "receiver": "ground control", "type": "get-ice-servers" }),
        0,
    );

    let turn = config.ice.turn.as_ref().expect("TURN");
    let (username, credential) = crate::ice::turn_credentials(turn, bill.as_str(), wall(0));
    assert_eq!(
        username,
        format!("1615934570:{bill}"),
        "6 h after the wall clock"
    );
    assert_eq!(
        out,
        [from_gc(
            &bill,
            "ice-servers",
            json!([
                { "urls": ["stun:turn.example.com:3478"], "kind": "stun" },
                { "urls": ["turn:turn.example.com:3478"], "username": username,
                  "credential": credential, "kind": "turn" },
            ])
        )]
    );
}

#[test]
fn text_to_a_peer_reaches_only_that_peer_from_the_real_sender() {
    let (mut scene, _, bill, ted, _) = three();
    let data = json!({ "from": "Ted", "time": 1615918847680_u64, "text": "All we are is dust in the wind, dude." });
    let out = scene.send(
        &ted,
        json!({ "sender": bill.as_str(), "receiver": bill.as_str(), "type": "text", "data": data }),
        1,
    );
    assert_eq!(
        out,
        [to(
            &bill,
            json!({ "sender": ted.as_str(), "receiver": bill.as_str(), "type": "text", "data": data })
        )]
    );
    // Any type but the server's own is relayed as it is.
    let offer = json!({ "type": "offer", "sdp": "v=0\r\n" });
    let out = scene.send(
        &bill,
        json!({ "receiver": ted.as_str(), "type": "offer", "data": offer }),
        1,
    );
    assert_eq!(
        out,
        [to(
            &ted,
            json!({ "sender": bill.as_str(), "receiver": ted.as_str(), "type": "offer", "data": offer })
        )]
    );
}

#[test]
fn a_room_message_reaches_every_connected_client_the_sender_included() {
    let (mut scene, slug, bill, ted, _) = three();
    let (gone, connection) = scene.join(&slug, 0);
    scene.registry.disconnect(&gone, connection);
    let message = json!({ "receiver": "room", "type": "text", "data": { "text": "Be excellent" } });
    let out = scene.send(&bill, message, 1);
    let relayed = json!({ "sender": bill.as_str(), "receiver": "room", "type": "text", "data": { "text": "Be excellent" } });
    assert_eq!(out, [to(&bill, relayed.clone()), to(&ted, relayed)]);
    let shared: Vec<*const Envelope> = out
        .iter()
        .filter_map(|a| match a {
            Outgoing::Send { envelope, .. } => Some(Arc::as_ptr(envelope)),
            _ => None,
        })
        .collect();
    assert_eq!(shared[0], shared[1], "one envelope for the broadcast");
}

#[test]
fn a_client_of_another_room_an_unknown_or_a_dropped_one_cannot_be_reached() {
    let (mut scene, slug, bill, _, rufus) = three();
    let (dropped, connection) = scene.join(&slug, 0);
    scene.registry.disconnect(&dropped, connection);
    for receiver in [
        rufus.to_string(),
        dropped.to_string(),
        "f00d".to_owned(),
        String::new(),
    ] {
        let message = json!({ "receiver": receiver, "type": "text", "data": "psst" });
        let out = scene.send(&bill, message, 1);
        let text = format!("No connected client {receiver} in this room");
        assert_eq!(out, [error_to(&bill, &text)]);
    }
}

#[test]
fn unknown_types_to_ground_control_get_the_originals_error() {
    let (mut scene, _, bill, _, _) = three();
    for kind in ["dance", "text", "offer", "PING"] {
        let out = scene.send(
            &bill,
            json!({ "receiver": "ground control", "type": kind }),
            1,
        );
        assert_eq!(
            out,
            [to(
                &bill,
                json!({ "sender": "ground control", "receiver": bill.as_str(), "type": "error",
                        "data": format!("Unknown message type: {kind}") })
            )]
        );
    }
    for kind in ["pong", "greeting"] {
        let out = scene.send(
            &bill,
            json!({ "receiver": "ground control", "type": kind }),
            1,
        );
        assert_eq!(out, [], "{kind} is taken silently");
    }
}

#[test]
fn room_info_and_ice_servers_from_a_client_are_refused() {
    let (mut scene, _, bill, ted, _) = three();
    let fake = json!({ "room_id": "x", "clients": [] });
    for (receiver, kind) in [
        (ted.to_string(), "room-info"),
        ("room".to_owned(), "room-info"),
        (ted.to_string(), "ice-servers"),
    ] {
        let message = json!({ "receiver": receiver, "type": kind, "data": fake });
        let out = scene.send(&bill, message, 1);
        assert_eq!(
            out,
            [error_to(
                &bill,
                &format!("Only ground control sends {kind}")
            )]
        );
    }
}

#[test]
fn a_flooding_client_is_limited_and_only_its_own_messages_are_dropped() {
    let (mut scene, _, bill, ted, _) = three();
    let text = |receiver: &ClientId| json!({ "receiver": receiver.as_str(), "type": "text", "data": "spam" });
    for n in 0..200 {
        let out = scene.send(&bill, text(&ted), 1);
        assert_eq!(kinds_to(&out, &ted), ["text"], "message {n} of the burst");
    }
    let out = scene.send(&bill, text(&ted), 1);
    assert_eq!(
        out,
        [error_to(&bill, "Too many messages: this one was dropped")]
    );
    // Ted is not limited by Bill's flood.
    let out = scene.send(&ted, text(&bill), 1);
    assert_eq!(kinds_to(&out, &bill), ["text"]);
    // A second later, 50 more pass.
    let passed = (0..60)
        .filter(|_| !kinds_to(&scene.send(&bill, text(&ted), 2), &ted).is_empty())
        .count();
    assert_eq!(passed, 50);
}

#[test]
fn bye_removes_the_client_tells_the_others_and_closes_its_socket() {
    let (mut scene, slug, bill, ted, _) = three();
    let (rufus, _) = scene.join(&slug, 0);
    let out = scene.send(
        &ted,
        json!({ "receiver": "ground control", "type": "bye", "data": 1615919897795_u64 }),
        1,
    );
    let bye = |receiver: &ClientId| {
        to(
            receiver,
            json!({ "sender": ted.as_str(), "receiver": receiver.as_str(), "type": "bye", "data": 1615919897795_u64 }),
        )
    };
    let mut expected = vec![bye(&bill), bye(&rufus)];
    expected.extend(room_info(
        &[bill, rufus],
        &slug,
        &[(&bill, "Major Tom"), (&rufus, "Major Tom")],
    ));
    expected.push(Outgoing::Close {
        to: ted,
        reason: CloseReason::Bye,
    });
    assert_eq!(out, expected);

    // Ted is gone: his socket's late messages and his cookie are refused.
    let late = scene.send(&ted, json!({ "receiver": "room", "type": "text" }), 2);
    assert_eq!(
        late,
        [Outgoing::Close {
            to: ted,
            reason: CloseReason::NotAClient
        }]
    );
    let again = scene.registry.connect(&slug, &ted, scene.at(2));
    assert_eq!(
        again.map(|c| c.connection),
        Err(ConnectError::NotAClientOfThisRoom)
    );
    assert_ne!(
        scene.registry.enter(&slug, Some(&ted), scene.at(2)),
        Ok(ted)
    );
}

#[test]
fn a_bye_to_a_peer_is_only_relayed() {
    let (mut scene, _, bill, ted, _) = three();
    let out = scene.send(
        &bill,
        json!({ "receiver": ted.as_str(), "type": "bye", "data": 1 }),
        1,
    );
    assert_eq!(
        out,
        [to(
            &ted,
            json!({ "sender": bill.as_str(), "receiver": ted.as_str(), "type": "bye", "data": 1 })
        )]
    );
    assert_eq!(scene.registry.stats().connected, 3);
}

#[test]
fn messages_from_a_dropped_socket_only_close_it() {
    let (mut scene, _, bill, ted, _) = three();
    let connection = scene
        .registry
        .connect("excellent-adventure", &bill, scene.at(1));
    let connection = connection.expect("reconnected").connection;
    scene.registry.disconnect(&bill, connection);
    let out = scene.send(
        &bill,
        json!({ "receiver": ted.as_str(), "type": "text" }),
        2,
    );
    assert_eq!(
        out,
        [Outgoing::Close {
            to: bill,
            reason: CloseReason::NotAClient
        }]
    );
}

#[test]
fn text_frames_too_large_or_malformed_are_answered_with_an_error() {
    let (mut scene, _, bill, ted, _) = three();
    let now = scene.at(1);
    let frame = format!(r#"{{"receiver":"{ted}","type":"text","data":"hi"}}"#);
    let out = scene.registry.receive_text(&bill, &frame, now, wall(1));
    scene.check(&out);
    assert_eq!(
        out,
        [to(
            &ted,
            json!({ "sender": bill.as_str(), "receiver": ted.as_str(), "type": "text", "data": "hi" })
        )]
    );

    let huge = "x".repeat(65 * 1024);
    let out = scene.registry.receive_text(&bill, &huge, now, wall(1));
    let text = format!(
        "message of {} bytes is over the limit of 65536 bytes",
        huge.len()
    );
    assert_eq!(out, [error_to(&bill, &text)]);

    let out = scene
        .registry
        .receive_text(&bill, "{\"receiver\":\"room\"}", now, wall(1));
    let [Outgoing::Send { to, envelope }] = &out[..] else {
        panic!("one error: {out:?}")
    };
    assert_eq!((to, envelope.kind.as_str()), (&bill, "error"));
    assert!(
        envelope
            .data
            .as_str()
            .is_some_and(|t| t.starts_with("malformed message: ")),
        "{envelope:?}"
    );
}
